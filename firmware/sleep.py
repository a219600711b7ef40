# Deep sleep between samples (issue 13 item 2): what the logger keeps in RTC memory while the CPU is
# off, so that the next wake goes on where this one stopped.
#
# A board that can count while its CPU sleeps (board.low_power: the ESP32-S3's ULP co-processor,
# boards/esp32s3.py) deep-sleeps between samples when no host is attached. On a wake the program
# starts again from main.py (as on a real port: ports/esp32 deep sleep ends in a reset), so
# everything the logger holds in RAM is saved here first: its schedule, the alarm timers and the
# store's batch of records not yet committed. RTC memory survives deep sleep and resets but not a
# power cut (ESP32-S3 TRM, "RTC slow memory"; machine.RTC().memory() keeps up to 2 KiB on esp32), so
# a power cut while asleep loses at most that batch: the same as a power cut while awake, where
# the batch is in RAM (firmware/logstore.py COMMIT_AGE_MS bounds it to 15 minutes).
#
# Trust: the saved state is used only after a wake from deep sleep (never after a reset or power-on),
# only if its CRC holds, its boot number is the flash's, its sequence number is the flash's
# high-water mark and its segment file has exactly the length saved. Anything else starts a normal
# boot (a new boot number, the store's recovery scan) and the batch in it is dropped: RTC memory is
# not evidence, the flash is. Sequence numbers are given at commit, so they stay contiguous and the
# MAC chain goes on from the chain value saved with the length the segment still has.
import struct
from binascii import crc32

try:
    from micropython import const
except ImportError:  # CPython: the host shares this file (package isolog_fw) and tests run it

    def const(__expr):  # positional-only, as MicroPython's (no `/` in its grammar)
        return __expr


_MAGIC = const(0x31534C49)  # "ILS1" little-endian
# CRC, magic, boot, uptime at sleep, sleep asked, clock offset, clock valid, next sample, last sample,
# last pulse, last counts, total counts, first record, conversion started, pending flags, flags,
# over range, dose, temperature, battery, alarms latched, active, excursion, rules
_HEAD = "<IIHqIqBqqqIqBBHHBfffHHBB"
# store: next seq, chain, segment (first seq + 1, 0: none open), segment size, records, batch clock
# valid, batch clock offset, base uptime, base counts, batch started, dropped, skipped, write errors,
# recovered damage, flash full, storage low (as the last free-space check left them: nothing was
# written since, so a wake need not count the free blocks again, which on littlefs reads every file)
_STORE = "<I16sIIBBqqqqHIHHBB"
_RULE = "<IB"  # beyond_ms, triggered
_ENTRY = "<IIiI"  # interval_ms, interval counts, temperature code, flags
_HEAD_SIZE = struct.calcsize(_HEAD)
_STORE_SIZE = struct.calcsize(_STORE)
_RULE_SIZE = struct.calcsize(_RULE)
_ENTRY_SIZE = struct.calcsize(_ENTRY)
_NAN = float("nan")


def _f(value):
    return _NAN if value is None else value


def _opt(value):
    return None if value != value else value  # NaN: nothing


