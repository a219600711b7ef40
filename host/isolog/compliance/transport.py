"""Transport rules of IAEA SSR-6 (2018 edition): transport index, package category, surface limits.

The same rules appear in ADR/RID/IMDG/ICAO-TI (chapter 2.7 / 5.1.5.3) and in the US in 49 CFR 172
and 173 and 10 CFR 71 (docs/references.md#ssr-6). What was read [V]: 49 CFR 173.441 (radiation level
limits and exclusive use), 173.425 Table 4 (activity limits of excepted packages) and 173.435
(A1/A2), 2015 annual edition (github.com/18F/allregs, html/sections/49CFR173.4xx.html). SSR-6
(2018) paragraph numbers given here are recalled [R], not read in the text: 516 (excepted package
surface), 526/527 (2 mSv/h and TI 10; 10 mSv/h under exclusive use), 573 (road/rail exclusive-use
vehicle conditions), 575/579 (vessel/air under special arrangement), Table 4, Table 2.

The logger measures at one point; the configuration says how a reading relates to the package:
surface dose rate = surface_factor x reading, dose rate at 1 m = one_metre_factor x reading. A
factor that is not configured makes the rules that need it "unknown": never a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from isolog.compliance.model import FAIL, PASS, UNKNOWN, WARN, RuleResult
from isolog.compliance.records import Records
from isolog.shipment import Shipment
from isolog.units import format_duration, format_time
from isolog_fw import counting  # the board's dead-time model, shared (firmware/counting.py)

_SRC_TI = (
    "IAEA SSR-6 (2018), transport index: maximum dose rate at 1 m from the external surface in "
    "mSv/h x 100, rounded up to the first decimal place; a value <= 0.05 may be taken as zero; "
    "TI <= 10 except under exclusive use by road or rail, or by sea or air under special "
    "arrangement (para 526 [R]; 49 CFR 173.441(a) [V])"
)
_SRC_CAT = (
    "IAEA SSR-6 (2018), categories of packages (I-WHITE, II-YELLOW, III-YELLOW) from TI and "
    "maximum surface dose rate; when they point to different categories the higher one applies"
)
_SRC_SURFACE = (
    "IAEA SSR-6 (2018) paras 516, 526, 527 [R]; 49 CFR 173.441(a)/(b), 173.421 [V]: maximum dose rate "
    "on the external surface 2 mSv/h; 10 mSv/h only under exclusive use by road or rail with the "
    "vehicle conditions (para 573(a) [R]; 173.441(b)(1): closed vehicle, package secured, no loading "
    "or unloading en route), by sea or air only under special arrangement (paras 575, 579 [R]); "
    "excepted package 5 µSv/h"
)
_SRC_EXCEPTED = (
    "IAEA SSR-6 (2018) Table 4, materials, package limits [R]; 49 CFR 173.425 Table 4, limited "
    "quantity package limits [V]: solid 1e-3 A2, liquid 1e-4 A2, gas 1e-3 A2, special form 1e-3 A1; "
    "A1/A2 from 49 CFR 173.435 [V] (mirror of SSR-6 Table 2)"
)

# Limits of IAEA SSR-6 (2018), read [V] in 49 CFR 173.441 and 173.421 (docs/references.md#ssr-6).
SURFACE_LIMIT_MSV_H = 2.0  # package, not under exclusive use
SURFACE_LIMIT_EXCLUSIVE_MSV_H = 10.0  # package under exclusive use
EXCEPTED_SURFACE_LIMIT_MSV_H = 0.005  # excepted package, 5 µSv/h
TI_LIMIT = 10.0  # a package's TI above 10 only under exclusive use
TI_ZERO_AT_OR_BELOW = 0.05  # "a value <= 0.05 may be taken as zero"

# Excepted packages, materials: activity per package as a fraction of A1 (special form) or A2
# (other forms). 49 CFR 173.425 Table 4, "limited quantity package limits" column [V] (2015 ed.),
# the US mirror of SSR-6 Table 4 "materials, package limits". Tritium gas (2e-2 A2) and tritiated
# water are not among the nuclides isolog knows. NB: gas 1e-2 A2, which older notes gave, is the
# instruments-and-articles package limit; for materials the table gives 1e-3 A2
# (docs/references.md#49-cfr-173).
EXCEPTED_MATERIAL_LIMITS = {
    "solid": ("A2", 1e-3),
    "liquid": ("A2", 1e-4),
    "gas": ("A2", 1e-3),
    "special_form": ("A1", 1e-3),
}


def exclusive_use_limits(ship: Shipment) -> tuple[str, str]:
    """May the package use the limits above 2 mSv/h on the surface and TI 10? ("yes" | "no" |
    "unknown", why). SSR-6 para 526 [R] / 49 CFR 173.441 [V]: only under exclusive use, by road or
    rail with the vehicle conditions, or by sea or air under special arrangement, whose approval
    sets the limits (isolog does not know them: unknown)."""
    if not ship.exclusive_use:
        return "no", "not under exclusive use"
    mode = ship.transport_mode
    if mode is None:
        return "unknown", "exclusive use, but no transport_mode: the higher limits apply by road or rail only"
    if mode in ("road", "rail"):
        return "yes", (
            f"exclusive use by {mode}: only with the vehicle conditions (closed vehicle, package "
            "secured, no loading or unloading en route; <= 2 mSv/h on the vehicle, 0.1 mSv/h at "
            "2 m), which the logger does not show"
        )
    if ship.special_arrangement:
        return "unknown", (
            f"by {mode} under special arrangement: the competent authority's approval sets the "
            "limits, which isolog does not know"
        )
    return "no", f"by {mode}, exclusive use allows no more than 2 mSv/h and TI 10 without a special arrangement"


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


@dataclass
class _Peak:
    """The maximum dose rate the records show, and what the transport rules need to know about it:
    a lower bound only when readings are over range (saturated), the readings missing."""

    max_reading: float  # µSv/h, the largest valid reading (0 when there is none)
    at: str  # where it was
    saturated: bool  # some readings over range: the maximum is known only as a lower bound
    effective_max: float  # max_reading, or the over-range lower bound when larger
    missing_notes: list[str]
    evidence: dict[str, Any]

    @property
    def qual(self) -> str:
        return "at least " if self.saturated else ""

    def decide(self, exceeds: bool) -> str:
        if exceeds:
            return FAIL
        if self.saturated:
            return UNKNOWN  # only a lower bound, and it is within the limit
        # A pass over incomplete data is reported as warn, with what is missing.
        return WARN if self.missing_notes else PASS

    def with_notes(self, detail: str) -> str:
        return detail + ("; " + "; ".join(self.missing_notes) if self.missing_notes else "")


def analyse(rec: Records, ship: Shipment, t: np.ndarray, uncovered_s: float) -> tuple[list[RuleResult], dict]:
    """The transport rules and summary figures. `t`: record times (NaN when unknown; the maximum
    dose rate needs no time, so such records still count). `uncovered_s`: time without records,
    from the data-integrity analysis."""
    summary: dict = {
        "max_dose_rate_usv_h": None,
        "max_dose_rate_time": None,
        "max_surface_dose_rate_usv_h": None,
        "max_dose_rate_1m_usv_h": None,
        "transport_index": None,
        "required_category": None,
    }
    peak = _peak(rec, ship, t, uncovered_s, summary)
    if peak is None:
        return [
            RuleResult(
                name,
                title,
                UNKNOWN,
                "no dose-rate reading in the records",
                src,
                dict(_common_evidence(rec, ship, uncovered_s, None)),
            )
            for name, title, src in (
                ("transport.surface_dose_rate", "Surface dose rate", _SRC_SURFACE),
                ("transport.transport_index", "Transport index", _SRC_TI),
                ("transport.category", "Package category", _SRC_CAT),
            )
        ], summary
    surface_rule, surface = surface_dose_rate_rule(ship, peak)
    summary["max_surface_dose_rate_usv_h"] = surface
    ti_rule, at_1m, ti = transport_index_rule(ship, peak)
    summary["max_dose_rate_1m_usv_h"] = at_1m
    summary["transport_index"] = ti
    rules = [surface_rule, ti_rule]
    if ship.declared_category == "excepted":
        rules += excepted_rules(ship, rec, t, peak, surface_rule)
    else:
        category, required = category_rule(ship, peak, ti, surface)
        summary["required_category"] = required
        rules.append(category)
    return rules, summary


def _common_evidence(rec: Records, ship: Shipment, uncovered_s: float, lower_bound: float | None) -> dict[str, Any]:
    over = rec.has("over_range")
    has_reading = np.isfinite(rec.dose_rate_usv_h)
    silent = rec.has("gm_silent") | (~has_reading & ~over)
    return {
        "readings": int(has_reading.sum()),
        "sensor_position": ship.sensor.position,
        "over_range_records": int(over.sum()),
        "over_range_lower_bound_usv_h": lower_bound,
        "records_without_reading": int(silent.sum()),
        "uncovered_s": uncovered_s,
    }


def over_range_lower_bound(rec: Records, ship: Shipment) -> float | None:
    """The dose rate the over-range records show at least (None: no record over range).

    Over-range records: the tube was near saturation, the reading is null. Their dead-time
    corrected rate, clamped where the board clamps it (firmware/counting.py: m / (1 - 0.5) at the
    over-range loss), is a lower bound of the true rate for a non-paralyzable tube, and for a
    paralyzable one (which loses more at the same observed rate). The lower bound grows with the
    observed rate, so the record with the highest count rate gives the largest bound."""
    over = rec.has("over_range")
    if not over.any():
        return None
    sensor = ship.sensor
    idx = np.flatnonzero(over)
    rates = rec.interval_counts[idx] / rec.interval_s[idx]
    k = int(idx[int(np.argmax(rates))])
    rate_cps, _ = counting.true_rate_cps(
        int(rec.interval_counts[k]), float(rec.interval_s[k]), sensor.dead_time_us * 1e-6
    )
    return float(counting.dose_rate_usv_h(rate_cps, sensor.calibration_cpm_per_usv_h, sensor.background_usv_h))


def _peak(rec: Records, ship: Shipment, t: np.ndarray, uncovered_s: float, summary: dict) -> _Peak | None:
    """The peak dose rate and what is missing; None when there is no reading at all."""
    dose = rec.dose_rate_usv_h
    n_read = int(np.isfinite(dose).sum())
    lower_bound = over_range_lower_bound(rec, ship)
    evidence = _common_evidence(rec, ship, uncovered_s, lower_bound)
    if n_read == 0 and lower_bound is None:
        return None
    missing_notes = []
    if lower_bound is not None:
        missing_notes.append(
            f"{evidence['over_range_records']} reading(s) over range: dose rate at least {lower_bound:.4g} µSv/h there"
        )
    if evidence["records_without_reading"]:
        over = rec.has("over_range")
        silent = rec.has("gm_silent") | (~np.isfinite(dose) & ~over)
        dur = float(rec.interval_s[silent].sum())
        missing_notes.append(
            f"{evidence['records_without_reading']} record(s) without a dose reading ({format_duration(dur)})"
        )
    if uncovered_s > 0:
        missing_notes.append(f"{format_duration(uncovered_s)} without records")
    # Saturated: some readings are over range, so the maximum dose rate is not known, only a lower
    # bound (docs/shipment.md): a limit that bound exceeds fails, every other verdict is unknown.
    saturated = lower_bound is not None
    if n_read:
        i_max = int(np.nanargmax(dose))
        max_reading = float(dose[i_max])
        at = _where(rec, t, i_max)
        summary["max_dose_rate_usv_h"] = max_reading
        summary["max_dose_rate_time"] = at if math.isfinite(t[i_max]) else None
        evidence.update(
            {"max_reading_usv_h": max_reading, "max_reading_at": at, "max_reading_seq": int(rec.seq[i_max])}
        )
    else:
        max_reading, at = 0.0, "over-range records"
    assert lower_bound is not None or not saturated
    effective_max = max(max_reading, lower_bound) if lower_bound is not None else max_reading
    return _Peak(max_reading, at, saturated, effective_max, missing_notes, evidence)


def surface_dose_rate_rule(ship: Shipment, peak: _Peak) -> tuple[RuleResult, float | None]:
    """The surface dose-rate limit (package, excepted package, exclusive use by mode), and the
    peak surface dose rate in µSv/h (None: the sensor's surface factor is not configured)."""
    sensor = ship.sensor
    if sensor.surface_factor is None:
        return RuleResult(
            "transport.surface_dose_rate",
            "Surface dose rate",
            UNKNOWN,
            "surface_factor is not configured: the surface dose rate is not known",
            _SRC_SURFACE,
            dict(peak.evidence),
        ), None
    surface = peak.effective_max * sensor.surface_factor
    allowed, why = exclusive_use_limits(ship)
    note = ""
    if ship.declared_category == "excepted":
        limit_msv, label = EXCEPTED_SURFACE_LIMIT_MSV_H, "excepted package"
        verdict = peak.decide(surface > limit_msv * 1000.0)
    elif surface <= SURFACE_LIMIT_MSV_H * 1000.0 or allowed == "no":
        limit_msv, label = SURFACE_LIMIT_MSV_H, "package" + (f"; {why}" if ship.exclusive_use else "")
        verdict = peak.decide(surface > limit_msv * 1000.0)
    elif surface > SURFACE_LIMIT_EXCLUSIVE_MSV_H * 1000.0 and not ship.special_arrangement:
        limit_msv, label = SURFACE_LIMIT_EXCLUSIVE_MSV_H, "no package may exceed it, exclusive use or not"
        verdict = FAIL
    elif allowed == "yes":
        limit_msv, label = SURFACE_LIMIT_EXCLUSIVE_MSV_H, "exclusive use"
        verdict = peak.decide(surface > limit_msv * 1000.0)
        if verdict == PASS or verdict == WARN:
            verdict, note = WARN, why
    else:  # above 2 mSv/h, and whether more is allowed is not known
        limit_msv, label = SURFACE_LIMIT_MSV_H, "package"
        verdict, note = UNKNOWN, why
    limit = limit_msv * 1000.0
    detail = f"max {peak.qual}{surface:.4g} µSv/h on the surface, limit {limit:g} µSv/h ({label}) at {peak.at}"
    if note:
        detail += "; " + note
    if peak.saturated and verdict == UNKNOWN:
        detail += "; over range: the maximum is not known"
    ev = dict(
        peak.evidence,
        surface_factor=sensor.surface_factor,
        max_surface_usv_h=surface,
        limit_usv_h=limit,
        limit_applies_to=label,
        exclusive_use=ship.exclusive_use,
        transport_mode=ship.transport_mode,
        special_arrangement=ship.special_arrangement,
        exclusive_use_limits=allowed,
    )
    return RuleResult(
        "transport.surface_dose_rate", "Surface dose rate", verdict, peak.with_notes(detail), _SRC_SURFACE, ev
    ), surface


def transport_index_rule(ship: Shipment, peak: _Peak) -> tuple[RuleResult, float | None, float | None]:
    """The transport index limit: the rule, the peak dose rate at 1 m (µSv/h) and the TI (None:
    the sensor's one-metre factor is not configured)."""
    sensor = ship.sensor
    if sensor.one_metre_factor is None:
        return (
            RuleResult(
                "transport.transport_index",
                "Transport index",
                UNKNOWN,
                "one_metre_factor is not configured: the dose rate at 1 m, hence the TI, is not known",
                _SRC_TI,
                dict(peak.evidence),
            ),
            None,
            None,
        )
    at_1m = peak.effective_max * sensor.one_metre_factor
    ti = transport_index(at_1m / 1000.0)
    allowed, why = exclusive_use_limits(ship)
    note = ""
    if ti <= TI_LIMIT or allowed == "no":
        verdict = peak.decide(ti > TI_LIMIT)
        if ti > TI_LIMIT and ship.exclusive_use:
            note = why
    elif allowed == "yes":
        verdict, note = (UNKNOWN if peak.saturated else WARN), why
    else:
        verdict, note = UNKNOWN, why
    detail = (
        f"TI {peak.qual}{ti:g} from max {peak.qual}{at_1m:.4g} µSv/h at 1 m"
        f" (limit {TI_LIMIT:g} unless exclusive use by road or rail)"
    )
    if note:
        detail += "; " + note
    ev = dict(
        peak.evidence,
        one_metre_factor=sensor.one_metre_factor,
        max_dose_rate_1m_usv_h=at_1m,
        transport_index=ti,
        ti_limit=TI_LIMIT,
        exclusive_use=ship.exclusive_use,
        transport_mode=ship.transport_mode,
        exclusive_use_limits=allowed,
    )
    return (
        RuleResult("transport.transport_index", "Transport index", verdict, peak.with_notes(detail), _SRC_TI, ev),
        at_1m,
        ti,
    )


def excepted_rules(
    ship: Shipment, rec: Records, t: np.ndarray, peak: _Peak, surface_rule: RuleResult
) -> list[RuleResult]:
    """An excepted package carries no category label: its limits are the surface dose rate and
    the activity (SSR-6 Table 4). The category rule sums the two up."""
    act = excepted_activity_rule(ship, rec, t)
    verdicts = (surface_rule.verdict, act.verdict)
    worst = FAIL if FAIL in verdicts else UNKNOWN if UNKNOWN in verdicts else WARN if WARN in verdicts else PASS
    return [
        act,
        RuleResult(
            "transport.category",
            "Package category",
            worst,
            f"declared excepted: surface {surface_rule.verdict}, activity {act.verdict} (see those rules)",
            _SRC_CAT,
            dict(peak.evidence, declared_category=ship.declared_category),
        ),
    ]


def category_rule(
    ship: Shipment, peak: _Peak, ti: float | None, surface: float | None
) -> tuple[RuleResult, str | None]:
    """The package category required by the TI and the surface dose rate (the higher wins),
    against the declared one; and the required category (None: not known)."""
    declared = ship.declared_category
    if ti is None or surface is None:
        partial = []
        if ti is not None:
            partial.append(f"TI alone requires at least {CATEGORIES[category_rank_from_ti(ti)]}")
        if surface is not None:
            r = category_rank_from_surface(surface / 1000.0)
            partial.append(
                "surface alone requires at least "
                + (CATEGORIES[r] if r is not None else "more than any category allows")
            )
        return RuleResult(
            "transport.category",
            "Package category",
            UNKNOWN,
            "needs both the TI and the surface dose rate" + ("; " + "; ".join(partial) if partial else ""),
            _SRC_CAT,
            dict(peak.evidence, declared_category=declared),
        ), None
    qual = peak.qual
    required = required_category(ti, surface / 1000.0)
    rank_surface = category_rank_from_surface(surface / 1000.0)
    ev = dict(
        peak.evidence,
        transport_index=ti,
        max_surface_usv_h=surface,
        category_from_ti=CATEGORIES[category_rank_from_ti(ti)],
        category_from_surface=None if rank_surface is None else CATEGORIES[rank_surface],
        required_category=required,
        declared_category=declared,
        required_is_lower_bound=peak.saturated,
    )
    if required is None:
        return RuleResult(
            "transport.category",
            "Package category",
            FAIL,
            f"surface dose rate {qual}{surface:.4g} µSv/h exceeds every category (10 mSv/h)",
            _SRC_CAT,
            ev,
        ), None
    req_rank = CATEGORIES.index(required)
    if declared is None:
        verdict, detail = UNKNOWN, f"required {qual}{required}; no declared_category to compare with"
    else:
        dec_rank = CATEGORIES.index(declared)
        if req_rank == 3:  # III-YELLOW under exclusive use
            allowed, why = exclusive_use_limits(ship)
            detail = f"required {qual}{required}, declared {declared}; {why}"
            if declared != "III-YELLOW" or allowed == "no":
                verdict = FAIL
            elif allowed == "unknown" or peak.saturated:
                verdict = UNKNOWN
            else:
                verdict = WARN
        elif dec_rank < req_rank:
            verdict, detail = FAIL, f"declared {declared} is lower than required {qual}{required}"
        elif peak.saturated:
            verdict = UNKNOWN
            detail = f"required at least {required} (from an over-range lower bound), declared {declared}"
        elif dec_rank == req_rank:
            verdict, detail = peak.decide(False), f"declared {declared} = required {required}"
        else:
            verdict, detail = WARN, f"declared {declared} is higher than required {required}"
    if verdict in (PASS, WARN, UNKNOWN):
        detail = peak.with_notes(detail)
    return RuleResult("transport.category", "Package category", verdict, detail, _SRC_CAT, ev), required


def excepted_activity_rule(ship: Shipment, rec: Records, t: np.ndarray) -> RuleResult:
    """Activity of an excepted package against SSR-6 Table 4 (materials): the shipped nuclide's
    activity at the start of the logged transport (the highest it held while logged: it only
    decays), against the fraction of A1 (special form) or A2 (other forms) for its physical form.
    Daughters shorter-lived than 10 days are in the parent's A1/A2 (49 CFR 173.435 footnote a).
    Unknown when the form, the A value or the start time is not known, or the A value is not
    verified against a source: an unverified constant never decides."""
    from isolog import decay, nuclides
    from isolog.units import format_activity

    name, title = "transport.excepted_activity", "Excepted package activity"
    nuc = nuclides.get(ship.nuclide)
    ev: dict = {
        "nuclide": nuc.name,
        "physical_form": ship.physical_form,
        "a1_tbq": nuc.a1_tbq,
        "a2_tbq": nuc.a2_tbq,
        "a_values_source": nuc.a_values_source,
        "a_values_verified": nuc.a_values_verified,
    }
    if ship.physical_form is None:
        return RuleResult(
            name,
            title,
            UNKNOWN,
            "physical_form is not given (solid, liquid, gas, special_form): the limit is not known",
            _SRC_EXCEPTED,
            ev,
        )
    which, fraction = EXCEPTED_MATERIAL_LIMITS[ship.physical_form]
    a_value = nuc.a1_tbq if which == "A1" else nuc.a2_tbq
    if a_value is None:
        return RuleResult(name, title, UNKNOWN, f"{nuc.name} has no {which} value in isolog's table", _SRC_EXCEPTED, ev)
    limit_bq = fraction * a_value * 1e12
    starts = t - rec.interval_s
    if not np.isfinite(starts).any():
        return RuleResult(
            name,
            title,
            UNKNOWN,
            "no record has a known time: the start of transport is not known",
            _SRC_EXCEPTED,
            dict(ev, limit_bq=limit_bq),
        )
    t0 = float(np.nanmin(starts))
    activity = float(
        decay.decay(nuc.name, ship.activity_bq, [t0 - ship.reference_time], daughters=ship.daughters)[nuc.name][0]
    )
    ev.update(
        {
            "limit": f"{fraction:g} {which}",
            "limit_bq": limit_bq,
            "activity_bq": activity,
            "at": format_time(t0),
            "ratio": activity / limit_bq,
        }
    )
    detail = (
        f"{format_activity(activity)} {nuc.name} at {format_time(t0)} (start of logging), limit "
        f"{fraction:g} {which} = {format_activity(limit_bq)} ({ship.physical_form}; {which} = {a_value:g} TBq)"
    )
    if not nuc.a_values_verified:
        return RuleResult(
            name, title, UNKNOWN, detail + f"; the {which} value is not verified against a source", _SRC_EXCEPTED, ev
        )
    return RuleResult(name, title, FAIL if activity > limit_bq else PASS, detail, _SRC_EXCEPTED, ev)
