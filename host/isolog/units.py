"""Units the shipment tools read and write: activities, durations and ISO 8601 times.

Activities are held in becquerel, durations in seconds and times in seconds since the Unix epoch
(UTC, float). Parsing raises UserError with a message that names the value and what was expected;
the callers add the field name.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

from isolog.errors import UserError

# 1 Ci = 3.7e10 Bq exactly (SI Brochure, 9th ed. 2019, Table 8 "non-SI units").
BQ_PER_CI = 3.7e10

_SI_PREFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_CI_PREFIX = {"": 1.0, "k": 1e3, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "n": 1e-9, "p": 1e-12}

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_ACTIVITY_RE = re.compile(rf"^\s*({_NUMBER})\s*([kMGTPmunpµμ]?)(Bq|Ci)\s*$")

_DURATION_UNITS = {
    "ms": 1e-3,
    "s": 1.0,
    "min": 60.0,  # not "m": minutes, metres and months would be one letter apart
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}
_DURATION_PART = re.compile(rf"({_NUMBER})\s*(ms|min|s|h|d|w)")


def parse_activity_bq(text: str | float | int) -> float:
    """'7.4GBq', '200 mCi', '370MBq', '5e9Bq' -> becquerel. A bare number is refused: an activity
    without a unit is the classic factor-of-a-million error."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise UserError(f"activity {text!r} has no unit: write it with one, e.g. '7.4GBq', '200mCi' or '5e9Bq'")
    m = _ACTIVITY_RE.match(text)
    if not m:
        raise UserError(
            f"cannot read activity {text!r}: expected a number and a unit such as "
            "'7.4GBq', '370MBq', '200mCi' or '5e9Bq'"
        )
    value = float(m.group(1))
    prefix, unit = m.group(2), m.group(3)
    if unit == "Bq":
        if prefix not in _SI_PREFIX:
            raise UserError(f"cannot read activity {text!r}: unknown prefix {prefix!r} for Bq")
        bq = value * _SI_PREFIX[prefix]
    else:
        if prefix not in _CI_PREFIX:
            raise UserError(f"cannot read activity {text!r}: unknown prefix {prefix!r} for Ci")
        bq = value * _CI_PREFIX[prefix] * BQ_PER_CI
    if not math.isfinite(bq):
        raise UserError(f"activity {text!r} is not finite")
    if bq < 0:
        raise UserError(f"activity {text!r} is negative")
    return bq


def format_activity(bq: float, digits: int = 5) -> str:
    """Becquerel as a readable string with an SI prefix: 5.4114e9 -> '5.4114 GBq'."""
    if bq == 0 or not math.isfinite(bq):
        return f"{bq:g} Bq"
    for prefix, factor in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(bq) >= factor:
            return f"{bq / factor:.{digits}g} {prefix}Bq"
    return f"{bq:.{digits}g} Bq"


def parse_duration_s(value: str | float | int) -> float:
    """A duration in seconds: a number of seconds, or '90s', '30min', '12h', '3d', '1h30min'."""
    if isinstance(value, bool):
        raise UserError(f"duration {value!r} is not a number of seconds or a string like '30min'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text:
            raise UserError("empty duration")
        pos = 0
        seconds = 0.0
        for m in _DURATION_PART.finditer(text):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or pos == 0:
            try:
                seconds = float(text)  # a plain number in a string: seconds
            except ValueError:
                raise UserError(
                    f"cannot read duration {value!r}: expected seconds or a number with a unit "
                    "(ms, s, min, h, d, w), e.g. '90s', '30min', '72h', '3d'"
                ) from None
    else:
        raise UserError(f"duration {value!r} is not a number of seconds or a string like '30min'")
    if not math.isfinite(seconds):
        raise UserError(f"duration {value!r} is not finite")
    if seconds < 0:
        raise UserError(f"duration {value!r} is negative")
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds as '3d 4h', '2h 05min', '45min', '12 s'."""
    if not math.isfinite(seconds):
        return str(seconds)
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    if s < 60:
        return f"{sign}{s:.3g} s"
    minutes = int(round(s / 60))
    d, rem = divmod(minutes, 1440)
    h, mi = divmod(rem, 60)
    if d:
        return f"{sign}{d}d {h}h" if not mi else f"{sign}{d}d {h}h {mi:02d}min"
    if h:
        return f"{sign}{h}h {mi:02d}min"
    return f"{sign}{mi}min"


def parse_time(text: str) -> float:
    """ISO 8601 with a zone ('2026-11-26T08:00:00Z', '...+01:00') -> epoch seconds (UTC).
    A time without a zone is refused: the shipment crosses time zones."""
    if not isinstance(text, str):
        raise UserError(f"time {text!r} is not an ISO 8601 string such as '2026-11-26T08:00:00Z'")
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise UserError(
            f"cannot read time {text!r}: expected ISO 8601 with a zone, e.g. '2026-11-26T08:00:00Z'"
        ) from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise UserError(f"time {text!r} has no time zone: add 'Z' for UTC or an offset like '+01:00'")
    try:
        return dt.timestamp()
    except (ValueError, OverflowError):
        raise UserError(f"time {text!r} is outside the years 1..9999") from None


def format_time(epoch_s: float) -> str:
    """Epoch seconds -> '2026-11-26T08:00:00Z' (sub-second part only when there is one)."""
    if epoch_s is None or not math.isfinite(epoch_s):
        return "unknown"
    try:
        dt = datetime.fromtimestamp(epoch_s, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):  # beyond the years 1..9999
        return f"{epoch_s:.6g} s from 1970-01-01T00:00:00Z (outside the years 1..9999)"
    if dt.microsecond:
        return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time_or_offset(text: str, t0: float | None) -> float:
    """An ISO 8601 time, or a duration after t0 ('72h', '+3d'). Returns epoch seconds, or the
    offset itself when t0 is None (a relative calculation)."""
    s = text.strip()
    offset_text = s[1:] if s.startswith("+") else s
    if re.match(rf"^{_NUMBER}\s*[a-z]*$", offset_text) and not re.match(r"^\d{4}-\d{2}", s):
        seconds = parse_duration_s(offset_text)
        return seconds if t0 is None else t0 + seconds
    if t0 is None and re.match(r"^\d{4}-\d{2}", s):
        raise UserError(f"cannot read time {text!r} as a duration: a time needs a start time to refer to")
    return parse_time(s)
