# Log record layout on flash: written once here, used by the firmware (writing, recovery at boot)
# and by the host (`isolog log dump`, sync). MicroPython subset: runs under both interpreters.
#
# A segment file is a sequence of chunks. Every chunk:
#
#   0xA5 | kind (1) | length (2, LE) | payload (length) | CRC-32 (4, LE) over kind+length+payload
#
# and every payload ends with a 16-byte MAC chained through the whole log (tamper evidence):
#   mac = HMAC-SHA256(device key, previous chunk's mac | payload before the mac)[:16]
# The CRC catches flash errors; the chain shows an edited, dropped, reordered or inserted chunk
# (mac.py; the key is given to the board when it is provisioned, an unprovisioned board uses an
# empty key, which still shows accidental changes but proves nothing against a forger).
#
# kind "H" (segment header, first chunk of every segment; one segment per boot at least):
#   version u8, boot u16, first_seq u32, device_id 8s, interval_s u16,
#   cal_cpm_per_usv_h f32, dead_time_us f32, background_usv_h f32,
#   chain_in 16s (the mac before this segment, so a segment can be verified on its own),
#   key_id 4s (first bytes of SHA-256 of the key this segment is written with: after a board is
#   provisioned again, a verifier picks the right key instead of calling older segments forged)
#
# kind "B" (a batch of records committed with one write + flush):
#   first_seq u32, count u8, bflags u8 (bit 0: clock valid), then unsigned LEB128 varints:
#   boot, nominal interval_s, zigzag(clock_offset_ms) (epoch ms = clock_offset_ms + uptime_ms),
#   base_uptime_ms, base_counts (cumulative counts at the start of the first record's interval),
#   then per record four unsigned LEB128 varints:
#     zigzag(interval_ms - nominal interval), interval_counts,
#     temperature (0 = no reading, else zigzag(centi-degC) + 1), flags
#
# kind "C" (the board's configuration, right after the header of every segment written under a
#   configuration): the board's configuration file (config.py: its validated configuration as
#   JSON), so the thresholds and rules, not only the calibration of the header, are covered by the
#   MAC chain and a host compares them with what it configured.
#
# A record is therefore self-contained within its batch: a damaged batch loses only its own records
# and the reader says which sequence numbers they were. Typical record: 1 + 2 + 2 + 1 = 6 bytes plus
# ~3 bytes of batch overhead (head, MAC, CRC) at 16 records a batch (1-minute logging: logstore.py
# commits a batch 15 minutes after its first record, before BATCH_RECORDS = 32 is reached).
import hashlib
import struct
from binascii import crc32

try:
    from . import mac  # the host: these files are the package isolog_fw
except ImportError:  # a board: the firmware modules are top-level
    import mac
try:
    from micropython import const
except ImportError:  # CPython: the host shares this file (package isolog_fw) and tests run it

    def const(__expr):  # positional-only, as MicroPython's (no `/` in its grammar)
        return __expr


SYNC = const(0xA5)
KIND_HEADER = const(0x48)  # "H"
KIND_BATCH = const(0x42)  # "B"
KIND_CONFIG = const(0x43)  # "C"
VERSION = const(1)
MAC_LEN = const(16)
CHAIN_START = b"\x00" * 16  # the chain value before the first chunk a board ever writes
CHUNK_OVERHEAD = const(8)  # sync + kind + length + crc
MAX_PAYLOAD = const(1024)
MAX_CHUNK = const(1032)  # MAX_PAYLOAD + CHUNK_OVERHEAD

_HEADER_FMT = "<BHI8sHfff16s4s"
HEADER_SIZE = struct.calcsize(_HEADER_FMT)
_BATCH_FMT = "<IBB"  # the fixed start of a batch; varints follow
BATCH_FIXED_SIZE = struct.calcsize(_BATCH_FMT)
BATCH_HEAD_MAX = BATCH_FIXED_SIZE + 3 + 3 + 10 + 10 + 5  # the varints at their widest
MAX_RECORD_SIZE = const(5 + 5 + 3 + 3)  # four varints at their widest for our value ranges
BATCH_MAX_RECORDS = const(60)  # keeps a batch chunk within MAX_PAYLOAD

