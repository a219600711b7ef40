"""The virtual board's secure element: a model of a Microchip ATECC608B on a simulated I2C bus.

The firmware's driver (boards/atecc.py) talks to it byte for byte as it would to the chip: the
wake (a write to address 0 holding SDA low), command packets with their CRC-16, the chip leaving
its address unacknowledged while it executes (polled), responses with their CRC, status bytes for
a bad CRC (0xFF), a malformed command (0x03) or a refused one (0x0F), idle and sleep, and the
chip's watchdog (asleep 1.3 s after a wake). Facts about the chip and their sources: the header of
boards/atecc.py; this model is written from the same sources, independently of the driver (its
own CRC), so a driver that frames a packet wrongly fails against it.

What the model keeps of the chip: the data zone's lock and the key slot (KEY_SLOT: secret, never
readable, usable as an HMAC key by the SHA command, writable in the clear, the configuration
isolog asks for). It keeps them in a file OUTSIDE the flash image (ISOLOG_SIM_SE, next to the
image, written by the launcher's board), so a dump of the image never yields the key: the chip is
a separate part of the board. Loaded with the other models (sim.py preload), so its heap is not
the firmware's; it runs under CPython too (tests/fakes.py keeps its state in memory).
"""

import hashlib
import json
import time

try:
    import errno

    _ENODEV = errno.ENODEV
except (ImportError, AttributeError):
    _ENODEV = 19

try:
    _ticks_ms = time.ticks_ms  # pyright: ignore[reportAttributeAccessIssue]
    _ticks_diff = time.ticks_diff  # pyright: ignore[reportAttributeAccessIssue]
except AttributeError:  # CPython

    def _ticks_ms():
        return int(time.monotonic() * 1000)

    def _ticks_diff(a, b):
        return a - b


ADDRESS = 0x60
KEY_SLOT = 4
WATCHDOG_MS = 1300  # ATCA_CHIPMODE_WATCHDOG_SHORT (~1.3 s), boards/atecc.py
BUSY_POLLS = 1  # polls the chip leaves unacknowledged after a command (it executes)
REVISION = b"\x00\x00\x60\x03"  # Info mode 0 of an ATECC608B [R]

OK = 0x00
STATUS_AFTER_WAKE = 0x11
PARSE_ERROR = 0x03
EXECUTION_ERROR = 0x0F
CRC_ERROR = 0xFF


def chip_crc(data):
    """The chip's CRC-16 over bytes: polynomial 0x8005, register from 0, each byte's bits least
    significant first (written here from the datasheet's description, not shared with the driver)."""
    reg = 0
    for byte in data:
        for bit in range(8):
            top = (reg >> 15) & 1
            reg = (reg << 1) & 0xFFFF
            if ((byte >> bit) & 1) != top:
                reg ^= 0x8005
    return bytes((reg & 0xFF, reg >> 8))


def _nack():
    return OSError(_ENODEV)  # what MicroPython's I2C raises when nobody acknowledges the address


class SimI2C:
    """The board's I2C bus, with machine.I2C's surface the driver uses (writeto, readfrom_into).
    A write to address 0 is the secure element's wake (SDA held low); nobody answers there."""

    def __init__(self):
        self.devices = {}

    def writeto(self, addr, buf, stop=True):
        if addr == 0:
            for dev in self.devices.values():
                dev.wake()
            raise _nack()
        dev = self.devices.get(addr)
        if dev is None:
            raise _nack()
        return dev.write(bytes(buf))

    def readfrom_into(self, addr, buf, stop=True):
        dev = self.devices.get(addr)
        if dev is None:
            raise _nack()
        dev.read_into(buf)


class VirtualTimeI2C(SimI2C):
    """The virtual board's bus: the driver waits through it (atecc.py takes a bus's wait_us), in
    no real time; the time waited is counted."""

    def __init__(self):
        super().__init__()
        self.waited_us = 0

    def wait_us(self, us):
        self.waited_us += us


