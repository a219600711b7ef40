"""Microchip ATECC608B secure element on I2C: the device key in a slot that never gives it out,
and the HMAC-SHA256 of the log and of signed requests computed inside the chip.

Deployed next to board.py on the real boards (esp32s3.py, pico.py) and on the virtual board, which
models the chip on its simulated I2C bus (sim_atecc.py). The board passes its bus (machine.I2C or
the model's) and gets an ATECC608 back from secure_element(); the firmware holds the key as a
SlotKey (firmware/mac.py calls key.mac(*parts), record.key_id() reads key.key_id), so it never
has the key's bytes after provisioning.

What the chip is asked to do (every constant names its source; CAL = MicrochipTech/cryptoauthlib
at 788acf6, read for this driver, docs/references.md#atecc608b; [R] = recalled from the ATECC608B
datasheet (DS40002239), not read here):

* I2C framing: the host writes a word address byte first: 0x03 command, 0x02 idle, 0x01 sleep
  (CAL lib/calib/calib_basic.c calib_idle/calib_sleep, calib_execution.c packet->reserved = 0x03).
* Wake: SDA held low for at least tWLO, then tWHI = 1500 us before the first transfer; the chip
  answers 04 11 33 43 (count, status 0x11 "after wake", CRC) (CAL calib_basic.c calib_wakeup_i2c
  writes address 0x00 at <= 100 kHz, atca_iface.c default wake delay 1500 us, atca_hal.c
  hal_check_wake). Address 0x00 at 100 kHz holds SDA low for 8 clock periods (80 us > tWLO of
  60 us [R]); the bus runs at 100 kHz throughout, as CAL does for the wake.
* Packet: count (whole packet, count byte and CRC included), opcode, param1, param2 (16 bits,
  little-endian), data, CRC-16 (CAL calib_command.h ATCA_COUNT_IDX .. ATCA_DATA_IDX, ATCA_CMD_SIZE_MIN
  = 7). Response: count, data or one status byte, CRC (ATCA_RSP_SIZE_MIN = 4, SHA digest 35).
* CRC-16: polynomial 0x8005, register starting at 0, data bits fed least significant first, the
  result sent low byte first (CAL calib_command.c atCRC).
* Status bytes in a 4-byte response: 0x00 success, 0x01 checkmac/verify miscompare, 0x03 parse
  error, 0x05 ECC fault, 0x07 self-test error, 0x08 health test error, 0x0F execution error,
  0x11 after wake, 0xEE watchdog about to expire [R], 0xFF CRC or communication error (CAL
  calib_command.c isATCAError).
* Polling: the chip does not acknowledge its address while it executes; the host polls from 1 ms
  every 2 ms (CAL lib/hal/atca_hal.h ATCA_POLLING_INIT_TIME_MSEC, ATCA_POLLING_FREQUENCY_TIME_MSEC;
  the ATECC608B supports polling only, calib_execution.c), and gives up after the command's
  maximum execution time at clock divider M0 (calib_execution.c device_execution_time_608_m0: SHA
  36 ms, Write 45 ms, Lock 35 ms, Read 5 ms, Info 5 ms).
* SHA command 0x47 (calib_command.h ATCA_SHA) in HMAC mode: mode 0x04 HMAC start with the key slot
  in param2, mode 0x01 update with exactly 64 message bytes, mode 0x02 end on the ATECC608 (not
  0x05) with the last 0..63 bytes, target 0xC0 "output only" (digest returned, TempKey and the
  message digest buffer untouched) (calib_command.h SHA_MODE_*, SHA_MODE_608_HMAC_END;
  lib/cryptoauthlib.h SHA_MODE_TARGET_OUT_ONLY; calib_sha.c calib_sha_hmac_* buffers the message
  in 64-byte blocks and sends the rest with the end). The key is HMAC-SHA256's key, so a 32-byte
  slot key gives the same MAC as firmware/mac.py's hmac_sha256 with the same 32 bytes.
* Write 0x12 of 32 bytes to a data slot: param1 0x82 (data zone, 32-byte access), param2 =
  slot << 3 (calib_command.h ATCA_ZONE_DATA, ATCA_ZONE_READWRITE_32; calib_basic.c calib_get_addr).
* Lock 0x17 of the data zone without a summary CRC: param1 0x81 (LOCK_ZONE_DATA | LOCK_ZONE_NO_CRC).
* Read 0x02 of the lock bytes: config zone, 4 bytes at block 2, word 5 (address 0x15); byte 2 is
  LockValue (data zone), 0x55 = unlocked (calib_helpers.c calib_is_locked).
* Info 0x30 mode 0: the revision, 4 bytes (00 00 60 03 for an ATECC608B [R]).
* Default 7-bit address 0x60 (8-bit 0xC0: CAL lib/pkcs11/pkcs11_slot.c).

The chip's own watchdog puts it to sleep about 1.3 s after a wake (calib_command.h
ATCA_CHIPMODE_WATCHDOG_SHORT): every operation here wakes the chip, runs its commands and puts it
back in idle at once, well inside that.

Configuration the chip must have before isolog provisions it (written once with Microchip's tools
when boards are built, then the configuration zone locked; docs/security.md): the key slot
(KEY_SLOT) IsSecret, ReadKey so that it is never readable in the clear (EncryptRead 0), usable as
an HMAC key by the SHA command; WriteConfig "Always" so that re-keying (isolog provision) works
after the data zone is locked [R]: a write can replace the key but never reveals it, and a board
whose key was replaced fails the host's proof of key at IDENTIFY.
"""

