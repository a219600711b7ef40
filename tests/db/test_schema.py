"""isolog.db.schema: numbered steps, appended only, the same tables and columns on both back ends."""

from __future__ import annotations

import sqlite3

from isolog.db.schema import MIGRATIONS, SCHEMA_VERSION, TYPES
from isolog.store import Store


def test_steps_are_numbered_one_by_one_from_1():
    """Two branches that each append a step merge as two steps with the same number: this fails
    until the second is renumbered."""
    assert [m.number for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert SCHEMA_VERSION == len(MIGRATIONS)


def test_every_step_renders_for_every_back_end():
    for kind in TYPES:
        for m in MIGRATIONS:
            stmts = m.statements(kind)
            assert stmts, (kind, m.number)
            assert not any("{" in s for s in stmts), (kind, m.number)


def _columns_sqlite(path) -> dict[str, list[str]]:
    con = sqlite3.connect(path)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")] for t in names}
    finally:
        con.close()


def test_both_back_ends_get_the_same_tables_and_columns_in_the_same_order(tmp_path, pg_server):
    path = tmp_path / "s.sqlite3"
    Store(path).close()
    url = pg_server.new_database()
    with Store(url) as st:
        pg: dict[str, list[str]] = {}
        for table, column in st.db.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        ):
            pg.setdefault(table, []).append(column)
    lite = _columns_sqlite(path)
    # PostgreSQL has no implicit rowid: clock_anchors keeps its insertion order in a rowid column
    assert pg.pop("clock_anchors") == ["rowid", *lite.pop("clock_anchors")]
    assert pg == lite
    assert {"records", "devices", "shipments", "device_keys", "device_auth", "schema_version"} <= set(pg)


def test_two_desks_opening_a_new_postgresql_store_at_once_apply_the_steps_once(pg_server):
    """The migrations run under an advisory transaction lock: desks opening a new database together
    both succeed and leave one schema_version row."""
    import threading

    url = pg_server.new_database()
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Store(url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with Store(url) as st:
        assert st.db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