class SimATECC608:
    def __init__(self, state_path=None, clock_ms=_ticks_ms):
        self.path = state_path  # None: the state lives in this object only (tests/fakes.py)
        self.clock_ms = clock_ms
        self.slot_key = None
        self.data_locked = False
        self._load()
        self.state = "sleep"  # at power-up the chip sleeps until woken
        self.woken_at = 0
        self.out = b""
        self.out_pos = 0
        self.out_cmd = False  # the output is a command's response (not the wake's)
        self.busy = 0
        self.hmac = None  # (inner hash, key) while an HMAC runs
        # Faults a test asks for
        self.garble_responses = 0  # the next n command responses leave with a wrong CRC
        self.hang = False  # never answers a command (polls stay unacknowledged; wakes still answered)
        self.commands = 0  # commands executed (a test counts what a MAC costs)
        self.wakes = 0

    # --- the chip's persistent memory (outside the flash image) -----------------------------------

    def _load(self):
        if not self.path:
            return
        try:
            with open(self.path) as f:
                st = json.load(f)
        except (OSError, ValueError):
            return
        key = st.get("slot%d" % KEY_SLOT)
        self.slot_key = bytes.fromhex(key) if key else None
        self.data_locked = bool(st.get("data_locked"))

    def _save(self):
        if not self.path:
            return
        st = {"data_locked": self.data_locked}
        if self.slot_key is not None:
            st["slot%d" % KEY_SLOT] = self.slot_key.hex()
        with open(self.path, "w") as f:
            json.dump(st, f)

    # --- the I2C side ----------------------------------------------------------------------------

    def _watchdog(self):
        if self.state == "awake" and _ticks_diff(self.clock_ms(), self.woken_at) > WATCHDOG_MS:
            self._to_sleep()

    def _to_sleep(self):
        self.state = "sleep"
        self.hmac = None
        self.out = b""

    def wake(self):
        self._watchdog()
        if self.state == "awake":
            return  # a wake pulse while awake is not a command: ignored
        self.state = "awake"
        self.wakes += 1
        self.woken_at = self.clock_ms()
        self._respond(bytes((STATUS_AFTER_WAKE,)), False)
        self.busy = 0

    def write(self, data):
        self._watchdog()
        if self.state != "awake" or self.busy:
            raise _nack()
        word = data[0] if data else None
        if word == 0x01:
            self._to_sleep()
        elif word == 0x02:
            self.state = "idle"  # answers nothing until the next wake
        elif word == 0x03:
            self._packet(data[1:])
        else:
            raise _nack()  # a word address the chip does not know: not acknowledged
        return len(data)

    def read_into(self, buf):
        self._watchdog()
        if self.state != "awake":
            raise _nack()
        if self.busy or (self.hang and self.out_cmd):
            self.busy = max(0, self.busy - 1)
            raise _nack()
        for i in range(len(buf)):
            p = self.out_pos + i
            buf[i] = self.out[p] if p < len(self.out) else 0xFF
        self.out_pos += len(buf)

    def _respond(self, data, cmd=True):
        pkt = bytes((len(data) + 3,)) + data
        crc = chip_crc(pkt)
        self.out_cmd = cmd
        if cmd and self.garble_responses:
            self.garble_responses -= 1
            crc = bytes((crc[0] ^ 0x01, crc[1]))
        self.out = pkt + crc
        self.out_pos = 0

    def _status(self, code):
        self._respond(bytes((code,)))

    # --- commands ----------------------------------------------------------------------------------

    def _packet(self, pkt):
        self.busy = BUSY_POLLS
        if len(pkt) < 7 or pkt[0] != len(pkt) or chip_crc(pkt[:-2]) != pkt[-2:]:
            self._status(CRC_ERROR)
            return
        self.commands += 1
        opcode, p1, p2, data = pkt[1], pkt[2], pkt[3] | pkt[4] << 8, pkt[5:-2]
        handler = {0x47: self._sha, 0x12: self._write, 0x17: self._lock, 0x02: self._read, 0x30: self._info}.get(opcode)
        if handler is None:
            self._status(PARSE_ERROR)
        else:
            handler(p1, p2, data)

    def _info(self, p1, p2, data):
        if p1 != 0 or data:
            self._status(PARSE_ERROR)
        else:
            self._respond(REVISION)

    def _read(self, p1, p2, data):
        zone = p1 & 0x03
        if zone == 0x00 and p1 == 0x00 and p2 == 0x15:  # config block 2, word 5: the lock bytes
            self._respond(bytes((0, 0, 0x00 if self.data_locked else 0x55, 0x00)))
        elif zone == 0x02 and (p2 >> 3) & 0x0F == KEY_SLOT:
            self._status(EXECUTION_ERROR)  # a secret slot is never read in the clear
        else:
            self._status(PARSE_ERROR)  # not modelled: isolog reads nothing else

    def _write(self, p1, p2, data):
        if p1 != 0x82 or len(data) != 32 or p2 & 0xFF07:
            self._status(PARSE_ERROR)
        elif (p2 >> 3) & 0x0F != KEY_SLOT:
            self._status(EXECUTION_ERROR)  # the other slots are not configured for isolog
        else:
            self.slot_key = bytes(data)
            self._save()
            self._status(OK)

    def _lock(self, p1, p2, data):
        if p1 != 0x81 or data:
            self._status(PARSE_ERROR)
        elif self.data_locked:
            self._status(EXECUTION_ERROR)
        else:
            self.data_locked = True
            self._save()
            self._status(OK)

    def _sha(self, p1, p2, data):
        mode = p1 & 0x07
        if mode == 0x04:  # HMAC start, key slot in param2
            if data or p2 > 15:
                self._status(PARSE_ERROR)
            elif p2 != KEY_SLOT or self.slot_key is None or not self.data_locked:
                self.hmac = None
                self._status(EXECUTION_ERROR)  # not an HMAC key slot, or the data zone not locked
            else:
                key = self.slot_key
                inner = hashlib.sha256(bytes(b ^ 0x36 for b in key + bytes(64 - len(key))))
                self.hmac = (inner, key)
                self._status(OK)
        elif mode == 0x01:  # update: exactly one 64-byte block
            if len(data) != 64 or p2 != 64:
                self._status(PARSE_ERROR)
            elif self.hmac is None:
                self._status(EXECUTION_ERROR)
            else:
                self.hmac[0].update(data)
                self._status(OK)
        elif mode == 0x02 and p1 & 0xC0 == 0xC0:  # ATECC608 HMAC end, output only
            if len(data) != p2 or p2 > 63:
                self._status(PARSE_ERROR)
            elif self.hmac is None:
                self._status(EXECUTION_ERROR)
            else:
                inner, key = self.hmac
                self.hmac = None
                inner.update(data)
                outer = hashlib.sha256(bytes(b ^ 0x5C for b in key + bytes(64 - len(key))))
                outer.update(inner.digest())
                self._respond(outer.digest())
        else:
            self._status(PARSE_ERROR)  # plain SHA, other targets: not modelled (isolog uses none)
