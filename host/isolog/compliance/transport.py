"""Transport rules of IAEA SSR-6 (2018 edition): transport index, package category, surface limits.

The same rules appear in ADR/RID/IMDG/ICAO-TI (chapter 2.7 / 5.1.5.3) and in the US in 49 CFR 172
and 173 and 10 CFR 71 (domain.md section 2). Paragraph numbers of SSR-6 are not cited here: they
could not be checked against the text, and a wrong paragraph is worse than none.

The logger measures at one point; the configuration says how a reading relates to the package:
surface dose rate = surface_factor x reading, dose rate at 1 m = one_metre_factor x reading. A
factor that is not configured makes the rules that need it "unknown": never a guess.
"""

from __future__ import annotations

import math

import numpy as np

from isolog.compliance.model import FAIL, PASS, UNKNOWN, WARN, RuleResult
from isolog.records import Records
from isolog.shipment import Shipment
from isolog.units import format_duration, format_time
from isolog_fw import counting  # the board's dead-time model, shared (firmware/counting.py)

_SRC_TI = (
    "IAEA SSR-6 (2018), transport index: maximum dose rate at 1 m from the external surface in "
    "mSv/h x 100, rounded up to the first decimal place; a value <= 0.05 may be taken as zero"
)
_SRC_CAT = (
    "IAEA SSR-6 (2018), categories of packages (I-WHITE, II-YELLOW, III-YELLOW) from TI and "
    "maximum surface dose rate; when they point to different categories the higher one applies"
)
_SRC_SURFACE = (
    "IAEA SSR-6 (2018), maximum dose rate at any point on the external surface of a package: "
    "2 mSv/h, or 10 mSv/h under exclusive use; excepted package: 5 uSv/h"
)

# Limits, all from IAEA SSR-6 (2018) as summarised in domain.md section 2 [V].
SURFACE_LIMIT_MSV_H = 2.0  # package, not under exclusive use
SURFACE_LIMIT_EXCLUSIVE_MSV_H = 10.0  # package under exclusive use
EXCEPTED_SURFACE_LIMIT_MSV_H = 0.005  # excepted package, 5 uSv/h
TI_LIMIT = 10.0  # a package's TI above 10 only under exclusive use
TI_ZERO_AT_OR_BELOW = 0.05  # "a value <= 0.05 may be taken as zero"

# Category table (SSR-6, categories of packages). Index = rank; the higher rank wins.
CATEGORIES = ("I-WHITE", "II-YELLOW", "III-YELLOW", "III-YELLOW (exclusive use)")
_CATEGORY_TI_MAX = (0.0, 1.0, 10.0, math.inf)  # TI upper bound per category (I-WHITE: TI = 0)
_CATEGORY_SURFACE_MAX_MSV_H = (0.005, 0.5, 2.0, 10.0)  # surface upper bound per category

# Float noise tolerance: 0.3 x 100 is 30.000000000000004 in binary floating point, which a naive
# "round up" turns into 30.1. Values are rounded to this many decimals before rounding up.
_ROUND_DECIMALS = 9


def transport_index(max_dose_rate_1m_msv_h: float) -> float:
    """TI from the maximum dose rate at 1 m (mSv/h): x 100, rounded up to one decimal, <= 0.05 -> 0."""
    if not math.isfinite(max_dose_rate_1m_msv_h) or max_dose_rate_1m_msv_h < 0:
        raise ValueError(f"dose rate must be a finite number >= 0, not {max_dose_rate_1m_msv_h!r}")
    raw = round(max_dose_rate_1m_msv_h * 100.0, _ROUND_DECIMALS)
    if raw <= TI_ZERO_AT_OR_BELOW:
        return 0.0
    return math.ceil(round(raw * 10.0, _ROUND_DECIMALS - 1)) / 10.0


def category_rank_from_ti(ti: float) -> int:
    for rank, upper in enumerate(_CATEGORY_TI_MAX):
        if ti <= upper:
            return rank
    return len(CATEGORIES) - 1


def category_rank_from_surface(surface_msv_h: float) -> int | None:
    """Rank of the category the surface dose rate requires; None above 10 mSv/h (not allowed)."""
    s = round(surface_msv_h, _ROUND_DECIMALS)
    for rank, upper in enumerate(_CATEGORY_SURFACE_MAX_MSV_H):
        if s <= upper:
            return rank
    return None


def required_category(ti: float, surface_msv_h: float) -> str | None:
    """The package category for a TI and a maximum surface dose rate (the higher one wins).
    None when the surface dose rate exceeds every category (10 mSv/h)."""
    s_rank = category_rank_from_surface(surface_msv_h)
    if s_rank is None:
        return None
    return CATEGORIES[max(category_rank_from_ti(ti), s_rank)]


def _where(rec: Records, t: np.ndarray, i: int) -> str:
    return format_time(float(t[i])) if math.isfinite(t[i]) else f"seq {int(rec.seq[i])} (time unknown)"


