"""The verdict follows the evidence. The engine takes what the records' source says
about them (compliance.Verification) and never certifies records that did not verify, or a
shipment whose records are missing anywhere in its range."""

import numpy as np
import pytest

from compliance_helpers import make_records, shipment_doc
from isolog import shipment
from isolog.compliance import SeqRange, Verification, check
from isolog.compliance.model import KEY_DEVICE, KEY_DOWNGRADED, KEY_EMPTY, KEY_MISSING


def _ship():
    return shipment.from_dict(shipment_doc())


def _ver(**kw):
    base = dict(method="mac_chain", verified=120, key=KEY_DEVICE, expected_first_seq=0, expected_end_seq=120)
    base.update(kw)
    return Verification(**base)


def test_verified_complete_records_are_compliant():
    from isolog.compliance import synthetic

    ship = _ship()
    rec = synthetic.generate(ship, 70 * 3600, 60.0, seed=11)
    res = check(rec, ship, _ver(verified=len(rec), expected_end_seq=len(rec)))
    assert res.rule("data_verification").verdict == "pass"
    assert res.rule("data_integrity").verdict == "pass"
    assert res.overall == "pass" and res.exit_code == 0
    # The same records without a verification: not compliant.
    assert check(rec, ship).exit_code == 1


def test_no_verification_is_never_compliant():
    # Nothing said about the records (a records file): every other rule passes, the verdict does not.
    res = check(make_records(n=120), _ship())
    r = res.rule("data_verification")
    assert r.verdict == "unknown" and res.overall == "unknown" and res.exit_code == 1
    assert res.summary["data_verification"].startswith("NOT VERIFIED")


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"failed": 7, "verified": 113}, "7 record(s) fail the MAC check"),
        ({"unverified": 40, "verified": 80}, "40 record(s) could not be checked"),
        ({"key": KEY_DOWNGRADED}, "downgrade"),
        ({"key": KEY_MISSING}, "does not hold"),
    ],
)
def test_records_that_did_not_verify_fail(changes, words):
    res = check(make_records(n=120), _ship(), _ver(**changes))
    r = res.rule("data_verification")
    assert r.verdict == "fail" and words in r.detail
    assert res.overall == "fail" and res.exit_code == 1
    assert res.summary["data_verification"].startswith("NOT VERIFIED")


def test_empty_key_shows_damage_not_authorship():
    res = check(make_records(n=120), _ship(), _ver(key=KEY_EMPTY))
    assert res.rule("data_verification").verdict == "unknown" and res.exit_code == 1


def test_fewer_records_verified_than_checked_is_not_a_pass():
    res = check(make_records(n=120), _ship(), _ver(verified=100))
    assert res.rule("data_verification").verdict == "unknown"


def test_records_missing_at_the_start_of_the_shipment_fail():
    # The shipment's first record is 0 (the store knows it from its configuration); the data start
    # at 10: records 0..9 are missing, although the data have no seq gap of their own.
    rec = make_records(n=110)
    rec.seq += 10
    res = check(rec, _ship(), _ver(verified=110))
    r = res.rule("data_integrity")
    assert r.verdict == "fail" and "records 0..9 missing at the start" in r.detail
    assert r.evidence["missing_at_edges"] == 10 and res.summary["missing_records"] == 10
    assert res.exit_code == 1


def test_records_missing_at_the_end_fail():
    res = check(make_records(n=100), _ship(), _ver(verified=100, expected_end_seq=130))
    r = res.rule("data_integrity")
    assert r.verdict == "fail" and "records 100..129 missing at the end" in r.detail


def test_a_records_file_that_does_not_start_a_boot_is_missing_its_start():
    from isolog.compliance.records import FLAG_BIT

    rec = make_records(n=120)
    rec.flags[0] &= ~np.uint32(FLAG_BIT["boot"])
    r = check(rec, _ship()).rule("data_integrity")
    assert r.verdict == "fail" and "does not open a boot" in r.detail


def test_ranges_the_source_knows_are_lost_fail():
    rec = make_records(n=120)
    rec.seq[60:] += 20
    lost = (SeqRange(60, 80, "reclaimed on the board before a sync"),)
    r = check(rec, _ship(), _ver(expected_end_seq=140, missing=lost)).rule("data_integrity")
    assert r.verdict == "fail" and "records 60..79 are not in the data: reclaimed" in r.detail


def test_verification_values_are_checked():
    with pytest.raises(ValueError):
        Verification(method="crc")
    with pytest.raises(ValueError):
        Verification(method="mac_chain", key="whatever")
    with pytest.raises(ValueError):
        Verification(method="mac_chain", failed=-1)