import time

try:
    from micropython import const
except ImportError:  # CPython (the in-process fake board of the host tests)

    def const(__expr):
        return __expr


try:
    _sleep_us = time.sleep_us  # pyright: ignore[reportAttributeAccessIssue]
except AttributeError:  # CPython

    def _sleep_us(us):
        time.sleep(us / 1_000_000)


ADDRESS = const(0x60)
KEY_SLOT = const(4)  # a 36-byte slot of 0..7 (the datasheet's key slots) [R]
FREQ_HZ = const(100_000)  # the wake needs SDA low >= 60 us: address 0x00 at 100 kHz (see above)

_WORD_SLEEP = const(0x01)
_WORD_IDLE = const(0x02)
_WORD_COMMAND = const(0x03)

_OP_READ = const(0x02)
_OP_WRITE = const(0x12)
_OP_LOCK = const(0x17)
_OP_INFO = const(0x30)
_OP_SHA = const(0x47)

_SHA_HMAC_START = const(0x04)
_SHA_HMAC_UPDATE = const(0x01)
_SHA_608_HMAC_END_OUT_ONLY = const(0x02 | 0xC0)
_ZONE_DATA_32 = const(0x82)
_ZONE_CONFIG_4 = const(0x00)
_LOCK_DATA_NO_CRC = const(0x81)
_ADDR_LOCK_BYTES = const(0x15)  # config block 2, word 5
_UNLOCKED = const(0x55)

_EXEC_SHA_MS = const(36)
_EXEC_WRITE_MS = const(45)
_EXEC_LOCK_MS = const(35)
_EXEC_READ_MS = const(5)
_EXEC_INFO_MS = const(5)
_POLL_FIRST_MS = const(1)
_POLL_EVERY_MS = const(2)
_WAKE_DELAY_US = const(1500)

_BLOCK = const(64)
DIGEST_LEN = const(32)
STATUS_AFTER_WAKE = const(0x11)
STATUS_CRC = const(0xFF)
STATUS_EXECUTION = const(0x0F)
STATUS_PARSE = const(0x03)


class SEError(OSError):
    """The secure element did not answer, answered with a bad CRC, or refused a command (status)."""


def crc16(data, start, end):
    """CRC-16 of data[start:end] as the chip computes it over a packet (CAL atCRC): polynomial
    0x8005, register from 0, data bits least significant first. Returns the 16-bit register; the
    packet carries it low byte first."""
    crc = 0
    for i in range(start, end):
        byte = data[i]
        for _ in range(8):
            if (byte & 1) != (crc >> 15):
                crc = ((crc << 1) ^ 0x8005) & 0xFFFF
            else:
                crc = (crc << 1) & 0xFFFF
            byte >>= 1
    return crc


