"""Users, sessions, signatures and the certificate archive (isolog.web.accounts) on a new store."""

from __future__ import annotations

import hashlib
import time

import pytest

from isolog.errors import UserError
from isolog.store import Store
from isolog.web import accounts

SHIP = accounts.Shipment(7, "S-1", "d0", "fail", "ab" * 32)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.sqlite3") as st:
        accounts.add_user(st, "quinn", "qa", "qa-password-123", "Quinn Quality")
        accounts.add_user(st, "sam", "staff", "staff-password-1")
        yield st


def _actions(store) -> list[str]:
    return [r["action"] for r in store.audit_trail()]


def test_passwords_are_checked_and_never_stored(store):
    assert accounts.verify_password(store, "quinn", "qa-password-123") == accounts.User(
        "quinn", "Quinn Quality", "qa", True
    )
    assert accounts.verify_password(store, "quinn", "qa-password-12") is None
    assert accounts.verify_password(store, "nobody", "qa-password-123") is None
    (stored,) = store.db.execute("SELECT password_hash FROM web_users WHERE name = 'quinn'").fetchone()
    assert stored.startswith("$argon2id$") and "qa-password-123" not in stored
    with store.transaction() as db:
        db.execute("UPDATE web_users SET active = 0 WHERE name = 'quinn'")
    assert accounts.verify_password(store, "quinn", "qa-password-123") is None  # turned off


def test_an_idle_session_ends(store, monkeypatch):
    user = accounts.get_user(store, "sam")
    assert user is not None
    token = accounts.start_session(store, user)
    assert accounts.session_user(store, token) == user
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + accounts.IDLE_S + 1)
    assert accounts.session_user(store, token) is None
    assert store.db.execute("SELECT COUNT(*) FROM web_sessions").fetchone() == (0,)


def test_a_signature_records_who_what_when_and_why(store):
    quinn = accounts.get_user(store, "quinn")
    assert quinn is not None
    sig = accounts.sign(store, "quinn", "qa-password-123", quinn, SHIP, "released", "  deviation accepted ")
    assert {k: sig[k] for k in ("user", "full_name", "meaning", "reason", "verdict", "records_sha256")} == {
        "user": "quinn",
        "full_name": "Quinn Quality",
        "meaning": "released",
        "reason": "deviation accepted",
        "verdict": "fail",
        "records_sha256": "ab" * 32,
    }
    [stored] = accounts.signatures(store, SHIP.row)
    assert stored["signed_at"] == sig["signed_at"] and stored["reason"] == "deviation accepted"
    assert _actions(store)[-1] == "signature"


@pytest.mark.parametrize(
    "name, password, user, meaning, reason, why",
    [
        ("quinn", "qa-password-124", "quinn", "released", "ok", "wrong user id or password"),
        ("sam", "staff-password-1", "quinn", "released", "ok", "not the signed-in user's"),
        ("sam", "staff-password-1", "sam", "released", "ok", "role staff may not sign"),
        ("quinn", "qa-password-123", "quinn", "approved", "ok", "meaning 'approved'"),
        ("quinn", "qa-password-123", "quinn", "rejected", "   ", "a reason is required"),
    ],
)
def test_a_refused_signature_is_audited(store, name, password, user, meaning, reason, why):
    signer = accounts.get_user(store, user)
    assert signer is not None
    with pytest.raises(UserError, match=why):
        accounts.sign(store, name, password, signer, SHIP, meaning, reason)
    assert accounts.signatures(store, SHIP.row) == []
    last = store.audit_trail()[-1]
    assert last["action"] == "signature_refused" and why in last["details"]["why"]


def test_the_archive_keeps_every_certificate(store):
    sam = accounts.get_user(store, "sam")
    assert sam is not None
    first = accounts.archive_certificate(store, SHIP, b"%PDF-1 one", sam)
    second = accounts.archive_certificate(store, SHIP, b"%PDF-1 two", sam)
    assert first["id"] != second["id"]
    assert [c["sha256"] for c in accounts.certificates(store, SHIP.row)] == [
        hashlib.sha256(b"%PDF-1 two").hexdigest(),
        hashlib.sha256(b"%PDF-1 one").hexdigest(),
    ]
    got = accounts.certificate_pdf(store, first["id"])
    assert got is not None and got[1] == b"%PDF-1 one"
    assert _actions(store).count("certificate_issued") == 2


def test_user_names_are_unique_and_checked(store):
    with pytest.raises(UserError, match="exists already"):
        accounts.add_user(store, "quinn", "admin", "another-password")
    with pytest.raises(UserError, match="role 'boss'"):
        accounts.add_user(store, "bob", "boss", "another-password")


def test_the_throttle_locks_a_user_id_for_the_window(store):
    now = [1000.0]
    t = accounts.Throttle(limit=3, window_s=600, clock=lambda: now[0])
    for _ in range(3):
        assert t.wait_s(store, "quinn") == 0
        t.failed(store, "quinn")
        now[0] += 10
    # 3 failures at 1000, 1010, 1020; now 1030: locked until the first is 600 s old (1600)
    assert t.wait_s(store, "quinn") == 570 and t.wait_s(store, "sam") == 0
    now[0] = 1600
    assert t.wait_s(store, "quinn") == 0  # the oldest aged out: 2 within the window
    t.failed(store, "quinn")
    assert t.wait_s(store, "quinn") == 10  # 1010 + 600 - 1600
    # the failure at 1000 (outside the window when 1600's was counted) was dropped from the table
    assert [r[0] for r in store.db.execute("SELECT failed_at FROM web_failures ORDER BY failed_at")] == [
        1010.0,
        1020.0,
        1600.0,
    ]
    # so is any user id's: a failure for "sam" at 2300 drops quinn's of 1010, 1020 and 1600 (all older
    # than 2300 - 600)
    now[0] = 2300
    t.failed(store, "sam")
    assert [tuple(r) for r in store.db.execute("SELECT user_name, failed_at FROM web_failures")] == [("sam", 2300.0)]
    t.succeeded(store, "quinn")
    assert t.wait_s(store, "quinn") == 0


def test_a_lockout_is_kept_in_the_store_and_outlives_the_process(tmp_path):
    """A second Store and Throttle on the same file (a restarted dashboard) sees the lockout."""
    path = tmp_path / "s.sqlite3"
    now = [5000.0]
    with Store(path) as st:
        t = accounts.Throttle(limit=2, window_s=900, clock=lambda: now[0])
        t.failed(st, "quinn")
        now[0] += 100
        t.failed(st, "quinn")
    now[0] += 100
    with Store(path) as st:
        again = accounts.Throttle(limit=2, window_s=900, clock=lambda: now[0])
        assert again.wait_s(st, "quinn") == 700  # the first failure (5000) leaves the window at 5900; now 5200


def test_a_locked_user_id_cannot_sign(store):
    quinn = accounts.get_user(store, "quinn")
    assert quinn is not None
    throttle = accounts.Throttle(limit=2)
    for _ in range(2):
        with pytest.raises(UserError, match="wrong user id or password"):
            accounts.sign(store, "quinn", "nope", quinn, SHIP, "released", "ok", throttle)
    with pytest.raises(UserError, match="too many failed password attempts"):
        accounts.sign(store, "quinn", "qa-password-123", quinn, SHIP, "released", "ok", throttle)
    assert accounts.signatures(store, SHIP.row) == []
