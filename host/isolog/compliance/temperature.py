"""Temperature: statistics, mean kinetic temperature and cold-chain excursion rules.

Every reading stands for the interval it closes (interval_s, measured by the board), so the
statistics are time-weighted and need no wall-clock time: records whose time is unknown still
count. A record without a reading (temp_fault, null) stands for time of unknown temperature, and
so does time without records (a gap between records, a reboot; of unknown length when the clock
cannot place the records on one side). An excursion the readings show ends at unknown time.
Unknown time counts against every rule as possibly beyond the threshold: a rule the readings
break fails; a rule that only the unknown time could break (alone or joined to adjacent
excursions: contiguous time for a single rule, the sum for a cumulative one) is unknown, with
the gap named; otherwise a pass over incomplete data is a warn.

Excursion rules as cold-chain loggers define them (docs/references.md#cold-chain-loggers): a rule is
a threshold, a direction, an allowed time and a type. Single event: the threshold is exceeded
without interruption for longer than the allowed time (the timer resets when back in range).
Cumulative: all time beyond the threshold adds up. A reading exactly at the threshold is in range.
"""

from __future__ import annotations

import math

import numpy as np

from isolog.compliance.model import FAIL, NOT_APPLICABLE, PASS, UNKNOWN, WARN, RuleResult, capped
from isolog.compliance.records import Records
from isolog.compliance.timebase import Timebase
from isolog.shipment import Shipment
from isolog.units import format_duration, format_time

# USP <1160> / <1079.2>: activation energy 83.144 kJ/mol, gas constant 8.3144 J/(mol K), so
# dH/R = 10,000 K (docs/references.md#usp-1160 [V]).
MKT_DELTA_H_OVER_R_K = 10_000.0
KELVIN_OFFSET = 273.15  # 0 degC in K (SI definition)

_SRC_MKT = "USP <1160>: mean kinetic temperature, dH/R = 10,000 K, time-weighted"
_SRC_RULE = (
    "shipment temperature rule (product labelling); excursion semantics of cold-chain "
    "loggers (WHO PQS E006 type single/cumulative alarms)"
)


def mean_kinetic_temperature(temps_c, weights=None, delta_h_over_r_k: float = MKT_DELTA_H_OVER_R_K) -> float:
    """T_MKT = (dH/R) / -ln( sum w exp(-dH/(R T)) / sum w ), in degC; weights default to equal.
    Computed with the log-sum-exp shift, so very cold or hot series do not underflow."""
    t = np.asarray(temps_c, dtype=np.float64)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=np.float64)
    if t.size == 0 or not np.isfinite(t).all() or not (w >= 0).all() or w.sum() <= 0:
        raise ValueError("MKT needs finite temperatures and non-negative weights with a positive sum")
    x = -delta_h_over_r_k / (t + KELVIN_OFFSET)
    m = x.max()
    log_mean = m + math.log(float(np.dot(w, np.exp(x - m))) / float(w.sum()))
    return delta_h_over_r_k / -log_mean - KELVIN_OFFSET


def unknown_time_before(rec: Records, tb: Timebase) -> np.ndarray:
    """Seconds of time no record covers before each record; np.inf where the length is unknown: a
    reboot into (or out of) a boot whose records cannot be placed in time, so the time the logger
    was off is not known."""
    gap = tb.gap_before.astype(np.float64, copy=True)
    if len(rec) > 1:
        new_boot = rec.boot[1:] != rec.boot[:-1]
        known = tb.known
        gap[1:][new_boot & ~(known[1:] & known[:-1])] = np.inf
    return gap


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) inclusive index arrays of the runs of True in mask."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


