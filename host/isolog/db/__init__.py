"""Where the store lives: an SQLite file (the default, one desk) or a PostgreSQL database shared by
several desks and sites (`--db postgresql://...`, or the ISOLOG_DB environment variable). The
schema and its migrations, shared by both, are in schema.py; the PostgreSQL connection in
postgres.py. store.py (isolog.store.Store) is the one interface every command uses."""

from __future__ import annotations

import os
from pathlib import Path

# The environment variable naming the store when a command is given no --db (a path or a URL).
ENV_DB = "ISOLOG_DB"
URL_SCHEMES = ("postgresql://", "postgres://")


def is_url(target: object) -> bool:
    return isinstance(target, str) and target.lower().startswith(URL_SCHEMES)


def target(db: Path | str | None) -> Path | str | None:
    """The store a command uses: --db, else ISOLOG_DB, else None (the default SQLite file). A
    PostgreSQL URL stays text; anything else is a path."""
    if db is None or db == "":
        db = os.environ.get(ENV_DB) or None
        if db is None:
            return None
    if is_url(db):
        return str(db)
    return Path(db)
