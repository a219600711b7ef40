"""Timing the virtual board makes visible (issue 12): each record's temperature is measured in its
own interval, and the firmware lives through the wrap of the boards' 30-bit ticks counter."""

from __future__ import annotations

from pathlib import Path

from isolog.sim.launcher import VirtualBoard
from sim_helpers import assert_intact, read_log, scenario

# DS18B20 at 12 bits: 0.0625 C per LSB, conversion up to 750 ms (Maxim DS18B20 datasheet,
# "Operation - Measuring Temperature" and the conversion-time table; temperature.DS18B20).
LSB_C = 0.0625
CONVERSION_S = 0.75


def _run(sc: dict, tmp_path: Path, **kw) -> VirtualBoard:
    b = VirtualBoard(sc, tmp_path / "flash.img", speed=0, until_end=True, **kw)
    try:
        b.run()
    finally:
        b.close()
    return b


def test_each_record_has_the_temperature_of_its_own_interval(micropython, tmp_path):
    """The container warms by 1 C per minute, logged every minute: a record at uptime t must
    carry the temperature of t (measured by a conversion started 750 ms before the sample), not
    the one of t - 60 s (a conversion started right after the previous sample: 1 C behind)."""
    ramp_c_per_s = 1 / 60
    sc = scenario(duration="1h", temperature={"points": [["0h", 0.0], ["100min", 100.0]], "noise_c": 0.0})
    _run(sc, tmp_path)
    recs = read_log(tmp_path / "flash.img").records
    assert len(recs) == 60
    for r in recs:
        measured_at_s = r["uptime_s"] - CONVERSION_S
        expected = measured_at_s * ramp_c_per_s
        # One LSB of the sensor plus the centi-degree rounding of the record format.
        assert abs(r["temperature_c"] - expected) <= LSB_C + 0.005, (r["uptime_s"], r["temperature_c"], expected)


def test_recovery_of_a_damaged_log_feeds_the_watchdog(micropython, tmp_path):
    """Six whole segments of the log are damaged (flash wear, a bad write): at boot the recovery
    scans each of them for an intact batch. On a board that is slow work; the virtual board
    charges the firmware's CPU time at a board's speed and the flash's busy time against the 8 s
    watchdog. The scan must skip damage fast and feed the watchdog: no watchdog reset, the board
    logs on after it."""
    import random

    from isolog.sim import launcher

    sc = scenario(duration="10min")
    board = VirtualBoard(sc, tmp_path / "flash.img", speed=0, until_end=True)
    rng = random.Random(12)
    segment_bytes = 8 * 4096  # logstore.SEGMENT_BLOCKS blocks of 4 KiB
    launcher.put_files(board.flash, {"/data/log/%08x.seg" % (i * 1000): rng.randbytes(segment_bytes) for i in range(6)})
    try:
        code = board.run()
    finally:
        board.close()
    kinds = [e.kind for e in board.events]
    assert "watchdog_reset" not in kinds, [e.words for e in board.events if e.kind == "watchdog_reset"]
    assert code == 0 and "end" in kinds
    log = read_log(tmp_path / "flash.img")
    assert len([r for r in log.records if r["boot"] == 1]) == 10  # one a minute after the recovery


def test_the_firmware_lives_through_the_ticks_wrap(micropython, tmp_path):
    """A board's ticks_ms() wraps every 2**30 ms (12.4 days): once in a long trip. The scenario
    starts the counter 30 minutes before its wrap; uptime, intervals and the record schedule must
    go on as if nothing happened (the firmware uses ticks_diff, never a raw subtraction)."""
    sc = scenario(duration="1h", ticks_wrap_after="30min")
    b = _run(sc, tmp_path)
    assert "watchdog_reset" not in [e.kind for e in b.events]
    log = read_log(tmp_path / "flash.img")
    assert_intact(log)
    recs = log.records
    assert len(recs) == 60
    assert [r["uptime_s"] for r in recs] == [60.0 * (i + 1) for i in range(60)]
    assert {r["interval_s"] for r in recs} == {60.0}
