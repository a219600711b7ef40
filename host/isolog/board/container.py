"""A container's engineering constants, kept with the container (`isolog container set/show`):
its sensor model, calibration factor, dead time, geometry factors and calibration dates. A shipment
file then carries only what changes per shipment; `isolog configure` takes these from here
(board/configure.py) and refuses a container whose calibration is overdue at dispatch.

The limits are the board's own (firmware/config.py NUMBERS), so a record accepted here is never
refused by the board at configure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from isolog.errors import UserError
from isolog.store import Store
from isolog_fw import config as board_config

# A sensor model's name: a short label for the certificate (e.g. "LND 7317 GM tube").
SENSOR_MODEL_MAX_LEN = 64
# The geometry factors (docs/shipment.md [sensor]): dose rate there = factor x reading. Bounds are
# an isolog plausibility choice (a factor outside 1/1000..1000 is a typing error), not a regulation.
FACTOR_MIN = 1e-3
FACTOR_MAX = 1e3


@dataclass(frozen=True)
class ContainerSet:
    device: str
    name: str  # "container NAME (board ID)" for messages
    old: dict[str, Any] | None
    new: dict[str, Any]


def parse_date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"{what} must be a date YYYY-MM-DD, not {text!r}") from None


def checked_values(
    sensor_model: str,
    cal_cpm_per_usv_h: float,
    dead_time_us: float,
    one_metre_factor: float | None,
    surface_factor: float | None,
    calibrated_on: str,
    calibration_due: str,
    today: date | None = None,
) -> dict[str, Any]:
    """The record's values, checked against the board's limits and each other; UserError names the
    option."""
    model = sensor_model.strip()
    if not (1 <= len(model) <= SENSOR_MODEL_MAX_LEN and model.isprintable()):
        raise UserError(f"--sensor-model must be 1..{SENSOR_MODEL_MAX_LEN} printable characters, not {sensor_model!r}")
    for option, key, value in (
        ("--calibration-cpm-per-usv-h", "cal_cpm_per_usv_h", cal_cpm_per_usv_h),
        ("--dead-time-us", "dead_time_us", dead_time_us),
    ):
        _, lo, hi = board_config.NUMBERS[key]
        if not lo <= value <= hi:  # NaN fails too
            raise UserError(f"{option} must be within {lo:g}..{hi:g} (the board's limits), not {value:g}")
    for option, value in (("--one-metre-factor", one_metre_factor), ("--surface-factor", surface_factor)):
        if value is not None and not FACTOR_MIN <= value <= FACTOR_MAX:
            raise UserError(f"{option} must be within {FACTOR_MIN:g}..{FACTOR_MAX:g}, not {value:g}")
    on = parse_date(calibrated_on, "--calibrated-on")
    due = parse_date(calibration_due, "--calibration-due")
    today = today or datetime.now(timezone.utc).date()
    if on > today:
        raise UserError(f"--calibrated-on {on.isoformat()} is in the future (today is {today.isoformat()})")
    if due <= on:
        raise UserError(f"--calibration-due {due.isoformat()} must be after --calibrated-on {on.isoformat()}")
    return {
        "sensor_model": model,
        "cal_cpm_per_usv_h": float(cal_cpm_per_usv_h),
        "dead_time_us": float(dead_time_us),
        "one_metre_factor": None if one_metre_factor is None else float(one_metre_factor),
        "surface_factor": None if surface_factor is None else float(surface_factor),
        "calibrated_on": on.isoformat(),
        "calibration_due": due.isoformat(),
    }


def resolve_device(store: Store, port_or_device: str) -> str:
    """A board id from a board id or provisioned name the store knows, else from the board on that
    port (IDENTIFY)."""
    arg = port_or_device.strip()
    if store.device(arg) is not None or store.provisioning(arg) is not None:
        return arg
    for d in store.devices():
        if store.provisioned_name(d["id"]) == arg:
            return d["id"]
    from isolog.board.link import Link

    with Link(arg) as link:
        return str(link.identify()["device"])


def set_container(port_or_device: str, values: dict[str, Any], db: Path | str | None = None) -> ContainerSet:
    """Store the container's record (audited: who, when, old and new values)."""
    with Store(db) as store:
        device = resolve_device(store, port_or_device)
        old = store.set_container(device, values)
        return ContainerSet(device, store.container_name(device), old, values)


def show_container(port_or_device: str, db: Path | str | None = None) -> tuple[str, str, dict[str, Any] | None]:
    """(board id, its name for messages, its record or None)."""
    with Store(db) as store:
        device = resolve_device(store, port_or_device)
        return device, store.container_name(device), store.container(device)


def overdue(record: dict[str, Any], dispatch: datetime) -> bool:
    """A calibration is valid up to and including its due date (UTC): overdue when the shipment is
    dispatched on a later day."""
    return dispatch.astimezone(timezone.utc).date() > date.fromisoformat(record["calibration_due"])


def sensor_defaults(record: dict[str, Any]) -> dict[str, Any]:
    """The [sensor] fields of a shipment file the container's record gives (shipment.check_dict)."""
    out = {
        "calibration_cpm_per_usv_h": record["cal_cpm_per_usv_h"],
        "dead_time_us": record["dead_time_us"],
    }
    for key in ("one_metre_factor", "surface_factor"):
        if record.get(key) is not None:
            out[key] = record[key]
    return out


def calibration_due_line(db: Path | str | None, device: str, today: date | None = None) -> str | None:
    """'calibration due DATE' (or 'calibration OVERDUE since DATE') for `isolog status`, from the
    store; None when the container has no record or there is no store yet (none is created)."""
    from isolog import db as store_db
    from isolog.store import default_path

    where = store_db.target(db)
    if where is None:
        where = default_path()
    if isinstance(where, Path) and not where.is_file():
        return None
    with Store(db) as store:
        record = store.container(device)
    if record is None:
        return None
    today = today or datetime.now(timezone.utc).date()
    due = record["calibration_due"]
    if today > date.fromisoformat(due):
        return f"calibration OVERDUE since {due}: recalibrate before the next shipment"
    return f"calibration due {due}"
