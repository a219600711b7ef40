# Record layout: the same tests run under CPython and MicroPython (tests/fw/README.md).
import io

import record
from fwcheck import raises

KEY = b"k" * 32
CHAIN = record.CHAIN_START


def _batch(first_seq=100, n=5, valid=True):
    entries = []
    for i in range(n):
        entries += [60000 + i, 4000 + i, record.encode_temp(4.25 - i), record.F_BOOT if i == 0 else 0]
    buf = bytearray(record.MAX_CHUNK)
    size, _ = record.encode_batch(buf, first_seq, 7, 60, valid, 1795000000000, 120000, 123456, entries, n, KEY, CHAIN)
    return bytes(buf[:size])


def test_varint_round_trip():
    buf = bytearray(16)
    for value in (0, 1, 127, 128, 300, 60000, 2**21, 2**32 - 1, 2**40):
        end = record.put_varint(buf, 0, value)
        got, pos = record.get_varint(buf, 0, end)
        assert got == value and pos == end


def test_varint_rejects_truncation_and_negatives():
    buf = bytearray([0x80, 0x80])
    raises(record.RecordError, record.get_varint, buf, 0, 2)
    raises(record.RecordError, record.put_varint, bytearray(4), 0, -1)


def test_temperature_codes():
    for t in (0.0, 4.25, -10.12, -55.0, 125.0, 27.31, -0.01):
        assert record.decode_temp(record.encode_temp(t)) == round(t * 100) / 100
    assert record.encode_temp(None) == 0 and record.decode_temp(0) is None
    assert record.encode_temp(0.0) == 1  # zero is a reading, distinct from "no reading"


def test_batch_round_trip():
    data = _batch()
    kind, start, length, nxt = record.check_chunk(data, 0, len(data))
    assert kind == record.KIND_BATCH and nxt == len(data)
    info, recs = record.decode_batch(data, start, length)
    assert info == (100, 5, 7)
    seq, boot, epoch_ms, uptime_ms, counts, interval_ms, interval_counts, temp, flags = recs[0]
    assert (seq, boot, interval_ms, interval_counts, temp) == (100, 7, 60000, 4000, 4.25)
    assert uptime_ms == 180000 and counts == 127456 and epoch_ms == 1795000000000 + 180000
    assert flags == record.F_BOOT | record.F_TIME_VALID
    last = recs[-1]
    assert last[0] == 104 and last[3] == 120000 + sum(60000 + i for i in range(5))
    assert last[7] == 0.25


def test_batch_without_clock_has_no_time():
    data = _batch(valid=False)
    _, start, length, _ = record.check_chunk(data, 0, len(data))
    _, recs = record.decode_batch(data, start, length)
    assert recs[0][2] is None and not recs[0][8] & record.F_TIME_VALID


def test_typical_record_is_small():
    data = _batch(n=15)
    assert len(data) / 15 < 10  # the flash budget: >= 100,000 records per MiB, filesystem included


def test_every_single_byte_change_is_detected():
    data = _batch()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x10
        try:
            record.check_chunk(bad, 0, len(bad))
        except record.RecordError:
            continue
        raise AssertionError("change at byte %d not detected" % i)


def test_header_round_trip():
    buf = bytearray(128)
    size, m = record.encode_header(buf, 3, 1000, b"\x01\x02\x03\x04\x05\x06\x07\x08", 60, 153.8, 190.0, 0.1, KEY, CHAIN)
    kind, start, length, _ = record.check_chunk(buf, 0, size)
    h = record.decode_header(buf, start)
    assert h["chain_in"] == CHAIN and record.chunk_mac(buf, start, length) == m
    assert record.verify_chunk(KEY, CHAIN, buf, start, length)
    assert kind == record.KIND_HEADER and h["boot"] == 3 and h["first_seq"] == 1000
    assert h["device_id"] == b"\x01\x02\x03\x04\x05\x06\x07\x08" and h["interval_s"] == 60
    assert abs(h["cal_cpm_per_usv_h"] - 153.8) < 1e-4


def test_reader_skips_damage_and_resynchronises():
    a, b, c = _batch(0), _batch(5), _batch(10)
    bad = bytearray(b)
    bad[20] ^= 0xFF
    reader = record.ChunkReader(io.BytesIO(a + bytes(bad) + b"\x00\x01\x02" + c), bytearray(2 * record.MAX_CHUNK))
    seqs = []
    while True:
        got = reader.next()
        if got is None:
            break
        kind, start, length = got
        _, recs = record.decode_batch(reader.buf, start, length)
        seqs.append(recs[0][0])
    assert seqs == [0, 10]
    assert len(reader.damage) == 1
    offset, skipped, reason = reader.damage[0]
    assert offset == len(a) and skipped == len(b) + 3 and reason == "CRC mismatch"


def test_reader_reports_a_torn_tail():
    a = _batch(0)
    reader = record.ChunkReader(io.BytesIO(a + _batch(5)[:17]))
    assert reader.next() is not None
    assert reader.next() is None
    assert reader.damage and reader.damage[0][0] == len(a)


def test_flag_names():
    assert record.flag_names(record.F_TIME_VALID | record.F_OVER_RANGE) == ["time_valid", "over_range"]


def test_mac_chain_shows_edits_and_reordering():
    buf = bytearray(record.MAX_CHUNK)
    entries = [60000, 10, 1, 0] * 3
    size1, m1 = record.encode_batch(buf, 0, 1, 60, True, 0, 0, 0, entries, 3, KEY, CHAIN)
    a = bytes(buf[:size1])
    size2, m2 = record.encode_batch(buf, 3, 1, 60, True, 0, 180000, 30, entries, 3, KEY, m1)
    b = bytes(buf[:size2])
    _, sa, la, _ = record.check_chunk(a, 0, len(a))
    _, sb, lb, _ = record.check_chunk(b, 0, len(b))
    assert record.verify_chunk(KEY, CHAIN, a, sa, la) and record.verify_chunk(KEY, m1, b, sb, lb)
    assert not record.verify_chunk(KEY, CHAIN, b, sb, lb)  # b moved to the front, or a dropped
    assert not record.verify_chunk(b"other key" * 4, CHAIN, a, sa, la)  # forged without the key
    edited = bytearray(a)
    edited[sa + 5] ^= 1  # an edit that also fixes up the CRC still breaks the mac
    crc_end = 4 + la
    import struct
    from binascii import crc32

    struct.pack_into("<I", edited, crc_end, crc32(bytes(edited[1:crc_end])) & 0xFFFFFFFF)
    record.check_chunk(edited, 0, len(edited))
    assert not record.verify_chunk(KEY, CHAIN, edited, sa, la)