def _run_sums(dur: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sum of dur over each run; inf when a run holds an infinite piece (cumsum alone would give
    inf - inf = nan for the runs after it)."""
    inf = np.isinf(dur)
    c = np.concatenate(([0.0], np.cumsum(np.where(inf, 0.0, dur))))
    ci = np.concatenate(([0], np.cumsum(inf)))
    sums = c[ends + 1] - c[starts]
    return np.where(ci[ends + 1] - ci[starts] > 0, np.inf, sums)


class _Pieces:
    """The shipment as consecutive pieces of time in record order: before each record the time no
    record covers (if any), then the record's own interval. Each piece is beyond the rule's
    threshold (a reading beyond it), unknown (no record, or a record without a reading), or in range."""

    def __init__(
        self, rec: Records, gap_s: np.ndarray, beyond: np.ndarray, no_reading: np.ndarray, tail_s: float = 0.0
    ):
        n = len(rec)
        dur = np.empty(2 * n + 1)
        dur[0:-1:2] = gap_s
        dur[1::2] = rec.interval_s
        dur[-1] = tail_s  # after the last record: unknown when records are known missing there
        is_gap = np.zeros(2 * n + 1, dtype=bool)
        is_gap[0::2] = True
        keep = ~is_gap | (dur > 0)  # a zero-length gap is no piece: it neither breaks nor joins runs
        self.dur = dur[keep]
        self.is_gap = is_gap[keep]
        self.has_tail = tail_s > 0
        self.record = np.minimum(np.arange(2 * n + 1) // 2, n - 1)[keep]
        b = np.zeros(2 * n + 1, dtype=bool)
        b[1::2] = beyond
        u = is_gap.copy()
        u[1::2] = no_reading
        self.beyond = b[keep]
        self.unknown = u[keep]


def excursions(pieces: _Pieces):
    """Runs of readings beyond the threshold that the data shows without interruption: a piece of
    unknown time ends a run (the temperature may have been back in range there). Returns
    (first_record, last_record, durations_s)."""
    starts, ends = _runs(pieces.beyond)
    return pieces.record[starts], pieces.record[ends], _run_sums(pieces.dur, starts, ends)


def possible_excursions(pieces: _Pieces):
    """Runs that may have been beyond the threshold: readings beyond it joined with the unknown
    time between and around them. Returns (starts, ends) piece indices and durations_s."""
    starts, ends = _runs(pieces.beyond | pieces.unknown)
    return starts, ends, _run_sums(pieces.dur, starts, ends)


def _describe_unknown(rec: Records, tb: Timebase, pieces: _Pieces, gap_s: np.ndarray, lo: int, hi: int) -> str:
    """The unknown time among pieces lo..hi (inclusive), named: gaps with where they start and how
    long they are, and records without a reading."""
    sel = np.arange(lo, hi + 1)
    unk = sel[pieces.unknown[sel]]
    gaps = unk[pieces.is_gap[unk]]
    noread = unk[~pieces.is_gap[unk]]
    parts = []
    if gaps.size:
        shown = []
        for k in gaps[:3]:
            i = int(pieces.record[k])
            if pieces.has_tail and k == len(pieces.dur) - 1:
                shown.append(f"records missing after seq {int(rec.seq[i])} (the end of the shipment)")
            elif math.isinf(gap_s[i]):
                what = "records missing at the start of the shipment" if i == 0 else "reboot, clock not valid"
                shown.append(f"a time of unknown length before seq {int(rec.seq[i])} ({what})")
            else:
                t0 = tb.t[i] - rec.interval_s[i] - gap_s[i]
                where = format_time(float(t0)) if math.isfinite(t0) else f"before seq {int(rec.seq[i])}"
                shown.append(f"{format_duration(float(gap_s[i]))} from {where}")
        more = f" and {gaps.size - 3} more" if gaps.size > 3 else ""
        parts.append(f"{gaps.size} gap(s) without records ({'; '.join(shown)}{more})")
    if noread.size:
        parts.append(
            f"{noread.size} record(s) without a temperature ({format_duration(float(pieces.dur[noread].sum()))})"
        )
    return ", ".join(parts)


def analyse(
    rec: Records, ship: Shipment, tb: Timebase, missing_at: tuple[bool, bool] = (False, False)
) -> tuple[list[RuleResult], dict, dict]:
    """Rules (one per configured excursion rule), summary figures, and the excursion periods for
    the report's plot. Time without records and records without a reading count as possibly beyond
    every threshold (docs/shipment.md): a rule the known readings do not break, but that the
    unknown time could break (alone or joined to an adjacent excursion), is unknown.
    `missing_at`: records are known to be missing before the first (start) / after the last
    (end) record: time of unknown length there."""
    t = tb.t
    temp = rec.temperature_c
    ok = np.isfinite(temp)
    n_missing = int((~ok).sum())
    missing_s = float(rec.interval_s[~ok].sum())
    gap_s = unknown_time_before(rec, tb)
    if missing_at[0]:
        gap_s[0] = np.inf
    tail_s = np.inf if missing_at[1] else 0.0
    uncovered_s = float(gap_s.sum()) + tail_s
    summary = {
        "temperature_min_c": None,
        "temperature_max_c": None,
        "temperature_mean_c": None,
        "mkt_c": None,
        "temperature_readings": int(ok.sum()),
        "temperature_missing_s": missing_s,
    }
    plot: dict = {"excursions": []}
    missing_notes = []
    if n_missing:
        missing_notes.append(f"{n_missing} record(s) without a temperature ({format_duration(missing_s)})")
    if uncovered_s > 0:
        missing_notes.append(
            ("time of unknown length" if math.isinf(uncovered_s) else format_duration(uncovered_s)) + " without records"
        )

    if not ok.any():
        rules = [
            RuleResult(
                f"temperature.{r.name}",
                f"Temperature rule '{r.name}'",
                UNKNOWN,
                "no temperature reading in the records",
                _SRC_RULE,
                {"rule": r.describe()},
            )
            for r in ship.temperature_rules
        ]
        if not rules:
            rules = [
                RuleResult(
                    "temperature", "Temperature", UNKNOWN, "no temperature reading in the records", _SRC_RULE, {}
                )
            ]
        return rules, summary, plot

    tv = temp[ok]
    wv = rec.interval_s[ok]
    i_min = int(np.argmin(tv))
    i_max = int(np.argmax(tv))
    idx_ok = np.flatnonzero(ok)
    summary.update(
        {
            "temperature_min_c": float(tv[i_min]),
            "temperature_max_c": float(tv[i_max]),
            "temperature_mean_c": float(np.dot(tv, wv) / wv.sum()),
            "mkt_c": mean_kinetic_temperature(tv, wv),
        }
    )

    def where(i: int) -> str:
        return format_time(float(t[i])) if math.isfinite(t[i]) else f"seq {int(rec.seq[i])} (time unknown)"

    summary["temperature_min_at"] = where(int(idx_ok[i_min]))
    summary["temperature_max_at"] = where(int(idx_ok[i_max]))
    board_alarms = int(rec.has("temp_alarm").sum())

    rules: list[RuleResult] = []
    if not ship.temperature_rules:
        rules.append(
            RuleResult(
                "temperature",
                "Temperature",
                NOT_APPLICABLE,
                f"no temperature rules configured; min {summary['temperature_min_c']:.2f} °C, "
                f"max {summary['temperature_max_c']:.2f} °C, MKT {summary['mkt_c']:.2f} °C",
                _SRC_MKT,
                {"mkt_c": summary["mkt_c"]},
            )
        )
        return rules, summary, plot

    for rule in ship.temperature_rules:
        with np.errstate(invalid="ignore"):
            beyond = (temp > rule.threshold_c) if rule.direction == "above" else (temp < rule.threshold_c)
        beyond &= ok
        pieces = _Pieces(rec, gap_s, beyond, ~ok, tail_s)
        first, last, durations = excursions(pieces)
        p_starts, p_ends, p_durations = possible_excursions(pieces)
        total = float(durations.sum())
        longest = float(durations.max()) if durations.size else 0.0
        unknown_total = float(pieces.dur[pieces.unknown].sum())
        if rule.type == "single":
            violating = durations > rule.allowed_s
            decided_by = longest
            possible = float(p_durations.max()) if p_durations.size else 0.0
        else:
            violating = np.full(durations.shape, total > rule.allowed_s)
            decided_by = total
            possible = total + unknown_total
        unknown_note = ""
        if decided_by > rule.allowed_s:
            verdict = FAIL
        elif possible > rule.allowed_s:
            verdict = UNKNOWN
            if rule.type == "single":
                k = int(np.argmax(p_durations))
                named = _describe_unknown(rec, tb, pieces, gap_s, int(p_starts[k]), int(p_ends[k]))
                unknown_note = (
                    f"cannot be shown: up to {_dur(possible)} may have been beyond the threshold "
                    f"without interruption, joining {named}"
                )
            else:
                named = _describe_unknown(rec, tb, pieces, gap_s, 0, len(pieces.dur) - 1)
                unknown_note = (
                    f"cannot be shown: up to {_dur(possible)} may have been beyond the threshold "
                    f"in all, counting {named}"
                )
        else:
            verdict = WARN if missing_notes else PASS
        periods = []
        for s, e, d, v in zip(first, last, durations, violating):
            t0 = t[s] - rec.interval_s[s]
            t1 = t[e]
            periods.append(
                {
                    "start": format_time(float(t0)) if math.isfinite(t0) else None,
                    "end": format_time(float(t1)) if math.isfinite(t1) else None,
                    "start_seq": int(rec.seq[s]),
                    "end_seq": int(rec.seq[e]),
                    "duration_s": float(d),
                    "extreme_c": float(
                        np.nanmax(temp[s : e + 1]) if rule.direction == "above" else np.nanmin(temp[s : e + 1])
                    ),
                    "violation": bool(v),
                }
            )
            plot["excursions"].append((float(t0), float(t1), rule.name, bool(v)))
        kind = "longest excursion" if rule.type == "single" else "time beyond the limit"
        sign = ">" if rule.direction == "above" else "<"
        detail = (
            f"{sign} {rule.threshold_c:g} °C: {kind} {format_duration(decided_by)}, allowed "
            f"{format_duration(rule.allowed_s)} ({rule.type}); {len(periods)} excursion(s)"
        )
        if unknown_note:
            detail += "; " + unknown_note
        elif missing_notes:
            detail += "; " + "; ".join(missing_notes)
        rules.append(
            RuleResult(
                f"temperature.{rule.name}",
                f"Temperature rule '{rule.name}'",
                verdict,
                detail,
                _SRC_RULE,
                {
                    "rule": rule.describe(),
                    "threshold_c": rule.threshold_c,
                    "direction": rule.direction,
                    "type": rule.type,
                    "allowed_s": rule.allowed_s,
                    "time_beyond_s": total,
                    "longest_excursion_s": longest,
                    # Upper bound with every unknown piece of time counted as beyond (None: unbounded).
                    "possible_beyond_s": possible if math.isfinite(possible) else None,
                    "unknown_s": unknown_total if math.isfinite(unknown_total) else None,
                    "excursions": capped(periods),
                    "records_without_temperature": n_missing,
                    "time_without_temperature_s": missing_s,
                    "board_temp_alarm_records": board_alarms,
                },
            )
        )
    return rules, summary, plot


def _dur(s: float) -> str:
    return "an unknown length of time" if math.isinf(s) else format_duration(s)
