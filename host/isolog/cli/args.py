"""What the commands share: the command spec, and the PORT and --db arguments."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
        "--db",
        metavar="PATH|URL",
        help="the store: an SQLite file, or a PostgreSQL database shared by several desks "
        "(postgresql://USER:PASSWORD@HOST:5432/DATABASE); default: $ISOLOG_DB, else isolog.sqlite3 in the "
        "user's data directory (docs/store.md)",
    )


def finite(obj: Any) -> Any:
    """obj with every number that is not finite (NaN, an overflow to infinity) as None: JSON has no
    such numbers, and `--json` output writes them as null."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, float):  # numpy's float64 too
        return obj if math.isfinite(obj) else None
    if getattr(getattr(obj, "dtype", None), "kind", "") == "f" and getattr(obj, "ndim", 1) == 0:
        x = float(obj)
        return x if math.isfinite(x) else None
    return obj


def json_text(obj: Any, **kw: Any) -> str:
    """`--json` output: numbers that are not finite are null (docs/shipment.md)."""
    import json

    return json.dumps(finite(obj), allow_nan=False, **kw)
