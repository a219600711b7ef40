"""QA decisions on excursions (isolog.web.reviews) on both back ends: stable keys, one signed
decision per excursion, the count the shipment list shows, the release refusal, the excursions
the engine counted but did not list. A check result is modelled by its rules' evidence, in the
compliance engine's layout (compliance/temperature.py: evidence["excursions"] = capped(items))."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from isolog.errors import UserError
from isolog.store import Store
from isolog.web import accounts, queries, reviews

SHIP = accounts.Shipment(1, "S-1", "d0", "fail", "ab" * 32)


def _excursion(start: str | None, start_seq: int) -> dict:
    return {
        "start": start,
        "end": None,
        "start_seq": start_seq,
        "end_seq": start_seq + 9,
        "duration_s": 600.0,
        "extreme_c": 31.5,
        "violation": True,
    }


def _result(high: list[dict], count: int | None = None) -> SimpleNamespace:
    rules = [
        SimpleNamespace(name="temperature.high", evidence={"excursions": {"count": count or len(high), "items": high}}),
        SimpleNamespace(name="transport.index", evidence={}),
    ]
    return SimpleNamespace(rules=rules)


RESULT = _result([_excursion("2026-11-26T08:00:00Z", 3), _excursion(None, 40)])
KEYS = ["temperature.high from 2026-11-26T08:00:00Z", "temperature.high from record 40"]


@pytest.fixture
def store(store_db):
    with Store(store_db) as st:
        accounts.add_user(st, "quinn", "qa", "qa-password-123", "Quinn Quality")
        accounts.add_user(st, "sam", "staff", "staff-password-1")
        with st.transaction() as db:
            st.touch_device(db, "d0", "pico", "1", 0)
            db.execute(
                "INSERT INTO shipments (id, device, toml, board_config, configured_at, first_seq, first_seq_max) "
                "VALUES ('S-1', 'd0', '', '{}', '2026-11-26T07:00:00Z', 0, 0)"
            )
        yield st


def _sign(st, key, meaning="accepted", **kw):
    quinn = accounts.get_user(st, "quinn")
    assert quinn is not None
    return reviews.sign(
        st, kw.get("name", "quinn"), kw.get("password", "qa-password-123"), quinn, SHIP, RESULT, key, meaning, "ok"
    )


def test_keys_name_the_rule_and_the_start_or_the_first_record():
    assert [e["key"] for e in reviews.excursions(RESULT)] == KEYS


def test_a_decision_is_stored_once_and_the_list_counts_the_rest(store):
    queries.remember_verdict(
        store, SHIP.row, "fail", 50, SHIP.records_sha256, 50, excursions=reviews.excursions(RESULT)
    )
    assert reviews.awaiting_counts(store, [SHIP.row]) == {SHIP.row: 2}
    sig = _sign(store, KEYS[1], "rejected")
    assert sig["meaning_text"] == "rejected: the product may be affected"
    assert reviews.awaiting_counts(store, [SHIP.row]) == {SHIP.row: 1}
    state = reviews.state(store, SHIP.row, RESULT)
    assert [e["decision"] is None for e in state.items] == [True, False]
    assert state.items[1]["decision"]["full_name"] == "Quinn Quality"
    assert state.awaiting == 1 and state.rejected == 1
    with pytest.raises(UserError, match="reviewed already"):
        _sign(store, KEYS[1])
    # a new check of the same records keeps the decision (the key does not change)
    queries.remember_verdict(store, SHIP.row, "fail", 60, "cd" * 32, 60, excursions=reviews.excursions(RESULT))
    assert reviews.awaiting_counts(store, [SHIP.row]) == {SHIP.row: 1}
    (page,) = [r for r in queries.shipments(store).rows if r["row"] == SHIP.row]
    assert page["awaiting"] == 1
    assert [r["action"] for r in store.audit_trail()].count("excursion_review") == 1


def test_the_release_refusal_says_what_holds_it_back(store):
    assert reviews.state(store, SHIP.row, RESULT).release_refusal() == (
        "2 temperature excursions await QA review: sign a decision on each before releasing the shipment"
    )
    _sign(store, KEYS[0])
    assert reviews.state(store, SHIP.row, RESULT).release_refusal() == (
        "1 temperature excursion awaits QA review: sign a decision on each before releasing the shipment"
    )
    _sign(store, KEYS[1])
    assert reviews.state(store, SHIP.row, RESULT).release_refusal() is None
    quinn = accounts.get_user(store, "quinn")
    assert quinn is not None
    sig = accounts.sign(store, "quinn", "qa-password-123", quinn, SHIP, "released", "assessed", refusal=None)
    assert sig["meaning"] == "released"


def test_excursions_beyond_the_engines_list_hold_the_release_back(store):
    result = _result([_excursion("2026-11-26T08:00:00Z", 3)], count=25)
    state = reviews.state(store, SHIP.row, result)
    assert state.unlisted == 24 and state.awaiting == 25
    refusal = state.release_refusal()
    assert refusal is not None and refusal.startswith("25 temperature excursions await QA review")
    # the list counts them too, and still after the one listed is decided
    queries.remember_verdict(
        store, SHIP.row, "fail", 50, "ab" * 32, 50, excursions=reviews.excursions(result), unlisted=24
    )
    (page,) = queries.shipments(store).rows
    assert page["awaiting"] == 25
    quinn = accounts.get_user(store, "quinn")
    assert quinn is not None
    reviews.sign(store, "quinn", "qa-password-123", quinn, SHIP, result, KEYS[0], "accepted", "ok")
    (page,) = queries.shipments(store).rows
    assert page["awaiting"] == 24


def test_a_wrong_password_is_refused_audited_and_counted(store):
    throttle = accounts.Throttle(limit=2)
    quinn = accounts.get_user(store, "quinn")
    assert quinn is not None
    for _ in range(2):
        with pytest.raises(UserError, match="wrong user id or password"):
            reviews.sign(store, "quinn", "nope", quinn, SHIP, RESULT, KEYS[0], "accepted", "ok", throttle)
    with pytest.raises(UserError, match="too many failed password attempts"):
        reviews.sign(store, "quinn", "qa-password-123", quinn, SHIP, RESULT, KEYS[0], "accepted", "ok", throttle)
    assert reviews.decisions(store, SHIP.row) == {}
    refused = [r["details"] for r in store.audit_trail() if r["action"] == "signature_refused"]
    assert [r["excursion"] for r in refused] == [KEYS[0]] * 3
