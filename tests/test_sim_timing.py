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
