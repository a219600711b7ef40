"""The trip window: the part of a shipment's records the rules judge (issue 14).

A board logs from its configuration at the dispatch desk until it is read out on return. Only the
trip counts: from the dispatch (after an optional start delay: packing, waiting for the courier)
to the delivery (the product taken out at the hospital). What the board logged before and after
(the empty return trip) is summarised apart and judged by no rule.

Data integrity is not windowed: every record of the shipment must be there and verified, in the
window or not (a gap or unverified data never gives compliant, wherever it is).

The delivery can also be found in the data: the dose rate drops to background while the board
still logs (the product was taken out of the container). `detect_unloading` finds that moment; it
is only offered to the user, who confirms it (`isolog deliver ID --detected`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from isolog.compliance.records import Records
from isolog.compliance.timebase import Timebase
from isolog.units import format_duration, format_time

# Detection of the unloading. Readings are net of the configured background (firmware/counting.py
# subtracts it), so an empty container reads about 0. Engineering choices of isolog, not from a
# standard:
# - a reading counts as background when it is at most BACKGROUND_FACTOR x the configured
#   background, and at most BACKGROUND_FLOOR_USV_H whatever is configured: at one-minute
#   intervals and the calibrations of docs/shipment.md (~150 cpm per µSv/h) a Poisson count at
#   background (~15 per minute) reaches the floor (~60 per minute) with negligible probability;
# - the trip before must read at least LOADED_FACTOR x that level (else a drop cannot be told
#   from the product's own decay: Lu-177 loses a factor 10 only after 22 days);
# - the quiet run must last QUIET_MIN_S and hold QUIET_MIN_RECORDS, up to the last record.
BACKGROUND_FACTOR = 3.0
BACKGROUND_FLOOR_USV_H = 0.3
LOADED_FACTOR = 10.0
QUIET_MIN_S = 1800.0
QUIET_MIN_RECORDS = 3


@dataclass(frozen=True)
class TripWindow:
    """[start_s, end_s] in epoch s on the records' timeline; None: open on that side."""

    start_s: float | None = None
    end_s: float | None = None
    how: str = ""  # how it was set, in words (dispatch after a start delay, delivery note, ...)

    @property
    def open(self) -> bool:
        return self.start_s is None and self.end_s is None


def make(tb: Timebase, rec: Records, start_delay_s: float, end_s: float | None, end_how: str = "") -> TripWindow:
    """The window of a shipment whose trip starts start_delay_s after its configuration (on the
    records' own timeline: the first record covers the interval since the configuration, so the
    board's clock and the desk's need not agree) and ends at end_s (None: open)."""
    start = None
    how = []
    if start_delay_s > 0:
        known = np.nonzero(tb.known)[0]
        if known.size:
            i = int(known[0])
            configured = float(tb.t[i] - rec.interval_s[: i + 1].sum())
            start = configured + start_delay_s
            how.append(f"dispatched {format_time(start)} ({format_duration(start_delay_s)} after configuration)")
    if end_s is not None:
        how.append(f"delivered {format_time(end_s)}" + (f" ({end_how})" if end_how else ""))
    return TripWindow(start, end_s, "; ".join(how))


def bounds(tb: Timebase, window: TripWindow) -> tuple[int, int]:
    """Indices [i0, i1) of the records inside the window: from the first record placed at or after
    its start to the last placed at or before its end (records without a time between them are
    inside). A record's time is the end of the interval it covers."""
    n = len(tb.t)
    known = tb.known
    i0, i1 = 0, n
    if window.start_s is not None:
        after = np.nonzero(known & (tb.t > window.start_s))[0]
        i0 = int(after[0]) if after.size else n
    if window.end_s is not None:
        upto = np.nonzero(known & (tb.t <= window.end_s))[0]
        i1 = int(upto[-1]) + 1 if upto.size else 0
    return i0, max(i0, i1)


def take(rec: Records, i0: int, i1: int) -> Records:
    """The records [i0, i1) as Records of their own."""
    return Records(
        device=rec.device,
        seq=rec.seq[i0:i1],
        boot=rec.boot[i0:i1],
        time_s=rec.time_s[i0:i1],
        uptime_s=rec.uptime_s[i0:i1],
        counts=rec.counts[i0:i1],
        interval_s=rec.interval_s[i0:i1],
        interval_counts=rec.interval_counts[i0:i1],
        dose_rate_usv_h=rec.dose_rate_usv_h[i0:i1],
        temperature_c=rec.temperature_c[i0:i1],
        flags=rec.flags[i0:i1],
        unknown_flags=rec.unknown_flags,
        source=rec.source,
        sha256=rec.sha256,
    )


