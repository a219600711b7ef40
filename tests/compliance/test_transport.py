import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance_helpers import make_records, shipment_doc
from isolog import shipment
from isolog.compliance import check
from isolog.compliance.transport import required_category, transport_index


@pytest.mark.parametrize(
    "dose_1m_msv_h, ti",
    [
        (0.0113, 1.2),  # the regulation's own example (docs/references.md#ssr-6): TI 1.13 -> 1.2
        (0.003, 0.3),  # 0.3 x 100 must not become 30.1 through float noise: 0.3 stays 0.3
        (0.01, 1.0),
        (0.0005, 0.0),  # 0.05 -> 0
        (0.00051, 0.1),  # 0.051 -> rounded up to 0.1
        (0.0, 0.0),
        (0.1, 10.0),
        (0.10001, 10.1),
        (0.0123456, 1.3),
    ],
)
def test_transport_index(dose_1m_msv_h, ti):
    assert transport_index(dose_1m_msv_h) == ti


@given(st.integers(min_value=1, max_value=100_000))
def test_ti_of_exact_tenths_is_exact(k):
    # A dose rate whose TI is exactly k/10 must not be rounded up to the next tenth by float noise.
    assert transport_index(k / 10 / 100) == pytest.approx(k / 10)


@given(st.floats(min_value=0, max_value=1.0))
def test_ti_is_an_upper_bound_in_tenths(d):
    ti = transport_index(d)
    raw = d * 100
    assert round(ti * 10) == pytest.approx(ti * 10)
    if raw > 0.05:
        assert ti >= raw - 1e-9 and ti - raw < 0.1 + 1e-9


@pytest.mark.parametrize(
    "ti, surface, category",
    [
        (0.8, 0.6, "III-YELLOW"),  # 49 CFR 172.403(b) example: TI says II, surface says III: the higher wins
        (0.0, 0.005, "I-WHITE"),
        (0.0, 0.0051, "II-YELLOW"),
        (0.1, 0.001, "II-YELLOW"),
        (1.0, 0.5, "II-YELLOW"),
        (1.1, 0.1, "III-YELLOW"),
        (10.0, 2.0, "III-YELLOW"),
        (10.1, 1.0, "III-YELLOW (exclusive use)"),
        (1.0, 2.5, "III-YELLOW (exclusive use)"),
        (1.0, 10.5, None),
    ],
)
def test_required_category(ti, surface, category):
    assert required_category(ti, surface) == category


def _check(dose, **changes):
    ship = shipment.from_dict(shipment_doc(**changes))
    return check(make_records(dose=dose, n=60), ship)


def test_pass_ii_yellow():
    res = _check(50.0)  # 50 uSv/h surface, 2 uSv/h at 1 m -> TI 0.2, II-YELLOW
    assert res.rule("transport.transport_index").verdict == "pass"
    assert res.summary["transport_index"] == 0.2
    assert res.summary["required_category"] == "II-YELLOW"
    assert res.rule("transport.category").verdict == "pass"
    assert res.rule("transport.surface_dose_rate").verdict == "pass"


def test_missing_one_metre_factor_is_unknown_not_a_guess():
    res = _check(50.0, sensor__one_metre_factor=None)
    r = res.rule("transport.transport_index")
    assert r.verdict == "unknown" and "one_metre_factor" in r.detail
    assert res.summary["transport_index"] is None
    assert res.rule("transport.category").verdict == "unknown"
    assert res.exit_code == 1


def test_surface_limit():
    res = _check(2100.0, shipment__declared_category="III-YELLOW", sensor__one_metre_factor=0.001)
    assert res.rule("transport.surface_dose_rate").verdict == "fail"
    res = _check(
        2100.0,
        shipment__declared_category="III-YELLOW",
        shipment__exclusive_use=True,
        shipment__transport_mode="road",
        sensor__one_metre_factor=0.001,
    )
    assert res.rule("transport.surface_dose_rate").verdict == "warn"  # relies on the vehicle conditions
    assert res.rule("transport.category").verdict == "warn"


def test_declared_lower_than_required_fails():
    res = _check(600.0, sensor__one_metre_factor=8e-3 / 0.6)  # TI 0.8, 0.6 mSv/h surface
    assert res.summary["transport_index"] == 0.8
    assert res.summary["required_category"] == "III-YELLOW"
    r = res.rule("transport.category")
    assert r.verdict == "fail" and "lower than required" in r.detail


def test_declared_higher_warns():
    res = _check(1.0, shipment__declared_category="III-YELLOW")
    assert res.rule("transport.category").verdict == "warn"