def encode(lg, sleep_ms):
    """The logger's state (firmware/logger.py Logger `lg`) as bytes for RTC memory."""
    a = lg.alarms
    s = lg.store
    n = s.count
    rules = a.rules
    seg = 0
    if s.file is not None and s.segment_first is not None:
        seg = s.segment_first + 1
    out = bytearray(_HEAD_SIZE + _STORE_SIZE + len(rules) * _RULE_SIZE + n * _ENTRY_SIZE)
    struct.pack_into(
        _HEAD,
        out,
        0,
        0,
        _MAGIC,
        s.boot,
        lg.uptime_ms,
        sleep_ms,
        lg.clock_offset_ms,
        lg.clock_valid,
        lg.next_sample_ms,
        lg.last_sample_ms,
        lg.last_pulse_ms,
        lg.last_counts,
        lg.total_counts,
        lg.first_record,
        lg.conversion_started,
        lg.pending_flags,
        lg.flags,
        lg.over_range,
        _f(lg.dose_usv_h),
        _f(lg.temp_c),
        _f(lg.battery_v),
        a.latched,
        a.active,
        a.temp_excursion,
        len(rules),
    )
    pos = _HEAD_SIZE
    struct.pack_into(
        _STORE,
        out,
        pos,
        s.next_seq,
        s.chain,
        seg,
        s.file_size if seg else 0,
        n,
        s.batch_clock_valid,
        s.batch_clock_offset,
        s.batch_base_uptime,
        s.batch_base_counts,
        s.batch_started_ms,
        s.dropped,
        s.skipped,
        s.write_errors,
        s.recovered_damage,
        s.full,
        s.low,
    )
    pos += _STORE_SIZE
    for r in rules:
        struct.pack_into(_RULE, out, pos, r.beyond_ms, r.triggered)
        pos += _RULE_SIZE
    e = s.entries
    for i in range(n):
        j = 4 * i
        struct.pack_into(_ENTRY, out, pos, e[j], e[j + 1], e[j + 2], e[j + 3])
        pos += _ENTRY_SIZE
    struct.pack_into("<I", out, 0, crc32(memoryview(out)[4:]) & 0xFFFFFFFF)
    return out


def decode(data):
    """(head tuple, store tuple, rules [(beyond_ms, triggered)], entries [flat ints]) from RTC
    memory, or None when it holds no intact state (empty, another use, a torn write)."""
    if len(data) < _HEAD_SIZE + _STORE_SIZE:
        return None
    head = struct.unpack_from(_HEAD, data, 0)
    if head[1] != _MAGIC or head[0] != crc32(memoryview(data)[4:]) & 0xFFFFFFFF:
        return None
    store = struct.unpack_from(_STORE, data, _HEAD_SIZE)
    n_rules = head[-1]
    n = store[4]
    if len(data) != _HEAD_SIZE + _STORE_SIZE + n_rules * _RULE_SIZE + n * _ENTRY_SIZE:
        return None
    pos = _HEAD_SIZE + _STORE_SIZE
    rules = []
    for _ in range(n_rules):
        rules.append(struct.unpack_from(_RULE, data, pos))
        pos += _RULE_SIZE
    entries = []
    for _ in range(n):
        entries.extend(struct.unpack_from(_ENTRY, data, pos))
        pos += _ENTRY_SIZE
    return head, store, rules, entries


def restore_logger(lg, head, rules, uptime_ms):
    """Put the saved schedule and alarm state back into a logger built on this wake (its
    configuration applied: the same rules in the same order)."""
    (
        _crc,
        _magic,
        _boot,
        _up,
        _sleep,
        lg.clock_offset_ms,
        clock_valid,
        lg.next_sample_ms,
        lg.last_sample_ms,
        lg.last_pulse_ms,
        lg.last_counts,
        lg.total_counts,
        first,
        conv,
        lg.pending_flags,
        lg.flags,
        over,
        dose,
        temp,
        battery,
        latched,
        active,
        excursion,
        _n,
    ) = head
    lg.uptime_ms = uptime_ms
    lg.clock_valid = bool(clock_valid)
    lg.first_record = bool(first)
    lg.conversion_started = bool(conv)
    lg.over_range = bool(over)
    lg.dose_usv_h = _opt(dose)
    lg.temp_c = _opt(temp)
    lg.battery_v = _opt(battery)
    a = lg.alarms
    if len(rules) != len(a.rules):
        return False
    a.latched = latched
    a.active = active
    a.temp_excursion = bool(excursion)
    for rule, saved in zip(a.rules, rules):
        rule.beyond_ms = saved[0]
        rule.triggered = bool(saved[1])
    return True


def saved_boot(head):
    return head[2]


def saved_uptime(head):
    return head[3]
