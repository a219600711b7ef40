"""A real PostgreSQL server for the tests and benches: pgserver's wheel (PostgreSQL 16, no apt, no
root needed), its data folder under the caller's temporary folder, one server a session, a new
database for each store."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@contextlib.contextmanager
def data_dir(tmp_path_factory):
    """The server's data folder: in pytest's temporary folder; as root, in a new folder of the
    system's temporary folder, removed at the end. (As root, pgserver runs PostgreSQL as the user
    "pgserver", which must reach the folder; pytest makes /tmp/pytest-of-root mode 0700 again at
    the start of every session, so a second pytest on the machine would lock the server out of
    its log while it starts.)"""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        yield Path(tmp_path_factory.mktemp("pgdata"))
        return
    where = Path(tempfile.mkdtemp(prefix="isolog-pgdata-"))
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


class Server:
    def __init__(self, data_dir: Path):
        import warnings

        import psycopg

        with warnings.catch_warnings():
            # pgserver keeps a lock file in platformdirs' runtime folder; without XDG_RUNTIME_DIR
            # (a container, CI) platformdirs warns and uses /tmp: harmless here.
            warnings.simplefilter("ignore")
            import pgserver  # requirements/dev.txt: a missing server is a failure, never a skip

            self.srv = pgserver.get_server(str(data_dir), cleanup_mode="stop")
        self.uri = self.srv.get_uri()
        self.admin = psycopg.connect(self.uri, autocommit=True)
        self._n = itertools.count()

    def url(self, database: str) -> str:
        """The server's URL for another database (pgserver's is postgresql://postgres:@/postgres?host=...)."""
        return urlunsplit(urlsplit(self.uri)._replace(path="/" + database))

    def new_database(self, prefix: str = "isolog_test") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{next(self._n)}"
        self.admin.execute(f"DROP DATABASE IF EXISTS {name}")
        self.admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        self.admin.close()
        self.srv.cleanup()
