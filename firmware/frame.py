# Frames on the USB serial link: written once here, used by the firmware's protocol server and by
# the host (`isolog sync`, `isolog status`, ...). MicroPython subset: runs under both interpreters.
#
#   "I" "L" | version (1) | length (2, LE) | payload (length) | CRC-32 (4, LE) over version..payload
#   payload = command (1) | request id (1) | body
#
# The two sync bytes, a bounded length and the CRC let a reader resynchronise after garbage: a
# stray print, a REPL banner after a reset, a torn frame after a pulled cable. The reader drops
# one byte and looks for the next sync pair whenever a candidate frame does not check out.
import struct
from binascii import crc32

try:
    from micropython import const
except ImportError:  # CPython: the host shares this file (package isolog_fw) and tests run it

    def const(__expr):  # positional-only, as MicroPython's (no `/` in its grammar)
        return __expr


SYNC0 = const(0x49)  # "I"
SYNC1 = const(0x4C)  # "L"
VERSION = const(1)
HEAD = const(5)  # sync, sync, version, length
OVERHEAD = const(9)  # HEAD + CRC
MAX_PAYLOAD = const(4096)

# Commands (docs/protocol.md). A reply carries REPLY | command; a refusal carries ERROR.
CMD_IDENTIFY = const(0x01)
CMD_GET_CLOCK = const(0x02)
CMD_SET_CLOCK = const(0x03)
CMD_GET_CONFIG = const(0x04)
CMD_SET_CONFIG = const(0x05)
CMD_LIST = const(0x06)
CMD_READ = const(0x07)
CMD_ACK = const(0x08)
CMD_STATUS = const(0x09)
CMD_ACK_ALARMS = const(0x0A)
CMD_PROVISION = const(0x0B)
CMD_TEST_MODE = const(0x0C)
CMD_MAINTENANCE = const(0x0D)  # reset into the REPL for a deploy
CMD_COMMIT = const(0x0E)  # write the records in RAM now (a sync's first step; LIST/READ never commit)
CMD_DIAG = const(0x20)  # diagnostics, answered only in test mode (hil_tests/)
# A state-changing command with this bit set carries an authentication trailer: its body is
# payload | counter (4, LE) | mac (16), mac = mac.request_mac(device key, command, counter, device
# id, challenge, payload): HMAC-SHA256 truncated to 16 bytes, bound to the board (device id) and to
# its current challenge (IDENTIFY; new at every boot and after every accepted signed request), so a
# request is good for one board, once. A provisioned board refuses state changes without it.
AUTH = const(0x40)
STATE_CHANGING = (
    CMD_SET_CLOCK,
    CMD_SET_CONFIG,
    CMD_ACK,
    CMD_ACK_ALARMS,
    CMD_PROVISION,
    CMD_TEST_MODE,
    CMD_MAINTENANCE,
    CMD_COMMIT,
)
REPLY = const(0x80)
ERROR = const(0x7F)
MAX_READ = const(2048)  # bytes of segment data per READ reply


class FrameError(ValueError):
    pass


def encode(buf, cmd, req_id, body=b"", body_len=-1):
    """Write a frame into buf (preallocated, >= len(body) + OVERHEAD + 2). Returns its size.

    With body_len >= 0 the body is already in place at buf[7:7 + body_len] (no copy)."""
    if body_len < 0:
        body_len = len(body)
        buf[7 : 7 + body_len] = body
    length = body_len + 2
    if length > MAX_PAYLOAD:
        raise FrameError("frame too long")
    buf[0] = SYNC0
    buf[1] = SYNC1
    buf[2] = VERSION
    buf[3] = length & 0xFF
    buf[4] = length >> 8
    buf[5] = cmd
    buf[6] = req_id & 0xFF
    crc = crc32(memoryview(buf)[2 : HEAD + length]) & 0xFFFFFFFF
    struct.pack_into("<I", buf, HEAD + length, crc)
    return HEAD + length + 4


def encode_bytes(cmd, req_id, body=b""):
    buf = bytearray(len(body) + OVERHEAD + 2)
    size = encode(buf, cmd, req_id, body)
    return bytes(buf[:size])


class Decoder:
    """Collects bytes from a stream and returns whole, checked frames.

    feed() appends received bytes; next() returns (cmd, req_id, body_start, body_len) with the
    body in self.buf (valid until the next call), or None when no whole frame is waiting.
    self.skipped counts bytes dropped while resynchronising; self.version_errors counts frames of
    another protocol version (answered by the caller with an error)."""

    def __init__(self, size=MAX_PAYLOAD + OVERHEAD):
        self.buf = bytearray(size)
        self.mv = memoryview(self.buf)
        self.lo = 0
        self.hi = 0
        self.skipped = 0
        self.bad_version = False

    def space(self):
        """A memoryview of the free room at the end of the buffer, compacting first."""
        if self.lo:
            n = self.hi - self.lo
            self.mv[0:n] = self.mv[self.lo : self.hi]  # in place: a slice of buf would be a heap copy
            self.lo = 0
            self.hi = n
        if self.hi == len(self.buf):  # full of garbage that is not a frame: drop it
            self.skipped += self.hi
            self.hi = 0
        return self.mv[self.hi :]

    def wrote(self, n):
        self.hi += n

    def feed(self, data):
        """Append received bytes. Call next() until it returns None between feeds: a feed that
        overflows the buffer drops what is in it (it is then taken for garbage)."""
        n = len(data)
        while n:
            room = self.space()
            k = min(len(room), n)
            room[:k] = data[len(data) - n : len(data) - n + k]
            self.hi += k
            n -= k

    def _crc_ok(self, lo, length):
        buf = self.buf
        end = lo + HEAD + length + 4
        crc = crc32(self.mv[lo + 2 : lo + HEAD + length]) & 0xFFFFFFFF
        return crc == (buf[end - 4] | (buf[end - 3] << 8) | (buf[end - 2] << 16) | (buf[end - 1] << 24))

    def _whole_frame_after(self, start):
        """Position of the first complete frame with a valid CRC at or after start, or -1."""
        buf = self.buf
        for j in range(start, self.hi - OVERHEAD - 1):
            if buf[j] != SYNC0 or buf[j + 1] != SYNC1:
                continue
            length = buf[j + 3] | (buf[j + 4] << 8)
            if 2 <= length <= MAX_PAYLOAD and j + HEAD + length + 4 <= self.hi and self._crc_ok(j, length):
                return j
        return -1

    def _drop(self, n):
        self.lo += n
        self.skipped += n

    def next(self):
        buf = self.buf
        self.bad_version = False
        while self.hi - self.lo >= OVERHEAD + 2:
            lo = self.lo
            if buf[lo] != SYNC0 or buf[lo + 1] != SYNC1:
                self._drop(1)
                continue
            length = buf[lo + 3] | (buf[lo + 4] << 8)
            if length < 2 or length > MAX_PAYLOAD or HEAD + length + 4 > len(buf):
                self._drop(1)
                continue
            end = lo + HEAD + length + 4
            if end > self.hi:
                # Wait for the rest, unless a whole valid frame already follows: then this one was
                # torn (a pulled cable, a retry after a lost byte) and its length is garbage.
                j = self._whole_frame_after(lo + 1)
                if j < 0:
                    return None
                self._drop(j - lo)
                continue
            if not self._crc_ok(lo, length):
                self._drop(1)
                continue
            self.lo = end
            if buf[lo + 2] != VERSION:
                self.bad_version = True
            return buf[lo + 5], buf[lo + 6], lo + 7, length - 2
        return None
