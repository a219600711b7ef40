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


def test_the_window_starts_at_dispatch_after_a_delay_and_ends_at_delivery(db, tmp_path):
    with Store(db) as st:
        start, end, how = trip.window(st, "S-1")
        dispatched = parse_time(st.last_event("S-1", "dispatched")["happened_at"])
    assert start == dispatched and end is None and how.endswith("(start delay 1 h)")
    # the trip starts in an hour: a delivery before then, or in the future, is refused
    with pytest.raises(UserError, match="before its dispatch"):
        trip.deliver(db, "S-1", dispatched - 60.0, "delivery note")
    with pytest.raises(UserError, match="in the future"):
        trip.deliver(db, "S-1", dispatched + 86400.0, "delivery note")

    path = tmp_path / "now.sqlite3"
    with Store(path) as st:
        st.add_shipment(DEV, "S-3", "", {}, 0, 0)
        configured = parse_time(st.last_event("S-3", "configured")["happened_at"])
    lf = trip.deliver(path, "S-3", configured + 0.5, "delivery note")
    assert lf.state == "delivered" and lf.delivered_s == pytest.approx(configured + 0.5, abs=0.001)
    with Store(path) as st:
        assert trip.window(st, "S-3")[:2] == (None, lf.delivered_s)


def test_window_without_delay_is_open_at_the_start(tmp_path):
    path = tmp_path / "s.sqlite3"
    with Store(path) as st:
        st.add_shipment(DEV, "S-2", "", {}, 0, 0)
    with Store(path) as st:
        assert trip.window(st, "S-2") == (None, None, "")


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
