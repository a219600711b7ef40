"""The host's sync store: one SQLite file (stdlib sqlite3) with what `isolog sync` took from boards.

Default location: platformdirs.user_data_dir("isolog")/isolog.sqlite3; every command that uses it
takes `--db PATH`. WAL journal with synchronous=FULL: a commit is on disk before the board is told
(ACK) that it may reclaim the records.

Tables (schema version in `schema_version`):
  devices          one row per board (device id as hex), with `next_seq`: the first sequence number
                   not stored contiguously (what the board is acknowledged up to)
  shipments        every `isolog configure`: shipment id, device, the TOML text, the board
                   configuration JSON, when, and the board's next sequence number at that time
  records          PRIMARY KEY(device, seq): a duplicate cannot enter; every field of the JSON record
  segments         per device and segment (named by its first sequence number): bytes stored up to
                   the end of the last complete chunk, so a sync resumes there; the header chunk
  chunks           the verified chunk bytes as they came from the board's flash (evidence)
  damage           byte ranges of segments that did not check out
  lost             record ranges that are no longer on the board and not in this store
  sync_sessions    every sync: started, ended, status, records added, bytes, host user, problems
  clock_anchors    (device, boot, uptime_ms) <-> host UTC at IDENTIFY, to place records without time
  device_keys      every key a board had (board/provision.py), so older log segments still verify;
                   the current one signs requests. Never printed, logged or exported.
  audit            configure, clock set, acknowledgements: time, host user, device, action, details
  device_auth      per device provisioned from this store: the key id it must hold, the last counter
                   this store signed a request with (the board's word is never taken for it), the
                   first record written with the key, where the board keeps its key (docs/security.md)
  segment_checks   the verification state of every stored segment (MAC chain, damage, configuration
                   against the one stored at configure): nothing from a segment that did not check
                   out is ever acknowledged (board/sync.py), in this sync or any later one
  shipment_events  a shipment's life (SHIPMENT_STATES): configured, dispatched (the trip's start,
                   after an optional start delay), delivered (from the delivery note or confirmed
                   from the data), returned, synced, checked, released or rejected; when it
                   happened, when it was recorded, by whom, and the details (JSON)
"""

from __future__ import annotations

import csv
import getpass
import json
import math
import os
import re
import socket
import sqlite3
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterable, Iterator

from isolog import db as _db
from isolog.db.schema import MIGRATIONS, SCHEMA_VERSION
from isolog.errors import UserError
from isolog.log.chain import ChainResult, Problem, key_table, verify_segments
from isolog.log.image import segment_name
from isolog.shipment import RECORD_FIELDS
from isolog_fw import record as fw_record

if TYPE_CHECKING:
    from isolog.compliance.model import Verification

DB_NAME = "isolog.sqlite3"

# A shipment's life, in order (issue 14): every state a shipment reaches is a row of
# shipment_events (schema step 3); its state is the last one recorded.
SHIPMENT_STATES = ("configured", "dispatched", "delivered", "returned", "synced", "checked", "released", "rejected")
# States after which the trip is over: its id cannot be configured again (it names one trip).
_TRIP_OVER = ("returned", "synced", "checked", "released", "rejected")


def default_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("isolog")) / DB_NAME