def test_ti_over_10_needs_exclusive_use():
    res = _check(1500.0, sensor__one_metre_factor=0.1, shipment__declared_category="III-YELLOW")
    assert res.summary["transport_index"] == 15.0
    assert res.rule("transport.transport_index").verdict == "fail"


def test_excepted_package_limit():
    assert _check(4.0, shipment__declared_category="excepted").rule("transport.surface_dose_rate").verdict == "pass"
    r = _check(6.0, shipment__declared_category="excepted").rule("transport.surface_dose_rate")
    assert r.verdict == "fail" and "excepted" in r.detail


def test_over_range_gives_a_dead_time_corrected_lower_bound():
    dose = np.full(60, 50.0)
    dose[10] = np.nan
    ship = shipment.from_dict(shipment_doc())
    # 400,000 counts in 60 s: m = 6,667 cps, m x 190 us = 1.27 >= 0.5, over range. Non-paralyzable
    # dead time, clamped where the board clamps (loss 0.5): n >= m / (1 - 0.5) = 2 m = 800,000 cpm
    # -> 800,000 / 153.8 - 0.1 = 5201 uSv/h at least: above the 2 mSv/h limit.
    counts = np.full(60, 10_000)
    counts[10] = 400_000
    rec = make_records(dose=dose, counts=counts, flags={"over_range": [10]})
    res = check(rec, ship)
    r = res.rule("transport.surface_dose_rate")
    assert r.verdict == "fail" and "at least" in r.detail
    assert r.evidence["over_range_lower_bound_usv_h"] == pytest.approx(2 * 400_000 / 153.8 - 0.1)
    # A lower bound under the limit decides nothing: unknown, never a pass or warn.
    counts[10] = 1_000
    res = check(make_records(dose=dose, counts=counts, flags={"over_range": [10]}), ship)
    for name in ("transport.surface_dose_rate", "transport.transport_index", "transport.category"):
        assert res.rule(name).verdict == "unknown", name
    assert res.exit_code == 1


def _observed_counts(true_usv_h, cal=153.8, bg=0.1, tau_s=190e-6, interval_s=60.0):
    """Counts a non-paralyzable tube gives in an interval at a true dose rate (Knoll ch. 4:
    m = n / (1 + n tau))."""
    n = (true_usv_h + bg) * cal / 60.0
    return int(n / (1.0 + n * tau_s) * interval_s)


def test_saturation_near_the_limit_fails_not_warns():
    # A reported case: valid readings climb to 1,900 uSv/h, then the tube saturates at a true
    # 2,100 uSv/h. Raw counts alone bound the rate at about half the last reading (the old
    # engine then took the valid maximum: warn, exit 0). With the dead-time correction the bound
    # is 2 m: by hand, n = 2100.1 x 153.8 / 60 = 5383 cps, m = n / (1 + n tau) = 2661 cps,
    # 2 m = 5322 cps = 2076 uSv/h > 2000: fail.
    readings = np.linspace(1500.0, 1900.0, 50)
    dose = np.concatenate([readings, np.full(10, np.nan)])
    counts = np.concatenate([[_observed_counts(d) for d in readings], np.full(10, _observed_counts(2100.0))])
    rec = make_records(dose=dose, counts=counts, flags={"over_range": np.arange(50, 60)})
    ship = shipment.from_dict(shipment_doc(shipment__declared_category="III-YELLOW", sensor__one_metre_factor=0.001))
    res = check(rec, ship)
    m = _observed_counts(2100.0) / 60.0
    assert m * 190e-6 >= 0.5  # really over range for the board
    bound = 2 * m * 60 / 153.8 - 0.1
    assert bound == pytest.approx(2076, abs=2)
    r = res.rule("transport.surface_dose_rate")
    assert r.verdict == "fail" and r.evidence["over_range_lower_bound_usv_h"] == pytest.approx(bound)
    assert res.exit_code == 1


