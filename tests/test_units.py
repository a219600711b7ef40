import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isolog.errors import UserError
from isolog.units import (
    format_activity,
    format_duration,
    format_time,
    parse_activity_bq,
    parse_duration_s,
    parse_time,
    parse_time_or_offset,
)


@pytest.mark.parametrize(
    "text, bq",
    [
        ("7.4GBq", 7.4e9),
        ("370 MBq", 3.7e8),
        ("5e9Bq", 5e9),
        ("200mCi", 200e-3 * 3.7e10),  # 1 Ci = 3.7e10 Bq exactly
        ("1Ci", 3.7e10),
        ("10 µCi", 10e-6 * 3.7e10),
        ("10uCi", 10e-6 * 3.7e10),
        ("0.7TBq", 0.7e12),
        ("0Bq", 0.0),
    ],
)
def test_parse_activity(text, bq):
    assert parse_activity_bq(text) == pytest.approx(bq, rel=1e-12)


@pytest.mark.parametrize("text", ["7.4", "7.4 G", "GBq", "7.4 gbq", "1,5GBq", "", "7.4 GBq/s"])
def test_activity_needs_number_and_unit(text):
    with pytest.raises(UserError, match="activity"):
        parse_activity_bq(text)


def test_bare_number_activity_refused():
    with pytest.raises(UserError, match="no unit"):
        parse_activity_bq(7.4e9)


def test_negative_activity_refused():
    with pytest.raises(UserError, match="negative"):
        parse_activity_bq("-1GBq")


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("30min", 1800),
        ("12h", 43200),
        ("3d", 259200),
        ("1h30min", 5400),
        ("1.5h", 5400),
        (60, 60),
        (0, 0),
        ("250ms", 0.25),
        ("2w", 1209600),
        ("45", 45),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "h", "3x", "3 hours", "-1h", "1m", True, "nan", "inf"])
def test_bad_durations(text):
    with pytest.raises(UserError):
        parse_duration_s(text)


def test_parse_time_requires_zone():
    assert parse_time("2026-11-26T08:00:00Z") == parse_time("2026-11-26T09:00:00+01:00")
    with pytest.raises(UserError, match="time zone"):
        parse_time("2026-11-26T08:00:00")
    with pytest.raises(UserError, match="ISO 8601"):
        parse_time("26/11/2026")


def test_time_or_offset():
    t0 = parse_time("2026-11-26T08:00:00Z")
    assert parse_time_or_offset("72h", t0) == t0 + 72 * 3600
    assert parse_time_or_offset("+3d", t0) == t0 + 3 * 86400
    assert parse_time_or_offset("2026-11-29T08:00:00Z", t0) == t0 + 72 * 3600
    assert parse_time_or_offset("72h", None) == 72 * 3600
    with pytest.raises(UserError, match="needs a start time"):
        parse_time_or_offset("2026-11-29T08:00:00Z", None)


def test_format():
    assert format_activity(5.41143e9) == "5.4114 GBq"
    assert format_activity(370e6) == "370 MBq"
    assert format_duration(5400) == "1h 30min"
    assert format_duration(3 * 86400 + 3600) == "3d 1h"
    assert format_time(parse_time("2026-11-26T08:00:00Z")) == "2026-11-26T08:00:00Z"
    assert format_time(math.nan) == "unknown"


@given(st.floats(min_value=1e-3, max_value=1e18, allow_nan=False, allow_infinity=False))
def test_activity_round_trip(bq):
    # format keeps 5 significant digits: the round trip is exact to that precision.
    assert parse_activity_bq(format_activity(bq).replace(" ", "")) == pytest.approx(bq, rel=5e-5)


@given(st.floats(min_value=0, max_value=1e8, allow_nan=False), st.sampled_from(["s", "min", "h", "d"]))
def test_duration_round_trip(x, unit):
    factor = {"s": 1, "min": 60, "h": 3600, "d": 86400}[unit]
    assert parse_duration_s(f"{x!r}{unit}") == pytest.approx(x * factor, rel=1e-12)


@given(st.integers(min_value=0, max_value=4_102_444_800))  # 1970 .. 2100
def test_time_round_trip(epoch):
    assert parse_time(format_time(epoch)) == epoch
