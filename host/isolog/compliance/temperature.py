"""Temperature: statistics, mean kinetic temperature and cold-chain excursion rules.

Every reading stands for the interval it closes (interval_s, measured by the board), so the
statistics are time-weighted and need no wall-clock time: records whose time is unknown still
count. A record without a reading (temp_fault, null) neither adds excursion time nor resets a
single-event timer; its duration is reported, and a pass over incomplete data becomes a warn.

Excursion rules as cold-chain loggers define them (domain.md section 4 [V]): a rule is a threshold,
a direction, an allowed time and a type. Single event: the threshold is exceeded without
interruption for longer than the allowed time (the timer resets when back in range). Cumulative:
all time beyond the threshold adds up. A reading exactly at the threshold is in range.
"""

from __future__ import annotations

import math

import numpy as np

from isolog.compliance.model import FAIL, NOT_APPLICABLE, PASS, UNKNOWN, WARN, RuleResult, capped
from isolog.compliance.records import Records
from isolog.shipment import Shipment, TemperatureRule
from isolog.units import format_duration, format_time

# USP <1160> / <1079.2>: activation energy 83.144 kJ/mol, gas constant 8.3144 J/(mol K), so
# dH/R = 10,000 K (domain.md section 4 [V]).
MKT_DELTA_H_OVER_R_K = 10_000.0
KELVIN_OFFSET = 273.15  # 0 degC in K (SI definition)

_SRC_MKT = "USP <1160>: mean kinetic temperature, dH/R = 10,000 K, time-weighted"
_SRC_RULE = ("shipment temperature rule (product labelling); excursion semantics of cold-chain "
             "loggers (WHO PQS E006 type single/cumulative alarms)")


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


def excursions(temps_c: np.ndarray, weights_s: np.ndarray, rule: TemperatureRule):
    """Runs of readings beyond the rule's threshold among the readings given (unknown readings
    already removed). Returns (starts, ends, durations_s) as index arrays into the inputs."""
    if rule.direction == "above":
        beyond = temps_c > rule.threshold_c
    else:
        beyond = temps_c < rule.threshold_c
    if not beyond.any():
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    b = beyond.astype(np.int8)
    edges = np.diff(np.concatenate(([0], b, [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1  # inclusive
    csum = np.concatenate(([0.0], np.cumsum(weights_s)))
    durations = csum[ends + 1] - csum[starts]
    return starts, ends, durations


def analyse(rec: Records, ship: Shipment, t: np.ndarray, uncovered_s: float) -> tuple[list[RuleResult], dict, dict]:
    """Rules (one per configured excursion rule), summary figures, and the excursion periods for
    the report's plot."""
    temp = rec.temperature_c
    ok = np.isfinite(temp)
    n_missing = int((~ok).sum())
    missing_s = float(rec.interval_s[~ok].sum())
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
        missing_notes.append(f"{format_duration(uncovered_s)} without records")

    if not ok.any():
        rules = [RuleResult(f"temperature.{r.name}", f"Temperature rule '{r.name}'", UNKNOWN,
                            "no temperature reading in the records", _SRC_RULE, {"rule": r.describe()})
                 for r in ship.temperature_rules]
        if not rules:
            rules = [RuleResult("temperature", "Temperature", UNKNOWN, "no temperature reading in the records",
                                _SRC_RULE, {})]
        return rules, summary, plot

    tv = temp[ok]
    wv = rec.interval_s[ok]
    i_min = int(np.argmin(tv))
    i_max = int(np.argmax(tv))
    idx_ok = np.flatnonzero(ok)
    summary.update({
        "temperature_min_c": float(tv[i_min]),
        "temperature_max_c": float(tv[i_max]),
        "temperature_mean_c": float(np.dot(tv, wv) / wv.sum()),
        "mkt_c": mean_kinetic_temperature(tv, wv),
    })

    def where(k: int) -> str:
        i = idx_ok[k]
        return format_time(float(t[i])) if math.isfinite(t[i]) else f"seq {int(rec.seq[i])} (time unknown)"

    summary["temperature_min_at"] = where(i_min)
    summary["temperature_max_at"] = where(i_max)
    board_alarms = int(rec.has("temp_alarm").sum())

    rules: list[RuleResult] = []
    if not ship.temperature_rules:
        rules.append(RuleResult(
            "temperature", "Temperature", NOT_APPLICABLE,
            f"no temperature rules configured; min {summary['temperature_min_c']:.2f} °C, "
            f"max {summary['temperature_max_c']:.2f} °C, MKT {summary['mkt_c']:.2f} °C",
            _SRC_MKT, {"mkt_c": summary["mkt_c"]},
        ))
        return rules, summary, plot

    t_ok = t[ok]
    for rule in ship.temperature_rules:
        starts, ends, durations = excursions(tv, wv, rule)
        total = float(durations.sum())
        longest = float(durations.max()) if durations.size else 0.0
        if rule.type == "single":
            violating = durations > rule.allowed_s
            decided_by = longest
        else:
            violating = np.full(durations.shape, total > rule.allowed_s)
            decided_by = total
        verdict = FAIL if decided_by > rule.allowed_s else PASS
        if verdict == PASS and missing_notes:
            verdict = WARN
        periods = []
        for s, e, d, v in zip(starts, ends, durations, violating):
            t0 = t_ok[s] - wv[s]
            t1 = t_ok[e]
            periods.append({
                "start": format_time(float(t0)) if math.isfinite(t0) else None,
                "end": format_time(float(t1)) if math.isfinite(t1) else None,
                "start_seq": int(rec.seq[idx_ok[s]]),
                "end_seq": int(rec.seq[idx_ok[e]]),
                "duration_s": float(d),
                "extreme_c": float(tv[s:e + 1].max() if rule.direction == "above" else tv[s:e + 1].min()),
                "violation": bool(v),
            })
            plot["excursions"].append((float(t0), float(t1), rule.name, bool(v)))
        kind = "longest excursion" if rule.type == "single" else "time beyond the limit"
        sign = ">" if rule.direction == "above" else "<"
        detail = (f"{sign} {rule.threshold_c:g} °C: {kind} {format_duration(decided_by)}, allowed "
                  f"{format_duration(rule.allowed_s)} ({rule.type}); {len(periods)} excursion(s)")
        if missing_notes:
            detail += "; " + "; ".join(missing_notes)
        rules.append(RuleResult(
            f"temperature.{rule.name}", f"Temperature rule '{rule.name}'", verdict, detail, _SRC_RULE,
            {
                "rule": rule.describe(),
                "threshold_c": rule.threshold_c,
                "direction": rule.direction,
                "type": rule.type,
                "allowed_s": rule.allowed_s,
                "time_beyond_s": total,
                "longest_excursion_s": longest,
                "excursions": capped(periods),
                "records_without_temperature": n_missing,
                "time_without_temperature_s": missing_s,
                "board_temp_alarm_records": board_alarms,
            },
        ))
    return rules, summary, plot