def take_timebase(tb: Timebase, i0: int, i1: int) -> Timebase:
    """The timebase of records [i0, i1): what lies before the first is outside the window."""
    gap = tb.gap_before[i0:i1].copy()
    missing = tb.seq_missing_before[i0:i1].copy()
    if i0 > 0 and gap.size:
        gap[0] = 0.0
        missing[0] = 0
    return Timebase(
        t=tb.t[i0:i1],
        placed=tb.placed[i0:i1],
        unplaced=tb.unplaced[i0:i1],
        segment=tb.segment[i0:i1],
        gap_before=gap,
        sparse=tb.sparse[i0:i1],
        backwards=tb.backwards[i0:i1],
        seq_missing_before=missing,
    )


def outside(rec: Records, tb: Timebase, i0: int, i1: int) -> dict[str, Any]:
    """The records before and after the window, summarised (shown apart, judged by no rule)."""
    return {"before": _part(rec, tb, 0, i0), "after": _part(rec, tb, i1, len(rec))}


def _part(rec: Records, tb: Timebase, a: int, b: int) -> dict[str, Any] | None:
    if b <= a:
        return None
    t = tb.t[a:b]
    temp = rec.temperature_c[a:b]
    dose = rec.dose_rate_usv_h[a:b]
    kt, kd, kk = np.isfinite(temp), np.isfinite(dose), np.isfinite(t)
    first = float(t[kk][0]) if kk.any() else None
    last = float(t[kk][-1]) if kk.any() else None
    return {
        "records": int(b - a),
        "first_seq": int(rec.seq[a]),
        "last_seq": int(rec.seq[b - 1]),
        "first_time": format_time(first) if first is not None else None,
        "last_time": format_time(last) if last is not None else None,
        "duration": format_duration(last - first) if first is not None and last is not None else None,
        "temperature_min_c": float(temp[kt].min()) if kt.any() else None,
        "temperature_max_c": float(temp[kt].max()) if kt.any() else None,
        "dose_rate_max_usv_h": float(dose[kd].max()) if kd.any() else None,
    }


def describe_outside(parts: dict[str, Any]) -> list[str]:
    """One line per part outside the window, for `isolog check` and the certificate."""
    out = []
    for key, label in (("before", "before the trip (packing)"), ("after", "after the delivery")):
        p = parts.get(key)
        if not p:
            continue
        temps = (
            f", {p['temperature_min_c']:.1f}..{p['temperature_max_c']:.1f} °C"
            if p["temperature_min_c"] is not None
            else ""
        )
        dose = f", dose rate up to {p['dose_rate_max_usv_h']:.3g} µSv/h" if p["dose_rate_max_usv_h"] is not None else ""
        out.append(
            f"{label}: {p['records']} records, {p['first_time']} .. {p['last_time']} ({p['duration']}){temps}{dose}"
        )
    return out


def detect_unloading(rec: Records, tb: Timebase, background_usv_h: float) -> float | None:
    """The time of the last record with the product in the container, when the dose rate then fell
    to background for good while the board went on logging; None when the data do not show it."""
    level = max(BACKGROUND_FACTOR * background_usv_h, BACKGROUND_FLOOR_USV_H)
    dose = rec.dose_rate_usv_h
    ok = np.isfinite(dose) & tb.known
    idx = np.nonzero(ok)[0]
    if idx.size < QUIET_MIN_RECORDS + 1:
        return None
    loaded = np.nonzero(dose[idx] > level)[0]
    if loaded.size == 0:
        return None
    j = int(idx[loaded[-1]])  # the last reading above background
    quiet = idx[idx > j]
    if quiet.size < QUIET_MIN_RECORDS or float(tb.t[quiet[-1]] - tb.t[j]) < QUIET_MIN_S:
        return None
    before = dose[idx[idx <= j]]
    if float(np.median(before)) < LOADED_FACTOR * level:
        return None
    return float(tb.t[j])
