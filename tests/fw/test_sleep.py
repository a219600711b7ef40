# Deep sleep between samples (firmware/sleep.py): the state saved in RTC memory, and the log store
# going on in the same segment after a wake. Runs under CPython and MicroPython.
import os

import alarms
import fsdir
import logstore
import record
import sleep

DEV = b"\x01\x02\x03\x04\x05\x06\x07\x08"
KEY = bytes(range(32))


def _store(d, boot=1, batch=4):
    s = logstore.LogStore(d, boot, DEV, batch_records=batch, segment_blocks=4, key=KEY)
    s.recover()
    s.set_header(60, 153.8, 190.0, 0.1)
    return s


def _log(s, first, n):
    for i in range(first, first + n):
        up = (i + 1) * 60000
        if s.append(up, up, (i + 1) * 10, 60000, 10, 5.0 + i / 10, 0, True, 1795000000000):
            s.commit()


class _Logger:
    """The fields of firmware/logger.py Logger that sleep.py saves."""

    def __init__(self, store, rules):
        self.store = store
        self.alarms = alarms.Alarms(rules, 10.0, 50.0)
        self.uptime_ms = 0
        self.clock_offset_ms = 0
        self.clock_valid = False
        self.next_sample_ms = 0
        self.last_sample_ms = 0
        self.last_pulse_ms = 0
        self.last_counts = 0
        self.total_counts = 0
        self.first_record = True
        self.conversion_started = False
        self.pending_flags = 0
        self.flags = 0
        self.over_range = False
        self.dose_usv_h = None
        self.temp_c = None
        self.battery_v = None


def _rules():
    return [alarms.TempRule("25C", 25.0, True, 1800000, False), alarms.TempRule("8C", 8.0, True, 7200000, True)]


def _chunks(d):
    """Every chunk of every segment, in order: (kind, data, start, length)."""
    out = []
    for name in sorted(os.listdir(d + "/log")):
        with open(d + "/log/" + name, "rb") as f:
            reader = record.ChunkReader(f)
            while True:
                got = reader.next()
                if got is None:
                    break
                kind, start, length = got
                out.append((kind, bytes(reader.buf[start : start + length]), 0, length))
            assert not reader.damage, reader.damage
    return out


def _seqs_and_chain(d):
    """Sequence numbers of every record; asserts the MAC chain holds from the first chunk."""
    seqs = []
    chain = record.CHAIN_START
    for kind, data, start, length in _chunks(d):
        assert record.verify_chunk(KEY, chain, data, start, length), "MAC chain broken"
        chain = record.chunk_mac(data, start, length)
        if kind == record.KIND_BATCH:
            _, recs = record.decode_batch(data, start, length)
            seqs += [r[0] for r in recs]
    return seqs


def _sleep_and_wake(d, s, lg):
    """Save as the logger does before deep sleep, lose RAM, and resume as a wake does."""
    blob = sleep.encode(lg, 59000)
    s._close_segment()  # the CPU's RAM is gone: nothing more is written through this object
    saved = sleep.decode(bytes(blob))
    assert saved is not None
    s2 = logstore.LogStore(d, sleep.saved_boot(saved[0]), DEV, batch_records=4, segment_blocks=4, key=KEY)
    s2.header = (60, 153.8, 190.0, 0.1)
    s2.config = None
    assert s2.resume(saved[1], saved[3])
    return s2, saved


def test_a_wake_goes_on_in_the_same_segment_with_the_batch_and_the_chain():
    d = fsdir.fresh()
    s = _store(d)
    _log(s, 0, 6)  # 4 committed, 2 in RAM
    lg = _Logger(s, _rules())
    s2, _ = _sleep_and_wake(d, s, lg)
    assert s2.count == 2 and s2.next_seq == 4
    _log(s2, 6, 5)  # 2 + 5: one batch of 4 committed, 3 in RAM
    s2, _ = _sleep_and_wake(d, s2, _Logger(s2, _rules()))
    _log(s2, 11, 1)
    s2.commit()
    assert _seqs_and_chain(d) == list(range(12))
    assert len(os.listdir(d + "/log")) == 1  # one segment: a wake is not a boot
    kinds = [c[0] for c in _chunks(d)]
    assert kinds.count(record.KIND_HEADER) == 1


def test_the_records_kept_through_the_sleep_are_the_ones_logged():
    d = fsdir.fresh()
    s = _store(d)
    _log(s, 0, 3)  # all 3 in RAM
    s2, _ = _sleep_and_wake(d, s, _Logger(s, _rules()))
    s2.commit()
    seg = _chunks(d)
    batches = [record.decode_batch(data, start, length)[1] for kind, data, start, length in seg if kind == 66]
    recs = batches[0]
    # (seq, boot, epoch, uptime, counts, interval, interval counts, temperature, flags): what _log
    # appended, in order
    assert [r[0] for r in recs] == [0, 1, 2]
    assert [r[3] for r in recs] == [60000, 120000, 180000]
    assert [r[6] for r in recs] == [10, 10, 10]
    temps = [record.decode_temp(record.encode_temp(5.0 + i / 10)) for i in range(3)]
    assert [r[7] for r in recs] == temps


def test_the_storage_state_is_the_one_the_sleep_left_until_the_next_commit():
    # A wake does not count the free blocks again (on littlefs that reads every file): the flags the
    # last check left go through RTC memory. This flash has room: a wake that recounted would
    # clear the flags set here by hand; the next commit recounts and does.
    d = fsdir.fresh()
    s = _store(d)
    _log(s, 0, 2)
    assert not s.low and not s.full
    s.low = s.full = True
    s2, _ = _sleep_and_wake(d, s, _Logger(s, _rules()))
    assert s2.low and s2.full
    assert s2.block_size == 0  # not read either: the commit's free-space check sets it
    s2.update_space()
    assert not s2.low and not s2.full and s2.block_size > 0
    s3, _ = _sleep_and_wake(d, s2, _Logger(s2, _rules()))
    assert not s3.low and not s3.full


