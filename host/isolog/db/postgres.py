"""The store in PostgreSQL (psycopg 3): a connection with the surface Store uses of sqlite3's
(execute with `?` parameters, executemany, cursors with fetchone/fetchmany/iteration), errors about
the server in one line (isolog.errors.UserError, exit 2), and the lock that lets only one desk sync
a board at a time.

Durability: every connection sets synchronous_commit = on, so COMMIT returns only once the commit
is in the server's write-ahead log on disk (PostgreSQL 16 docs, 20.5.1 "synchronous_commit"): a
server configured with it off would otherwise acknowledge a commit it could still lose, and the
board would be told to reclaim records that are not safe.

Isolation: READ COMMITTED (the server's default). A read-modify-write of one device's row takes
the row with SELECT ... FOR UPDATE (Store: next_seq, the signing counter); a whole sync holds a
session advisory lock on the device (pg_try_advisory_lock, PostgreSQL 16 docs 9.27.10), released
when the sync ends or its connection drops (a desk that crashed never blocks the board).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Any, Iterable, Iterator, cast

from isolog.errors import UserError

# SQLSTATE classes that are about the server or the connection, not isolog's SQL (PostgreSQL 16
# docs, Appendix A): 08 connection exception, 53 insufficient resources (disk full, out of
# memory), 57 operator intervention (shutdown), 58 system error (I/O), 28 invalid authorization,
# 3D invalid catalog name (no such database).
_SERVER_CLASSES = ("08", "53", "57", "58", "28", "3D")


def safe_url(url: str) -> str:
    """The URL without its password, for messages (postgresql://USER:***@HOST/DB)."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:@/?#]*):[^@/?#]*@", r"\1:***@", url)


@lru_cache(maxsize=512)
def _sql(sql: str) -> str:
    """isolog's SQL (qmark parameters, as sqlite3 takes them) in psycopg's form (%s): the
    statements never hold a `?` or `%` inside a literal."""
    return sql.replace("%", "%%").replace("?", "%s")


def device_lock_key(device: str) -> int:
    """The advisory-lock key of a device's sync: 64 bits of SHA-256 of a name, signed (bigint), the
    same on every desk."""
    return int.from_bytes(hashlib.sha256(b"isolog sync " + device.encode()).digest()[:8], "big", signed=True)


class PgConnection:
    """One connection to the store's database, in autocommit mode: Store opens every transaction
    itself (BEGIN .. COMMIT), so a read outside one never leaves the connection idle in a transaction."""

    kind = "postgresql"
    begin_sql = "BEGIN"
    for_update = " FOR UPDATE"

    def __init__(self, url: str):
        try:
            import psycopg
        except ImportError:  # pragma: no cover - psycopg is a pinned dependency
            raise UserError("a PostgreSQL store needs psycopg: reinstall isolog (pip install -e .)") from None
        self.url = url
        self.shown = safe_url(url)
        self._psycopg = psycopg
        self.IntegrityError = psycopg.IntegrityError
        self.Error = psycopg.Error
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10, application_name="isolog")
        except psycopg.ProgrammingError as exc:  # the URL itself (psycopg's conninfo parser)
            raise UserError(f"--db {self.shown}: not a usable PostgreSQL URL ({_first_line(exc)})") from None
        except psycopg.Error as exc:
            raise UserError(
                f"cannot connect to the store {self.shown}: {_first_line(exc)} (check the URL, "
                "postgresql://USER:PASSWORD@HOST:5432/DATABASE, and that the server is running)"
            ) from None
        self.execute("SET synchronous_commit = on")

    def translated(self, exc: Exception) -> Exception:
        """A server or connection error as one line (UserError); isolog's own SQL errors as they are."""
        psycopg = self._psycopg
        state = getattr(exc, "sqlstate", None) or ""
        if isinstance(exc, psycopg.OperationalError) or state[:2] in _SERVER_CLASSES:
            if state.startswith("53"):
                what = "the database server is out of space or memory"
            elif self.conn.closed or state.startswith(("08", "57")) or not state:
                what = "the connection to the database server was lost"
            else:
                what = "the database server refused"
            return UserError(
                f"the store {self.shown}: {what} ({_first_line(exc)}): the last change was not stored "
                "(everything before it is); run the command again"
            )
        return exc

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Any:
        cur = self.conn.cursor()
        try:
            # Always a parameter tuple, even an empty one: psycopg then reads the %% _sql wrote as
            # the modulo operator (with None it would pass the text through unparsed, %% and all).
            cur.execute(cast(Any, _sql(sql)), tuple(params))
        except self._psycopg.Error as exc:
            raise self.translated(exc) from None
        return cur

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> Any:
        rows = [tuple(r) for r in rows]
        cur = self.conn.cursor()
        if rows:
            try:
                cur.executemany(cast(Any, _sql(sql)), rows)
            except self._psycopg.Error as exc:
                raise self.translated(exc) from None
        return cur

    def stream(self, sql: str, params: Iterable[Any], size: int) -> Iterator[list[tuple]]:
        """The rows of a query, `size` a fetch, through a server-side cursor (psycopg's named
        cursor), so the client never holds the whole result (a client-side cursor receives all of
        it at execute). A named cursor lives in a transaction: a READ ONLY one of its own when none
        is open, ended when the rows are read or the reader stops."""
        from psycopg import pq

        own = self.conn.info.transaction_status == pq.TransactionStatus.IDLE
        try:
            if own:
                self.conn.execute("BEGIN READ ONLY")
            with self.conn.cursor(name=f"isolog_rows_{id(self)}") as cur:
                cur.itersize = size
                cur.execute(cast(Any, _sql(sql)), tuple(params))
                while rows := cur.fetchmany(size):
                    yield rows
        except self._psycopg.Error as exc:
            raise self.translated(exc) from None
        finally:
            if own and not self.conn.closed:
                self.rollback_quietly()  # read only: nothing to commit

    def rollback_quietly(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except self._psycopg.Error:
            pass

    def close(self) -> None:
        try:
            self.conn.close()
        except self._psycopg.Error:
            pass

    def tables(self) -> dict[str, set[str]]:
        """The tables of the connection's schema (search_path's first) and their columns."""
        out: dict[str, set[str]] = {}
        for table, column in self.execute(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
        ):
            out.setdefault(table, set()).add(column)
        return out

    def try_lock_device(self, device: str) -> bool:
        (got,) = self.execute("SELECT pg_try_advisory_lock(?)", (device_lock_key(device),)).fetchone()
        return bool(got)

    def unlock_device(self, device: str) -> None:
        if not self.conn.closed:
            self.execute("SELECT pg_advisory_unlock(?)", (device_lock_key(device),))


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return text or type(exc).__name__
