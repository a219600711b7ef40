# Geiger-Mueller counting physics, shared by the firmware (alarms, live status) and the host
# (`isolog log dump` recomputes the same dose rate from the stored counts). MicroPython subset.
#
# Dead time, non-paralyzable model (Knoll, Radiation Detection and Measurement, 4th ed., ch. 4;
# docs/references.md#knoll): true rate n = m / (1 - m*tau) for observed rate m.
# The correction grows without bound as m*tau -> 1, where the tube saturates. Above
# OVER_RANGE_LOSS the reading is flagged over range and reported as a lower bound (never as a
# low dose rate): the correction factor is clamped at 1 / (1 - OVER_RANGE_LOSS).
try:
    from micropython import const
except ImportError:  # CPython: the host shares this file (package isolog_fw) and tests run it

    def const(__expr):  # positional-only, as MicroPython's (no `/` in its grammar)
        return __expr


# Fraction of time the tube is dead (m * tau) above which a reading is over range. At 0.5 the
# correction is x2; an SBM-20 (tau = 190 us) reaches it at ~158,000 cpm observed, i.e. ~2 mSv/h at
# 153.8 cpm per uSv/h: the III-YELLOW surface limit (docs/references.md#ssr-6), so the board flags what
# matters.
OVER_RANGE_LOSS = 0.5
# No pulse for this long is a sensor fault (a healthy tube at background, ~15 cpm, gives a pulse
# every few seconds; 10 minutes of silence has probability e^-150).
SILENT_AFTER_MS = const(600_000)


def true_rate_cps(interval_counts, interval_s, dead_time_s):
    """Dead-time corrected rate in counts per second, and whether it is over range.

    Returns (rate_cps, over_range). Over range: the loss fraction m*tau reached OVER_RANGE_LOSS;
    the rate returned is then the clamped lower bound."""
    if interval_s <= 0:
        raise ValueError("interval must be positive")
    m = interval_counts / interval_s
    loss = m * dead_time_s
    if loss >= OVER_RANGE_LOSS:
        return m / (1.0 - OVER_RANGE_LOSS), True
    return m / (1.0 - loss), False


def dose_rate_usv_h(rate_cps, cal_cpm_per_usv_h, background_usv_h):
    """Ambient dose-equivalent rate from a true count rate: calibration in cpm per uSv/h (for the
    calibration nuclide, see the shipment configuration), background subtracted, never negative."""
    d = rate_cps * 60.0 / cal_cpm_per_usv_h - background_usv_h
    return d if d > 0.0 else 0.0


def reading(interval_counts, interval_ms, cal_cpm_per_usv_h, dead_time_us, background_usv_h):
    """Dose rate for one logged interval: (dose_rate_usv_h, over_range)."""
    rate, over = true_rate_cps(interval_counts, interval_ms / 1000.0, dead_time_us * 1e-6)
    return dose_rate_usv_h(rate, cal_cpm_per_usv_h, background_usv_h), over
