import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance_helpers import make_records, shipment_doc
from isolog import shipment
from isolog.compliance import check
from isolog.compliance.temperature import mean_kinetic_temperature


def test_mkt_oracle():
    # docs/references.md#usp-1160 [C]: readings 4, 4, 4, 4, 16 degC -> MKT 8.109 degC (dH/R = 10,000 K).
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


def test_missing_readings_are_unknown_time():
    temp = _temps([(60, 20), (20, 27), (5, np.nan), (20, 27), (60, 20)])
    res = check(make_records(temp=temp, flags={"temp_fault": np.isnan(temp)}), _rules(HIGH_SINGLE))
    r = res.rule("temperature.high")
    # The readings show two 20-minute excursions (the 5 unknown minutes may have been in range: no
    # fail); joined by those 5 minutes they may have been one of 20 + 5 + 20 = 45 min > 30: unknown.
    assert r.verdict == "unknown" and r.evidence["longest_excursion_s"] == 20 * 60
    assert r.evidence["possible_beyond_s"] == 45 * 60
    assert "1 record(s) without a temperature" not in r.detail and "5 record(s) without a temperature" in r.detail
    temp = _temps([(60, 20), (5, np.nan), (60, 20)])
    r = check(make_records(temp=temp), _rules(HIGH_SINGLE)).rule("temperature.high")
    assert r.verdict == "warn" and "without a temperature" in r.detail  # 5 min could not exceed 30


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


# --- time without records: unknown temperature, never taken as in range ---------------------------

HIGH_SINGLE_15 = dict(HIGH_SINGLE, allowed="15min")


def _with_power_cuts(rec, cuts):
    """The logger lost power before record index i for cuts[i] seconds: later records shift by the
    cut, a new boot starts there (uptime restarts, flag boot), the clock stays valid (RTC backup)."""
    from isolog.compliance.records import FLAG_BIT

    for i, gap in sorted(cuts.items()):
        rec.time_s[i:] += gap
        rec.boot[i:] += 1
        rec.uptime_s[i:] -= rec.uptime_s[i - 1]
        rec.flags[i] |= FLAG_BIT["boot"]
    return rec


def test_power_cuts_through_a_warm_hour_are_unknown_not_warn():
    # A reported case: the battery pulled for 14 minutes at a time through a warm hour. Readings:
    # 60 min at 20 C, then four 1-minute readings at 27 C with 14-minute cuts between them, then
    # 60 min at 20 C. By hand: the readings show 1-minute excursions only (no fail), but the
    # product may have been above 25 C from the first warm reading to the last without
    # interruption: 4 x 1 min + 3 x 14 min = 46 min > 30 min allowed: unknown.
    temp = _temps([(60, 20), (1, 27), (1, 27), (1, 27), (1, 27), (60, 20)])
    rec = _with_power_cuts(make_records(temp=temp), {61: 14 * 60, 62: 14 * 60, 63: 14 * 60})
    res = check(rec, _rules(HIGH_SINGLE, HIGH_CUMUL))
    single, cumul = res.rule("temperature.high"), res.rule("temperature.warm")
    assert single.verdict == "unknown" and cumul.verdict == "unknown"
    assert single.evidence["longest_excursion_s"] == 60
    assert single.evidence["possible_beyond_s"] == (4 * 1 + 3 * 14) * 60
    # The gaps are named: how long and from when (the first cut starts after the record at 61 min).
    assert "3 gap(s) without records" in single.detail and "14min from 2026-11-26T09:01:00Z" in single.detail
    assert res.exit_code == 1


def test_a_gap_far_from_excursions_counts_for_cumulative_only():
    # 20 min at 27 C (under both 30-min allowances), and much later a 15-min power cut at 20 C.
    # Single: the cut is not next to the excursion; on its own 15 min < 30: warn (noted).
    # Cumulative: 20 + 15 = 35 min > 30 may have been above 25 C in all: unknown.
    temp = _temps([(30, 20), (20, 27), (120, 20), (60, 20)])
    rec = _with_power_cuts(make_records(temp=temp), {170: 15 * 60})
    res = check(rec, _rules(HIGH_SINGLE, HIGH_CUMUL))
    assert res.rule("temperature.high").verdict == "warn"
    assert res.rule("temperature.high").evidence["possible_beyond_s"] == 20 * 60
    cumul = res.rule("temperature.warm")
    assert cumul.verdict == "unknown" and cumul.evidence["possible_beyond_s"] == 35 * 60


def test_a_gap_alone_longer_than_the_allowance_is_unknown():
    # All readings at 5 C, one 20-minute cut; a 15-minute single rule: the cut alone could hold
    # 20 min > 15 min above the threshold. A 30-minute rule: 20 < 30, warn.
    rec = _with_power_cuts(make_records(temp=_temps([(120, 5)])), {60: 20 * 60})
    res = check(rec, _rules(HIGH_SINGLE_15, dict(HIGH_CUMUL, allowed="30min")))
    assert res.rule("temperature.high").verdict == "unknown"
    assert res.rule("temperature.warm").verdict == "warn"


def test_known_excursion_still_fails_across_gaps():
    # 31 min above 25 C shown by the readings fails whatever the gaps elsewhere.
    temp = _temps([(60, 20), (31, 27), (60, 20)])
    rec = _with_power_cuts(make_records(temp=temp), {130: 3600})
    assert check(rec, _rules(HIGH_SINGLE)).rule("temperature.high").verdict == "fail"


def test_reboot_without_clock_is_a_gap_of_unknown_length():
    # The second boot never got a valid clock: how long the logger was off is unknown, so any
    # finite allowance could have been exceeded during it.
    rec = make_records(temp=_temps([(120, 5)]))
    rec.boot[60:] = 2
    rec.time_s[60:] = np.nan
    r = check(rec, _rules(HIGH_SINGLE)).rule("temperature.high")
    assert r.verdict == "unknown" and "unknown length" in r.detail
    assert r.evidence["possible_beyond_s"] is None  # unbounded


def test_log_cut_during_an_excursion_is_unknown_when_records_are_known_missing():
    # The log ends 10 minutes into an excursion and the source says the shipment's records go on
    # (they are missing): the excursion may have lasted any time after: unknown, not warn.
    from isolog.compliance import Verification

    temp = _temps([(60, 20), (10, 27)])
    rec = make_records(temp=temp)
    ver = Verification(method="mac_chain", verified=70, key="device_key", expected_first_seq=0, expected_end_seq=200)
    res = check(rec, _rules(HIGH_SINGLE), ver)
    r = res.rule("temperature.high")
    assert r.verdict == "unknown" and "records missing after seq 69" in r.detail
    assert res.rule("data_integrity").verdict == "fail"
