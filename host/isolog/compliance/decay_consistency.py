"""Decay consistency: does the measured dose rate decay like the nuclide that was shipped?

The effective decay constant is fitted by maximum likelihood on the raw interval counts, with the
tube's dead time and the background in the model (docs/references.md#knoll): the counts of a record
covering dt seconds are Poisson with mean

    mu = dt * n / (1 + n * tau),   n = (A * exp(-lambda * x) + background) * cal / 60

(true rate n in counts/s for a dose rate in µSv/h, non-paralyzable dead time tau, x the middle of
the interval). A and lambda are fitted by Fisher scoring; the uncertainty of lambda is from the
Fisher information. Zero counts and readings clamped at zero enter the fit as they are: nothing
is dropped or taken from the noisy reading itself, so the fit has no low-count bias (a weighted
least-squares line through ln(reading), used before, had one). When the counts scatter more than
Poisson statistics allow (Pearson chi-square per degree of freedom > 1), the uncertainty is scaled
by sqrt(chi2/dof) (Birge ratio), so a drift or a step does not look like a precise half-life.

The expected decay constant is what the same fit gives on the expected counts (same times,
intervals, dead time and background) of the expected dose-rate curve: sum over chain members of
dose-rate constant x activity, with its amplitude fitted to the counts. For a single nuclide that
is exactly ln 2 / T1/2; for a chain (Mo-99/Tc-99m, Ge-68/Ga-68) it is the effective value over
the logged period. The significance z compares the two with both uncertainties.

Only records with a placed time and no over_range or gm_silent flag enter the fit; the rest are
counted in the evidence.
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

_SRC = (
    "decay law with the nuclide data of isolog.nuclides (ENSDF/DDEP); Poisson likelihood of the "
    "raw counts with non-paralyzable dead time (Knoll ch. 4) and background; isolog thresholds "
    "|z| > 3 and |dlambda/lambda| > 10 %"
)

_H = 3600.0


def weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray):
    """Weighted least squares y = a + b x. Returns (a, b, sigma_b, chi2, xbar). (Kept for the
    starting point of the likelihood fit.)"""
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


class CountModel:
    """Expected counts of each record for a dose rate at the package (µSv/h): the board's tube."""

    def __init__(self, dt_s: np.ndarray, cal_cpm_per_usv_h: float, background_usv_h: float, dead_time_s: float):
        self.dt = dt_s
        self.c = cal_cpm_per_usv_h / 60.0  # counts/s per µSv/h
        self.bg = background_usv_h
        self.tau = dead_time_s

    def mean(self, dose_usv_h: np.ndarray):
        """(mu, dmu/d dose) per record."""
        n = (dose_usv_h + self.bg) * self.c
        den = 1.0 + n * self.tau
        return self.dt * n / den, self.dt * self.c / (den * den)


def poisson_exp_fit(x: np.ndarray, k: np.ndarray, model: CountModel, a0: float, lam0: float, max_iter: int = 100):
    """Maximum-likelihood fit of D = exp(a - lam * x) to counts k (Poisson, with the count model).
    x is centred by the caller. Returns (a, lam, covariance 2x2, pearson_chi2, converged)."""
    a, lam = a0, lam0
    converged = False
    info = np.eye(2)
    for _ in range(max_iter):
        d = np.exp(np.clip(a - lam * x, -700.0, 700.0))
        mu, dmu = model.mean(d)
        mu = np.maximum(mu, 1e-300)
        g_a = dmu * d  # dmu/da
        g_l = -x * g_a  # dmu/dlam
        r = k / mu - 1.0
        grad = np.array([np.dot(r, g_a), np.dot(r, g_l)])
        wi = 1.0 / mu
        info = np.array(
            [[np.dot(wi, g_a * g_a), np.dot(wi, g_a * g_l)], [np.dot(wi, g_a * g_l), np.dot(wi, g_l * g_l)]]
        )
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            break
        # Damped: never move the amplitude by more than a factor e^2 in one step.
        scale = min(1.0, 2.0 / max(abs(step[0]), 1e-300))
        a += scale * step[0]
        lam += scale * step[1]
        if abs(step[0]) < 1e-10 and abs(step[1]) < 1e-12 * max(abs(lam), 1e-6) + 1e-15:
            converged = True
            break
    d = np.exp(np.clip(a - lam * x, -700.0, 700.0))
    mu, _ = model.mean(d)
    mu = np.maximum(mu, 1e-300)
    pearson = float(np.sum((k - mu) ** 2 / mu))
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full((2, 2), np.inf)
    return a, lam, cov, pearson, converged


