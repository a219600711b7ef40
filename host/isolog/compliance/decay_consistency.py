"""Decay consistency: does the measured dose rate decay like the nuclide that was shipped?

A weighted least-squares line through ln(dose rate) against time gives the effective decay
constant. Weights come from Poisson counting statistics: a reading from N counts has a relative
standard uncertainty of 1/sqrt(N) on the gross rate (domain.md section 5), so after background
subtraction sigma(ln D) = (D + background) / (D sqrt(N)). When the readings scatter more than
counting statistics allow (reduced chi-square > 1), the uncertainty is scaled by sqrt(chi2/dof)
(Birge ratio), so a drift or a step does not look like a precise half-life.

The expected decay constant is fitted the same way (same times, same weights) to the expected
dose-rate curve: sum over chain members of dose-rate constant x activity. For a single nuclide
that is exactly ln 2 / T1/2; for a chain (Mo-99/Tc-99m, Ge-68/Ga-68) it is the effective value
over the logged period. The significance z compares the two with both uncertainties.

Only records with a placed time, a reading above zero, at least one count, and no over_range or
gm_silent flag enter the fit; the rest are counted in the evidence.
"""

from __future__ import annotations

import math

import numpy as np

from isolog import decay, nuclides
from isolog.compliance.model import FAIL, PASS, UNKNOWN, WARN, RuleResult
from isolog.compliance.records import Records
from isolog.shipment import Shipment

# Decision thresholds: engineering choices of isolog, not regulation. A difference is flagged when
# it is statistically significant (|z| > Z_SIGNIFICANT, ~0.3 % false alarms for Gaussian errors)
# and a fail needs it to matter as well (relative difference of the decay constant > REL_FAIL):
# a wrong nuclide, a shielding change or a leak moves it by far more; detector drift with
# temperature by less.
Z_SIGNIFICANT = 3.0
REL_FAIL = 0.10
# The fit decides nothing when its own uncertainty exceeds this fraction of the expected decay
# constant (a record too short or too noisy to see the decay).
REL_UNCERTAINTY_MAX = 0.25
# Reduced chi-square above which readings are said not to follow one exponential (with at least
# CHI2_MIN_DOF degrees of freedom).
CHI2_WARN = 5.0
CHI2_MIN_DOF = 10

_SRC = ("decay law with the nuclide data of isolog.nuclides (ENSDF/DDEP); Poisson counting "
        "statistics; isolog thresholds |z| > 3 and |dlambda/lambda| > 10 %")

_H = 3600.0


def weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray):
    """Weighted least squares y = a + b x. Returns (a, b, sigma_b, chi2, xbar)."""
    sw = w.sum()
    xbar = float(np.dot(w, x) / sw)
    ybar = float(np.dot(w, y) / sw)
    dx = x - xbar
    sxx = float(np.dot(w, dx * dx))
    b = float(np.dot(w, dx * (y - ybar)) / sxx)
    a = ybar - b * xbar
    r = y - (a + b * x)
    chi2 = float(np.dot(w, r * r))
    return a, b, math.sqrt(1.0 / sxx), chi2, xbar


