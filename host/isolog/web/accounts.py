"""Users, passwords, sessions, electronic signatures and the certificate archive (library code
for `isolog user` and the dashboard). Every change is audited in the store's audit trail.

Passwords: argon2id (docs/references.md#rfc-9106) with argon2-cffi's defaults (RFC 9106's "low
memory" profile: t=3, m=64 MiB, p=4); a hash made with older parameters is upgraded at the next sign-in
(check_needs_rehash). Identification codes (user names) are unique and never reused or deleted
(21 CFR 11.300(a)): a user is turned off, not removed.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from isolog.errors import UserError
from isolog.store import now_iso

if TYPE_CHECKING:
    from isolog.store import Store

ROLES = ("staff", "qa", "admin")
# Who may sign a QA decision (release or reject a shipment): QA, as issue 15 assigns the job; an
# admin too (the one who runs the site may stand in). Authority checks: 21 CFR 11.10(g).
SIGNING_ROLES = ("qa", "admin")
MEANINGS = ("released", "rejected")  # what a signature means (21 CFR 11.50(a)(3))
MIN_PASSWORD = 10  # characters (docs/references.md#nist-sp-800-63b: at least 8; 10 here, no composition rules)
_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")
IDLE_S = 15 * 60  # a session unused this long ends (docs/references.md#nist-sp-800-63b: AAL2, 30 min at most)

# Failed password attempts: after MAX_FAILURES for one user id within FAILURE_WINDOW_S, that id's
# password is not tried again until the oldest failure is older than the window (rate limiting of
# docs/references.md#nist-sp-800-63b, §5.2.2: at most 100 consecutive failures; isolog is stricter;
# 21 CFR 11.300(d): attempts at unauthorised use are detected: every refusal is audited).
MAX_FAILURES = 5
FAILURE_WINDOW_S = 15 * 60

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# A hash to verify against when the user does not exist: the answer takes as long either way.
_DUMMY = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class User:
    name: str
    full_name: str
    role: str
    active: bool

    @property
    def may_sign(self) -> bool:
        return self.role in SIGNING_ROLES


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UserError(
            f"user name {name!r}: 2 to 32 characters, lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is too short: at least {MIN_PASSWORD} characters")
    return password


def add_user(store: "Store", name: str, role: str, password: str, full_name: str | None = None) -> User:
    """A new user (never an existing name: names are not reused); audited."""
    check_name(name)
    if role not in ROLES:
        raise UserError(f"role {role!r}: one of {', '.join(ROLES)}")
    check_password(password)
    full = (full_name or name).strip()
    if not full:
        raise UserError("the full name is empty")
    with store.transaction() as db:
        if db.execute("SELECT 1 FROM web_users WHERE name = ?", (name,)).fetchone():
            raise UserError(f"user {name!r} exists already (user names are never reused)")
        db.execute(
            "INSERT INTO web_users (name, full_name, role, password_hash, created, active) VALUES (?, ?, ?, ?, ?, 1)",
            (name, full, role, _hasher.hash(password), now_iso()),
        )
        store.audit(db, None, "user_add", {"user": name, "full_name": full, "role": role})
    return User(name, full, role, True)


def users(store: "Store") -> list[User]:
    rows = store.db.execute("SELECT name, full_name, role, active FROM web_users ORDER BY name").fetchall()
    return [User(n, f, r, bool(a)) for n, f, r, a in rows]


def get_user(store: "Store", name: str) -> User | None:
    row = store.db.execute("SELECT name, full_name, role, active FROM web_users WHERE name = ?", (name,)).fetchone()
    return User(row[0], row[1], row[2], bool(row[3])) if row else None


def verify_password(store: "Store", name: str, password: str) -> User | None:
    """The user if the name and password match an active user, else None (the same time either way)."""
    row = store.db.execute(
        "SELECT name, full_name, role, active, password_hash FROM web_users WHERE name = ?", (name,)
    ).fetchone()
    stored = row[4] if row else _DUMMY
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or not row[3]:
        return None
    if _hasher.check_needs_rehash(stored):
        with store.transaction() as db:
            db.execute("UPDATE web_users SET password_hash = ? WHERE name = ?", (_hasher.hash(password), name))
    return User(row[0], row[1], row[2], True)


class Throttle:
    """Failed password attempts per user id, kept in the store (web_failures, schema step 7): a
    lockout outlives a restart of the dashboard and holds for every process on the same store.
    Times are wall-clock seconds (clock), comparable between processes and computers."""

    def __init__(self, limit: int = MAX_FAILURES, window_s: float = FAILURE_WINDOW_S, clock=time.time):
        self.limit = limit
        self.window_s = window_s
        self.clock = clock

    def wait_s(self, store: "Store", name: str) -> float:
        """0 when the user id's password may be tried, else the seconds until it may."""
        now = self.clock()
        times = [
            t
            for (t,) in store.db.execute(
                "SELECT failed_at FROM web_failures WHERE user_name = ? AND failed_at > ? "
                "ORDER BY failed_at DESC LIMIT ?",
                (name, now - self.window_s, self.limit),
            )
        ]
        if len(times) < self.limit:
            return 0.0
        return self.window_s - (now - times[-1])  # until the limit-th newest failure leaves the window

    def failed(self, store: "Store", name: str) -> None:
        now = self.clock()
        with store.transaction() as db:
            # failures older than the window count for nobody: dropped, for every user id (the
            # table holds at most a window's worth of failures, whatever names were tried)
            db.execute("DELETE FROM web_failures WHERE failed_at <= ?", (now - self.window_s,))
            db.execute("INSERT INTO web_failures (user_name, failed_at) VALUES (?, ?)", (name, now))

    def succeeded(self, store: "Store", name: str) -> None:
        with store.transaction() as db:
            db.execute("DELETE FROM web_failures WHERE user_name = ?", (name,))