class ATECC608:
    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address
        # One buffer each way, allocated once (a MAC never allocates a packet): word address,
        # count, opcode, param1, param2 (2), 64 data bytes, CRC (2).
        self._tx = bytearray(1 + 7 + _BLOCK)
        self._txv = memoryview(self._tx)
        self._rx = bytearray(3 + DIGEST_LEN)
        self._rxv = memoryview(self._rx)
        self._rx_count = self._rxv[:1]
        self._block = bytearray(_BLOCK)  # the message bytes not sent yet (less than one block)
        self._fill = 0
        # The waits for the chip (wake delay, execution): a bus that keeps its own time (the
        # virtual board's, boards/sim.py) waits in that time; machine.I2C has none: time.sleep_us.
        self._wait_us = getattr(i2c, "wait_us", None) or _sleep_us

    # --- the I2C transaction layer ---------------------------------------------------------------

    def wake(self):
        try:
            self._wake()
        except SEError:
            # Awake already (a reset of the board while the chip was up): idle it, wake again.
            self.idle()
            self._wake()

    def _wake(self):
        try:
            self.i2c.writeto(0, b"\x00")  # address 0: SDA low long enough (nobody acknowledges)
        except OSError:
            pass
        self._wait_us(_WAKE_DELAY_US)
        rx = self._rx
        try:
            self.i2c.readfrom_into(self.address, self._rxv[:4])
        except OSError:
            raise SEError("secure element: no answer to the wake")
        if rx[0] != 4 or rx[1] != STATUS_AFTER_WAKE or crc16(rx, 0, 2) != rx[2] | rx[3] << 8:
            raise SEError("secure element: wake answered %02x %02x %02x %02x" % (rx[0], rx[1], rx[2], rx[3]))

    def idle(self):
        self._word(_WORD_IDLE)

    def sleep(self):
        self._word(_WORD_SLEEP)

    def _word(self, word):
        tx = self._tx
        tx[0] = word
        try:
            self.i2c.writeto(self.address, self._txv[:1])
        except OSError:
            pass  # asleep already (watchdog): the next wake starts afresh

    def _command(self, opcode, param1, param2, data, n, exec_ms):
        """Send one command packet (data[:n] as its data) and return the response's data length;
        the data is in self._rx[1:]. A one-byte response other than success raises SEError."""
        tx = self._tx
        count = 7 + n
        tx[0] = _WORD_COMMAND
        tx[1] = count
        tx[2] = opcode
        tx[3] = param1
        tx[4] = param2 & 0xFF
        tx[5] = param2 >> 8
        for i in range(n):
            tx[6 + i] = data[i]
        crc = crc16(tx, 1, count - 1)
        tx[count - 1] = crc & 0xFF
        tx[count] = crc >> 8
        self.i2c.writeto(self.address, self._txv[: count + 1])
        # Poll: the chip leaves its address unacknowledged while it executes.
        self._wait_us(_POLL_FIRST_MS * 1000)
        waited = _POLL_FIRST_MS
        while True:
            try:
                self.i2c.readfrom_into(self.address, self._rx_count)
                break
            except OSError:
                if waited >= exec_ms:
                    raise SEError("secure element: no response to command 0x%02x in %d ms" % (opcode, exec_ms))
                self._wait_us(_POLL_EVERY_MS * 1000)
                waited += _POLL_EVERY_MS
        rx = self._rx
        got = rx[0]
        if not 4 <= got <= len(rx):
            raise SEError("secure element: response length %d to command 0x%02x" % (got, opcode))
        self.i2c.readfrom_into(self.address, self._rxv[1:got])
        if crc16(rx, 0, got - 2) != rx[got - 2] | rx[got - 1] << 8:
            raise SEError("secure element: response CRC error (command 0x%02x)" % opcode)
        if got == 4 and rx[1] != 0:
            raise SEError("secure element: command 0x%02x status 0x%02x" % (opcode, rx[1]))
        return got - 3

    # --- commands ----------------------------------------------------------------------------------

    def revision(self):
        """Info mode 0: the chip's revision (4 bytes). Proves a chip of this family answers."""
        self.wake()
        try:
            self._command(_OP_INFO, 0, 0, b"", 0, _EXEC_INFO_MS)
            return bytes(self._rx[1:5])
        finally:
            self.idle()

    def data_locked(self):
        self.wake()
        try:
            self._command(_OP_READ, _ZONE_CONFIG_4, _ADDR_LOCK_BYTES, b"", 0, _EXEC_READ_MS)
            return self._rx[3] != _UNLOCKED
        finally:
            self.idle()

    def write_key(self, slot, key):
        """Write a 32-byte key into slot, then lock the data zone if it is not locked yet (the
        chip computes nothing with a slot key before the data zone is locked [R])."""
        if len(key) != 32:
            raise ValueError("a slot key is 32 bytes")
        locked = self.data_locked()
        self.wake()
        try:
            self._command(_OP_WRITE, _ZONE_DATA_32, slot << 3, key, 32, _EXEC_WRITE_MS)
            if not locked:
                self._command(_OP_LOCK, _LOCK_DATA_NO_CRC, 0, b"", 0, _EXEC_LOCK_MS)
        finally:
            self.idle()

    # --- what the firmware uses (firmware/logger.py) ------------------------------------------------

    def key(self, key_id, mac_len):
        """The device key in KEY_SLOT, as the firmware holds it."""
        return SlotKey(self, KEY_SLOT, key_id, mac_len)

    def store_key(self, key):
        """Provisioning: the new key into KEY_SLOT (the data zone locked the first time)."""
        self.write_key(KEY_SLOT, key)

    def hmac(self, slot, parts):
        """HMAC-SHA256 of the concatenation of parts under the key in slot, computed by the chip.
        The digest is left in self._rx[1:33] (no allocation); returns nothing."""
        self.wake()
        try:
            self._command(_OP_SHA, _SHA_HMAC_START, slot, b"", 0, _EXEC_SHA_MS)
            block = self._block
            fill = 0
            for part in parts:
                n = len(part)
                i = 0
                while i < n:
                    take = min(_BLOCK - fill, n - i)
                    block[fill : fill + take] = part[i : i + take]
                    fill += take
                    i += take
                    if fill == _BLOCK:
                        self._command(_OP_SHA, _SHA_HMAC_UPDATE, _BLOCK, block, _BLOCK, _EXEC_SHA_MS)
                        fill = 0
            got = self._command(_OP_SHA, _SHA_608_HMAC_END_OUT_ONLY, fill, block, fill, _EXEC_SHA_MS)
            if got != DIGEST_LEN:
                raise SEError("secure element: HMAC end returned %d bytes" % got)
        finally:
            self.idle()