def analyse(rec: Records, ship: Shipment, t: np.ndarray, uncovered_s: float) -> tuple[list[RuleResult], dict]:
    """The three transport rules and summary figures. `t`: record times (NaN when unknown; the
    maximum dose rate needs no time, so such records still count). `uncovered_s`: time without
    records, from the data-integrity analysis."""
    sensor = ship.sensor
    dose = rec.dose_rate_usv_h
    has_reading = np.isfinite(dose)
    over = rec.has("over_range")
    silent = rec.has("gm_silent") | (~has_reading & ~over)
    n_read = int(has_reading.sum())

    # Over-range records: the tube was near saturation, the reading is null. Their dead-time
    # corrected rate, clamped where the board clamps it (firmware/counting.py: m / (1 - 0.5) at the
    # over-range loss), is a lower bound of the true rate for a non-paralyzable tube, and for a
    # paralyzable one (which loses more at the same observed rate). The lower bound grows with the
    # observed rate, so the record with the highest count rate gives the largest bound.
    lower_bound = None
    if over.any():
        idx = np.flatnonzero(over)
        rates = rec.interval_counts[idx] / rec.interval_s[idx]
        k = int(idx[int(np.argmax(rates))])
        rate_cps, _ = counting.true_rate_cps(int(rec.interval_counts[k]), float(rec.interval_s[k]),
                                             sensor.dead_time_us * 1e-6)
        lower_bound = float(counting.dose_rate_usv_h(rate_cps, sensor.calibration_cpm_per_usv_h,
                                                     sensor.background_usv_h))

    missing_notes = []
    if over.any():
        missing_notes.append(
            f"{int(over.sum())} reading(s) over range: dose rate at least {lower_bound:.4g} uSv/h there"
        )
    if silent.any():
        dur = float(rec.interval_s[silent].sum())
        missing_notes.append(f"{int(silent.sum())} record(s) without a dose reading ({format_duration(dur)})")
    if uncovered_s > 0:
        missing_notes.append(f"{format_duration(uncovered_s)} without records")

    evidence_common: dict = {
        "readings": n_read,
        "sensor_position": sensor.position,
        "over_range_records": int(over.sum()),
        "over_range_lower_bound_usv_h": lower_bound,
        "records_without_reading": int(silent.sum()),
        "uncovered_s": uncovered_s,
    }
    summary: dict = {
        "max_dose_rate_usv_h": None,
        "max_dose_rate_time": None,
        "max_surface_dose_rate_usv_h": None,
        "max_dose_rate_1m_usv_h": None,
        "transport_index": None,
        "required_category": None,
    }
    if n_read == 0 and lower_bound is None:
        rules = [
            RuleResult(name, title, UNKNOWN, "no dose-rate reading in the records", src, dict(evidence_common))
            for name, title, src in (
                ("transport.surface_dose_rate", "Surface dose rate", _SRC_SURFACE),
                ("transport.transport_index", "Transport index", _SRC_TI),
                ("transport.category", "Package category", _SRC_CAT),
            )
        ]
        return rules, summary

    # Saturated: some readings are over range, so the maximum dose rate is not known, only a lower
    # bound (docs/shipment.md): a limit that bound exceeds fails, every other verdict is unknown.
    saturated = lower_bound is not None
    if n_read:
        i_max = int(np.nanargmax(dose))
        max_reading = float(dose[i_max])
        at = _where(rec, t, i_max)
        summary["max_dose_rate_usv_h"] = max_reading
        summary["max_dose_rate_time"] = at if math.isfinite(t[i_max]) else None
        evidence_common.update({"max_reading_usv_h": max_reading, "max_reading_at": at,
                                "max_reading_seq": int(rec.seq[i_max])})
    else:
        max_reading, at = 0.0, "over-range records"
    effective_max = max(max_reading, lower_bound) if saturated else max_reading
    qual = "at least " if saturated else ""

    def decide(exceeds: bool) -> str:
        if exceeds:
            return FAIL
        if saturated:
            return UNKNOWN  # only a lower bound, and it is within the limit
        # A pass over incomplete data is reported as warn, with what is missing.
        return WARN if missing_notes else PASS

    rules: list[RuleResult] = []

    # --- surface dose rate ---
    surface = None
    if sensor.surface_factor is None:
        rules.append(RuleResult(
            "transport.surface_dose_rate", "Surface dose rate", UNKNOWN,
            "surface_factor is not configured: the surface dose rate is not known",
            _SRC_SURFACE, dict(evidence_common),
        ))
    else:
        surface = effective_max * sensor.surface_factor
        summary["max_surface_dose_rate_usv_h"] = surface
        if ship.declared_category == "excepted":
            limit_msv, label = EXCEPTED_SURFACE_LIMIT_MSV_H, "excepted package"
        elif ship.exclusive_use:
            limit_msv, label = SURFACE_LIMIT_EXCLUSIVE_MSV_H, "exclusive use"
        else:
            limit_msv, label = SURFACE_LIMIT_MSV_H, "package"
        limit = limit_msv * 1000.0
        verdict = decide(surface > limit)
        detail = f"max {qual}{surface:.4g} uSv/h on the surface, limit {limit:g} uSv/h ({label}) at {at}"
        if saturated and verdict == UNKNOWN:
            detail += "; over range: the maximum is not known"
        if missing_notes:
            detail += "; " + "; ".join(missing_notes)
        ev = dict(evidence_common, surface_factor=sensor.surface_factor,
                  max_surface_usv_h=surface, limit_usv_h=limit, limit_applies_to=label)
        rules.append(RuleResult("transport.surface_dose_rate", "Surface dose rate", verdict, detail,
                                _SRC_SURFACE, ev))

    # --- transport index ---
    ti = None
    if sensor.one_metre_factor is None:
        rules.append(RuleResult(
            "transport.transport_index", "Transport index", UNKNOWN,
            "one_metre_factor is not configured: the dose rate at 1 m, hence the TI, is not known",
            _SRC_TI, dict(evidence_common),
        ))
    else:
        at_1m = effective_max * sensor.one_metre_factor
        ti = transport_index(at_1m / 1000.0)
        summary["max_dose_rate_1m_usv_h"] = at_1m
        summary["transport_index"] = ti
        verdict = decide(ti > TI_LIMIT and not ship.exclusive_use)
        detail = (f"TI {qual}{ti:g} from max {qual}{at_1m:.4g} uSv/h at 1 m"
                  f" (limit {TI_LIMIT:g} unless exclusive use)")
        if missing_notes:
            detail += "; " + "; ".join(missing_notes)
        ev = dict(evidence_common, one_metre_factor=sensor.one_metre_factor,
                  max_dose_rate_1m_usv_h=at_1m, transport_index=ti, ti_limit=TI_LIMIT,
                  exclusive_use=ship.exclusive_use)
        rules.append(RuleResult("transport.transport_index", "Transport index", verdict, detail, _SRC_TI, ev))

    # --- category ---
    declared = ship.declared_category
    if declared == "excepted":
        # An excepted package carries no category label; its surface limit is checked above.
        # Its activity limits (fractions of A2) are not checked: the A2 values are unverified [R].
        rules.append(RuleResult(
            "transport.category", "Package category", rules[0].verdict,
            "declared excepted: surface limit 5 uSv/h (see surface dose rate); activity limits "
            "(fractions of A2) are not checked",
            _SRC_CAT, dict(evidence_common, declared_category=declared),
        ))
        return rules, summary
    if ti is None or surface is None:
        partial = []
        if ti is not None:
            partial.append(f"TI alone requires at least {CATEGORIES[category_rank_from_ti(ti)]}")
        if surface is not None:
            r = category_rank_from_surface(surface / 1000.0)
            partial.append("surface alone requires at least "
                           + (CATEGORIES[r] if r is not None else "more than any category allows"))
        rules.append(RuleResult(
            "transport.category", "Package category", UNKNOWN,
            "needs both the TI and the surface dose rate"
            + ("; " + "; ".join(partial) if partial else ""),
            _SRC_CAT, dict(evidence_common, declared_category=declared),
        ))
        return rules, summary
    required = required_category(ti, surface / 1000.0)
    summary["required_category"] = required
    ev = dict(evidence_common, transport_index=ti, max_surface_usv_h=surface,
              category_from_ti=CATEGORIES[category_rank_from_ti(ti)],
              category_from_surface=(None if category_rank_from_surface(surface / 1000.0) is None
                                     else CATEGORIES[category_rank_from_surface(surface / 1000.0)]),
              required_category=required, declared_category=declared, required_is_lower_bound=saturated)
    if required is None:
        rules.append(RuleResult("transport.category", "Package category", FAIL,
                                f"surface dose rate {qual}{surface:.4g} uSv/h exceeds every category (10 mSv/h)",
                                _SRC_CAT, ev))
        return rules, summary
    req_rank = CATEGORIES.index(required)
    if declared is None:
        verdict, detail = UNKNOWN, f"required {qual}{required}; no declared_category to compare with"
    else:
        dec_rank = CATEGORIES.index(declared)
        if req_rank == 3:  # III-YELLOW under exclusive use
            ok = declared == "III-YELLOW" and ship.exclusive_use
            verdict = decide(not ok)
            detail = (f"required {qual}{required}, declared {declared}"
                      + ("" if ship.exclusive_use else ", not exclusive use"))
        elif dec_rank < req_rank:
            verdict, detail = FAIL, f"declared {declared} is lower than required {qual}{required}"
        elif saturated:
            verdict = UNKNOWN
            detail = f"required at least {required} (from an over-range lower bound), declared {declared}"
        elif dec_rank == req_rank:
            verdict, detail = decide(False), f"declared {declared} = required {required}"
        else:
            verdict, detail = WARN, f"declared {declared} is higher than required {required}"
    if missing_notes and verdict in (PASS, WARN, UNKNOWN):
        detail += "; " + "; ".join(missing_notes)
    rules.append(RuleResult("transport.category", "Package category", verdict, detail, _SRC_CAT, ev))
    return rules, summary
