"""isolog.db.postgres: the URL shown without its password, and a server that goes away mid-command
as one line (UserError, exit 2) on a real PostgreSQL server (tests/conftest.py pg_server)."""

from __future__ import annotations

import pytest

from isolog.db.postgres import safe_url
from isolog.errors import UserError
from isolog.store import Store


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://desk:s3cret@db.example.org:5432/isolog", "postgresql://desk:***@db.example.org:5432/isolog"),
        ("postgresql://desk@db.example.org/isolog", "postgresql://desk@db.example.org/isolog"),
        ("postgres://desk:p%40ss@h/isolog?sslmode=verify-full", "postgres://desk:***@h/isolog?sslmode=verify-full"),
        ("postgresql://desk:pw@[::1/isolog", "postgresql://desk:***@[::1/isolog"),  # malformed: still hidden
    ],
)
def test_the_password_is_never_shown(url, shown):
    assert safe_url(url) == shown


def test_a_server_that_drops_the_connection_mid_command_is_one_line(pg_server):
    url = pg_server.new_database()
    with Store(url) as st:
        (pid,) = st.db.execute("SELECT pg_backend_pid()").fetchone()
        pg_server.admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(UserError) as lost:
            st.count_records("15010c0000000001")
    text = str(lost.value)
    assert text.startswith(f"the store {st.path}: the connection to the database server was lost (")
    assert "run the command again" in text and "\n" not in text


def test_a_database_that_does_not_exist_is_one_line(pg_server):
    url = pg_server.url("no_such_database")
    with pytest.raises(UserError, match=r'^cannot connect to the store .*database "no_such_database" does not exist'):
        Store(url)


def test_the_modulo_operator_works_with_and_without_parameters(store_db):
    """isolog's SQL writes % for modulo (SQLite's spelling, and PostgreSQL's): a statement with no
    parameter runs it as well as one with (the PostgreSQL connection escapes it for psycopg)."""
    with Store(store_db) as st:
        assert st.db.execute("SELECT 17 % 5").fetchone()[0] == 2
        assert st.db.execute("SELECT ? % 5", (17,)).fetchone()[0] == 2