def test_saturation_below_the_limit_is_unknown():
    # A slow tube (tau = 1 ms) saturates at n tau = 1, i.e. 1000 cps = 390 uSv/h: valid readings
    # of 300 uSv/h, then over range at a true 500 uSv/h. The bound (2 m = 2 x 562 cps = 438
    # uSv/h) is under the 2 mSv/h limit: the maximum is not known, so no rule may pass.
    tau = 1e-3
    dose = np.concatenate([np.full(50, 300.0), np.full(10, np.nan)])
    counts = np.concatenate(
        [np.full(50, _observed_counts(300.0, tau_s=tau)), np.full(10, _observed_counts(500.0, tau_s=tau))]
    )
    rec = make_records(dose=dose, counts=counts, flags={"over_range": np.arange(50, 60)})
    ship = shipment.from_dict(shipment_doc(sensor__dead_time_us=1000.0, shipment__declared_category="III-YELLOW"))
    res = check(rec, ship)
    m = _observed_counts(500.0, tau_s=tau) / 60.0
    bound = 2 * m * 60 / 153.8 - 0.1
    r = res.rule("transport.surface_dose_rate")
    assert r.evidence["over_range_lower_bound_usv_h"] == pytest.approx(bound)
    assert r.verdict == "unknown" and "over range" in r.detail
    assert res.rule("transport.transport_index").verdict == "unknown"
    assert res.rule("transport.category").verdict == "unknown"
    # The bound already asks for more than II-YELLOW: at 1 m it is 0.04 x 438 = 17.5 uSv/h, TI
    # 1.753 -> 1.8 > 1: III-YELLOW at least. Declared II-YELLOW is too low whatever the maximum.
    assert transport_index(bound * 0.04 / 1000) == 1.8
    ship2 = shipment.from_dict(shipment_doc(sensor__dead_time_us=1000.0))
    assert check(rec, ship2).rule("transport.category").verdict == "fail"


def test_no_readings_unknown():
    res = _check(math.nan)
    assert res.rule("transport.surface_dose_rate").verdict == "unknown"
    assert res.summary["max_dose_rate_usv_h"] is None


def test_missing_readings_downgrade_pass_to_warn():
    dose = np.full(60, 50.0)
    dose[5:8] = np.nan
    ship = shipment.from_dict(shipment_doc())
    res = check(make_records(dose=dose, flags={"gm_silent": [5, 6, 7]}), ship)
    r = res.rule("transport.surface_dose_rate")
    assert r.verdict == "warn" and "without a dose reading" in r.detail


# --- exclusive use and the mode of transport ------------------------------------------------------
# SSR-6 para 526/527 [R], 49 CFR 173.441 [V]: 2 mSv/h on the surface and TI 10 for every package;
# 10 mSv/h (and TI > 10) only under exclusive use by road or rail with the vehicle conditions, by
# sea or air only under special arrangement (whose approval sets the limits).


def _excl(dose, **changes):
    base = dict(shipment__declared_category="III-YELLOW", shipment__exclusive_use=True, sensor__one_metre_factor=0.001)
    base.update(changes)
    return _check(dose, **base)


@pytest.mark.parametrize(
    "mode, special, surface_verdict",
    [
        ("road", False, "warn"),  # 2.1 mSv/h <= 10 mSv/h, vehicle conditions noted
        ("rail", False, "warn"),
        ("sea", False, "fail"),  # 2.1 mSv/h > 2 mSv/h: no special arrangement
        ("air", False, "fail"),
        ("sea", True, "unknown"),  # the approval's limits are not known to isolog
        ("air", True, "unknown"),
        (None, False, "unknown"),  # mode not given: cannot tell which limit applies
    ],
)
def test_surface_limit_above_2_msv_h_depends_on_the_mode(mode, special, surface_verdict):
    res = _excl(2100.0, shipment__transport_mode=mode, shipment__special_arrangement=special)
    r = res.rule("transport.surface_dose_rate")
    assert r.verdict == surface_verdict, r.detail
    assert res.rule("transport.category").verdict == surface_verdict
    if mode is None:
        assert "no transport_mode" in r.detail


def test_above_10_msv_h_fails_even_by_road():
    assert _excl(10_500.0, shipment__transport_mode="road").rule("transport.surface_dose_rate").verdict == "fail"


def test_below_2_msv_h_exclusive_use_needs_no_mode():
    # 1.5 mSv/h surface, TI 0.2: the package limits hold whatever the mode.
    res = _excl(1500.0, shipment__transport_mode=None)
    assert res.rule("transport.surface_dose_rate").verdict == "pass"
    assert res.rule("transport.transport_index").verdict == "pass"


@pytest.mark.parametrize(
    "changes, verdict",
    [
        ({"shipment__exclusive_use": False}, "fail"),
        ({"shipment__transport_mode": "road"}, "warn"),
        ({"shipment__transport_mode": "rail"}, "warn"),
        ({"shipment__transport_mode": "air"}, "fail"),
        ({"shipment__transport_mode": "sea", "shipment__special_arrangement": True}, "unknown"),
        ({}, "unknown"),
    ],
)
def test_ti_above_10(changes, verdict):
    # 1,500 uSv/h x 0.1 = 150 uSv/h = 0.15 mSv/h at 1 m: TI 15 > 10.
    base = dict(shipment__declared_category="III-YELLOW", shipment__exclusive_use=True, sensor__one_metre_factor=0.1)
    base.update(changes)
    res = _check(1500.0, **base)
    assert res.summary["transport_index"] == 15.0
    assert res.rule("transport.transport_index").verdict == verdict


