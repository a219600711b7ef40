import numpy as np
import pytest
from compliance_helpers import make_records, shipment_doc
from hypothesis import given
from hypothesis import strategies as st

from isolog import shipment
from isolog.compliance import check
from isolog.compliance.temperature import mean_kinetic_temperature


def test_mkt_oracle():
    # domain.md s.4 [C]: readings 4, 4, 4, 4, 16 degC -> MKT 8.109 degC (dH/R = 10,000 K).
    assert mean_kinetic_temperature([4, 4, 4, 4, 16]) == pytest.approx(8.109, abs=5e-4)


def test_mkt_time_weighted():
    # 4 degC standing for 4 h and 16 degC for 1 h is the same as the five equal readings.
    assert mean_kinetic_temperature([4, 16], [4 * 3600, 3600]) == pytest.approx(8.109, abs=5e-4)


@given(st.lists(st.floats(min_value=-30, max_value=60), min_size=1, max_size=50))
def test_mkt_between_mean_and_max(temps):
    t = np.array(temps)
    mkt = mean_kinetic_temperature(t)
    assert t.mean() - 1e-6 <= mkt <= t.max() + 1e-6


def test_mkt_of_constant_is_constant():
    assert mean_kinetic_temperature([21.5] * 7) == pytest.approx(21.5, abs=1e-9)


def _rules(*rules):
    doc = shipment_doc()
    doc["temperature"]["rules"] = list(rules)
    return shipment.from_dict(doc)


HIGH_SINGLE = {"name": "high", "threshold_c": 25.0, "direction": "above", "allowed": "30min", "type": "single"}
HIGH_CUMUL = {"name": "warm", "threshold_c": 25.0, "direction": "above", "allowed": "30min", "type": "cumulative"}


def _temps(pattern):
    """Minutes of temperature: list of (minutes, value)."""
    return np.concatenate([np.full(m, v, dtype=float) for m, v in pattern])


def test_single_event_resets_cumulative_adds_up():
    # Two 20-minute excursions: each under 30 min (single passes), 40 min in all (cumulative fails).
    temp = _temps([(60, 20), (20, 27), (10, 20), (20, 27), (60, 20)])
    res = check(make_records(temp=temp), _rules(HIGH_SINGLE, HIGH_CUMUL))
    single, cumul = res.rule("temperature.high"), res.rule("temperature.warm")
    assert single.verdict == "pass" and single.evidence["longest_excursion_s"] == 1200
    assert cumul.verdict == "fail" and cumul.evidence["time_beyond_s"] == 2400
    assert single.evidence["excursions"]["count"] == 2


def test_single_event_over_allowed_fails():
    temp = _temps([(60, 20), (31, 27), (60, 20)])
    res = check(make_records(temp=temp), _rules(HIGH_SINGLE))
    r = res.rule("temperature.high")
    assert r.verdict == "fail"
    assert r.evidence["excursions"]["items"][0]["duration_s"] == 31 * 60
    assert r.evidence["excursions"]["items"][0]["start"] == "2026-11-26T09:00:00Z"
    assert res.exit_code == 1


def test_exactly_allowed_passes_and_threshold_is_in_range():
    temp = _temps([(60, 20), (30, 27), (60, 25.0)])
    assert check(make_records(temp=temp), _rules(HIGH_SINGLE)).rule("temperature.high").verdict == "pass"


def test_freeze_allowed_zero():
    rule = {"name": "freeze", "threshold_c": 0.0, "direction": "below", "allowed": 0, "type": "single"}
    temp = _temps([(60, 4), (1, -0.5), (60, 4)])
    r = check(make_records(temp=temp), _rules(rule)).rule("temperature.freeze")
    assert r.verdict == "fail"


def test_missing_readings_neither_reset_nor_add_and_warn():
    temp = _temps([(60, 20), (20, 27), (5, np.nan), (20, 27), (60, 20)])
    res = check(make_records(temp=temp, flags={"temp_fault": np.isnan(temp)}), _rules(HIGH_SINGLE))
    r = res.rule("temperature.high")
    # The 5 unknown minutes do not reset the single-event timer: 40 min counted, fail.
    assert r.verdict == "fail" and r.evidence["longest_excursion_s"] == 2400
    temp = _temps([(60, 20), (5, np.nan), (60, 20)])
    r = check(make_records(temp=temp), _rules(HIGH_SINGLE)).rule("temperature.high")
    assert r.verdict == "warn" and "without a temperature" in r.detail


def test_summary_statistics():
    temp = _temps([(240, 4), (60, 16)])
    res = check(make_records(temp=temp), _rules(HIGH_SINGLE))
    s = res.summary
    assert s["temperature_min_c"] == 4 and s["temperature_max_c"] == 16
    assert s["temperature_mean_c"] == pytest.approx(6.4)
    assert s["mkt_c"] == pytest.approx(8.109, abs=5e-4)


def test_uneven_intervals_weight_by_time():
    # Two readings: 4 degC for 4 h, 16 degC for 1 h (the board logged slower during the first).
    rec = make_records(temp=np.array([4.0, 16.0]), interval_s=np.array([4 * 3600.0, 3600.0]))
    res = check(rec, _rules(HIGH_SINGLE))
    assert res.summary["mkt_c"] == pytest.approx(8.109, abs=5e-4)


def test_no_rules_is_not_applicable():
    doc = shipment_doc()
    del doc["temperature"]
    res = check(make_records(temp=_temps([(60, 5)])), shipment.from_dict(doc))
    assert res.rule("temperature").verdict == "n/a"
    assert res.summary["mkt_c"] == pytest.approx(5.0)