# Record flags (bit values are part of the on-flash format: never renumber).
F_BOOT = const(0x0001)  # first record after a boot
F_OVER_RANGE = const(0x0002)  # tube near saturation: dose rate is a lower bound
F_GM_SILENT = const(0x0004)  # no pulse for too long: radiation sensor fault
F_TEMP_FAULT = const(0x0008)  # no valid temperature reading
F_DOSE_WARN = const(0x0010)
F_DOSE_ALARM = const(0x0020)
F_TEMP_ALARM = const(0x0040)
F_LOW_BATTERY = const(0x0080)
F_STORAGE_LOW = const(0x0100)
F_DATA_DROPPED = const(0x0200)  # samples were dropped before this one: flash was full
F_ALARM_ACK = const(0x0400)  # alarms were acknowledged during this interval
F_TIME_VALID = const(0x8000)  # not stored per record: taken from the batch, set by decoders

FLAG_NAMES = (
    (F_TIME_VALID, "time_valid"),
    (F_BOOT, "boot"),
    (F_OVER_RANGE, "over_range"),
    (F_GM_SILENT, "gm_silent"),
    (F_TEMP_FAULT, "temp_fault"),
    (F_DOSE_WARN, "dose_warn"),
    (F_DOSE_ALARM, "dose_alarm"),
    (F_TEMP_ALARM, "temp_alarm"),
    (F_LOW_BATTERY, "low_battery"),
    (F_STORAGE_LOW, "storage_low"),
    (F_DATA_DROPPED, "data_dropped"),
    (F_ALARM_ACK, "alarm_ack"),
)


class RecordError(ValueError):
    pass


def flag_names(flags):
    return [name for bit, name in FLAG_NAMES if flags & bit]


# --- varints -----------------------------------------------------------------------------------


def put_varint(buf, pos, value):
    """Write unsigned LEB128 into buf at pos; return the new position."""
    if value < 0:
        raise RecordError("negative varint")
    while value >= 0x80:
        buf[pos] = (value & 0x7F) | 0x80
        value >>= 7
        pos += 1
    buf[pos] = value
    return pos + 1


def get_varint(buf, pos, end):
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise RecordError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise RecordError("varint too long")


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def unzigzag(z):
    return (z >> 1) ^ -(z & 1)


def encode_temp(temp_c):
    if temp_c is None:
        return 0
    return zigzag(int(round(temp_c * 100))) + 1  # small magnitudes stay short


def decode_temp(value):
    if value == 0:
        return None
    return unzigzag(value - 1) / 100


# --- chunks ------------------------------------------------------------------------------------


def chunk_head(buf, kind, length):
    buf[0] = SYNC
    buf[1] = kind
    buf[2] = length & 0xFF
    buf[3] = length >> 8


def seal_chunk(buf, kind, body_len, key, chain):
    """buf[4:4 + body_len] holds the payload before its mac: add the chained mac, the chunk head
    and the CRC. Returns (the chunk's total size, its mac = the new chain value)."""
    mv = memoryview(buf)
    m = mac.mac(key, chain, mv[4 : 4 + body_len])
    buf[4 + body_len : 4 + body_len + MAC_LEN] = m
    length = body_len + MAC_LEN
    chunk_head(buf, kind, length)
    crc = crc32(mv[1 : 4 + length]) & 0xFFFFFFFF
    struct.pack_into("<I", buf, 4 + length, crc)
    return 4 + length + 4, m


def chunk_mac(data, start, length):
    return bytes(data[start + length - MAC_LEN : start + length])


def verify_chunk(key, chain, data, start, length):
    """True if the chunk's mac follows from chain under key."""
    mv = memoryview(data)
    return mac.equal(
        mac.mac(key, chain, mv[start : start + length - MAC_LEN]), mv[start + length - MAC_LEN : start + length]
    )


def key_id(key):
    if not isinstance(key, (bytes, bytearray)):
        return key.key_id  # a key held in hardware knows its id (mac.py)
    return hashlib.sha256(key).digest()[:4]


