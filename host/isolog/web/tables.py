"""The dashboard's own tables, beside the sync store's (isolog/store.py) in the same database.

Plain portable SQL (CREATE TABLE IF NOT EXISTS, no SQLite-only types), created on first use by
`ensure(store)`; to be folded into the store's versioned migrations.

  web_users         people who sign in: name (the user id of 21 CFR 11.300(a): unique, never reused,
                    never deleted: `active` only turns them off), full name (printed with their
                    signatures, 11.50(a)(1)), role (staff, qa, admin), argon2id hash of the password
  web_sessions      signed-in sessions: a random token (the signed cookie holds it), the user, when it
                    was made and last used (idle sessions end: web/auth.py IDLE_S); sign-out deletes it
  web_signatures    electronic signatures (11.50, 11.70): who (user id and full name), meaning
                    (released / rejected), reason, UTC time, and what was signed: the shipment
                    configuration row, its verdict and the SHA-256 of its records. Only INSERTed.
  web_certificates  the certificate archive: every issued PDF with its SHA-256, who issued it and
                    when, for which shipment and records. Only INSERTed: never overwritten.
  web_verdicts      the last check of each shipment configuration (verdict, records and their
                    SHA-256, the device's next_seq at the time; "none" when it could not be checked,
                    e.g. no records yet): lets the shipment list show verdicts without running the
                    engine on every row. A cache: stale when next_seq moved, unless `final` (the
                    shipment's records ended, at the next configuration, within what was stored).
  web_settings      the key that signs the session cookies (random, made once per database)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from isolog.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS web_users (
    name TEXT PRIMARY KEY,
    full_name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS web_sessions (
    token TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES web_users(name),
    created TEXT NOT NULL,
    last_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS web_signatures (
    id INTEGER PRIMARY KEY,
    shipment_row INTEGER NOT NULL,
    shipment_id TEXT NOT NULL,
    device TEXT NOT NULL,
    user_name TEXT NOT NULL REFERENCES web_users(name),
    full_name TEXT NOT NULL,
    meaning TEXT NOT NULL,
    reason TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    verdict TEXT NOT NULL,
    records_sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS web_signatures_by_shipment ON web_signatures(shipment_row);
CREATE TABLE IF NOT EXISTS web_certificates (
    id INTEGER PRIMARY KEY,
    shipment_row INTEGER NOT NULL,
    shipment_id TEXT NOT NULL,
    device TEXT NOT NULL,
    verdict TEXT NOT NULL,
    records_sha256 TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    pdf BLOB NOT NULL,
    issued_by TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS web_certificates_by_shipment ON web_certificates(shipment_row);
CREATE TABLE IF NOT EXISTS web_verdicts (
    shipment_row INTEGER PRIMARY KEY,
    verdict TEXT NOT NULL,
    records INTEGER NOT NULL,
    records_sha256 TEXT NOT NULL,
    next_seq INTEGER NOT NULL,
    final INTEGER NOT NULL,
    checked_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS web_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def ensure(store: "Store") -> None:
    """Create the dashboard's tables if the database has none yet (idempotent)."""
    with store.transaction() as db:
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                db.execute(stmt)
