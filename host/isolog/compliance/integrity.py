"""Data integrity: what the records do not cover, and what the sensors said about themselves.

Verdict (isolog's rule, so that no verdict silently ignores missing data):
- fail: records are missing (a gap in seq, or the board says it dropped samples: data_dropped):
  the board measured something that is not in the file;
- warn: time without records (power off), sparse sampling, clock not valid or stepping back,
  reboots, sensor faults (temp_fault, gm_silent), over-range readings, low battery or storage,
  unknown flags, records that cannot be placed in time;
- pass: none of these.
Each problem is listed with where it happened; the other rules mention what they could not use.
"""

from __future__ import annotations

import math

import numpy as np

from isolog.compliance.model import FAIL, PASS, WARN, RuleResult, capped
from isolog.compliance.timebase import GAP_FRACTION, SPARSE_FACTOR, Timebase
from isolog.compliance.records import Records
from isolog.shipment import Shipment
from isolog.units import format_duration, format_time

_SRC = ("isolog data-integrity rule; 21 CFR Part 11-style completeness of electronic records "
        "(domain.md section 4: reports of cold-chain loggers)")


def _at(rec: Records, tb: Timebase, i: int) -> str:
    t = tb.t[i]
    return format_time(float(t)) if math.isfinite(t) else f"seq {int(rec.seq[i])}"


def _runs(mask: np.ndarray):
    """(start, end) inclusive index pairs of the runs of True in mask."""
    if not mask.any():
        return []
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def _periods(rec: Records, tb: Timebase, mask: np.ndarray) -> dict:
    runs = _runs(mask)
    items = []
    for s, e in runs[:50]:
        items.append({
            "from": _at(rec, tb, s),
            "to": _at(rec, tb, e),
            "seq": [int(rec.seq[s]), int(rec.seq[e])],
            "records": e - s + 1,
            "duration_s": float(rec.interval_s[s:e + 1].sum()),
        })
    return {"count": len(runs), "records": int(mask.sum()),
            "duration_s": float(rec.interval_s[mask].sum()), "items": items[:20]}


def analyse(rec: Records, ship: Shipment, tb: Timebase) -> tuple[list[RuleResult], dict]:
    fails: list[str] = []
    warns: list[str] = []
    ev: dict = {"records": len(rec), "first_seq": int(rec.seq[0]), "last_seq": int(rec.seq[-1]),
                "configured_interval_s": ship.interval_s}

    # Missing records.
    seq_gap_idx = np.flatnonzero(tb.seq_missing_before > 0)
    n_missing = int(tb.seq_missing_before.sum())
    ev["seq_gaps"] = capped([{"after_seq": int(rec.seq[i - 1]), "before_seq": int(rec.seq[i]),
                              "missing": int(tb.seq_missing_before[i]), "at": _at(rec, tb, i)}
                             for i in seq_gap_idx[:50]])
    ev["seq_gaps"]["count"] = int(seq_gap_idx.size)
    if n_missing:
        fails.append(f"{n_missing} record(s) missing in {seq_gap_idx.size} seq gap(s)")
    dropped = rec.has("data_dropped")
    ev["data_dropped"] = _periods(rec, tb, dropped)
    if dropped.any():
        fails.append(f"board dropped samples (flash full) before {int(dropped.sum())} record(s)")

    # Time not covered by records.
    gap_idx = np.flatnonzero(tb.gap_before > 0)
    uncovered = float(tb.gap_before.sum())
    ev["time_gaps"] = capped([{"from": format_time(float(tb.t[i - 1])), "to": format_time(float(tb.t[i] - rec.interval_s[i])),
                               "duration_s": float(tb.gap_before[i]), "before_seq": int(rec.seq[i])}
                              for i in gap_idx[:50]])
    ev["time_gaps"]["count"] = int(gap_idx.size)
    ev["uncovered_s"] = uncovered
    if gap_idx.size:
        warns.append(f"{gap_idx.size} time gap(s) without records, {format_duration(uncovered)} in total "
                     f"(> {GAP_FRACTION:g} x the configured interval)")
    sparse = tb.sparse
    ev["sparse_records"] = _periods(rec, tb, sparse)
    if sparse.any():
        warns.append(f"{int(sparse.sum())} record(s) cover more than {SPARSE_FACTOR:g} configured intervals")

    # Clock.
    null_time = ~np.isfinite(rec.time_s)
    ev["time_null"] = {"records": int(null_time.sum()), "placed_from_uptime": int(tb.placed.sum()),
                       "unplaced": int(tb.unplaced.sum())}
    if null_time.any():
        msg = f"{int(null_time.sum())} record(s) without a valid clock"
        if tb.placed.any():
            msg += f" ({int(tb.placed.sum())} placed from uptime within their boot)"
        if tb.unplaced.any():
            msg += f"; {int(tb.unplaced.sum())} cannot be placed in time and are left out of time-based analyses"
        warns.append(msg)
    ev["unplaced_records"] = _periods(rec, tb, tb.unplaced)
    boots = np.flatnonzero(np.diff(rec.boot) != 0) + 1
    ev["reboots"] = capped([{"seq": int(rec.seq[i]), "boot": int(rec.boot[i]), "at": _at(rec, tb, i)}
                            for i in boots[:50]])
    ev["reboots"]["count"] = int(boots.size)
    if boots.size:
        warns.append(f"{boots.size} reboot(s) of the logger")
    back_idx = np.flatnonzero(tb.backwards)
    ev["clock_steps_back"] = capped([{"seq": int(rec.seq[i]), "by_s": float(tb.t[i - 1] - tb.t[i])}
                                     for i in back_idx[:50]])
    ev["clock_steps_back"]["count"] = int(back_idx.size)
    if back_idx.size:
        warns.append(f"the clock stepped back {back_idx.size} time(s)")

    # Sensors and board.
    for flag, text in (("temp_fault", "temperature sensor fault"),
                       ("gm_silent", "radiation sensor silent (GM tube fault)"),
                       ("over_range", "dose rate over range (reading is a lower bound)"),
                       ("low_battery", "low battery"),
                       ("storage_low", "storage low")):
        mask = rec.has(flag)
        if flag == "temp_fault":
            mask = mask | ~np.isfinite(rec.temperature_c)
        ev[flag] = _periods(rec, tb, mask)
        if mask.any():
            warns.append(f"{text}: {int(mask.sum())} record(s), {format_duration(ev[flag]['duration_s'])}")
    if rec.unknown_flags:
        ev["unknown_flags"] = dict(rec.unknown_flags)
        warns.append("unknown flag(s): " + ", ".join(sorted(rec.unknown_flags)))

    ev["problems"] = fails + warns
    if fails:
        verdict = FAIL
    elif warns:
        verdict = WARN
    else:
        verdict = PASS
    detail = "; ".join(fails + warns) if fails or warns else (
        f"{len(rec)} records, seq {int(rec.seq[0])}..{int(rec.seq[-1])}, no gaps, clock valid, sensors healthy")
    known = tb.known
    summary = {
        "records": len(rec),
        "first_time": format_time(float(np.nanmin(tb.t))) if known.any() else None,
        "last_time": format_time(float(np.nanmax(tb.t))) if known.any() else None,
        "uncovered_s": uncovered,
        "missing_records": n_missing,
    }
    return [RuleResult("data_integrity", "Data integrity", verdict, detail, _SRC, ev)], summary