def encode_header(buf, boot, first_seq, device_id, interval_s, cal, dead_time_us, background, key, chain):
    """Segment header chunk into buf; returns (its size, its mac)."""
    struct.pack_into(
        _HEADER_FMT,
        buf,
        4,
        VERSION,
        boot,
        first_seq,
        device_id,
        interval_s,
        cal,
        dead_time_us,
        background,
        chain,
        key_id(key),
    )
    return seal_chunk(buf, KIND_HEADER, HEADER_SIZE, key, chain)


def batch_payload_size(count):
    return BATCH_HEAD_MAX + count * MAX_RECORD_SIZE + MAC_LEN


def encode_batch(
    buf,
    first_seq,
    boot,
    nominal_s,
    clock_valid,
    clock_offset_ms,
    base_uptime_ms,
    base_counts,
    entries,
    count,
    key,
    chain,
):
    """Encode a batch chunk into buf; entries is a flat list [interval_ms, interval_counts,
    temp_code, flags] * count (preallocated by the caller). Returns (its size, its mac)."""
    if count < 1 or count > BATCH_MAX_RECORDS:
        raise RecordError("batch size")
    struct.pack_into(_BATCH_FMT, buf, 4, first_seq, count, 1 if clock_valid else 0)
    pos = 4 + BATCH_FIXED_SIZE
    pos = put_varint(buf, pos, boot)
    pos = put_varint(buf, pos, nominal_s)
    pos = put_varint(buf, pos, zigzag(clock_offset_ms))
    pos = put_varint(buf, pos, base_uptime_ms)
    pos = put_varint(buf, pos, base_counts & 0xFFFFFFFF)
    nominal_ms = nominal_s * 1000
    for i in range(0, count * 4, 4):
        pos = put_varint(buf, pos, zigzag(entries[i] - nominal_ms))
        pos = put_varint(buf, pos, entries[i + 1])
        pos = put_varint(buf, pos, entries[i + 2])
        pos = put_varint(buf, pos, entries[i + 3])
    return seal_chunk(buf, KIND_BATCH, pos - 4, key, chain)


# Why a chunk does not check out (probe_chunk's error codes index this).
_PROBE_ERRORS = ("truncated chunk", "bad sync byte", "bad chunk length", "CRC mismatch")
_SYNC_BYTES = b"\xa5"  # SYNC, for bytearray.find


def probe_chunk(data, pos, end):
    """Like check_chunk, without raising: the error is returned as an index into _PROBE_ERRORS.
    The recovery scan meets one bad position after another in damaged flash; an exception
    object per position made it too slow for the watchdog on a board."""
    if end - pos < CHUNK_OVERHEAD:
        return 0
    if data[pos] != SYNC:
        return 1
    length = data[pos + 2] | (data[pos + 3] << 8)
    if length > MAX_PAYLOAD or pos + 4 + length + 4 > end:
        return 2
    crc = crc32(memoryview(data)[pos + 1 : pos + 4 + length]) & 0xFFFFFFFF
    (stored,) = struct.unpack_from("<I", data, pos + 4 + length)
    if crc != stored:
        return 3
    return data[pos + 1], pos + 4, length, pos + 8 + length


def check_chunk(data, pos, end):
    """Validate the chunk at pos. Returns (kind, payload_start, payload_len, next_pos) or raises."""
    got = probe_chunk(data, pos, end)
    if isinstance(got, int):
        raise RecordError(_PROBE_ERRORS[got])
    return got


def decode_header(data, start):
    version, boot, first_seq, device_id, interval_s, cal, dead, bg, chain_in, kid = struct.unpack_from(
        _HEADER_FMT, data, start
    )
    if version != VERSION:
        raise RecordError("unknown format version %d" % version)
    return {
        "boot": boot,
        "first_seq": first_seq,
        "device_id": bytes(device_id),
        "interval_s": interval_s,
        "cal_cpm_per_usv_h": cal,
        "dead_time_us": dead,
        "background_usv_h": bg,
        "chain_in": bytes(chain_in),
        "key_id": bytes(kid),
    }