def locked_text(wait_s: float) -> str:
    return f"too many failed password attempts for this user id: try again in {max(1, math.ceil(wait_s / 60))} min"


# --- sessions ------------------------------------------------------------------------------------


def start_session(store: "Store", user: User) -> str:
    token = secrets.token_urlsafe(32)
    with store.transaction() as db:
        db.execute(
            "INSERT INTO web_sessions (token, user_name, created, last_seen) VALUES (?, ?, ?, ?)",
            (token, user.name, now_iso(), time.time()),
        )
    return token


def session_user(store: "Store", token: str) -> User | None:
    """The user of a live session (and the session's idle clock restarted), or None."""
    row = store.db.execute("SELECT user_name, last_seen FROM web_sessions WHERE token = ?", (token,)).fetchone()
    if row is None:
        return None
    now = time.time()
    if now - row[1] > IDLE_S:
        end_session(store, token)
        return None
    user = get_user(store, row[0])
    if user is None or not user.active:
        return None
    if now - row[1] > 30:  # one write per half minute at most
        with store.transaction() as db:
            db.execute("UPDATE web_sessions SET last_seen = ? WHERE token = ?", (now, token))
    return user


def end_session(store: "Store", token: str) -> None:
    with store.transaction() as db:
        db.execute("DELETE FROM web_sessions WHERE token = ?", (token,))


def secret_key(store: "Store") -> str:
    """The key that signs session cookies: made once per database, kept in it."""
    with store.transaction() as db:
        row = db.execute("SELECT value FROM web_settings WHERE name = 'session_key'").fetchone()
        if row:
            return row[0]
        key = secrets.token_hex(32)
        db.execute("INSERT INTO web_settings (name, value) VALUES ('session_key', ?)", (key,))
        return key


# --- signatures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shipment:
    """What a signature or a certificate is about: one stored shipment configuration."""

    row: int
    id: str
    device: str
    verdict: str
    records_sha256: str


def check_signature(
    store: "Store",
    name: str,
    password: str,
    signer: User,
    ship: Shipment,
    meaning: str,
    meanings: tuple[str, ...],
    reason: str,
    throttle: Throttle | None = None,
    seen_sha256: str | None = None,
    refusal: str | None = None,
    what: dict[str, Any] | None = None,
) -> None:
    """The checks every electronic signature passes (a QA decision on a shipment or on one of its
    excursions). Both components (user id and password) are entered again at signing (21 CFR
    11.200(a)(1)); the name given must be the signed-in user's (11.200(a)(2): used only by its
    owner); only a signing role signs (11.10(g)). A refused attempt is audited (with `what` it was
    about) and raises UserError; a wrong password counts against the user id in throttle, and a
    locked user id is not tried. seen_sha256: the records' SHA-256 the signer was shown; refused if
    the records changed since (11.70). refusal: why this decision may not be signed now (checked
    after the signer's authority, before the password)."""
    why = None
    wait = throttle.wait_s(store, signer.name) if throttle else 0.0
    if wait > 0:
        why = locked_text(wait)
    elif name != signer.name:
        why = "the user id is not the signed-in user's"
    elif not signer.may_sign:
        why = f"role {signer.role} may not sign QA decisions (qa or admin)"
    elif meaning not in meanings:
        why = f"meaning {meaning!r}: one of {', '.join(meanings)}"
    elif not reason:
        why = "a reason is required"
    elif seen_sha256 is not None and seen_sha256 != ship.records_sha256:
        why = "the shipment's records changed since the page was shown (a sync): reload it and check again"
    elif refusal:
        why = refusal
    elif verify_password(store, name, password) is None:
        why = "wrong user id or password"
        if throttle:
            throttle.failed(store, signer.name)
    elif throttle:
        throttle.succeeded(store, signer.name)
    if why is not None:
        store.audit(
            None,
            ship.device,
            "signature_refused",
            {
                "user": signer.name,
                "shipment": ship.id,
                "shipment_row": ship.row,
                "meaning": meaning,
                **(what or {}),
                "why": why,
            },
        )
        raise UserError(f"signature refused: {why}")


