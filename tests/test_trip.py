"""isolog.trip: a shipment's life (delivery, check, QA decision) and its trip window, on a store
without a board."""

from __future__ import annotations

import pytest

from isolog import trip
from isolog.errors import UserError
from isolog.store import Store
from isolog.units import parse_time

DEV = "15010c0000000001"


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "s.sqlite3"
    with Store(path) as st:
        st.add_shipment(DEV, "S-1", "", {}, 0, 0, start_delay_s=3600.0)
    return path


def test_the_window_is_the_start_delay_and_the_recorded_delivery(db, tmp_path):
    with Store(db) as st:
        assert trip.window(st, "S-1") == (3600.0, None, "")
        configured = parse_time(st.last_event("S-1", "configured")["happened_at"])
    with pytest.raises(UserError, match="in the future"):
        trip.deliver(db, "S-1", configured + 86400.0, "delivery note")
    lf = trip.deliver(db, "S-1", configured - 0.5, "delivery note")
    assert lf.state == "delivered" and lf.delivered_s == pytest.approx(configured - 0.5, abs=0.001)
    assert lf.delivered_source == "delivery note"
    with Store(db) as st:
        assert trip.window(st, "S-1") == (3600.0, lf.delivered_s, "delivery note")


def test_qa_decision_needs_a_check_and_a_reason_when_not_compliant(db):
    with pytest.raises(UserError, match="not checked yet"):
        trip.decide(db, "S-1", "release", None)
    trip.mark_checked(db, "S-1", "fail")
    with pytest.raises(UserError, match="needs a reason"):
        trip.decide(db, "S-1", "release", None)
    with pytest.raises(UserError, match="needs a reason"):
        trip.decide(db, "S-1", "reject", "  ")
    lf = trip.decide(db, "S-1", "reject", "warm hour on the tarmac")
    assert lf.state == "rejected"
    with pytest.raises(UserError, match="rejected already"):
        trip.decide(db, "S-1", "release", "override")
    with Store(db) as st:
        (entry,) = [a for a in st.audit_trail(DEV) if a["action"] == "shipment_rejected"]
    assert entry["details"] == {"shipment": "S-1", "reason": "warm hour on the tarmac", "verdict": "fail"}
    assert entry["host_user"]


def test_a_compliant_check_is_released_without_reason(db):
    trip.mark_checked(db, "S-1", "warn")
    assert trip.decide(db, "S-1", "release", None).state == "released"
    trip.mark_checked(db, "S-1", "fail")  # checking a decided shipment again changes nothing
    with Store(db) as st:
        assert st.shipment_state("S-1") == "released"


def test_a_release_waits_for_the_dashboards_excursion_reviews(db):
    """The dashboard's last check listed two excursions of S-1 (web_excursions): `isolog decide
    release` is refused until each has a signed decision, and while one is rejected."""
    from isolog.web import accounts

    trip.mark_checked(db, "S-1", "warn")
    with Store(db) as st:
        accounts.add_user(st, "quinn", "qa", "qa-password-123")
        (row,) = [s["rowid"] for s in st.shipments() if s["id"] == "S-1"]
        with st.transaction() as tx:
            for key in ("temperature.high from 2026-11-26T08:00:00Z", "temperature.high from record 40"):
                tx.execute(
                    "INSERT INTO web_excursions (shipment_row, excursion, rule, start_seq, end_seq, duration_s, "
                    "extreme_c, violation) VALUES (?, ?, 'temperature.high', 1, 2, 60, 26, 0)",
                    (row, key),
                )

    def review(key: str, meaning: str) -> None:
        with Store(db) as st, st.transaction() as tx:
            tx.execute(
                "INSERT INTO web_excursion_reviews (shipment_row, excursion, shipment_id, device, user_name, "
                "full_name, meaning, reason, signed_at, records_sha256) VALUES (?, ?, 'S-1', ?, 'quinn', 'quinn', "
                "?, 'r', 't', 'x')",
                (row, key, DEV, meaning),
            )

    with pytest.raises(UserError, match="S-1: 2 temperature excursions await QA review: sign a decision on each"):
        trip.decide(db, "S-1", "release", None)
    review("temperature.high from record 40", "rejected")
    with pytest.raises(UserError, match="1 temperature excursion awaits QA review"):
        trip.decide(db, "S-1", "release", None)
    review("temperature.high from 2026-11-26T08:00:00Z", "accepted")
    with pytest.raises(UserError, match="1 temperature excursion was rejected: the shipment cannot be released"):
        trip.decide(db, "S-1", "release", "override")
    with Store(db) as st:
        assert st.shipment_state("S-1") == "checked"
    assert trip.decide(db, "S-1", "reject", "product affected").state == "rejected"
