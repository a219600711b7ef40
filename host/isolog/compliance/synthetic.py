"""Synthetic shipment records with the board's counting physics, for tests, examples and bench.

Counts are Poisson draws of the observed rate of a non-paralyzable GM tube (docs/references.md#knoll;
the same model as firmware/counting.py), and readings are computed from them exactly as the board
does: dead-time corrected, calibrated, background subtracted, clamped at zero, null and flagged
over range when the dead fraction reaches 0.5.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from isolog import decay, nuclides
from isolog.compliance.records import FLAG_BIT, Records
from isolog.shipment import Shipment

# Same threshold as firmware/counting.py OVER_RANGE_LOSS (dead fraction at which a reading is over
# range); repeated here so the host engine does not import firmware code.
OVER_RANGE_LOSS = 0.5


def dose_shape(nuclide: str, daughters: str, t_rel_s: np.ndarray) -> np.ndarray:
    """Dose rate relative to its value at t_rel_s = 0: sum of dose-rate constant x activity."""
    t = np.concatenate(([0.0], np.asarray(t_rel_s, dtype=np.float64)))
    acts = decay.decay(nuclide, 1.0, t, daughters=daughters)
    if len(acts) == 1:
        total = next(iter(acts.values()))
    else:
        total = np.zeros_like(t)
        for name, a in acts.items():
            g = nuclides.get(name).gamma_usv_h_per_mbq_1m
            if g is not None:
                total += g * a
    return total[1:] / total[0]


def generate(
    ship: Shipment,
    duration_s: float,
    reading_at_reference_usv_h: float,
    *,
    start: float | None = None,
    interval_s: float | None = None,
    temperature_c: float | Callable[[np.ndarray], np.ndarray] = 5.0,
    nuclide: str | None = None,
    seed: int = 1,
    device: str = "0123456789abcdef",
) -> Records:
    """Records of one boot from `start` (default: the shipment's reference time) for duration_s.
    `nuclide` overrides the shipment's (to simulate a wrong nuclide)."""
    rng = np.random.default_rng(seed)
    step = float(interval_s or ship.interval_s)
    t0 = ship.reference_time if start is None else start
    n = int(duration_s // step)
    k = np.arange(1, n + 1, dtype=np.float64)
    t = t0 + k * step
    sen = ship.sensor
    shape = dose_shape(nuclide or ship.nuclide, ship.daughters, t - 0.5 * step - ship.reference_time)
    net = reading_at_reference_usv_h * shape
    true_cps = (net + sen.background_usv_h) * sen.calibration_cpm_per_usv_h / 60.0
    tau = sen.dead_time_us * 1e-6
    observed_cps = true_cps / (1.0 + true_cps * tau)
    counts = rng.poisson(observed_cps * step).astype(np.int64)
    m = counts / step
    loss = m * tau
    over = loss >= OVER_RANGE_LOSS
    corrected = m / (1.0 - np.minimum(loss, OVER_RANGE_LOSS))
    reading = np.maximum(corrected * 60.0 / sen.calibration_cpm_per_usv_h - sen.background_usv_h, 0.0)
    reading[over] = np.nan
    if callable(temperature_c):
        temp = np.asarray(temperature_c(t - t0), dtype=np.float64)
    else:
        temp = np.full(n, float(temperature_c))
    temp = np.round(temp, 2)  # the board stores centi-degrees
    flags = np.full(n, FLAG_BIT["time_valid"], dtype=np.uint32)
    flags[over] |= FLAG_BIT["over_range"]
    if n:
        flags[0] |= FLAG_BIT["boot"]
    return Records(
        device=device,
        seq=np.arange(n, dtype=np.int64),
        boot=np.ones(n, dtype=np.int64),
        time_s=t,
        uptime_s=k * step,
        counts=np.cumsum(counts),
        interval_s=np.full(n, step),
        interval_counts=counts,
        dose_rate_usv_h=reading,
        temperature_c=temp,
        flags=flags,
        source="<synthetic>",
    )
