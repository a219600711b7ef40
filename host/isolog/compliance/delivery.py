"""Activity at delivery and expiry.

Arrival is the delivery time when the trip window has one (isolog deliver: the delivery note, or
the unloading seen in the data and confirmed); otherwise the time of the last record that has a
known time (the logger read out on return: later than the delivery, never earlier).

The activity of the shipped nuclide is decayed from reference_time with the table's half-life
(and chain, for daughters); it is compared with the prescribed activity at the planned
administration time, within prescribed_tolerance (an isolog default of 10 % unless the shipment
sets its own: the product's label decides, not a regulation).
"""

from __future__ import annotations

import numpy as np

from isolog import decay, nuclides
from isolog.compliance.model import FAIL, NOT_APPLICABLE, PASS, UNKNOWN, RuleResult
from isolog.shipment import Shipment
from isolog.units import format_activity, format_duration, format_time

_SRC_ACT = (
    "decay law with the nuclide data of isolog.nuclides (ENSDF/DDEP); prescribed activity "
    "and tolerance from the shipment (product prescription)"
)
_SRC_EXP = "product shelf life (expiry_time of the shipment)"


def activity_at(ship: Shipment, when: float) -> float:
    return float(
        decay.decay(ship.nuclide, ship.activity_bq, [when - ship.reference_time], daughters=ship.daughters)[
            ship.nuclide
        ][0]
    )


def analyse(ship: Shipment, t: np.ndarray, delivered_s: float | None = None) -> tuple[list[RuleResult], dict]:
    """delivered_s: the delivery time (the trip window's end); without one, arrival is the last
    record with a known time."""
    known = np.isfinite(t)
    arrival = delivered_s if delivered_s is not None else (float(np.nanmax(t)) if known.any() else None)
    summary: dict = {
        "arrival_time": format_time(arrival) if arrival is not None else None,
        "arrival_from": "delivery" if delivered_s is not None else "last record",
        "activity_at_arrival_bq": None,
        "activity_at_administration_bq": None,
    }
    nuc = nuclides.get(ship.nuclide)
    ev: dict = {
        "nuclide": nuc.name,
        "half_life_h": nuc.half_life_h,
        "half_life_source": nuc.half_life_source,
        "reference_activity_bq": ship.activity_bq,
        "reference_time": format_time(ship.reference_time),
    }
    if arrival is not None:
        a_arr = activity_at(ship, arrival)
        summary["activity_at_arrival_bq"] = a_arr
        ev.update({"arrival_time": format_time(arrival), "activity_at_arrival_bq": a_arr})
        if nuc.a2_tbq:
            ev["activity_over_a2_at_reference"] = ship.activity_bq / (nuc.a2_tbq * 1e12)
            ev["a2_source"] = nuc.a_values_source
    rules: list[RuleResult] = []

    # Activity at administration.
    name, title = "activity_at_delivery", "Activity at delivery"
    if ship.prescribed_activity_bq is None:
        detail = "no prescribed_activity in the shipment"
        if arrival is not None:
            detail += f"; {format_activity(summary['activity_at_arrival_bq'])} at arrival {format_time(arrival)}"
        rules.append(RuleResult(name, title, NOT_APPLICABLE, detail, _SRC_ACT, ev))
    elif ship.administration_time is None:
        rules.append(
            RuleResult(name, title, UNKNOWN, "prescribed_activity is set but administration_time is not", _SRC_ACT, ev)
        )
    else:
        a_adm = activity_at(ship, ship.administration_time)
        summary["activity_at_administration_bq"] = a_adm
        p, tol = ship.prescribed_activity_bq, ship.prescribed_tolerance
        lo, hi = p * (1 - tol), p * (1 + tol)
        dev = a_adm / p - 1
        verdict = PASS if lo <= a_adm <= hi else FAIL
        ev.update(
            {
                "administration_time": format_time(ship.administration_time),
                "activity_at_administration_bq": a_adm,
                "prescribed_activity_bq": p,
                "tolerance": tol,
                "deviation": dev,
            }
        )
        detail = (
            f"{format_activity(a_adm)} at administration {format_time(ship.administration_time)}, "
            f"prescribed {format_activity(p)} ± {tol * 100:g} % ({dev * 100:+.1f} %)"
        )
        if arrival is not None:
            detail += f"; {format_activity(summary['activity_at_arrival_bq'])} at arrival"
            if arrival > ship.administration_time:
                verdict = FAIL
                detail += (
                    f"; arrived {format_duration(arrival - ship.administration_time)} after the planned administration"
                )
        rules.append(RuleResult(name, title, verdict, detail, _SRC_ACT, ev))

    # Expiry.
    name, title = "expiry", "Expiry"
    if ship.expiry_time is None:
        rules.append(RuleResult(name, title, NOT_APPLICABLE, "no expiry_time in the shipment", _SRC_EXP, {}))
    else:
        exp = ship.expiry_time
        eev = {
            "expiry_time": format_time(exp),
            "arrival_time": summary["arrival_time"],
            "administration_time": format_time(ship.administration_time) if ship.administration_time else None,
        }
        problems = []
        if arrival is not None and arrival > exp:
            problems.append(f"arrived {format_duration(arrival - exp)} after expiry")
        if ship.administration_time is not None and ship.administration_time > exp:
            problems.append(f"administration planned {format_duration(ship.administration_time - exp)} after expiry")
        if problems:
            verdict, detail = FAIL, "; ".join(problems)
        elif arrival is None:
            verdict, detail = UNKNOWN, "arrival time unknown (no record with a valid time)"
        else:
            verdict = PASS
            detail = f"arrived {format_duration(exp - arrival)} before expiry {format_time(exp)}"
            if ship.administration_time is not None:
                detail += "; administration planned before expiry"
        rules.append(RuleResult(name, title, verdict, detail, _SRC_EXP, eev))
    return rules, summary