def expected_dose_shape(ship: Shipment, t_s: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Relative expected dose rate at epoch times t_s, and notes on members left out."""
    acts = decay.decay(ship.nuclide, 1.0, t_s - ship.reference_time, daughters=ship.daughters)
    notes = []
    if len(acts) == 1:
        (a,) = acts.values()
        return a, notes  # one nuclide: the dose rate is proportional to its activity
    total = np.zeros_like(t_s, dtype=np.float64)
    for name, a in acts.items():
        g = nuclides.get(name).gamma_usv_h_per_mbq_1m
        if g is None:
            notes.append(f"{name} has no dose-rate constant and is left out of the expected curve")
            continue
        total += g * a
    return total, notes


def fit_inputs(rec: Records, ship: Shipment, t: np.ndarray):
    """Mask of the records used, x (h after reference), y = ln D, weights; plus counts excluded."""
    dose = rec.dose_rate_usv_h
    n = rec.interval_counts
    bad_flags = rec.has("over_range") | rec.has("gm_silent")
    known = np.isfinite(t)
    usable = known & np.isfinite(dose) & (dose > 0) & (n > 0) & ~bad_flags
    excluded = {
        "time_unknown": int((~known).sum()),
        "over_range_or_silent": int((known & bad_flags).sum()),
        "no_reading_or_zero": int((known & ~bad_flags & ~(np.isfinite(dose) & (dose > 0) & (n > 0))).sum()),
    }
    d = dose[usable]
    bg = ship.sensor.background_usv_h
    # Midpoint of the interval each reading stands for.
    tm = t[usable] - 0.5 * rec.interval_s[usable]
    x = (tm - ship.reference_time) / _H
    y = np.log(d)
    sigma_y = (d + bg) / (d * np.sqrt(n[usable].astype(np.float64)))
    w = 1.0 / (sigma_y * sigma_y)
    return usable, tm, x, y, w, excluded


def analyse(rec: Records, ship: Shipment, t: np.ndarray) -> tuple[list[RuleResult], dict, dict]:
    nuc = nuclides.get(ship.nuclide)
    usable, tm, x, y, w, excluded = fit_inputs(rec, ship, t)
    n = int(usable.sum())
    summary = {
        "effective_half_life_h": None,
        "effective_half_life_unc_h": None,
        "expected_half_life_h": None,
        "decay_z": None,
    }
    plot: dict = {}
    evidence = {"points_used": n, "points_excluded": excluded, "nuclide": nuc.name,
                "half_life_source": nuc.half_life_source, "daughters_at_reference": ship.daughters}
    name, title = "decay_consistency", "Decay consistency"
    if n < 3 or float(np.ptp(x)) <= 0:
        return [RuleResult(name, title, UNKNOWN,
                           f"{n} usable reading(s) with a known time: at least 3 over a time span are needed",
                           _SRC, evidence)], summary, plot

    a, b, sb, chi2, xbar = weighted_line(x, y, w)
    dof = n - 2
    red_chi2 = chi2 / dof if dof > 0 else float("nan")
    birge = math.sqrt(red_chi2) if dof > 0 and red_chi2 > 1 else 1.0
    sb_scaled = sb * birge
    lam_fit = -b  # per hour

    shape, notes = expected_dose_shape(ship, tm)
    if not np.all(shape > 0):
        return [RuleResult(name, title, UNKNOWN, "no expected dose-rate curve: " + "; ".join(notes),
                           _SRC, evidence)], summary, plot
    ys = np.log(shape)
    a_e, b_e, _, _, _ = weighted_line(x, ys, w)
    lam_exp = -b_e
    rel_unc_nuc = (nuc.half_life_unc_s / nuc.half_life_s) if nuc.half_life_unc_s else 0.0
    if not nuc.half_life_unc_s:
        notes.append(f"{nuc.name}: no half-life uncertainty in the evaluation; taken as 0")
    s_lam_exp = abs(lam_exp) * rel_unc_nuc
    s_total = math.hypot(sb_scaled, s_lam_exp)
    z = (lam_fit - lam_exp) / s_total
    # Relative to the parent's decay constant: for a single nuclide that is lam_exp itself, and it
    # stays meaningful for a chain whose expected curve hardly decays (daughter ingrowth).
    lam_parent = nuc.decay_constant_per_s * _H
    rel = (lam_fit - lam_exp) / lam_parent

    t_half_exp = math.log(2) / lam_exp if lam_exp > 0 else math.inf
    t_half_fit = math.log(2) / lam_fit if lam_fit > 0 else math.inf
    t_half_unc = math.log(2) * sb_scaled / lam_fit ** 2 if lam_fit > 0 else math.inf
    summary.update({
        "effective_half_life_h": t_half_fit if math.isfinite(t_half_fit) else None,
        "effective_half_life_unc_h": t_half_unc if math.isfinite(t_half_unc) else None,
        "expected_half_life_h": t_half_exp if math.isfinite(t_half_exp) else None,
        "decay_z": z,
    })
    evidence.update({
        "fit_decay_constant_per_h": lam_fit,
        "fit_decay_constant_unc_per_h": sb_scaled,
        "expected_decay_constant_per_h": lam_exp,
        "expected_decay_constant_unc_per_h": s_lam_exp,
        "effective_half_life_h": summary["effective_half_life_h"],
        "effective_half_life_unc_h": summary["effective_half_life_unc_h"],
        "expected_half_life_h": summary["expected_half_life_h"],
        "z": z,
        "relative_difference": rel,
        "reduced_chi2": red_chi2,
        "birge_factor": birge,
        "time_span_h": float(np.ptp(x)),
        "notes": notes,
    })

    # Curve for the report: the expected shape, scaled to the readings (weighted fit of ln
    # amplitude with the shape fixed); band = +-2 sigma of a single reading at that rate (Poisson,
    # from the median counts per unit dose rate), combined with the amplitude uncertainty.
    ln_amp = float(np.dot(w, y - ys) / w.sum())
    s_ln_amp = math.sqrt(1.0 / w.sum()) * birge
    plot = {"tm": tm, "ln_amp": ln_amp, "s_ln_amp": s_ln_amp, "shape_fn": lambda tt: expected_dose_shape(ship, tt)[0],
            "counts_per_usv_h": float(np.median(rec.interval_counts[usable] /
                                                (rec.dose_rate_usv_h[usable] + ship.sensor.background_usv_h)))}

    tf = f"{t_half_fit:.4g} ± {t_half_unc:.2g} h" if math.isfinite(t_half_fit) else "no decay"
    detail = (f"effective half-life {tf}, expected {t_half_exp:.4g} h ({nuc.name}); "
              f"z = {z:+.2f}, {rel * 100:+.2f} % in decay constant, chi2/dof {red_chi2:.2f}, {n} readings")
    if sb_scaled > REL_UNCERTAINTY_MAX * lam_parent:
        verdict = UNKNOWN
        detail += (f"; the fit's uncertainty (±{sb_scaled / lam_parent * 100:.0f} % of the decay constant) "
                   "is too large to decide: record longer")
    elif abs(z) <= Z_SIGNIFICANT:
        verdict = PASS
    elif abs(rel) <= REL_FAIL:
        verdict = WARN
        detail += "; significant but small: detector drift, a different half-life evaluation?"
    else:
        verdict = FAIL
        detail += "; does not decay like the declared nuclide: wrong nuclide, shielding change, leak, or impurity?"
    if verdict == PASS and dof >= CHI2_MIN_DOF and red_chi2 > CHI2_WARN:
        verdict = WARN
        detail += "; readings scatter more than counting statistics allow: a step or drift?"
    return [RuleResult(name, title, verdict, detail, _SRC, evidence)], summary, plot
