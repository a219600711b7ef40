"""What the commands share: the command spec, and the PORT and --db arguments."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Spec:
    """One command: its help line, its arguments, and the function that runs it (exit status)."""

    help: str
    add: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None
    epilog: str | None = None


def port(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "port", metavar="PORT", help="the board's serial port, e.g. /dev/ttyACM0 or COM3 (`isolog devices` lists them)"
    )


def db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", type=Path, metavar="PATH", help="the store (default: isolog.sqlite3 in the user's data directory)"
    )