def fit_amplitude(shape: np.ndarray, k: np.ndarray, model: CountModel, max_iter: int = 100):
    """ML amplitude c of D = c * shape (shape fixed). Returns (ln c, sigma of ln c)."""
    pos = k.sum() / max(float(model.mean(shape)[0].sum()), 1e-300)
    ln_c = math.log(max(pos, 1e-12))
    info = 1.0
    for _ in range(max_iter):
        d = math.exp(ln_c) * shape
        mu, dmu = model.mean(d)
        mu = np.maximum(mu, 1e-300)
        g = dmu * d
        grad = float(np.dot(k / mu - 1.0, g))
        info = float(np.dot(g * g, 1.0 / mu))
        step = grad / info if info > 0 else 0.0
        step = max(-2.0, min(2.0, step))
        ln_c += step
        if abs(step) < 1e-12:
            break
    return ln_c, (1.0 / math.sqrt(info) if info > 0 else math.inf)


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
    """Mask of the records used, midpoint times (epoch s), x (h after reference), counts; plus the
    records excluded and why."""
    bad_flags = rec.has("over_range") | rec.has("gm_silent")
    known = np.isfinite(t)
    usable = known & ~bad_flags
    excluded = {
        "time_unknown": int((~known).sum()),
        "over_range_or_silent": int((known & bad_flags).sum()),
    }
    tm = t[usable] - 0.5 * rec.interval_s[usable]
    x = (tm - ship.reference_time) / _H
    k = rec.interval_counts[usable].astype(np.float64)
    return usable, tm, x, k, excluded