def sign(
    store: "Store",
    name: str,
    password: str,
    signer: User,
    ship: Shipment,
    meaning: str,
    reason: str,
    throttle: Throttle | None = None,
    seen_sha256: str | None = None,
    refusal: str | None = None,
) -> dict[str, Any]:
    """An electronic signature of a QA decision on a shipment (check_signature says what is
    checked first). refusal: why the shipment may not be released now (excursions awaiting
    review: web/reviews.py); a rejection is never held back."""
    reason = reason.strip()
    check_signature(
        store,
        name,
        password,
        signer,
        ship,
        meaning,
        MEANINGS,
        reason,
        throttle,
        seen_sha256,
        refusal if meaning == "released" else None,
    )
    signed_at = now_iso()
    with store.transaction() as db:
        cur = db.execute(
            "INSERT INTO web_signatures (shipment_row, shipment_id, device, user_name, full_name, meaning, reason, "
            "signed_at, verdict, records_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                ship.row,
                ship.id,
                ship.device,
                signer.name,
                signer.full_name,
                meaning,
                reason,
                signed_at,
                ship.verdict,
                ship.records_sha256,
            ),
        )
        new_id = cur.fetchone()[0]  # RETURNING: SQLite >= 3.35 and PostgreSQL (lastrowid is SQLite's only)
        sig = {
            "id": new_id,
            "user": signer.name,
            "full_name": signer.full_name,
            "meaning": meaning,
            "reason": reason,
            "signed_at": signed_at,
            "shipment": ship.id,
            "shipment_row": ship.row,
            "verdict": ship.verdict,
            "records_sha256": ship.records_sha256,
        }
        store.audit(db, ship.device, "signature", sig)
    return sig


def signatures(store: "Store", shipment_row: int) -> list[dict[str, Any]]:
    cols = ("id", "user_name", "full_name", "meaning", "reason", "signed_at", "verdict", "records_sha256")
    rows = store.db.execute(
        f"SELECT {', '.join(cols)} FROM web_signatures WHERE shipment_row = ? ORDER BY id", (shipment_row,)
    ).fetchall()
    return [dict(zip(cols, r)) for r in rows]


# --- certificate archive -------------------------------------------------------------------------


def archive_certificate(store: "Store", ship: Shipment, pdf: bytes, issued_by: User) -> dict[str, Any]:
    """Keep an issued certificate: a new row every time (never an UPDATE), with its SHA-256; audited."""
    digest = hashlib.sha256(pdf).hexdigest()
    issued_at = now_iso()
    with store.transaction() as db:
        cur = db.execute(
            "INSERT INTO web_certificates (shipment_row, shipment_id, device, verdict, records_sha256, sha256, size, "
            "pdf, issued_by, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                ship.row,
                ship.id,
                ship.device,
                ship.verdict,
                ship.records_sha256,
                digest,
                len(pdf),
                pdf,
                issued_by.name,
                issued_at,
            ),
        )
        new_id = cur.fetchone()[0]
        cert = {
            "id": new_id,
            "shipment": ship.id,
            "shipment_row": ship.row,
            "verdict": ship.verdict,
            "records_sha256": ship.records_sha256,
            "sha256": digest,
            "size": len(pdf),
            "issued_by": issued_by.name,
            "issued_at": issued_at,
        }
        store.audit(db, ship.device, "certificate_issued", cert)
    return cert


_CERT_COLS = ("id", "shipment_row", "shipment_id", "device", "verdict", "records_sha256", "sha256", "size")


def certificates(store: "Store", shipment_row: int | None = None) -> list[dict[str, Any]]:
    cols = (*_CERT_COLS, "issued_by", "issued_at")
    q = f"SELECT {', '.join(cols)} FROM web_certificates"
    args: tuple = ()
    if shipment_row is not None:
        q += " WHERE shipment_row = ?"
        args = (shipment_row,)
    return [dict(zip(cols, r)) for r in store.db.execute(q + " ORDER BY id DESC", args).fetchall()]


def certificate_pdf(store: "Store", cert_id: int) -> tuple[dict[str, Any], bytes] | None:
    cols = (*_CERT_COLS, "issued_by", "issued_at")
    row = store.db.execute(f"SELECT {', '.join(cols)}, pdf FROM web_certificates WHERE id = ?", (cert_id,)).fetchone()
    if row is None:
        return None
    return dict(zip(cols, row[:-1])), bytes(row[-1])