def test_the_free_space_after_a_wake_is_counted_with_the_segment_closed():
    # littlefs counts the blocks of a file opened for appending twice until it is written to: a
    # segment resumed after a wake. The store counts with it closed, then appends to it again.
    d = fsdir.fresh(blocks=64)
    s = _store(d)
    _log(s, 0, 62)  # several blocks in the open segment, 2 records in RAM
    s2, _ = _sleep_and_wake(d, s, _Logger(s, _rules()))
    first = s2.segment_first
    free = s2.update_space()
    assert s2.file is not None and s2.segment_first == first  # open again: the same segment
    s2._close_segment()
    st = os.statvfs(d)
    assert free == st[0] * st[3]
    s2.file = open(s2._path(first), "ab")
    s2.segment_first = first
    _log(s2, 62, 6)
    s2.commit()
    assert _seqs_and_chain(d) == list(range(68))


def test_the_logger_state_round_trips():
    d = fsdir.fresh()
    s = _store(d)
    lg = _Logger(s, _rules())
    lg.uptime_ms = 3 * 86400000 + 17
    lg.clock_offset_ms = 1795000000123
    lg.clock_valid = True
    lg.next_sample_ms = lg.uptime_ms + 59000
    lg.last_sample_ms = lg.uptime_ms - 1000
    lg.last_pulse_ms = lg.uptime_ms - 2000
    lg.last_counts = 0x3FFFFFFF
    lg.total_counts = 5000000000
    lg.first_record = False
    lg.conversion_started = True
    lg.pending_flags = record.F_ALARM_ACK
    lg.flags = record.F_TEMP_ALARM | record.F_LOW_BATTERY
    lg.over_range = True
    lg.dose_usv_h = 12.5
    lg.temp_c = None  # a sensor fault: nothing, not 0
    lg.battery_v = 3.875
    lg.alarms.latched = alarms.A_TEMP_ALARM | alarms.A_DOSE_WARN
    lg.alarms.active = alarms.A_TEMP_FAULT
    lg.alarms.temp_excursion = True
    lg.alarms.rules[0].beyond_ms = 120000
    lg.alarms.rules[1].beyond_ms = 3600000
    lg.alarms.rules[1].triggered = True
    saved = sleep.decode(bytes(sleep.encode(lg, 59000)))
    assert saved is not None
    back = _Logger(s, _rules())
    assert sleep.restore_logger(back, saved[0], saved[2], lg.uptime_ms + 59000)
    assert back.uptime_ms == lg.uptime_ms + 59000
    for name in (
        "clock_offset_ms",
        "clock_valid",
        "next_sample_ms",
        "last_sample_ms",
        "last_pulse_ms",
        "last_counts",
        "total_counts",
        "first_record",
        "conversion_started",
        "pending_flags",
        "flags",
        "over_range",
        "dose_usv_h",
        "temp_c",
    ):
        assert getattr(back, name) == getattr(lg, name), name
    assert abs(back.battery_v - 3.875) < 1e-6
    a, b = back.alarms, lg.alarms
    assert (a.latched, a.active, a.temp_excursion) == (b.latched, b.active, b.temp_excursion)
    assert [(r.beyond_ms, r.triggered) for r in a.rules] == [(120000, False), (3600000, True)]


def test_other_rules_are_not_restored():
    d = fsdir.fresh()
    s = _store(d)
    saved = sleep.decode(bytes(sleep.encode(_Logger(s, _rules()), 1000)))
    assert not sleep.restore_logger(_Logger(s, _rules()[:1]), saved[0], saved[2], 0)


def test_damaged_or_foreign_rtc_memory_is_not_used():
    d = fsdir.fresh()
    s = _store(d)
    _log(s, 0, 2)
    blob = sleep.encode(_Logger(s, _rules()), 1000)
    assert sleep.decode(bytes(blob)) is not None
    for i in (0, 5, 20, len(blob) - 1):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        assert sleep.decode(bytes(bad)) is None, i
    assert sleep.decode(bytes(blob)[:-1]) is None
    assert sleep.decode(bytes(blob) + b"\x00") is None
    assert sleep.decode(b"") is None
    assert sleep.decode(b"isolog-rtc-set") is None


def test_resume_refuses_a_flash_that_changed_while_asleep():
    d = fsdir.fresh()
    s = _store(d)
    _log(s, 0, 6)
    saved = sleep.decode(bytes(sleep.encode(_Logger(s, _rules()), 1000)))
    s._close_segment()
    # the open segment grew (something wrote to it): refused
    name = d + "/log/" + sorted(os.listdir(d + "/log"))[-1]
    with open(name, "ab") as f:
        f.write(b"\x00")
    s2 = logstore.LogStore(d, 1, DEV, batch_records=4, key=KEY)
    assert not s2.resume(saved[1], saved[3])
    assert s2.file is None and s2.count == 0  # nothing taken from the saved state
    # the high-water mark moved on (another boot committed): refused
    d = fsdir.fresh()
    s = _store(d)
    _log(s, 0, 6)
    saved = sleep.decode(bytes(sleep.encode(_Logger(s, _rules()), 1000)))
    _log(s, 6, 2)  # a commit after the state was saved
    s._close_segment()
    s3 = logstore.LogStore(d, 1, DEV, batch_records=4, key=KEY)
    assert not s3.resume(saved[1], saved[3])
