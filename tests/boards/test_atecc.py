"""The ATECC608B driver (boards/atecc.py) against the simulated chip (boards/sim_atecc.py), byte for
byte on the simulated I2C bus: the HMAC the chip computes equals the host's (isolog_fw.mac) for
the same key and message, whatever the message's length and however it is split; CRC-16 vectors
from outside this project; errors on a bad CRC either way, a wrong slot, a chip that hangs or is
absent, the chip's watchdog. The same checks run under the MicroPython unix port (the driver is
firmware: it must run there)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from isolog_boards import atecc, sim_atecc
from isolog_fw import mac
from mp_helpers import ROOT, clean_env

KEY = bytes(range(1, 33))


class Clock:
    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> int:
        return self.ms


@pytest.fixture()
def chip_and_driver():
    bus = sim_atecc.SimI2C()
    clock = Clock()
    chip = sim_atecc.SimATECC608(None, clock_ms=clock)
    bus.devices[sim_atecc.ADDRESS] = chip
    return chip, atecc.ATECC608(bus), clock


def provisioned(chip_and_driver):
    chip, se, clock = chip_and_driver
    se.store_key(KEY)
    return chip, se, clock


# --- the CRC and framing, with vectors from outside this project -------------------------------------


def test_crc16_matches_published_vectors():
    # The wake response 04 11 33 43 (CryptoAuthLib hal_check_wake's expected bytes): CRC of 04 11.
    assert atecc.crc16(b"\x04\x11", 0, 2) == 0x4333
    # Info command 07 30 00 00 00 -> CRC bytes 03 5D (Microchip app note example quoted by
    # SparkFun's ATECC508A CRC test: "correct CRC: 0x035D", low byte first on the wire).
    assert atecc.crc16(b"\x07\x30\x00\x00\x00", 0, 5) == 0x5D03
    # and the model's independent implementation agrees
    assert sim_atecc.chip_crc(b"\x07\x30\x00\x00\x00") == b"\x03\x5d"


def test_wake_answers_the_documented_bytes(chip_and_driver):
    chip, se, _ = chip_and_driver
    se.wake()
    assert bytes(se._rx[:4]) == bytes.fromhex("04113343")


# --- the HMAC computed inside the chip -----------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 16, 63, 64, 65, 127, 128, 129, 1000])
def test_chip_mac_equals_host_mac_for_any_length(chip_and_driver, length):
    chip, se, _ = provisioned(chip_and_driver)
    msg = bytes((i * 37 + 11) & 0xFF for i in range(length))
    key = se.key(b"\x00\x01\x02\x03", mac.MAC_LEN)
    cut = length // 3
    got = key.mac(msg[:cut], memoryview(msg)[cut:])  # the firmware passes memoryviews too
    assert got == mac.hmac_sha256(KEY, msg)[: mac.MAC_LEN]
    assert mac.mac(key, msg) == mac.mac(KEY, msg)  # through the firmware's dispatch


def test_record_chunk_mac_is_the_same_with_the_key_in_the_chip(chip_and_driver):
    from isolog_fw import record

    chip, se, _ = provisioned(chip_and_driver)
    in_chip = se.key(record.key_id(KEY), mac.MAC_LEN)
    assert record.key_id(in_chip) == record.key_id(KEY)
    a, b = bytearray(200), bytearray(200)
    body = bytes(range(100))
    a[4:104] = body
    b[4:104] = body
    chain = bytes(16)
    assert record.seal_chunk(a, record.KIND_BATCH, 100, in_chip, chain) == record.seal_chunk(
        b, record.KIND_BATCH, 100, KEY, chain
    )
    assert a == b


def test_one_mac_costs_start_updates_and_end(chip_and_driver):
    chip, se, _ = provisioned(chip_and_driver)
    before = chip.commands
    se.key(b"abcd", 16).mac(bytes(200))  # 200 bytes: 3 full blocks and 8 bytes at the end
    assert chip.commands - before == 1 + 3 + 1


# --- errors ------------------------------------------------------------------------------------------


def test_response_with_a_bad_crc_is_refused(chip_and_driver):
    chip, se, _ = provisioned(chip_and_driver)
    with pytest.raises(atecc.SEError, match="response CRC error"):
        chip.garble_responses = 1
        se.hmac(atecc.KEY_SLOT, (b"hello",))  # one operation: the error is raised
    # A MAC retries once (a glitch on the bus costs nothing), and fails on a second bad CRC.
    chip.garble_responses = 1
    assert se.key(b"abcd", 16).mac(b"hello") == mac.mac(KEY, b"hello")
    chip.garble_responses = 2
    with pytest.raises(atecc.SEError, match="response CRC error"):
        se.key(b"abcd", 16).mac(b"hello")
    assert se.key(b"abcd", 16).mac(b"hello") == mac.mac(KEY, b"hello")  # the next one is fine


def test_command_with_a_bad_crc_gets_status_ff(chip_and_driver):
    chip, se, _ = chip_and_driver
    bus = se.i2c
    se.wake()
    packet = bytearray(b"\x07\x30\x00\x00\x00\x03\x5d")  # Info, correct CRC
    packet[-1] ^= 0x40
    bus.writeto(sim_atecc.ADDRESS, b"\x03" + packet)
    resp = bytearray(4)
    with pytest.raises(OSError):  # executing: the address is not acknowledged
        bus.readfrom_into(sim_atecc.ADDRESS, resp)
    bus.readfrom_into(sim_atecc.ADDRESS, resp)
    assert resp[0] == 4 and resp[1] == atecc.STATUS_CRC and sim_atecc.chip_crc(resp[:2]) == resp[2:]


def test_wrong_slot_is_an_execution_error(chip_and_driver):
    chip, se, _ = provisioned(chip_and_driver)
    with pytest.raises(atecc.SEError, match="status 0x0f"):
        atecc.SlotKey(se, atecc.KEY_SLOT + 1, b"abcd", 16).mac(b"x")
    with pytest.raises(atecc.SEError, match="status 0x03"):
        atecc.SlotKey(se, 16, b"abcd", 16).mac(b"x")  # no such slot: a parse error


def test_mac_before_the_key_is_written_and_locked_is_refused(chip_and_driver):
    chip, se, _ = chip_and_driver
    assert se.data_locked() is False
    with pytest.raises(atecc.SEError, match="status 0x0f"):
        se.key(b"abcd", 16).mac(b"x")


def test_provisioning_writes_the_slot_and_locks_the_data_zone_once(chip_and_driver):
    chip, se, _ = provisioned(chip_and_driver)
    assert chip.slot_key == KEY and chip.data_locked and se.data_locked()
    se.store_key(b"\x55" * 32)  # re-keying: written again, the lock is not repeated
    assert chip.slot_key == b"\x55" * 32
    assert se.key(b"abcd", 16).mac(b"m") == mac.mac(b"\x55" * 32, b"m")


def test_secret_slot_is_never_read(chip_and_driver):
    chip, se, _ = provisioned(chip_and_driver)
    se.wake()
    with pytest.raises(atecc.SEError, match="status 0x0f"):
        se._command(0x02, 0x82, atecc.KEY_SLOT << 3, b"", 0, 5)


def test_hanging_chip_times_out(chip_and_driver):
    chip, se, _ = provisioned(chip_and_driver)
    chip.hang = True
    with pytest.raises(atecc.SEError, match="no response to command 0x47"):
        se.key(b"abcd", 16).mac(b"x")


def test_no_chip_on_the_bus_is_no_secure_element():
    assert atecc.detect(sim_atecc.SimI2C()) is None


def test_watchdog_puts_the_chip_to_sleep(chip_and_driver):
    chip, se, clock = provisioned(chip_and_driver)
    se.wake()
    clock.ms += sim_atecc.WATCHDOG_MS + 1
    with pytest.raises(OSError):  # asleep: nobody acknowledges
        se._command(0x30, 0, 0, b"", 0, 5)
    assert se.revision() == sim_atecc.REVISION  # a wake starts afresh


def test_state_is_kept_in_its_own_file(tmp_path):
    path = tmp_path / "flash.img.atecc.json"
    bus = sim_atecc.SimI2C()
    bus.devices[sim_atecc.ADDRESS] = sim_atecc.SimATECC608(str(path))
    atecc.ATECC608(bus).store_key(KEY)
    again = sim_atecc.SimATECC608(str(path))  # the next power-up
    assert again.slot_key == KEY and again.data_locked


# --- the same under the MicroPython unix port --------------------------------------------------------

MP_SCRIPT = """
import atecc, sim_atecc, mac
bus = sim_atecc.SimI2C()
chip = sim_atecc.SimATECC608(None)
bus.devices[0x60] = chip
se = atecc.detect(bus)
key = bytes(range(1, 33))
se.store_key(key)
k = se.key(b"abcd", mac.MAC_LEN)
for n in (0, 1, 63, 64, 65, 300):
    msg = bytes([(i * 37 + 11) & 255 for i in range(n)])
    assert k.mac(msg[: n // 2], memoryview(msg)[n // 2 :]) == mac.hmac_sha256(key, msg)[: mac.MAC_LEN], n
chip.garble_responses = 2  # the driver retries once: two bad responses make the error
try:
    k.mac(b"x")
    print("no error")
except atecc.SEError as e:
    print("crc", e)
print("ok")
"""


def test_driver_runs_under_micropython(micropython, tmp_path):
    script = tmp_path / "t.py"
    script.write_text(MP_SCRIPT)
    path = f"{Path(ROOT) / 'boards'}:{Path(ROOT) / 'firmware'}"
    out = subprocess.run(
        [micropython, str(script)], env=clean_env(tmp_path, path), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[-2] == "ok" and "crc secure element: response CRC error" in out.stdout