def analyse(rec: Records, ship: Shipment, t: np.ndarray) -> tuple[list[RuleResult], dict, dict]:
    nuc = nuclides.get(ship.nuclide)
    usable, tm, x, k, excluded = fit_inputs(rec, ship, t)
    n = int(usable.sum())
    summary: dict[str, float | None] = {
        "effective_half_life_h": None,
        "effective_half_life_unc_h": None,
        "expected_half_life_h": None,
        "decay_z": None,
    }
    plot: dict = {}
    evidence = {
        "points_used": n,
        "points_excluded": excluded,
        "nuclide": nuc.name,
        "half_life_source": nuc.half_life_source,
        "daughters_at_reference": ship.daughters,
        "method": "Poisson maximum likelihood on the raw interval counts, dead time and background",
    }
    name, title = "decay_consistency", "Decay consistency"
    if n < 3 or float(np.ptp(x)) <= 0 or k.sum() <= 0:
        return (
            [
                RuleResult(
                    name,
                    title,
                    UNKNOWN,
                    f"{n} usable record(s) with a known time: at least 3 over a time span, with counts, are needed",
                    _SRC,
                    evidence,
                )
            ],
            summary,
            plot,
        )

    sen = ship.sensor
    model = CountModel(
        rec.interval_s[usable], sen.calibration_cpm_per_usv_h, sen.background_usv_h, sen.dead_time_us * 1e-6
    )
    shape, notes = expected_dose_shape(ship, tm)
    if not np.all(shape > 0):
        return (
            [RuleResult(name, title, UNKNOWN, "no expected dose-rate curve: " + "; ".join(notes), _SRC, evidence)],
            summary,
            plot,
        )
    xbar = float(np.mean(x))
    xc = x - xbar
    lam_parent = nuc.decay_constant_per_s * _H
    # Expected: the amplitude of the expected curve fitted to the counts, then the exponential fit
    # to the expected counts of that curve (the value the fit tends to if the curve is right).
    ln_c, s_ln_c = fit_amplitude(shape, k, model)
    mu_exp, _ = model.mean(math.exp(ln_c) * shape)
    # Start at the curve's value at the mean time (exact for one nuclide: ln shape is linear in x).
    a0 = ln_c + float(np.mean(np.log(shape)))
    a_e, lam_exp, _, _, _ = poisson_exp_fit(xc, mu_exp, model, a0, lam_parent)
    a_f, lam_fit, cov, pearson, converged = poisson_exp_fit(xc, k, model, a_e, lam_exp)
    dof = n - 2
    red_chi2 = pearson / dof if dof > 0 else float("nan")
    birge = math.sqrt(red_chi2) if dof > 0 and red_chi2 > 1 else 1.0
    sb = math.sqrt(cov[1, 1]) if np.isfinite(cov[1, 1]) and cov[1, 1] > 0 else math.inf
    sb_scaled = sb * birge

    rel_unc_nuc = (nuc.half_life_unc_s / nuc.half_life_s) if nuc.half_life_unc_s else 0.0
    if not nuc.half_life_unc_s:
        notes.append(f"{nuc.name}: no half-life uncertainty in the evaluation; taken as 0")
    if not converged:
        notes.append("the likelihood fit did not converge")
    s_lam_exp = abs(lam_exp) * rel_unc_nuc
    s_total = math.hypot(sb_scaled, s_lam_exp)
    z = (lam_fit - lam_exp) / s_total if s_total > 0 and math.isfinite(s_total) else 0.0
    # Relative to the parent's decay constant: for a single nuclide that is lam_exp itself, and it
    # stays meaningful for a chain whose expected curve hardly decays (daughter ingrowth).
    rel = (lam_fit - lam_exp) / lam_parent

    t_half_exp = math.log(2) / lam_exp if lam_exp > 0 else math.inf
    t_half_fit = math.log(2) / lam_fit if lam_fit > 0 else math.inf
    t_half_unc = math.log(2) * sb_scaled / lam_fit**2 if lam_fit > 0 else math.inf
    summary.update(
        {
            "effective_half_life_h": t_half_fit if math.isfinite(t_half_fit) else None,
            "effective_half_life_unc_h": t_half_unc if math.isfinite(t_half_unc) else None,
            "expected_half_life_h": t_half_exp if math.isfinite(t_half_exp) else None,
            "decay_z": z,
        }
    )
    evidence.update(
        {
            "fit_decay_constant_per_h": lam_fit,
            "fit_decay_constant_unc_per_h": sb_scaled if math.isfinite(sb_scaled) else None,
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
            "counts": int(k.sum()),
            "notes": notes,
        }
    )

    # Curve for the report: the expected shape with its fitted amplitude; band = +-2 sigma of a
    # single reading at that rate (Poisson), combined with the amplitude uncertainty.
    plot = {
        "tm": tm,
        "ln_amp": ln_c,
        "s_ln_amp": s_ln_c * birge,
        "shape_fn": lambda tt: expected_dose_shape(ship, tt)[0],
        "counts_per_usv_h": float(np.median(model.dt)) * model.c,
    }

    tf = f"{t_half_fit:.4g} ± {t_half_unc:.2g} h" if math.isfinite(t_half_fit) else "no decay"
    detail = (
        f"effective half-life {tf}, expected {t_half_exp:.4g} h ({nuc.name}); "
        f"z = {z:+.2f}, {rel * 100:+.2f} % in decay constant, chi2/dof {red_chi2:.2f}, {n} records, "
        f"{int(k.sum())} counts"
    )
    if not converged or not math.isfinite(sb_scaled) or sb_scaled > REL_UNCERTAINTY_MAX * lam_parent:
        verdict = UNKNOWN
        unc = f"±{sb_scaled / lam_parent * 100:.0f} %" if math.isfinite(sb_scaled) else "unbounded"
        detail += (
            f"; the fit's uncertainty ({unc} of the decay constant) is too large to decide: record longer"
            if converged
            else "; the fit did not converge"
        )
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
        detail += "; counts scatter more than Poisson statistics allow: a step or drift?"
    return [RuleResult(name, title, verdict, detail, _SRC, evidence)], summary, plot