def detect(i2c):
    """The chip on i2c if one answers the wake and Info (at boot), else None: a board without a
    secure element keeps working with its key on the flash, and the host says so."""
    se = ATECC608(i2c)
    try:
        se.revision()
    except OSError:
        return None
    return se


def detect_on(pins):
    """detect() on a real board's machine.I2C: pins = (bus id, SDA pin, SCL pin) (boards/mcu.py)."""
    from machine import I2C, Pin

    bus, sda, scl = pins
    return detect(I2C(bus, scl=Pin(scl), sda=Pin(sda), freq=FREQ_HZ))


class SlotKey:
    """The device key as the firmware holds it when it lives in the secure element: mac() and
    key_id (firmware/mac.py, record.py), never the key's bytes. key_id (first 4 bytes of the key's
    SHA-256, record.key_id) is computed at provisioning, when the key passes through, and kept on
    the flash (it names the key, it does not reveal it)."""

    def __init__(self, chip, slot, key_id, mac_len):
        self.chip = chip
        self.slot = slot
        self.key_id = key_id
        self._mac_len = mac_len

    def mac(self, *parts):
        # One retry, as CryptoAuthLib retries a command after a communication error: a glitch on
        # the bus (a CRC error either way) must not cost a batch; a second failure is raised
        # (logstore.py keeps the batch in RAM and tries again at the next commit).
        try:
            self.chip.hmac(self.slot, parts)
        except SEError:
            self.chip.hmac(self.slot, parts)
        return bytes(self.chip._rxv[1 : 1 + self._mac_len])
