"""isolog.log.decode on segments built in CPython by the firmware's own encoder (record.encode_* and
logstore.LogStore on the fake board's flash): every field decoded back as fed in, damage skipped
and reported with its byte range, missing sequence ranges named. Expected values are computed here
from the inputs (the spec: firmware/record.py header, docs/shipment.md), never from the decoder."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

import fakes
from fakes import FLAG_BITS, SegmentBuilder
from isolog.log.decode import Log, check_sequence, decode_segment

NAME = "/data/log/00000000.seg"
CAL, DEAD_US, BG = 153.8, 190.0, 0.1
EPOCH0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
assert int(EPOCH0.timestamp() * 1000) == fakes.START_EPOCH_MS


def iso(epoch_ms: int) -> str:
    dt = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=epoch_ms)
    frac = f".{epoch_ms % 1000:03d}" if epoch_ms % 1000 else ""
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def dose(interval_counts: int, interval_ms: int) -> float:
    m = interval_counts / (interval_ms / 1000)  # observed cps; non-paralyzable dead time; cpm per uSv/h
    return max(0.0, m / (1 - m * DEAD_US * 1e-6) * 60 / CAL - BG)


def expected(
    first_seq: int,
    entries,
    boot: int = 1,
    clock_valid: bool = True,
    offset_ms: int = fakes.START_EPOCH_MS,
    base_uptime_ms: int = 0,
    base_counts: int = 0,
    device: bytes = fakes.DEVICE_ID,
) -> list[dict]:
    out = []
    up, counts = base_uptime_ms, base_counts
    for i, (iv, ic, temp, flags) in enumerate(entries):
        up += iv
        counts += ic
        names = {n for n, bit in FLAG_BITS.items() if flags & bit} | ({"time_valid"} if clock_valid else set())
        silent = flags & (FLAG_BITS["over_range"] | FLAG_BITS["gm_silent"])
        out.append(
            {
                "device": device.hex(),
                "seq": first_seq + i,
                "boot": boot,
                "time": iso(offset_ms + up) if clock_valid else None,
                "uptime_s": up / 1000,
                "counts": counts,
                "interval_s": iv / 1000,
                "interval_counts": ic,
                "dose_rate_usv_h": None if silent else pytest.approx(dose(ic, iv), rel=1e-6, abs=1e-6),
                "temperature_c": temp,
                "flags": sorted(names),
            }
        )
    return out


def decoded(data: bytes | bytearray, key: bytes | None = b"") -> Log:
    log = Log()
    decode_segment(NAME, bytes(data), log, key)
    for r in log.records:
        r["flags"] = sorted(r["flags"])
    return log


# A day's worth of variety: jitter both ways, a temperature missing, below zero, at the top of the range.
ENTRIES_A = [
    (60_000, 180, 4.25, FLAG_BITS["boot"]),
    (59_990, 0, -18.37, 0),
    (60_250, 12345, None, FLAG_BITS["temp_fault"]),
    (60_000, 7, 150.0, FLAG_BITS["dose_warn"] | FLAG_BITS["storage_low"]),
    (61_000, 2, 8.01, FLAG_BITS["alarm_ack"] | FLAG_BITS["low_battery"]),
]
ENTRIES_B = [
    (60_000, 190_000, 21.5, FLAG_BITS["over_range"] | FLAG_BITS["dose_alarm"]),
    (60_000, 0, 21.5, FLAG_BITS["gm_silent"] | FLAG_BITS["data_dropped"]),
    (3_600_000, 50, -80.0, FLAG_BITS["temp_alarm"]),
]


def test_records_decode_field_by_field():
    seg = SegmentBuilder(first_seq=40, boot=3)
    seg.batch(40, ENTRIES_A, base_uptime_ms=1_000_000, base_counts=2_000_000_000, boot=3)
    seg.batch(45, ENTRIES_B, clock_valid=False, base_uptime_ms=1_302_240, base_counts=2_000_012_534, boot=3)
    log = decoded(seg.data)
    assert log.problems == []
    assert log.records == expected(
        40, ENTRIES_A, boot=3, base_uptime_ms=1_000_000, base_counts=2_000_000_000
    ) + expected(45, ENTRIES_B, boot=3, clock_valid=False, base_uptime_ms=1_302_240, base_counts=2_000_012_534)
    assert log.segments == 1


def test_header_gives_device_and_calibration():
    seg = SegmentBuilder(
        first_seq=7,
        boot=12,
        device_id=bytes.fromhex("a1b2c3d4e5f60718"),
        interval_s=300,
        cal=1000.0,
        dead_time_us=0.0,
        background=0.0,
    )
    seg.batch(7, [(300_000, 600, 5.0, 0)], boot=12)
    log = Log()
    dec = decode_segment(NAME, bytes(seg.data), log)
    assert dec.device == "a1b2c3d4e5f60718"
    h = dec.header
    assert (h["boot"], h["first_seq"], h["interval_s"], h["cal_cpm_per_usv_h"], h["dead_time_us"]) == (
        12,
        7,
        300,
        1000.0,
        0.0,
    )
    (r,) = log.records
    # 600 counts in 300 s = 120 cpm; no dead time, no background; 1000 cpm per uSv/h
    assert r["device"] == "a1b2c3d4e5f60718" and r["dose_rate_usv_h"] == pytest.approx(0.12)


def test_times_with_odd_milliseconds():
    entries = [(60_001, 1, 0.0, 0), (59_999, 1, -0.01, 0)]
    seg = SegmentBuilder().batch(0, entries, clock_offset_ms=1_767_225_600_123, base_uptime_ms=5)
    assert decoded(seg.data).records == expected(0, entries, offset_ms=1_767_225_600_123, base_uptime_ms=5)


def test_largest_batch_the_board_writes():
    entries = [(60_000 + (i % 5) * 7 - 14, i * 97 % 1000, (i - 30) * 1.25, (1 << (i % 11))) for i in range(60)]
    seg = SegmentBuilder().batch(1_000_000, entries, base_uptime_ms=10**9, base_counts=0)
    assert decoded(seg.data).records == expected(1_000_000, entries, base_uptime_ms=10**9)


def test_segment_written_by_the_boards_log_store():
    """logstore.LogStore (the board's writer) on the fake board's flash: batches of 4, a clock
    that becomes valid (a new batch: a batch never mixes clock bases), then the segment decoded."""
    board = fakes.FakeBoard()
    logstore = board.fw.load("logstore")
    board.fs.mkdir("store")
    store = logstore.LogStore("/store", 9, fakes.DEVICE_ID, batch_records=4)
    store.recover()
    store.set_header(60, CAL, DEAD_US, BG)
    fed = []
    up, total = 0, 0
    for i in range(11):
        iv, ic, temp, flags = 60_000 + i, 100 + i, 3.5 + i / 4, FLAG_BITS["boot"] if i == 0 else 0
        up += iv
        total += ic
        valid = i >= 6
        store.append(up, up, total, iv, ic, temp, flags, valid, fakes.START_EPOCH_MS if valid else 0)
        if store.commit_due(up):
            store.commit()
        fed.append((iv, ic, temp, flags))
    store.close()
    (path,) = [p for p in board.fs.files if p.startswith("store/log/")]
    log = decoded(board.fs.read(path))
    assert log.problems == []
    up6 = sum(e[0] for e in fed[:6])
    cnt6 = sum(e[1] for e in fed[:6])
    assert log.records == expected(0, fed[:6], boot=9, clock_valid=False, base_uptime_ms=0) + expected(
        6, fed[6:], boot=9, base_uptime_ms=up6, base_counts=cnt6
    )
    assert log.verified == 11  # an unprovisioned board's chain (empty key) checks out


# --- damage ----------------------------------------------------------------------------------------


def four_batches() -> SegmentBuilder:
    seg = SegmentBuilder()
    for b in range(4):
        seg.batch(
            b * 5,
            [(60_000, 100 + i, 4.0, 0) for i in range(5)],
            base_uptime_ms=b * 300_000,
            base_counts=sum(100 + i for i in range(5)) * b,
        )
    return seg


def all_expected() -> list[dict]:
    out = []
    for b in range(4):
        out += expected(
            b * 5,
            [(60_000, 100 + i, 4.0, 0) for i in range(5)],
            base_uptime_ms=b * 300_000,
            base_counts=sum(100 + i for i in range(5)) * b,
        )
    return out


def test_intact_segment_has_no_problem():
    log = decoded(four_batches().data)
    assert log.problems == [] and log.records == all_expected()


def test_damaged_chunk_is_skipped_and_its_bytes_named():
    seg = four_batches()
    off, size, first, count = seg.chunks[2]  # the second batch: records 5..9
    data = bytearray(seg.data)
    data[off + 11] ^= 0x10  # one flipped bit on the flash
    log = decoded(data)
    assert [str(p) for p in log.problems] == [f"{NAME}: bytes {off}..{off + size - 1} damaged (CRC mismatch): skipped"]
    assert log.records == [r for r in all_expected() if not 5 <= r["seq"] <= 9]
    check_sequence(log)
    assert "log: records 5..9 are missing" in [str(p) for p in log.problems]


def test_garbage_between_chunks_is_skipped_and_nothing_lost():
    seg = four_batches()
    off = seg.chunks[3][0]
    junk = b"\x00\xff\xa5\x42garbage!"
    data = seg.data[:off] + junk + seg.data[off:]
    log = decoded(data)
    assert [str(p) for p in log.problems] == [
        f"{NAME}: bytes {off}..{off + len(junk) - 1} damaged (bad sync byte): skipped"
    ]
    assert log.records == all_expected()
    assert log.failed == 0  # damage is not forgery: the chunk after it is not called forged


def test_torn_tail_is_reported_up_to_the_end():
    seg = four_batches()
    off, size, _, _ = seg.chunks[4]
    data = seg.data[: off + size - 5]  # the last write was cut short
    log = decoded(data)
    (problem,) = [str(p) for p in log.problems]
    assert re.fullmatch(rf"{re.escape(NAME)}: bytes {off}\.\.{len(data) - 1} damaged \(.+\): skipped", problem)
    assert [r["seq"] for r in log.records] == list(range(15))


def test_damaged_header_loses_calibration_not_records():
    seg = four_batches()
    data = bytearray(seg.data)
    data[10] ^= 0x01  # inside the header chunk
    log = decoded(data)
    hsize = seg.chunks[0][1]
    msgs = [str(p) for p in log.problems]
    assert f"{NAME}: bytes 0..{hsize - 1} damaged (CRC mismatch): skipped" in msgs
    assert any("records 0..4 have no segment header" in m for m in msgs)
    assert [r["seq"] for r in log.records] == list(range(20))
    assert all(r["dose_rate_usv_h"] is None for r in log.records)  # no calibration: not computed
    assert log.records[0]["device"] == ""


def test_several_damaged_stretches_each_reported():
    seg = four_batches()
    data = bytearray(seg.data)
    (o1, s1, _, _), (o3, s3, _, _) = seg.chunks[1], seg.chunks[3]
    data[o1 + 6] ^= 0xFF
    data[o3 + s3 - 2] ^= 0xFF  # in the CRC itself
    log = decoded(data)
    assert [str(p) for p in log.problems] == [
        f"{NAME}: bytes {o1}..{o1 + s1 - 1} damaged (CRC mismatch): skipped",
        f"{NAME}: bytes {o3}..{o3 + s3 - 1} damaged (CRC mismatch): skipped",
    ]
    assert [r["seq"] for r in log.records] == [5, 6, 7, 8, 9, 15, 16, 17, 18, 19]


# --- sequence --------------------------------------------------------------------------------------


def test_missing_ranges_across_segments_are_named():
    log = Log()
    a = SegmentBuilder(first_seq=0).batch(0, [(60_000, 1, 1.0, 0)] * 10)
    b = SegmentBuilder(first_seq=20, chain=a.chain).batch(20, [(60_000, 1, 1.0, 0)] * 3)
    c = SegmentBuilder(first_seq=30, chain=b.chain).batch(30, [(60_000, 1, 1.0, 0)] * 2)
    for seg in (c, a, b):  # any order: sorted by sequence number
        decode_segment(NAME, bytes(seg.data), log)
    check_sequence(log)
    assert [str(p) for p in log.problems] == ["log: records 10..19 are missing", "log: records 23..29 are missing"]
    assert [r["seq"] for r in log.records] == list(range(10)) + [20, 21, 22, 30, 31]


def test_a_record_twice_is_kept_once_and_a_different_copy_reported():
    log = Log()
    a = SegmentBuilder().batch(0, [(60_000, 5, 1.0, 0)] * 3)
    decode_segment(NAME, bytes(a.data), log)
    decode_segment(NAME, bytes(a.data), log)  # the same chunk read twice: not a problem
    other = SegmentBuilder().batch(2, [(60_000, 999, 1.0, 0)], base_uptime_ms=120_000, base_counts=10)
    decode_segment(NAME, bytes(other.data), log)
    check_sequence(log)
    assert [str(p) for p in log.problems] == [
        "log: sequence number 2 appears twice with different data: the first copy is kept"
    ]
    assert [(r["seq"], r["interval_counts"]) for r in log.records] == [(0, 5), (1, 5), (2, 5)]