# --- excepted packages: activity ------------------------------------------------------------------
# Limits by hand from 49 CFR 173.425 Table 4 (limited quantity package limits) [V], the mirror of
# SSR-6 Table 4 (materials), and Lu-177 A1 = 30 TBq, A2 = 0.7 TBq (49 CFR 173.435) [V]:
#   liquid 1e-4 x 0.7 TBq = 70 MBq; solid and gas 1e-3 x 0.7 TBq = 700 MBq;
#   special form 1e-3 x 30 TBq = 30 GBq.


def _excepted(activity, form, **changes):
    doc = dict(
        shipment__declared_category="excepted",
        shipment__activity=activity,
        shipment__prescribed_activity=None,
        shipment__physical_form=form,
    )
    doc.update(changes)
    return _check(1.0, **doc)  # 1 uSv/h on the surface: within 5 uSv/h


@pytest.mark.parametrize(
    "activity, form, verdict",
    [
        ("69MBq", "liquid", "pass"),
        ("71MBq", "liquid", "fail"),
        ("690MBq", "solid", "pass"),
        ("710MBq", "solid", "fail"),
        ("710MBq", "gas", "fail"),
        ("29GBq", "special_form", "pass"),
        ("31GBq", "special_form", "fail"),
    ],
)
def test_excepted_activity_limits(activity, form, verdict):
    res = _excepted(activity, form)
    assert res.rule("transport.excepted_activity").verdict == verdict
    assert res.rule("transport.category").verdict == verdict
    assert res.rule("transport.surface_dose_rate").verdict == "pass"


def test_excepted_limit_values_by_hand():
    ev = _excepted("1MBq", "liquid").rule("transport.excepted_activity").evidence
    assert ev["limit_bq"] == pytest.approx(70e6) and ev["limit"] == "0.0001 A2"
    ev = _excepted("1MBq", "special_form").rule("transport.excepted_activity").evidence
    assert ev["limit_bq"] == pytest.approx(30e9)


def test_excepted_without_physical_form_is_unknown():
    r = _excepted("1MBq", None).rule("transport.excepted_activity")
    assert r.verdict == "unknown" and "physical_form" in r.detail


def test_excepted_activity_at_the_start_of_transport():
    # Reference time 48 h after logging starts: the package held more then. By hand,
    # A = 60 MBq x 2^(48 h / 159.4632 h) = 73.9 MBq > 70 MBq (liquid): fail, though 60 < 70.
    res = _excepted("60MBq", "liquid", shipment__reference_time="2026-11-28T08:00:00Z")
    r = res.rule("transport.excepted_activity")
    assert r.evidence["activity_bq"] == pytest.approx(60e6 * 2 ** (48 / (6.6443 * 24)), rel=1e-9)
    assert r.verdict == "fail"


def test_an_unverified_a_value_never_passes(monkeypatch):
    import dataclasses

    from isolog import nuclides

    lu = nuclides.NUCLIDES["Lu-177"]
    monkeypatch.setitem(nuclides.NUCLIDES, "Lu-177", dataclasses.replace(lu, a_values_verified=False))
    r = _excepted("1MBq", "liquid").rule("transport.excepted_activity")
    assert r.verdict == "unknown" and "not verified" in r.detail


def test_nuclides_a_values_match_49_cfr_173_435():
    # Read in 49 CFR 173.435 (2015 ed.): A1 / A2 in TBq.
    from isolog import nuclides

    table = {
        "Lu-177": (30, 0.7),
        "Mo-99": (1, 0.6),
        "Tc-99m": (10, 4),
        "Ga-68": (0.5, 0.5),
        "Ge-68": (0.5, 0.5),
        "I-131": (3, 0.7),
        "F-18": (1, 0.6),
        "Y-90": (0.3, 0.3),
        "Ac-225": (0.8, 6e-3),
    }
    for name, (a1, a2) in table.items():
        n = nuclides.get(name)
        assert (n.a1_tbq, n.a2_tbq) == (a1, a2) and n.a_values_verified, name
    assert nuclides.get("Lu-177m").a2_tbq is None  # not in isolog's table: excepted limit unknown