def store_name(db: Path | str | None) -> str:
    """The store a command with --db db uses, as messages name it (a URL without its password)."""
    where = _db.target(db)
    if isinstance(where, str):
        from isolog.db.postgres import safe_url

        return safe_url(where)
    return str(where if where is not None else default_path())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def host_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment (containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def record_row(rec: dict[str, Any], device: str, segment: int | None, offset: int | None, session: int | None) -> tuple:
    return (
        device,
        rec["seq"],
        rec["boot"],
        rec["time"],
        rec["uptime_s"],
        rec["counts"],
        rec["interval_s"],
        rec["interval_counts"],
        rec["dose_rate_usv_h"],
        rec["temperature_c"],
        json.dumps(rec["flags"]),
        segment,
        offset,
        session,
    )


_RECORD_COLUMNS = ", ".join(RECORD_FIELDS)
# The columns of a record row as record_rows() gives them: RECORD_FIELDS without "device".
ROW_FIELDS = RECORD_FIELDS[1:]
_ROW_COLUMNS = ", ".join(ROW_FIELDS)
ROWS_PER_FETCH = 16384


def row_record(row: tuple) -> dict[str, Any]:
    """A stored record as the JSON record of `isolog log dump --json` (same fields, same order)."""
    rec: dict[str, Any] = dict(zip(RECORD_FIELDS, row))
    rec["flags"] = json.loads(rec["flags"])
    return rec


# A store connection inside a transaction (Store.transaction()): sqlite3's, or db.postgres.PgConnection.
Connection = Any

_SQLITE_MAGIC = b"SQLite format 3\x00"
# The advisory-lock key under which a PostgreSQL store's migrations run (any fixed 64-bit number
# distinct from db.postgres.device_lock_key's; these are the ASCII bytes of "isolog-m").
_MIGRATION_LOCK = int.from_bytes(b"isolog-m", "big")
# The tables every isolog store has had since schema version 1, with columns isolog reads.
_CORE_TABLES = {
    "devices": {"id", "next_seq"},
    "shipments": {"id", "device", "toml", "first_seq"},
    "records": set(RECORD_FIELDS[1:]) | {"device"},
}


def store_error(path: Path, exc: sqlite3.Error) -> UserError:
    """What an SQLite error on the store means to a user, in one line (exit 2)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name == "SQLITE_FULL":
        try:
            import shutil

            free = f" ({shutil.disk_usage(path.parent).free / 1e6:.0f} MB free)"
        except OSError:
            free = ""
        return UserError(
            f"the store {path}: the disk is full{free}: the last change was not stored (everything "
            "before it is, and a board is never told to reuse the space of records not stored); "
            "free some space and run the command again"
        )
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or name.startswith("SQLITE_CORRUPT"):
        return UserError(
            f"the store {path} is damaged ({exc}): restore it from a backup "
            f"(`sqlite3 {path} .recover` may save what is readable)"
        )
    if name.startswith("SQLITE_READONLY") or name == "SQLITE_PERM":
        return UserError(f"the store {path} cannot be written ({exc}): check its permissions")
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return UserError(f"the store {path} is busy ({exc}): another isolog is using it; run again when it is done")
    if name.startswith("SQLITE_IOERR") or name.startswith("SQLITE_CANTOPEN") or name == "SQLITE_NOMEM":
        return UserError(f"the store {path} cannot be read or written ({exc}): check the disk")
    return UserError(f"the store {path}: {exc}")


class _Connection(sqlite3.Connection):
    """Every SQLite error that is about the file (full disk, damaged pages, locked, read-only)
    becomes one line naming the store (store_error); errors in isolog's own SQL stay as they are.
    The same surface as db.postgres.PgConnection (kind, begin_sql, for_update, tables, locks)."""

    store_path: Path = Path()
    kind = "sqlite"
    # BEGIN IMMEDIATE takes SQLite's write lock at once: one writer at a time, so every
    # read-modify-write inside a transaction is serialized (no FOR UPDATE needed, none in SQLite).
    begin_sql = "BEGIN IMMEDIATE"
    for_update = ""
    # IntegrityError and Error: sqlite3.Connection's own attributes (the exceptions of the module).

    def execute(self, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().execute(*args)
        except sqlite3.Error as exc:
            raise _translated(self.store_path, exc) from None

    def executemany(self, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().executemany(*args)
        except sqlite3.Error as exc:
            raise _translated(self.store_path, exc) from None

    def translated(self, exc: Exception) -> Exception:
        return _translated(self.store_path, exc) if isinstance(exc, sqlite3.Error) else exc

    def rollback_quietly(self) -> None:
        try:
            sqlite3.Connection.execute(self, "ROLLBACK")
        except sqlite3.Error:
            pass

    def tables(self) -> dict[str, set[str]]:
        names = [r[0] for r in self.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: {r[1] for r in self.execute(f"PRAGMA table_info({t})")} for t in names}


def _translated(path: Path, exc: sqlite3.Error) -> Exception:
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name == "SQLITE_ERROR" or name.startswith("SQLITE_CONSTRAINT"):
        return exc  # isolog's own statement or a constraint: not the file's fault
    return store_error(path, exc)


class Store:
    """The store: an SQLite file (a path; default: default_path()) or a PostgreSQL database (a
    postgresql:// URL), chosen by isolog.db.target (--db, else ISOLOG_DB). The same schema
    (isolog.db.schema) and the same methods on both."""

    def __init__(self, path: Path | str | None = None):
        where = _db.target(path)
        self.url: str | None = where if isinstance(where, str) else None
        self._locked: set[str] = set()  # devices whose sync this store holds (claim_device)
        if self.url is not None:
            self._open_postgresql(self.url)
            return
        file = where if isinstance(where, Path) else default_path()
        self.path: Path | str = file
        self._refuse_foreign_file(file)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            self.db: Any = sqlite3.connect(str(file), timeout=30, isolation_level=None, factory=_Connection)
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"cannot open the store {file}: {exc}") from None
        self.db.store_path = file
        try:
            self._refuse_foreign_tables()  # before anything writes to the file
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=OFF")
            self._migrate()
        except (sqlite3.DatabaseError, UserError) as exc:
            self.db.close()
            if isinstance(exc, UserError):
                raise
            raise UserError(f"{file} is not a usable isolog store: {exc}") from None

    def _open_postgresql(self, url: str) -> None:
        from isolog.db.postgres import PgConnection

        self.db = PgConnection(url)
        self.path = self.db.shown
        try:
            self._refuse_foreign_tables()
            self._migrate()
        except BaseException:
            self.db.close()
            raise

    @property
    def kind(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self.db.kind

    @property
    def IntegrityError(self) -> type[Exception]:
        """The back end's exception for a broken key or constraint."""
        return self.db.IntegrityError

    def _refuse_foreign_file(self, path: Path) -> None:
        """A file that is not an SQLite database is never opened as one (SQLite would refuse it
        anyway, but only after the store's folder was made)."""
        try:
            with open(path, "rb") as f:
                head = f.read(len(_SQLITE_MAGIC))
        except FileNotFoundError:
            return
        except IsADirectoryError:
            raise UserError(f"{path} is a folder, not an isolog store (give the store file)") from None
        except OSError as exc:
            raise UserError(f"cannot open the store {path}: {exc.strerror or exc}") from None
        if head and head != _SQLITE_MAGIC:
            raise UserError(f"{path} is not a usable isolog store: not an SQLite database (left untouched)")

    def _refuse_foreign_tables(self) -> None:
        """A database of another application is refused and left as it was: isolog creates its
        tables only in a new file or in a database (PostgreSQL: schema) without tables."""
        tables = self.db.tables()
        if not tables:
            return
        names = set(tables)
        missing = [t for t in ("schema_version", *_CORE_TABLES) if t not in names]
        if not missing:
            for table, needed in _CORE_TABLES.items():
                have = tables[table]
                if not needed <= have:
                    missing.append(f"{table}({', '.join(sorted(needed - have))})")
        if missing:
            shown = ", ".join(sorted(names)[:6]) + (", ..." if len(names) > 6 else "")
            what = "an SQLite database" if self.kind == "sqlite" else "a PostgreSQL database"
            raise UserError(
                f"{self.path} is {what} of another application (tables: {shown}), not an "
                f"isolog store (no {', '.join(missing)}): refused and left untouched; give --db a new "
                "file or an isolog store"
            )

    def _migrate(self) -> None:
        """Apply the schema's numbered steps (isolog.db.schema.MIGRATIONS) that the store lacks, in one
        transaction; refuse a store written by a newer isolog. Two desks opening a new PostgreSQL
        store at once: the second waits on the first's lock (the advisory transaction lock below)
        and finds the steps applied."""
        with self.transaction() as db:
            if self.kind == "postgresql":
                db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            have = 0 if row is None else int(row[0])
            if have > SCHEMA_VERSION:
                raise UserError(
                    f"{self.path} was written by a newer isolog (store version {have}, "
                    f"this isolog knows {SCHEMA_VERSION}): update isolog"
                )
            # Step 1 is applied again to a store at version 1 (stores from before device_auth).
            for step in MIGRATIONS:
                if step.number > have or step.number == have == 1:
                    for stmt in step.statements(self.kind):
                        db.execute(stmt)
            if row is None:
                db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif have != SCHEMA_VERSION:
                db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def close(self) -> None:
        for device in list(self._locked):
            self.release_device(device)
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close()
        if isinstance(exc, self.db.Error):  # raised while reading rows (a damaged page found late)
            translated = self.db.translated(exc)
            if translated is not exc:
                raise translated from None

    # --- transactions ----------------------------------------------------------------------------

    class _Tx:
        def __init__(self, db: Any):
            self.db = db

        def __enter__(self) -> Any:
            self.db.execute(self.db.begin_sql)
            return self.db

        def __exit__(self, exc_type, exc, tb) -> None:
            if exc_type is None:
                try:
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.rollback_quietly()
                    raise
            else:
                self.db.rollback_quietly()

    def transaction(self) -> "Store._Tx":
        """BEGIN .. COMMIT, ROLLBACK on error. Durable on return: SQLite in WAL mode with
        synchronous=FULL; PostgreSQL with synchronous_commit=on (db/postgres.py). SQLite's
        BEGIN IMMEDIATE serializes writers; in PostgreSQL a read-modify-write locks its row (FOR UPDATE)."""
        return Store._Tx(self.db)

    # --- one desk syncs a board at a time --------------------------------------------------------

    def claim_device(self, device: str, session: int | None) -> None:
        """Take the device for this store's sync (session) until release_device or close; UserError
        when another sync holds it (two desks syncing the same board at once cannot both win).
        PostgreSQL: a session advisory lock on the device (released if the desk's connection
        drops). SQLite: under BEGIN IMMEDIATE, no running session of the device on this computer
        whose process is alive (an SQLite store is one computer's file)."""
        if self.kind == "postgresql":
            if not self.db.try_lock_device(device):
                other = self._running_session(device, session)
                raise UserError(
                    f"board {device} is being synced by another desk{other}: nothing was stored; "
                    "sync it again when that sync has ended"
                )
            self._locked.add(device)
            with self.transaction() as db:
                # A session of this device still "running" holds no lock (we have it): its desk
                # crashed or lost the server mid-sync.
                db.execute(
                    "UPDATE sync_sessions SET status = 'abandoned' WHERE device = ? AND status = 'running' AND id != ?",
                    (device, session if session is not None else -1),
                )
                self.update_session(db, session, device=device)
            return
        with self.transaction() as db:
            me = socket.gethostname()
            for sid, pid, host, user in db.execute(
                "SELECT id, pid, host, host_user FROM sync_sessions "
                "WHERE device = ? AND status = 'running' AND id != ?",
                (device, session if session is not None else -1),
            ).fetchall():
                if pid and (host in (None, me)) and _pid_alive(pid):
                    raise UserError(
                        f"board {device} is being synced by another isolog (session {sid}, user {user}, process "
                        f"{pid}): nothing was stored; sync it again when that sync has ended"
                    )
            self.update_session(db, session, device=device)
        self._locked.add(device)

    def _running_session(self, device: str, session: int | None) -> str:
        row = self.db.execute(
            "SELECT id, host, host_user FROM sync_sessions WHERE device = ? AND status = 'running' AND id != ? "
            "ORDER BY id DESC LIMIT 1",
            (device, session if session is not None else -1),
        ).fetchone()
        return f" (session {row[0]} on {row[1]}, user {row[2]})" if row else ""

    def release_device(self, device: str) -> None:
        if device in self._locked:
            self._locked.discard(device)
            if self.kind == "postgresql":
                try:
                    self.db.unlock_device(device)
                except UserError:
                    pass  # the connection is gone: so is the lock

    # --- devices ---------------------------------------------------------------------------------

    def device(self, device: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT id, board, firmware, first_seen, last_seen, base_seq, next_seq FROM devices WHERE id = ?", (device,)
        ).fetchone()
        if row is None:
            return None
        return dict(zip(("id", "board", "firmware", "first_seen", "last_seen", "base_seq", "next_seq"), row))

    def devices(self) -> list[dict[str, Any]]:
        ids = [r[0] for r in self.db.execute("SELECT id FROM devices ORDER BY id")]
        return [d for d in (self.device(i) for i in ids) if d is not None]

    def touch_device(
        self, db: Connection, device: str, board: str | None, firmware: str | None, base_seq: int
    ) -> dict[str, Any]:
        """Register a board (inside a transaction); a new one starts at base_seq."""
        now = now_iso()
        db.execute(
            "INSERT INTO devices (id, board, firmware, first_seen, last_seen, base_seq, next_seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET board = excluded.board, "
            "firmware = excluded.firmware, last_seen = excluded.last_seen",
            (device, board, firmware, now, now, base_seq, base_seq),
        )
        dev = self.device(device)
        assert dev is not None
        return dev

    def advance_next_seq(self, db: Connection, device: str) -> int:
        """Move the device's next_seq over every record stored contiguously (and over ranges known
        to be lost from the board). Inside a transaction."""
        (nxt,) = db.execute("SELECT next_seq FROM devices WHERE id = ?" + db.for_update, (device,)).fetchone()
        start = nxt
        while True:
            lost = db.execute(
                "SELECT end_seq FROM lost WHERE device = ? AND first_seq <= ? AND end_seq > ?", (device, nxt, nxt)
            ).fetchone()
            if lost:
                nxt = lost[0]
                continue
            if not db.execute("SELECT 1 FROM records WHERE device = ? AND seq = ?", (device, nxt)).fetchone():
                break
            # The end of the run of consecutive sequence numbers from nxt: the first stored seq >= nxt
            # whose successor is not stored (next_seq only moves forward: linear over a whole sync).
            (last,) = db.execute(
                "SELECT r.seq FROM records r WHERE r.device = ? AND r.seq >= ? AND NOT EXISTS "
                "(SELECT 1 FROM records s WHERE s.device = r.device AND s.seq = r.seq + 1) ORDER BY r.seq LIMIT 1",
                (device, nxt),
            ).fetchone()
            nxt = last + 1
        if nxt != start:
            db.execute("UPDATE devices SET next_seq = ? WHERE id = ?", (nxt, device))
        return nxt

    # --- records ---------------------------------------------------------------------------------

    def insert_records(
        self,
        db: Connection,
        device: str,
        recs: list[dict[str, Any]],
        segment: int | None,
        offset: int | None,
        session: int | None,
    ) -> tuple[int, list[str]]:
        """Insert records (inside a transaction). A sequence number already stored is not stored
        again: identical -> skipped, different -> reported. Returns (added, problems)."""
        if not recs:
            return 0, []
        lo = min(r["seq"] for r in recs)
        hi = max(r["seq"] for r in recs)
        existing = {
            row[1]: row_record(row)
            for row in db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM records WHERE device = ? AND seq BETWEEN ? AND ?", (device, lo, hi)
            )
        }
        problems = []
        fresh = []
        for r in recs:
            old = existing.get(r["seq"])
            if old is None:
                fresh.append(r)
                existing[r["seq"]] = dict(r, device=device)
                continue
            mine = dict(r, device=device)
            if old != mine:
                problems.append(
                    f"record {r['seq']} came again with different data: the stored copy is kept "
                    f"(stored {_short(old)}, board {_short(mine)})"
                )
        db.executemany(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [record_row(r, device, segment, offset, session) for r in fresh],
        )
        return len(fresh), problems

    def records(self, device: str, lo: int = 0, hi: int | None = None) -> Iterator[dict[str, Any]]:
        """Stored records of a device with lo <= seq < hi, in seq order."""
        q = f"SELECT {_RECORD_COLUMNS} FROM records WHERE device = ? AND seq >= ?"
        args: list[Any] = [device, lo]
        if hi is not None:
            q += " AND seq < ?"
            args.append(hi)
        for row in self.db.execute(q + " ORDER BY seq", args):
            yield row_record(row)

    def record_rows(
        self, device: str, lo: int = 0, hi: int | None = None, size: int = ROWS_PER_FETCH
    ) -> Iterator[list[tuple]]:
        """Stored records of a device with lo <= seq < hi, in seq order, as rows of ROW_FIELDS
        (flags as their JSON text), `size` rows a fetch: what export and check stream."""
        q = f"SELECT {_ROW_COLUMNS} FROM records WHERE device = ? AND seq >= ?"
        args: list[Any] = [device, lo]
        if hi is not None:
            q += " AND seq < ?"
            args.append(hi)
        if self.kind == "postgresql":  # a server-side cursor: the client holds one fetch at a time
            yield from self.db.stream(q + " ORDER BY seq", args, size)
            return
        cur = self.db.execute(q + " ORDER BY seq", args)
        while True:
            try:
                rows = cur.fetchmany(size)
            except self.db.Error as exc:  # a damaged page in the middle of the records, a lost server
                raise self.db.translated(exc) from None
            if not rows:
                return
            yield rows

    def count_records(self, device: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM records WHERE device = ?", (device,)).fetchone()[0]

    # --- segments --------------------------------------------------------------------------------

    def segment(self, device: str, first_seq: int) -> tuple[int, bytes | None] | None:
        row = self.db.execute(
            'SELECT "offset", header FROM segments WHERE device = ? AND first_seq = ?', (device, first_seq)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def set_segment(self, db: Connection, device: str, first_seq: int, offset: int, header: bytes | None) -> None:
        db.execute(
            'INSERT INTO segments (device, first_seq, "offset", header, updated) VALUES (?, ?, ?, ?, ?) '
            'ON CONFLICT(device, first_seq) DO UPDATE SET "offset" = excluded."offset", header = excluded.header, '
            "updated = excluded.updated",
            (device, first_seq, offset, header, now_iso()),
        )

    def add_chunk(
        self, db: Connection, device: str, segment: int, offset: int, data: bytes, session: int | None
    ) -> None:
        db.execute(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (device, segment, offset, data, session)
        )

    def add_damage(
        self,
        db: Connection,
        device: str,
        segment: int,
        offset: int,
        length: int,
        reason: str,
        session: int | None,
    ) -> None:
        db.execute(
            'INSERT INTO damage VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device, segment, "offset") DO UPDATE SET '
            "length = excluded.length, reason = excluded.reason, session = excluded.session",
            (device, segment, offset, length, reason, session),
        )

    def add_lost(
        self, db: Connection, device: str, first_seq: int, end_seq: int, reason: str, session: int | None
    ) -> None:
        db.execute(
            "INSERT INTO lost VALUES (?, ?, ?, ?, ?) ON CONFLICT (device, first_seq) DO UPDATE SET "
            "end_seq = excluded.end_seq, reason = excluded.reason, session = excluded.session",
            (device, first_seq, end_seq, reason, session),
        )

    # --- sessions, clock anchors, audit ------------------------------------------------------------

    def start_session(self, port: str) -> int:
        with self.transaction() as db:
            # Sessions of this computer whose process is gone ended without saying so (killed). A
            # session of another desk (another host; before schema step 2: none) is that desk's to say.
            me = socket.gethostname()
            for sid, pid, host in db.execute(
                "SELECT id, pid, host FROM sync_sessions WHERE status = 'running'"
            ).fetchall():
                if pid and host in (None, me) and not _pid_alive(pid):
                    db.execute("UPDATE sync_sessions SET status = 'abandoned' WHERE id = ?", (sid,))
            (sid,) = db.execute(
                "INSERT INTO sync_sessions (port, started, status, host_user, pid, host) "
                "VALUES (?, ?, 'running', ?, ?, ?) RETURNING id",
                (port, now_iso(), host_user(), os.getpid(), me),
            ).fetchall()[0]
            return int(sid)

    def update_session(self, db: Connection, session: int | None, **fields: Any) -> None:
        if "problems" in fields:
            fields["problems"] = json.dumps(fields["problems"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        db.execute(f"UPDATE sync_sessions SET {sets} WHERE id = ?", (*fields.values(), session))

    def sessions(self, device: str | None = None) -> list[dict[str, Any]]:
        cols = (
            "id",
            "device",
            "port",
            "started",
            "ended",
            "status",
            "records_added",
            "bytes",
            "acked_upto",
            "host_user",
            "pid",
            "problems",
        )
        q = f"SELECT {', '.join(cols)} FROM sync_sessions"
        args: tuple = ()
        if device:
            q += " WHERE device = ?"
            args = (device,)
        out = []
        for row in self.db.execute(q + " ORDER BY id", args):
            d = dict(zip(cols, row))
            d["problems"] = json.loads(d["problems"]) if d["problems"] else []
            out.append(d)
        return out

    def add_clock_anchor(
        self,
        db: Connection,
        device: str,
        boot: int,
        uptime_ms: int,
        epoch_ms: int,
        board_time_ms: int | None,
        session: int | None,
    ) -> None:
        db.execute(
            "INSERT INTO clock_anchors (device, boot, uptime_ms, epoch_ms, board_time_ms, taken_at, session) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (device, boot, uptime_ms, epoch_ms, board_time_ms, now_iso(), session),
        )

    def clock_anchors(self, device: str) -> list[dict[str, Any]]:
        cols = ("device", "boot", "uptime_ms", "epoch_ms", "board_time_ms", "taken_at", "session")
        return [
            dict(zip(cols, row))
            for row in self.db.execute(
                f"SELECT {', '.join(cols)} FROM clock_anchors WHERE device = ? ORDER BY rowid", (device,)
            )
        ]

    def audit(self, db: Connection | None, device: str | None, action: str, details: dict[str, Any]) -> None:
        args = (now_iso(), host_user(), device, action, json.dumps(details, sort_keys=True))
        sql = "INSERT INTO audit (time, host_user, device, action, details) VALUES (?, ?, ?, ?, ?)"
        if db is not None:
            db.execute(sql, args)
        else:
            with self.transaction() as tx:
                tx.execute(sql, args)

    def audit_trail(self, device: str | None = None) -> list[dict[str, Any]]:
        cols = ("id", "time", "host_user", "device", "action", "details")
        q = f"SELECT {', '.join(cols)} FROM audit"
        args: tuple = ()
        if device:
            q += " WHERE device = ?"
            args = (device,)
        out = []
        for row in self.db.execute(q + " ORDER BY id", args):
            d = dict(zip(cols, row))
            d["details"] = json.loads(d["details"])
            out.append(d)
        return out

    # --- shipments -------------------------------------------------------------------------------

    # --- device keys (board/provision.py) ------------------------------------------------------------

    def add_key(self, db: Connection, device: str, key_id: str, key: bytes, name: str) -> None:
        db.execute(
            "INSERT INTO device_keys (device, key_id, key, name, created, current) VALUES (?, ?, ?, ?, ?, 0)",
            (device, key_id, key, name, now_iso()),
        )

    def remove_key(self, db: Connection, device: str, key_id: str) -> None:
        db.execute("DELETE FROM device_keys WHERE device = ? AND key_id = ?", (device, key_id))

    def make_key_current(self, db: Connection, device: str, key_id: str) -> None:
        db.execute(
            "UPDATE device_keys SET current = CASE WHEN key_id = ? THEN 1 ELSE 0 END WHERE device = ?", (key_id, device)
        )

    def current_key(self, device: str) -> bytes | None:
        row = self.db.execute("SELECT key FROM device_keys WHERE device = ? AND current = 1", (device,)).fetchone()
        return bytes(row[0]) if row else None

    def key_by_id(self, device: str, key_id: str) -> bytes | None:
        row = self.db.execute(
            "SELECT key FROM device_keys WHERE device = ? AND key_id = ?", (device, key_id)
        ).fetchone()
        return bytes(row[0]) if row else None

    def keys(self, device: str) -> list[bytes]:
        return [bytes(r[0]) for r in self.db.execute("SELECT key FROM device_keys WHERE device = ?", (device,))]

    # --- the stored chunks as evidence -------------------------------------------------------------

    def segment_data(self, device: str, first: int) -> bytes:
        """A segment's stored chunks at their offsets; a gap (a chunk damaged on the board, never
        stored) is zero-filled, so a check sees damage there and restarts the chain instead of
        calling the chunk after it forged."""
        parts = []
        at = None
        for offset, chunk in self.db.execute(
            'SELECT "offset", data FROM chunks WHERE device = ? AND segment = ? ORDER BY "offset"', (device, first)
        ):
            if at is not None and offset > at:
                parts.append(bytes(offset - at))
            parts.append(bytes(chunk))
            at = offset + len(chunk)
        return b"".join(parts)

    def verify(self, device: str, segments: Iterable[int] | None = None) -> ChainResult:
        """The MAC chain (log.chain) of the chunks stored for a device: all segments, or the ones
        given and their link to the one before. Each segment is checked with the key its header
        names; a board never provisioned uses the empty key."""
        stored = [
            r[0]
            for r in self.db.execute("SELECT DISTINCT segment FROM chunks WHERE device = ? ORDER BY segment", (device,))
        ]
        wanted = set(stored if segments is None else segments)

        def each() -> Iterator[tuple[str, bytes, bool]]:
            for first in stored:
                if first in wanted:
                    yield segment_name(first), self.segment_data(device, first), True
                else:  # only the mac it ends on, for the link of the next one
                    last = self.db.execute(
                        'SELECT data FROM chunks WHERE device = ? AND segment = ? ORDER BY "offset" DESC LIMIT 1',
                        (device, first),
                    ).fetchone()
                    yield segment_name(first), bytes(last[0]) if last else b"", False

        return verify_segments(each(), key_table(self.keys(device)), f"the store {self.path}")

    # --- provisioning, counters, segment checks (docs/security.md) -----------------------------------

    def provisioning(self, device: str) -> dict[str, Any] | None:
        """How this store provisioned the device (None: never): key_id, counter, keyed_from, ..."""
        cols = ("device", "key_id", "counter", "keyed_from", "key_store", "provisioned_at", "host_user")
        row = self.db.execute(f"SELECT {', '.join(cols)} FROM device_auth WHERE device = ?", (device,)).fetchone()
        return dict(zip(cols, row)) if row else None

    def set_provisioned(self, db: Connection, device: str, key_id: str, keyed_from: int, key_store: str | None) -> None:
        """Record (inside a transaction) that the device now holds key_id, from record keyed_from on;
        its counter starts again at 0 (the board resets it with a new key)."""
        db.execute(
            "INSERT INTO device_auth (device, key_id, counter, keyed_from, key_store, provisioned_at, host_user) "
            "VALUES (?, ?, 0, ?, ?, ?, ?) ON CONFLICT(device) DO UPDATE SET key_id = excluded.key_id, "
            "counter = 0, keyed_from = excluded.keyed_from, key_store = excluded.key_store, "
            "provisioned_at = excluded.provisioned_at, host_user = excluded.host_user",
            (device, key_id, keyed_from, key_store, now_iso(), host_user()),
        )

    def next_counter(self, device: str, key_id: str, limit: int) -> int:
        """The counter for the next signed request to the device, kept here and committed before
        the request is sent (a crash never makes this store sign a counter twice). Beyond limit:
        UserError (re-provision the board: a new key starts the counter again)."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT counter FROM device_auth WHERE device = ? AND key_id = ?" + db.for_update, (device, key_id)
            ).fetchone()
            if row is None or row[0] is None:
                raise UserError(f"board {device}: this store keeps no counter for key {key_id}")
            counter = int(row[0]) + 1
            if counter > limit:
                raise UserError(
                    f"board {device}: the authentication counter of key {key_id} is used up ({row[0]}): "
                    "re-provision the board (isolog provision PORT --name NAME) to give it a new key"
                )
            db.execute("UPDATE device_auth SET counter = ? WHERE device = ?", (counter, device))
        return counter

    def adopt_counter(self, device: str, key_id: str, counter: int) -> None:
        """A store from before device_auth does not know the counter: take the board's, once (audited)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE device_auth SET counter = ? WHERE device = ? AND key_id = ? AND counter IS NULL",
                (counter, device, key_id),
            )
            self.audit(db, device, "counter_adopted", {"key_id": key_id, "counter": counter})

    def unchecked_segments(self, device: str) -> list[int]:
        """Stored segments whose verification state is not known yet (stores from before it)."""
        return [
            r[0]
            for r in self.db.execute(
                "SELECT DISTINCT c.segment FROM chunks c WHERE c.device = ? AND NOT EXISTS "
                "(SELECT 1 FROM segment_checks s WHERE s.device = c.device AND s.segment = c.segment) "
                "ORDER BY c.segment",
                (device,),
            )
        ]

    def check_segments(self, device: str, segments: Iterable[int], session: int | None = None) -> ChainResult:
        """Verify the stored chunks of these segments (MAC chain, damage, configuration against the
        one configured) and keep each segment's state (segment_checks). Returns the chain result,
        with the configuration differences among its problems."""
        wanted = sorted(set(segments))
        result = self.verify(device, wanted)
        by_name = {seg[0]: seg for seg in result.segments}
        damage_rows = {
            int(r[0]) for r in self.db.execute("SELECT DISTINCT segment FROM damage WHERE device = ?", (device,))
        }
        with self.transaction() as db:
            for first in wanted:
                name = segment_name(first)
                _, verified, failed, unverified, damaged, first_bad, problems = by_name.get(
                    name, (name, 0, 0, 0, 0, None, [])
                )
                diffs = self.config_differences(device, first)
                if first_bad is not None and first_bad < 0:
                    first_bad = first
                if damaged or first in damage_rows:
                    damaged = max(damaged, 1)
                    # records stored from chunks before the first damage are intact
                    at = db.execute(
                        'SELECT MIN("offset") FROM damage WHERE device = ? AND segment = ?', (device, first)
                    ).fetchone()[0]
                    ok_end = db.execute(
                        "SELECT MAX(seq) + 1 FROM records WHERE device = ? AND segment = ? AND chunk_offset < ?",
                        (device, first, at if at is not None else 0),
                    ).fetchone()[0]
                    at_seq = ok_end if ok_end is not None else first
                    first_bad = at_seq if first_bad is None else min(first_bad, at_seq)
                if diffs:
                    first_bad = first
                texts = [str(p) for p in problems] + [f"{name}: {d}" for d in diffs]
                for d in diffs:
                    result.problems.append(Problem(name, d))
                db.execute(
                    "INSERT INTO segment_checks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (device, segment) DO UPDATE SET verified = excluded.verified, "
                    "failed = excluded.failed, unverified = excluded.unverified, damaged = excluded.damaged, "
                    "first_bad = excluded.first_bad, config_differences = excluded.config_differences, "
                    "problems = excluded.problems, checked_at = excluded.checked_at, session = excluded.session",
                    (
                        device,
                        first,
                        verified,
                        failed,
                        unverified,
                        damaged,
                        first_bad,
                        json.dumps(diffs),
                        json.dumps(texts),
                        now_iso(),
                        session,
                    ),
                )
        return result

    def segment_checks(self, device: str) -> list[dict[str, Any]]:
        cols = (
            "segment",
            "verified",
            "failed",
            "unverified",
            "damaged",
            "first_bad",
            "config_differences",
            "problems",
            "checked_at",
        )
        out = []
        for row in self.db.execute(
            f"SELECT {', '.join(cols)} FROM segment_checks WHERE device = ? ORDER BY segment", (device,)
        ):
            d = dict(zip(cols, row))
            d["config_differences"] = json.loads(d["config_differences"])
            d["problems"] = json.loads(d["problems"])
            out.append(d)
        return out

    def ack_bound(self, device: str, upto: int) -> tuple[int, list[str]]:
        """How far records may be acknowledged to the board: up to `upto` (the first record not
        stored contiguously), but never into a segment that failed its MAC check, holds damage or
        records that could not be checked, or was written under a configuration other than the one
        configured. Returns (bound, why it is lower than upto)."""
        for c in self.segment_checks(device):
            if c["segment"] >= upto:
                break
            why = []
            if c["failed"]:
                why.append("fails the MAC check")
            if c["unverified"]:
                why.append(f"holds {c['unverified']} records that could not be checked")
            if c["damaged"]:
                why.append("is damaged")
            if c["config_differences"]:
                why.append("was written under another configuration (" + "; ".join(c["config_differences"]) + ")")
            if why:
                bad = c["first_bad"] if c["first_bad"] is not None else c["segment"]
                return min(upto, bad), [f"{segment_name(c['segment'])} " + ", ".join(why)]
        return upto, []

    def _segment_chunks(self, device: str, first: int, kind: int) -> list[bytes]:
        out = []
        for (data,) in self.db.execute(
            'SELECT data FROM chunks WHERE device = ? AND segment = ? ORDER BY "offset"', (device, first)
        ):
            data = bytes(data)
            if len(data) > 1 and data[1] == kind:
                out.append(data)
        return out

    def config_differences(self, device: str, first: int) -> list[str]:
        """How the configuration a segment was written under (its header's calibration and its
        "C" chunk, both covered by the MAC chain) differs from the board configuration stored at
        `isolog configure` for its records; each difference names the field. Empty when they agree
        or when no configuration of this store covers the segment."""
        ships = [s for s in self.shipments(device) if s["first_seq"] <= first]
        if not ships:
            return []
        candidates = [ships[-1]["board_config"]]
        if len(ships) > 1 and first <= ships[-1]["first_seq_max"]:
            candidates.append(ships[-2]["board_config"])  # sampled between IDENTIFY and SET_CONFIG
        used: list[dict[str, Any]] = []
        for data in self._segment_chunks(device, first, fw_record.KIND_HEADER):
            try:
                _, start, _, _ = fw_record.check_chunk(data, 0, len(data))
                h = fw_record.decode_header(data, start)
            except (fw_record.RecordError, ValueError):
                continue
            used.append({k: h[k] for k in _HEADER_FIELDS})
        for data in self._segment_chunks(device, first, fw_record.KIND_CONFIG):
            try:
                _, start, length, _ = fw_record.check_chunk(data, 0, len(data))
                cfg = json.loads(bytes(data[start : start + length - fw_record.MAC_LEN]).decode())
            except (fw_record.RecordError, ValueError, UnicodeDecodeError):
                used.append({"configuration": "unreadable"})
                continue
            used.append(cfg if isinstance(cfg, dict) else {"configuration": "unreadable"})
        best: list[str] | None = None
        for want in candidates:
            diffs = []
            for got in used:
                diffs += [d for d in _config_diff(got, want) if d not in diffs]
            if best is None or len(diffs) < len(best):
                best = diffs
        return best or []

    def shipment_verification(self, ship_id: str) -> "Verification":
        """What the store knows of a shipment's records [lo, hi) on its device, for the verdict
        (compliance.Verification): the MAC chain of the segments holding them, the key those
        segments name (a segment made with the empty key after the board got a key of its own is a
        downgrade), the ranges known to be lost, and the shipment's record range."""
        from isolog.compliance.model import (
            KEY_DEVICE,
            KEY_DOWNGRADED,
            KEY_EMPTY,
            KEY_MISSING,
            KEY_ON_FLASH,
            SeqRange,
            Verification,
        )

        ship, lo, hi = self.shipment_range(ship_id)
        device = ship["device"]
        rng = "seq >= ?" + (" AND seq < ?" if hi is not None else "")
        rng_args = [lo] + ([hi] if hi is not None else [])
        segments = [
            r[0]
            for r in self.db.execute(
                f"SELECT DISTINCT segment FROM records WHERE device = ? AND {rng} AND segment IS NOT NULL",
                [device, *rng_args],
            )
        ]
        outside_log = self.db.execute(
            f"SELECT COUNT(*) FROM records WHERE device = ? AND {rng} AND segment IS NULL", [device, *rng_args]
        ).fetchone()[0]
        log = self.verify(device, segments)

        # The key the segments name: a segment made with the empty key after the board got a key of
        # its own (before this shipment was configured) is a downgrade.
        empty_id = fw_record.key_id(b"").hex()
        held = {
            kid: created
            for kid, created in self.db.execute("SELECT key_id, created FROM device_keys WHERE device = ?", (device,))
        }
        named = set()
        prov = self.provisioning(device)
        downgraded = False
        for seg in segments:
            row = self.db.execute(
                "SELECT header FROM segments WHERE device = ? AND first_seq = ?", (device, seg)
            ).fetchone()
            header = bytes(row[0]) if row and row[0] is not None else None
            try:
                kind, start, _, _ = fw_record.check_chunk(header, 0, len(header)) if header else (None, 0, 0, 0)
                if kind == fw_record.KIND_HEADER:
                    kid = fw_record.decode_header(header, start)["key_id"].hex()
                    named.add(kid)
                    # after this store provisioned the board, its log names that key only
                    if prov is not None and seg >= prov["keyed_from"] and kid == empty_id:
                        downgraded = True
            except (fw_record.RecordError, ValueError):
                pass
        provisioned_before = any(
            _iso_key(c) <= _iso_key(ship["configured_at"]) for kid, c in held.items() if kid != empty_id
        )
        if downgraded or (empty_id in named and provisioned_before):
            key = KEY_DOWNGRADED
        elif named - {empty_id} - set(held):
            key = KEY_MISSING
        elif empty_id in named:
            key = KEY_EMPTY
        elif prov is None or prov.get("key_store") != "se":
            key = KEY_ON_FLASH  # the device key, but on the board's flash (no secure element)
        else:
            key = KEY_DEVICE
        lost = tuple(
            SeqRange(int(a), int(b), str(reason))
            for a, b, reason in self.db.execute(
                "SELECT first_seq, end_seq, reason FROM lost WHERE device = ? AND end_seq > ?"
                + (" AND first_seq < ?" if hi is not None else "")
                + " ORDER BY first_seq",
                [device, lo] + ([hi] if hi is not None else []),
            )
        )
        return Verification(
            method="mac_chain",
            verified=int(log.verified),
            failed=int(log.failed),
            unverified=int(log.unverified) + int(outside_log),
            key=key,
            expected_first_seq=int(lo),
            expected_end_seq=int(hi) if hi is not None else None,
            missing=lost,
            problems=tuple(str(p) for p in log.problems),
            note=f"MAC chain of {len(segments)} stored segment(s) of device {device}",
            config_differences=tuple(
                f"{segment_name(seg)}: {d}" for seg in sorted(segments) for d in self.config_differences(device, seg)
            ),
        )

    def add_shipment(
        self,
        device: str,
        ship_id: str,
        toml_text: str,
        board_config: dict[str, Any],
        first_seq: int,
        first_seq_max: int,
        board: str | None = None,
        firmware: str | None = None,
        start_delay_s: float = 0.0,
        forced: dict[str, Any] | None = None,
        container: dict[str, Any] | None = None,
        product: str | None = None,
    ) -> None:
        """Store a configuration: the shipment is configured now and dispatched (its trip starts)
        after start_delay_s. `forced`: what a `--force --reason` overrode (audited). `container`:
        the container's record it was configured with; `product`: its product template's text."""
        with self.transaction() as db:
            self.touch_device(db, device, board, firmware, 0)
            now = datetime.now(timezone.utc)
            self.add_event(db, ship_id, device, "configured", now, {"first_seq": first_seq})
            self.add_event(
                db,
                ship_id,
                device,
                "dispatched",
                now + timedelta(seconds=start_delay_s),
                {"start_delay_s": start_delay_s},
            )
            if forced:
                self.audit(db, device, "configure_forced", {"shipment": ship_id, **forced})
            db.execute(
                "INSERT INTO shipments (id, device, toml, board_config, configured_at, first_seq, "
                "first_seq_max, host_user, container, product) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ship_id,
                    device,
                    toml_text,
                    json.dumps(board_config, sort_keys=True),
                    now_iso(),
                    first_seq,
                    first_seq_max,
                    host_user(),
                    json.dumps(container, sort_keys=True) if container else None,
                    product,
                ),
            )
            self.audit(
                db, device, "configure", {"shipment": ship_id, "board_config": board_config, "first_seq": first_seq}
            )

    def shipments(self, device: str | None = None, ship_id: str | None = None) -> list[dict[str, Any]]:
        """Stored shipment configurations in the order configured, of one device and/or one
        shipment id when given (each read through an index: shipments_by_device, shipments_by_id)."""
        cols = (
            "rowid",
            "id",
            "device",
            "toml",
            "board_config",
            "configured_at",
            "first_seq",
            "first_seq_max",
            "host_user",
            "container",
            "product",
        )
        q = f"SELECT {', '.join(cols)} FROM shipments"
        where = []
        args: tuple = ()
        if device:
            where.append("device = ?")
            args += (device,)
        if ship_id is not None:
            where.append("id = ?")
            args += (ship_id,)
        if where:
            q += " WHERE " + " AND ".join(where)
        out = []
        for row in self.db.execute(q + " ORDER BY rowid", args):
            d = dict(zip(cols, row))
            d["board_config"] = json.loads(d["board_config"])
            d["container"] = json.loads(d["container"]) if d["container"] else None
            out.append(d)
        return out

    def shipment_range(self, ship_id: str, device: str | None = None) -> tuple[dict[str, Any], int, int | None]:
        """The stored shipment (its latest configuration) and its records' range [first, end) on its
        device: from its first configuration to the next configuration of another shipment.

        A shipment id names one trip (configure refuses a reused one). A store written before that
        may hold an id twice (two boards, or two trips of one board): the id then names its latest
        trip, so every command that takes an id works without further options."""
        rows = self.shipments(device, ship_id)
        if not rows:
            where = f" for device {device}" if device else ""
            known = sorted({s["id"] for s in self.shipments(device)})
            hint = (
                f" (stored: {', '.join(known)})" if known else " (none stored: configure boards with isolog configure)"
            )
            raise UserError(f"no shipment {ship_id!r} in the store {self.path}{where}{hint}")
        dev = rows[-1]["device"]
        all_rows = self.shipments(dev)
        # the latest run of configurations of this id on its board: its first one
        i = max(k for k, s in enumerate(all_rows) if s["id"] == ship_id)
        while i > 0 and all_rows[i - 1]["id"] == ship_id:
            i -= 1
        first_row = all_rows[i]
        latest = first_row
        end: int | None = None
        for s in all_rows[i + 1 :]:
            if s["id"] != ship_id:
                end = self._refined_first(s)
                break
            latest = s
        return latest, self._refined_first(first_row), end

    # --- a shipment's life (issue 14) --------------------------------------------------------------

    def add_event(
        self,
        db: sqlite3.Connection | None,
        ship_id: str,
        device: str,
        state: str,
        happened: datetime | str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record that a shipment reached `state` (SHIPMENT_STATES) at `happened` (default: now)."""
        if state not in SHIPMENT_STATES:
            raise ValueError(f"unknown shipment state {state!r}")
        if happened is None:
            at = now_iso()
        elif isinstance(happened, datetime):
            at = happened.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        else:
            at = happened
        args = (ship_id, device, state, at, now_iso(), host_user(), json.dumps(details or {}, sort_keys=True))
        sql = (
            "INSERT INTO shipment_events (shipment, device, state, happened_at, recorded_at, host_user, details) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        if db is not None:
            db.execute(sql, args)
        else:
            with self.transaction() as tx:
                tx.execute(sql, args)

    def shipment_events(self, ship_id: str) -> list[dict[str, Any]]:
        """A shipment's life as recorded, in the order recorded (its latest trip's device only)."""
        cols = ("id", "shipment", "device", "state", "happened_at", "recorded_at", "host_user", "details")
        out = []
        for row in self.db.execute(
            f"SELECT {', '.join(cols)} FROM shipment_events WHERE shipment = ? ORDER BY id", (ship_id,)
        ):
            d = dict(zip(cols, row))
            d["details"] = json.loads(d["details"])
            out.append(d)
        if out:
            dev = out[-1]["device"]
            out = [e for e in out if e["device"] == dev]
        return out

    def shipment_state(self, ship_id: str) -> str | None:
        """The last state recorded for a shipment; None: no event (a store from before issue 14)."""
        events = self.shipment_events(ship_id)
        return events[-1]["state"] if events else None

    def last_event(self, ship_id: str, state: str) -> dict[str, Any] | None:
        found = [e for e in self.shipment_events(ship_id) if e["state"] == state]
        return found[-1] if found else None

    # --- containers (board/container.py) ------------------------------------------------------------

    CONTAINER_FIELDS = (
        "sensor_model",
        "cal_cpm_per_usv_h",
        "dead_time_us",
        "one_metre_factor",
        "surface_factor",
        "calibrated_on",
        "calibration_due",
    )

    def container(self, device: str) -> dict[str, Any] | None:
        """The container's record (sensor, calibration, dates; who set it, when), or None."""
        cols = ("device", *self.CONTAINER_FIELDS, "updated_at", "host_user")
        row = self.db.execute(f"SELECT {', '.join(cols)} FROM containers WHERE device = ?", (device,)).fetchone()
        return dict(zip(cols, row)) if row else None

    def set_container(self, device: str, values: dict[str, Any]) -> dict[str, Any] | None:
        """Store the container's record (every CONTAINER_FIELDS value), audited with the old and
        new values; returns the old record (None: the first)."""
        old = self.container(device)
        fields = self.CONTAINER_FIELDS
        args = (*(values[f] for f in fields), now_iso(), host_user())
        with self.transaction() as db:
            if old is None:
                db.execute(
                    f"INSERT INTO containers (device, {', '.join(fields)}, updated_at, host_user) "
                    f"VALUES (?, {', '.join('?' for _ in fields)}, ?, ?)",
                    (device, *args),
                )
            else:
                db.execute(
                    f"UPDATE containers SET {', '.join(f + ' = ?' for f in fields)}, updated_at = ?, host_user = ? "
                    "WHERE device = ?",
                    (*args, device),
                )
            self.audit(
                db,
                device,
                "container_set",
                {"old": {f: old[f] for f in fields} if old else None, "new": {f: values[f] for f in fields}},
            )
        return old

    def excursions_on_hold(self, shipment_row: int) -> tuple[int, int]:
        """(awaiting, rejected) of a shipment configuration's temperature excursions as the
        dashboard's last check listed them (web_excursions, and web_verdicts.unlisted_excursions:
        those counted but not listed): without a signed QA decision, and rejected
        (web_excursion_reviews; web/reviews.py). (0, 0) when the dashboard never checked it."""
        (awaiting,) = self.db.execute(
            "SELECT COUNT(*) FROM web_excursions e WHERE e.shipment_row = ? AND NOT EXISTS (SELECT 1 FROM "
            "web_excursion_reviews v WHERE v.shipment_row = e.shipment_row AND v.excursion = e.excursion)",
            (shipment_row,),
        ).fetchone()
        unlisted = self.db.execute(
            "SELECT unlisted_excursions FROM web_verdicts WHERE shipment_row = ?", (shipment_row,)
        ).fetchone()
        (rejected,) = self.db.execute(
            "SELECT COUNT(*) FROM web_excursion_reviews v WHERE v.shipment_row = ? AND v.meaning = 'rejected' "
            "AND EXISTS (SELECT 1 FROM web_excursions e WHERE e.shipment_row = v.shipment_row "
            "AND e.excursion = v.excursion)",
            (shipment_row,),
        ).fetchone()
        return int(awaiting) + (int(unlisted[0]) if unlisted else 0), int(rejected)

    # --- the board's state at its last sync (schema step 8) -----------------------------------------

    STATUS_FIELDS = (
        "battery_v",
        "battery_percent",
        "battery_days_left",
        "storage_used_percent",
        "storage_low",
        "storage_full",
    )

    def set_device_status(self, device: str, status: dict[str, Any], session: int | None = None) -> None:
        """Keep the board's STATUS reply as a sync read it (with the host's battery_percent and
        battery_days_left, boards/energy.py battery_fields); a field the reply lacks is NULL."""

        def number(v: Any) -> float | None:
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

        def flag(v: Any) -> int | None:
            return int(v) if isinstance(v, bool) else None

        values = (
            number(status.get("battery_v")),
            number(status.get("battery_percent")),
            number(status.get("battery_days_left")),
            number(status.get("storage_used_percent")),
            flag(status.get("storage_low")),
            flag(status.get("storage_full")),
        )
        cols = self.STATUS_FIELDS
        with self.transaction() as db:
            db.execute(
                f"INSERT INTO device_status (device, {', '.join(cols)}, taken_at, session) "
                f"VALUES (?, {', '.join('?' for _ in cols)}, ?, ?) ON CONFLICT (device) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in (*cols, "taken_at", "session")),
                (device, *values, now_iso(), session),
            )

    def device_status(self, device: str) -> dict[str, Any] | None:
        cols = ("device", *self.STATUS_FIELDS, "taken_at", "session")
        row = self.db.execute(f"SELECT {', '.join(cols)} FROM device_status WHERE device = ?", (device,)).fetchone()
        return dict(zip(cols, row)) if row else None

    def provisioned_name(self, device: str) -> str | None:
        """The name a board was provisioned with (isolog provision --name), or None."""
        row = self.db.execute(
            "SELECT name FROM device_keys WHERE device = ? ORDER BY current DESC, created DESC LIMIT 1", (device,)
        ).fetchone()
        return str(row[0]) if row and row[0] else None

    def container_name(self, device: str) -> str:
        """'container NAME (board ID)' for messages, or 'board ID' for a board never provisioned."""
        name = self.provisioned_name(device)
        return f"container {name} (board {device})" if name else f"board {device}"

    def reused_id(self, ship_id: str, device: str) -> str | None:
        """Why a shipment id may not be configured on `device`, or None. An id names one trip: it
        is refused when another board carries it, when this board carried it on an earlier trip,
        or when its trip is over (returned). Reconfiguring the board's current shipment before
        its return (a corrected file) is allowed."""
        rows = [s for s in self.shipments() if s["id"] == ship_id]
        if not rows:
            return None
        latest = rows[-1]
        if latest["device"] != device:
            return (
                f"shipment id {ship_id} is already used by {self.container_name(latest['device'])} "
                f"(configured {latest['configured_at']}): give this shipment its own id in the file"
            )
        current = self.shipments(device)[-1]
        if current["id"] != ship_id:
            return (
                f"shipment id {ship_id} was already used for an earlier trip of this container "
                f"(configured {rows[0]['configured_at']}): give this shipment its own id in the file"
            )
        state = self.shipment_state(ship_id)
        if state in _TRIP_OVER:
            return (
                f"shipment id {ship_id} names a trip that is over (it was {state}): give this shipment "
                "its own id in the file"
            )
        return None

    def _refined_first(self, s: dict[str, Any]) -> int:
        """The first record of a configuration. `isolog configure` knows it within
        [first_seq, first_seq_max] (the board may sample between IDENTIFY and SET_CONFIG); the board
        flags the first record under a new configuration "boot", which pins it once synced."""
        lo, hi = s["first_seq"], s["first_seq_max"]
        if hi > lo:
            for rec in self.records(s["device"], lo, hi + 1):
                if "boot" in rec["flags"]:
                    return rec["seq"]
        return lo

    def shipment_records(self, ship_id: str, device: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        ship, lo, hi = self.shipment_range(ship_id, device)
        return ship, list(self.records(ship["device"], lo, hi))

    def shipment_rows(self, ship_id: str, device: str | None = None) -> tuple[dict[str, Any], Iterator[list[tuple]]]:
        """A shipment and its records as record_rows() streams them."""
        ship, lo, hi = self.shipment_range(ship_id, device)
        return ship, self.record_rows(ship["device"], lo, hi)


def _short(rec: dict[str, Any]) -> str:
    return f"boot {rec['boot']} time {rec['time']} counts {rec['counts']}"


def _pid_alive(pid: int) -> bool:
    if sys.platform == "win32":
        # os.kill(pid, 0) would terminate the process on Windows (TerminateProcess for any signal
        # but the console ones): a session there is never taken for abandoned (bookkeeping only).
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _same_number(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a == b
    # the board may hold single-precision floats (the header stores f32)
    return abs(float(a) - float(b)) <= 1e-6 * max(abs(float(a)), abs(float(b))) + 1e-9


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return _same_number(a, b)


_HEADER_FIELDS = ("interval_s", "cal_cpm_per_usv_h", "dead_time_us", "background_usv_h")


def _config_diff(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Fields of `got` (what the board logged under) that differ from `want` (what was configured)."""
    out = []
    keys = set(got) if set(got) <= set(_HEADER_FIELDS) else set(got) | set(want)  # a header: its fields
    for k in sorted(keys):
        if k not in got or k not in want or not _same(got[k], want[k]):
            out.append(f"{k}: the board used {got.get(k)!r}, configured {want.get(k)!r}")
    return out


def _iso_key(text: str) -> str:
    """'2026-11-26T08:00:00.000Z' and '2026-11-26 08:00:00' (SQLite) compared as the same kind of text."""
    return str(text).replace("T", " ").rstrip("Z")[:19]


def open_store(path: Path | str | None) -> Store:
    return Store(path)


# --- records as JSON lines and CSV, streaming -------------------------------------------------------

_JSON_UNSAFE = re.compile(r'[\x00-\x1f"\\\x7f-\U0010ffff]')
_INF = (math.inf, -math.inf)


class JsonLines:
    """Stored rows (ROW_FIELDS, as SELECT gives them) as JSON lines: exactly the bytes of
    json.dumps(row_record(row)) for every row (the definition of `isolog export --format jsonl`
    and of the records' SHA-256), made with one %-format a row. A row the format cannot make
    exactly (a null, a value of an unexpected type, an infinity, flags not in json.dumps form) is
    made with json.dumps."""

    def __init__(self, device: str):
        self.device = device
        dev = json.dumps(device).replace("%", "%%")
        self.fmt = (
            '{"device": ' + dev + ', "seq": %s, "boot": %s, "time": "%s", "uptime_s": %s, "counts": %s, '
            '"interval_s": %s, "interval_counts": %s, "dose_rate_usv_h": %s, "temperature_c": %s, "flags": %s}\n'
        )
        self._flags: dict[str, bool] = {}  # flags text -> it is json.dumps(json.loads(text))

    def exact(self, row: tuple) -> str:
        return json.dumps(dict(zip(RECORD_FIELDS, (self.device, *row[:-1], _flags_list(row[-1]))))) + "\n"

    def text(self, rows: list[tuple], exact: Iterable[int] | None = None, checked: bool = False) -> str:
        """The JSON lines of rows. exact: the rows known to need json.dumps (with nulls); checked:
        the rows' types were checked (compliance.records.row_chunk) and times are plain ISO text."""
        if not rows:
            return ""
        cols = list(zip(*rows))
        special = set(exact) if exact is not None else set()
        if exact is None:
            for k in (2, 7, 8):
                if None in cols[k]:
                    special.update(i for i, v in enumerate(cols[k]) if v is None)
        if not checked:
            ints = {int}
            floats = {float}
            ok = (
                all(set(map(type, cols[k])) <= ints for k in (0, 1, 4, 6))
                and all(set(map(type, cols[k])) <= floats for k in (3, 5))
                and all(set(map(type, cols[k])) <= floats | {type(None)} for k in (7, 8))
                and set(map(type, cols[2])) <= {str, type(None)}
                and set(map(type, cols[9])) <= {str}
                and not _JSON_UNSAFE.search("".join(t for t in cols[2] if t is not None))
            )
            if not ok:
                return "".join(map(self.exact, rows))
        for k in (3, 5, 7, 8):
            if _INF[0] in cols[k] or _INF[1] in cols[k]:
                special.update(i for i, v in enumerate(cols[k]) if v in _INF)
        known = self._flags
        for t in set(cols[9]) - known.keys():
            try:
                known[t] = json.dumps(json.loads(t)) == t
            except ValueError:
                known[t] = False
        if not all(map(known.__getitem__, set(cols[9]))):
            special.update(i for i, t in enumerate(cols[9]) if not known[t])
        if not special:
            return "".join(map(self.fmt.__mod__, rows))
        lines = list(map(self.fmt.__mod__, rows))
        for i in special:
            lines[i] = self.exact(rows[i])
        return "".join(lines)


def _flags_list(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text  # not JSON: exported as the text it is


def write_records(recs: Iterable[dict[str, Any]], fmt: str, output: str | Path | IO[str]) -> int:
    """Write records as JSON lines (the fields of `isolog log dump --json`) or CSV with the same
    columns (flags joined by ';') to a file or an open text stream; returns how many."""
    return _write(fmt, output, lambda f: _write_dicts(recs, fmt, f))


def write_rows(device: str, chunks: Iterable[list[tuple]], fmt: str, output: str | Path | IO[str]) -> tuple[int, str]:
    """Write stored rows (Store.record_rows) streaming, as write_records would write them; returns
    (how many, the SHA-256 of the bytes written for JSON lines, of the JSON lines for CSV)."""
    return _write(fmt, output, lambda f: _write_row_chunks(device, chunks, fmt, f))


def _write(fmt: str, output: str | Path | IO[str], body: Any) -> Any:
    if isinstance(output, (str, Path)):
        try:
            f: IO[str] = open(output, "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None
    else:
        f = output
    try:
        try:
            result = body(f)
            if f is not output:
                f.close()
        except OSError as exc:
            if f is output or isinstance(exc, BrokenPipeError):
                raise
            raise UserError(f"cannot write {output}: {exc.strerror or exc} (the file is incomplete: removed)") from None
    except BaseException:
        if f is not output:
            try:
                f.close()
            except OSError:
                pass
            try:
                os.unlink(output)  # type: ignore[arg-type]
            except OSError:
                pass
        raise
    return result


def _write_dicts(recs: Iterable[dict[str, Any]], fmt: str, f: IO[str]) -> int:
    n = 0
    if fmt == "jsonl":
        for r in recs:
            f.write(json.dumps(r) + "\n")
            n += 1
    else:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(RECORD_FIELDS)
        for r in recs:
            w.writerow(
                [";".join(r["flags"]) if k == "flags" else ("" if r[k] is None else r[k]) for k in RECORD_FIELDS]
            )
            n += 1
    return n


def _write_row_chunks(device: str, chunks: Iterable[list[tuple]], fmt: str, f: IO[str]) -> tuple[int, str]:
    import hashlib

    n = 0
    h = hashlib.sha256()
    if fmt == "jsonl":
        lines = JsonLines(device)
        for rows in chunks:
            text = lines.text(rows)
            f.write(text)
            h.update(text.encode())
            n += len(rows)
        return n, h.hexdigest()
    w = csv.writer(f, lineterminator="\n")
    w.writerow(RECORD_FIELDS)
    joined: dict[str, str] = {}
    for rows in chunks:
        for t in {r[-1] for r in rows} - joined.keys():
            names = _flags_list(t)
            joined[t] = ";".join(names) if isinstance(names, list) and all(isinstance(x, str) for x in names) else t
        w.writerows((device, *r[:-1], joined[r[-1]]) for r in rows)  # None is written as ""
        n += len(rows)
    return n, ""


def jsonl_text(recs: Iterable[dict[str, Any]]) -> str:
    """Records as JSON lines, exactly as `isolog log dump --json` prints them."""
    return "".join(json.dumps(r) + "\n" for r in recs)


def load_for_check(db: Path | str | None, ship_id: str, device: str | None = None):
    """(records.Records, shipment.Shipment) of a stored shipment for `isolog check/report SHIPMENT_ID`:
    the device's records from the shipment's configuration up to the next shipment's, and the TOML
    stored by `isolog configure`. The records are read as columns straight from the store, a fetch
    at a time; their SHA-256 is that of `isolog export --format jsonl` (the same lines, made and
    hashed as they are read, on another thread)."""
    import gc

    from isolog.compliance import records

    with Store(db) as st:
        ship, lo, hi = st.shipment_range(ship_id, device)
        dev = ship["device"]
        where = f"store {st.path}"
        source_at = f"{where}, shipment {ship_id} (device {dev}"
        lines = JsonLines(dev)
        chunks = []
        hasher = _Hasher()
        gc_was = gc.isenabled()
        gc.disable()  # rows are tuples of plain values: nothing for the cycle collector to find
        try:
            for rows in st.record_rows(dev, lo, hi):
                chunk = records.row_chunk(rows, source_at + ")")
                hasher.update(lines.text(rows, chunk.exact.nonzero()[0].tolist(), checked=True).encode())
                chunks.append(chunk)
        finally:
            digest = hasher.hexdigest()
            if gc_was:
                gc.enable()
    if not chunks:
        raise UserError(
            f"shipment {ship_id!r} ({where}) has no records yet: sync its board first (isolog sync PORT), device {dev}"
        )
    first = int(chunks[0].cols["seq"][0])
    last = int(chunks[-1].cols["seq"][-1])
    rec = records.from_row_chunks(dev, chunks, f"{source_at}, records {first}..{last})")
    rec.sha256 = digest
    ship_obj = stored_shipment(ship, f"{where}, shipment {ship_id} as configured {ship['configured_at']}")
    return rec, ship_obj


def stored_shipment(ship: dict[str, Any], source: str) -> Any:
    """A stored shipment as configured: its file with the container's record and product template
    kept with it at configure (never today's, which may have changed since)."""
    from isolog import shipment
    from isolog.board.container import sensor_defaults

    record = ship.get("container")
    template = ship.get("product")

    def products(name: str) -> str:
        if template is None:
            raise UserError(f"the product template {name!r} was not stored with the shipment")
        return template

    defaults = sensor_defaults(record) if record else None
    return shipment.loads(ship["toml"], source, defaults, "container", products)


class _Hasher:
    """SHA-256 on a thread: hashlib releases the GIL on large buffers, so the hash of one fetch
    runs while the next is read. At most two buffers wait (memory stays bounded)."""

    def __init__(self) -> None:
        import hashlib
        import queue
        import threading

        self.h = hashlib.sha256()
        self.q: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        while (data := self.q.get()) is not None:
            self.h.update(data)

    def update(self, data: bytes) -> None:
        self.q.put(data)

    def hexdigest(self) -> str:
        self.q.put(None)
        self.t.join()
        return self.h.hexdigest()
