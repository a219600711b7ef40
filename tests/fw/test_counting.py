# Counting physics: oracles from docs/references.md#knoll (dead time) and #gm-tubes.
import counting
from fwcheck import close, raises

SBM20_TAU_S = 190e-6


def test_dead_time_oracles_sbm20():
    # 10,000 cpm observed -> 10,327 cpm true; 60,000 -> 74,074 (non-paralyzable, tau = 190 us)
    rate, over = counting.true_rate_cps(10000, 60.0, SBM20_TAU_S)
    assert round(rate * 60) == 10327 and not over
    rate, over = counting.true_rate_cps(60000, 60.0, SBM20_TAU_S)
    assert round(rate * 60) == 74074 and not over


def test_no_dead_time_is_identity():
    rate, over = counting.true_rate_cps(600, 60.0, 0.0)
    assert rate == 10.0 and not over


def test_over_range_is_flagged_and_never_low():
    # Observed rate at which half of the time is dead: the correction is clamped at x2.
    m_cps = counting.OVER_RANGE_LOSS / SBM20_TAU_S
    below, over_below = counting.true_rate_cps(int(m_cps * 0.99 * 60), 60.0, SBM20_TAU_S)
    at, over_at = counting.true_rate_cps(int(m_cps * 60) + 1, 60.0, SBM20_TAU_S)
    sat, over_sat = counting.true_rate_cps(int(60 / SBM20_TAU_S), 60.0, SBM20_TAU_S)
    assert not over_below and over_at and over_sat
    assert sat >= at >= below * 0.99  # a saturating tube never reads lower than before


def test_dose_rate_conversion():
    # 153.8 cpm per uSv/h (GQ convention): 1538 cpm is 10 uSv/h, minus 0.1 background
    assert close(counting.dose_rate_usv_h(1538 / 60, 153.8, 0.1), 9.9, rel=1e-12)
    assert counting.dose_rate_usv_h(0.1, 153.8, 0.1) == 0.0  # never negative


def test_reading_combines_both():
    dose, over = counting.reading(1538, 60000, 153.8, 0.0, 0.0)
    assert close(dose, 10.0, rel=1e-12) and not over


def test_rejects_empty_interval():
    raises(ValueError, counting.true_rate_cps, 10, 0.0, SBM20_TAU_S)
