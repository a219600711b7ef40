# The firmware's arithmetic with values past 2**30, where the boards' small ints end.
#
# On the RP2040 and the ESP32-S3 a small int holds 31 bits (-2**30 .. 2**30 - 1); anything larger is
# a heap-allocated long int (docs/references.md#micropython-ports). The unix port and CPython have
# 63-bit or unbounded ints, so a test there never sees the difference: these tests feed values past
# 2**30 (and past 2**31 and 2**32 where a field is 32 bits wide) and check (1) that the results are
# right, computed here independently, and (2) that what the firmware keeps per pulse, per record in
# RAM and per pass of the main loop stays a 31-bit small int: those paths run for weeks and must not
# turn into long-int arithmetic after 12.4 days (2**30 ms) or 2**30 pulses.
import os
import struct
from binascii import crc32

import frame
import fsdir
import logstore
import record

SMALL_MIN = -(1 << 30)
SMALL_MAX = (1 << 30) - 1
DAY_MS = 86_400_000
EPOCH_2026_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z (20454 days since 1970-01-01)
DEV = b"\x01\x02\x03\x04\x05\x06\x07\x08"


def fits31(x):
    return SMALL_MIN <= x <= SMALL_MAX


def _crc_over(pred):
    """A payload whose CRC-32 satisfies pred (a deterministic search)."""
    for i in range(1000):
        data = b"isolog %d" % i
        if pred(crc32(data) & 0xFFFFFFFF):
            return data
    raise AssertionError("no payload found")


def test_interval_counts_across_the_30_bit_counter_wrap():
    # The boards report the hardware count modulo 2**30 (boards/README.md); the logger takes the
    # interval's pulses as (counts - last) & mask. 2**30 - 5 -> 7 is 12 pulses.
    mask = SMALL_MAX  # logger._COUNT_MASK (a const: not visible as an attribute under MicroPython)
    last = (1 << 30) - 5
    counts = 7
    diff = counts - last
    assert fits31(diff)
    assert diff & mask == 12
    assert fits31(mask) and fits31(counts) and fits31(last)


def test_batch_round_trip_with_uptime_counts_and_epoch_past_2_32():
    # 50 days of uptime (4.32e9 ms, past 2**32), cumulative counts past 2**32, the clock in 2026,
    # sequence numbers at the top of their u32 field: the batch keeps every value exactly, except
    # the cumulative count, which the format keeps modulo 2**32 (record.encode_batch).
    buf = bytearray(2 * record.MAX_CHUNK)
    base_uptime = 50 * DAY_MS
    base_counts = (1 << 32) + 5
    offset = EPOCH_2026_MS - base_uptime
    first_seq = (1 << 32) - 3
    entries = [60_000, 1_000_000_000, record.encode_temp(4.5), 0, 60_250, 7, record.encode_temp(-20.0), 0]
    size, _ = record.encode_batch(
        buf, first_seq, 2, 60, True, offset, base_uptime, base_counts, entries, 2, b"", record.CHAIN_START
    )
    kind, start, length, nxt = record.check_chunk(buf, 0, size)
    assert kind == record.KIND_BATCH and nxt == size
    (seq0, count, boot), recs = record.decode_batch(buf, start, length)
    assert (seq0, count, boot) == (first_seq, 2, 2)
    r0, r1 = recs
    assert r0[0] == (1 << 32) - 3 and r1[0] == (1 << 32) - 2
    assert r0[3] == 4_320_060_000 and r1[3] == 4_320_120_250
    assert r0[2] == EPOCH_2026_MS + 60_000 and r1[2] == EPOCH_2026_MS + 120_250
    assert r0[4] == 5 + 1_000_000_000 and r1[4] == 5 + 1_000_000_007
    assert r0[7] == 4.5 and r1[7] == -20.0


def test_chunks_and_frames_with_crcs_past_2_31():
    # A CRC-32 at or above 2**31 is a long int on the boards: it must still compare equal to the
    # one stored (struct "<I") and read back byte by byte.
    for pred in (lambda c: c >= 1 << 31, lambda c: (1 << 30) <= c < (1 << 31), lambda c: c < 1 << 30):
        body = _crc_over(pred)
        buf = bytearray(64)
        buf[4 : 4 + len(body)] = body
        size, _ = record.seal_chunk(buf, record.KIND_HEADER, len(body), b"", record.CHAIN_START)
        assert record.check_chunk(buf, 0, size)[3] == size
        buf[5] ^= 1
        assert record.probe_chunk(buf, 0, size) == 3  # CRC mismatch
        raw = frame.encode_bytes(frame.CMD_STATUS, 7, body)
        (crc,) = struct.unpack_from("<I", raw, len(raw) - 4)
        assert crc == crc32(raw[2:-4]) & 0xFFFFFFFF
        d = frame.Decoder()
        d.feed(raw)
        got = d.next()
        assert got is not None and got[0] == frame.CMD_STATUS and got[1] == 7
        assert bytes(d.buf[got[2] : got[2] + got[3]]) == body


def test_records_in_ram_stay_small_ints_after_12_days():
    # The batch waiting in RAM is a preallocated list of per-record values (interval ms, interval
    # counts, temperature code, flags): small ints, so storing them allocates nothing. 13 days of
    # uptime (past 2**30 ms), cumulative counts past 2**30 and the clock in 2026 go into the batch's
    # base values only.
    d = fsdir.fresh()
    s = logstore.LogStore(d, 1, DEV, batch_records=4, segment_blocks=1)
    s.recover()
    s.set_header(60, 153.8, 190.0, 0.1)
    up = 13 * DAY_MS
    counts = (1 << 30) + 100
    assert not fits31(up) and not fits31(counts)
    for i in range(3):
        up += 60_000
        counts += 9
        s.append(up, up, counts, 60_000, 9, 21.5, 0, True, EPOCH_2026_MS)
    assert s.count == 3
    assert all(fits31(v) for v in s.entries), s.entries
    assert s.batch_base_uptime == 13 * DAY_MS and s.batch_base_counts == (1 << 30) + 100
    assert s.commit() == 3
    names = sorted(os.listdir(d + "/log"))
    with open(d + "/log/" + names[-1], "rb") as f:
        reader = record.ChunkReader(f)
        recs = []
        while True:
            got = reader.next()
            if got is None:
                break
            if got[0] == record.KIND_BATCH:
                recs += record.decode_batch(reader.buf, got[1], got[2])[1]
    assert [r[3] for r in recs] == [13 * DAY_MS + 60_000 * (i + 1) for i in range(3)]
    assert [r[4] for r in recs] == [(1 << 30) + 100 + 9 * (i + 1) for i in range(3)]
    assert [r[2] for r in recs] == [EPOCH_2026_MS + 13 * DAY_MS + 60_000 * (i + 1) for i in range(3)]
