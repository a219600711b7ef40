import numpy as np

from compliance_helpers import make_records, shipment_doc
from isolog import shipment
from isolog.compliance import check


def _ship():
    return shipment.from_dict(shipment_doc())


def test_clean_records_pass():
    r = check(make_records(n=120), _ship()).rule("data_integrity")
    assert r.verdict == "pass"


def test_seq_gap_fails():
    rec = make_records(n=120)
    rec.seq[60:] += 5
    r = check(rec, _ship()).rule("data_integrity")
    assert r.verdict == "fail"
    assert r.evidence["seq_gaps"]["items"][0] == {
        "after_seq": 59,
        "before_seq": 65,
        "missing": 5,
        "at": "2026-11-26T09:01:00Z",
    }


def test_time_gap_warns_and_other_rules_say_so():
    rec = make_records(n=120)
    rec.time_s[60:] += 3600  # an hour with no records (power off), same seq run
    rec.boot[60:] = 2
    rec.uptime_s[60:] -= rec.uptime_s[59]
    res = check(rec, _ship())
    r = res.rule("data_integrity")
    assert r.verdict == "warn"
    assert r.evidence["time_gaps"]["items"][0]["duration_s"] == 3600
    assert r.evidence["reboots"]["count"] == 1
    assert res.summary["uncovered_s"] == 3600
    assert res.rule("transport.surface_dose_rate").verdict == "warn"
    assert "without records" in res.rule("temperature.high").detail


def test_unplaced_records_are_reported():
    rec = make_records(n=120)
    rec.boot[60:] = 2
    rec.time_s[60:] = np.nan  # second boot never got a valid clock
    res = check(rec, _ship())
    r = res.rule("data_integrity")
    assert r.verdict == "warn"
    assert r.evidence["time_null"]["unplaced"] == 60
    assert "cannot be placed in time" in r.detail
    assert res.rule("decay_consistency").evidence["points_excluded"]["time_unknown"] == 60


def test_sensor_faults_listed():
    dose = np.full(120, 5.0)
    dose[10:20] = np.nan
    rec = make_records(dose=dose, flags={"gm_silent": np.arange(10, 20), "low_battery": [119]})
    r = check(rec, _ship()).rule("data_integrity")
    assert r.verdict == "warn"
    assert r.evidence["gm_silent"]["records"] == 10
    assert r.evidence["gm_silent"]["items"][0]["seq"] == [10, 19]
    assert any("low battery" in p for p in r.evidence["problems"])


def test_data_dropped_fails():
    rec = make_records(n=10, flags={"data_dropped": [5]})
    assert check(rec, _ship()).rule("data_integrity").verdict == "fail"


def test_clock_step_back_warns():
    rec = make_records(n=10)
    rec.time_s[5:] -= 600
    r = check(rec, _ship()).rule("data_integrity")
    assert r.verdict == "warn" and r.evidence["clock_steps_back"]["count"] == 1
