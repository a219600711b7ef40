import pytest

from compliance_helpers import shipment_doc, to_toml
from mp_helpers import micropython_binary


@pytest.fixture(scope="session")
def micropython():
    exe = micropython_binary()
    if exe is None:
        pytest.skip("the MicroPython unix port is not installed (Linux x86-64 only)")
    return exe


@pytest.fixture
def shipment_file(tmp_path):
    """shipment_file(**changes) -> path of a TOML file made from BASE with the changes."""
    counter = iter(range(1000))

    def make(doc: dict | None = None, **changes):
        path = tmp_path / f"shipment{next(counter)}.toml"
        path.write_text(to_toml(doc if doc is not None else shipment_doc(**changes)))
        return path

    return make


@pytest.fixture
def ship():
    from isolog import shipment

    return shipment.from_dict(shipment_doc(), "<test>")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """One PostgreSQL server for the whole session (pg_helpers.Server), stopped at its end."""
    from pg_helpers import Server, data_dir

    with data_dir(tmp_path_factory) as where:
        srv = Server(where)
        yield srv
        srv.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_db(request, tmp_path):
    """Where a test's store lives, on each back end: an SQLite file in tmp_path, or a new database
    on the session's PostgreSQL server (its URL). Store(store_db) opens it either way."""
    if request.param == "sqlite":
        return tmp_path / "s.sqlite3"
    return request.getfixturevalue("pg_server").new_database()