def decode_batch(data, start, length):
    """Return (batch_info, records): each record a tuple
    (seq, boot, epoch_ms or None, uptime_ms, counts, interval_ms, interval_counts, temp_c, flags)."""
    first_seq, count, bflags = struct.unpack_from(_BATCH_FMT, data, start)
    valid = bflags & 1
    pos = start + BATCH_FIXED_SIZE
    end = start + length - MAC_LEN
    boot, pos = get_varint(data, pos, end)
    nominal_s, pos = get_varint(data, pos, end)
    z, pos = get_varint(data, pos, end)
    offset_ms = unzigzag(z)
    uptime_ms, pos = get_varint(data, pos, end)
    counts, pos = get_varint(data, pos, end)
    out = []
    for i in range(count):
        z, pos = get_varint(data, pos, end)
        interval_ms = nominal_s * 1000 + unzigzag(z)
        interval_counts, pos = get_varint(data, pos, end)
        temp_code, pos = get_varint(data, pos, end)
        flags, pos = get_varint(data, pos, end)
        uptime_ms += interval_ms
        counts += interval_counts
        if valid:
            flags |= F_TIME_VALID
        out.append(
            (
                first_seq + i,
                boot,
                offset_ms + uptime_ms if valid else None,
                uptime_ms,
                counts,
                interval_ms,
                interval_counts,
                decode_temp(temp_code),
                flags,
            )
        )
    if pos != end:
        raise RecordError("batch length mismatch")
    return (first_seq, count, boot), out


# --- reading a segment, resynchronising after damage ------------------------------------------


class ChunkReader:
    """Reads chunks from a stream (anything with readinto) through one preallocated window, so the
    board can scan a segment at boot in constant memory and the host can read a damaged dump.

    next() returns (kind, payload_start, payload_len) with the payload in self.buf, or None at the
    end. After damage it skips to the next chunk that checks out, trying only positions that hold
    the sync byte; self.damage then holds (offset, skipped_bytes, reason) for every damaged
    stretch. progress, if given, is called at each refill of the window (~2 KiB)."""

    def __init__(self, stream, buf=None, progress=None):
        self.stream = stream
        self.progress = progress  # called at each refill of the window (the board feeds its watchdog)
        self.buf = buf if buf is not None else bytearray(2 * MAX_CHUNK)
        self.lo = 0
        self.hi = 0
        self.offset = 0  # stream offset of buf[lo]
        self.eof = False
        self.damage = []

    def _fill(self):
        mv = memoryview(self.buf)
        if self.lo:
            n = self.hi - self.lo
            mv[0:n] = mv[self.lo : self.hi]  # moved in place: a slice of the buffer would be a copy on the heap
            self.lo = 0
            self.hi = n
        if self.progress is not None:
            self.progress()
        while not self.eof and self.hi < len(self.buf):
            got = self.stream.readinto(mv[self.hi :])
            if not got:
                self.eof = True
            else:
                self.hi += got

    def next(self):
        bad_at = -1
        reason = ""
        while True:
            if self.hi - self.lo < MAX_CHUNK and not self.eof:
                self._fill()
            if self.lo >= self.hi:
                break
            got = probe_chunk(self.buf, self.lo, self.hi)
            if isinstance(got, int):
                if bad_at < 0:
                    bad_at = self.offset
                    reason = _PROBE_ERRORS[got]
                # No chunk starts here: go on at the next sync byte in the window (every position
                # before it fails the sync check), or at its end.
                nxt = self.buf.find(_SYNC_BYTES, self.lo + 1, self.hi)
                if nxt < 0:
                    nxt = self.hi
                self.offset += nxt - self.lo
                self.lo = nxt
                continue
            kind, start, length, nxt = got
            if bad_at >= 0:
                self.damage.append((bad_at, self.offset - bad_at, reason))
            self.offset += nxt - self.lo
            self.lo = nxt
            return kind, start, length
        if bad_at >= 0:
            self.damage.append((bad_at, self.offset - bad_at, reason))
        return None
