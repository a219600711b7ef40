import numpy as np
import pytest
from compliance_helpers import shipment_doc

from isolog import shipment
from isolog.compliance import check, synthetic
from isolog.compliance.decay_consistency import weighted_line


def _ship(**changes):
    return shipment.from_dict(shipment_doc(**changes))


def test_weighted_line_recovers_slope():
    x = np.linspace(0, 10, 50)
    a, b, sb, chi2, _ = weighted_line(x, 2 - 0.3 * x, np.ones(50))
    assert b == pytest.approx(-0.3) and a == pytest.approx(2) and chi2 == pytest.approx(0, abs=1e-20)


def test_lu177_consistent():
    ship = _ship()
    res = check(synthetic.generate(ship, 70 * 3600, 60.0, seed=3), ship)
    r = res.rule("decay_consistency")
    assert r.verdict == "pass"
    assert abs(r.evidence["z"]) < 3
    # Lu-177: 6.6443 d = 159.46 h; 4200 readings of ~9000 counts pin it to well under 1 %.
    assert res.summary["effective_half_life_h"] == pytest.approx(159.46, rel=0.01)
    assert res.summary["expected_half_life_h"] == pytest.approx(159.4632, rel=1e-6)


def test_wrong_nuclide_fails():
    ship = _ship()  # declared Lu-177, but I-131 (8.03 d) is in the box
    res = check(synthetic.generate(ship, 70 * 3600, 60.0, nuclide="I-131", seed=4), ship)
    r = res.rule("decay_consistency")
    assert r.verdict == "fail" and r.evidence["z"] < -3  # decays slower than Lu-177
    assert res.summary["effective_half_life_h"] == pytest.approx(8.0252 * 24, rel=0.02)


def test_too_short_to_decide():
    ship = _ship()
    res = check(synthetic.generate(ship, 1800, 60.0, seed=5), ship)
    assert res.rule("decay_consistency").verdict == "unknown"


def test_chain_expected_from_equilibrium():
    ship = _ship(shipment__nuclide="Mo-99", shipment__activity="10GBq", shipment__prescribed_activity=None,
                 shipment__expiry_time=None)
    res = check(synthetic.generate(ship, 48 * 3600, 60.0, seed=6), ship)
    r = res.rule("decay_consistency")
    assert r.verdict == "pass"
    # Tc-99m in transient equilibrium decays with Mo-99: the expected effective half-life is Mo-99's.
    assert res.summary["expected_half_life_h"] == pytest.approx(65.924, rel=1e-3)


def test_step_in_dose_rate_is_flagged():
    ship = _ship()
    rec = synthetic.generate(ship, 70 * 3600, 60.0, seed=7)
    # Shielding lost halfway: the reading doubles (Poisson noise aside).
    rec.dose_rate_usv_h[2100:] *= 2
    r = check(rec, ship).rule("decay_consistency")
    assert r.verdict in ("warn", "fail")


def test_records_without_time_are_placed_within_their_boot():
    ship = _ship()
    rec = synthetic.generate(ship, 70 * 3600, 60.0, seed=8)
    rec.time_s[:100] = np.nan  # clock set only at record 100 of the same boot
    res = check(rec, ship)
    ev = res.rule("data_integrity").evidence
    assert ev["time_null"] == {"records": 100, "placed_from_uptime": 100, "unplaced": 0}
    assert res.rule("decay_consistency").evidence["points_used"] == len(rec)
    np.testing.assert_allclose(res.series["timebase"].t[:100], ship.reference_time + 60.0 * np.arange(1, 101))
