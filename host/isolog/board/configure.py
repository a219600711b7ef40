"""State changes a desk makes on a board: configure it for a shipment (`isolog configure`) and
acknowledge its latched alarms (`isolog ack-alarms`). Both are signed with the board's key when it
is provisioned (board/provision.py) and audited in the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from isolog import shipment
from isolog.board.container import overdue, sensor_defaults
from isolog.board.link import BoardError, Link
from isolog.board.provision import authorize, key_in_hardware
from isolog.board.sync import set_board_clock
from isolog.errors import UserError
from isolog.store import Store
from isolog.words import alarm_words

# The longest start delay at dispatch: a week. An isolog choice (a courier's longest wait between
# packing and pick-up), not a regulation; a longer one is most likely a typing error.
MAX_START_DELAY_S = 7 * 86400.0


@dataclass
class Configured:
    device: str
    shipment: shipment.Shipment
    first_seq: int  # records from this one on belong to the shipment
    replaced: str | None  # the shipment the board was configured for before, if another
    unsynced: int  # records on the board not synced to any store (kept)
    authenticated: bool = True  # False: never provisioned from this store (its log proves nothing)
    key_in_hardware: bool = True  # False: its key is on its flash (no secure element): not authenticated
    container: str = ""  # the container's provisioned name and board id, for messages
    start_delay_s: float = 0.0


def configure(
    port: str,
    shipment_path: Path,
    db: Path | str | None = None,
    set_clock: bool = True,
    start_delay_s: float = 0.0,
    force_reason: str | None = None,
    products: Callable[[str], str] | None = None,
) -> Configured:
    """Validate the shipment file, set the board's clock, store the configuration on the board
    (atomically) and in the store, with an audit entry. The shipment is dispatched (its trip
    starts) start_delay_s after now: what the board logs before is packing time, shown apart.
    A shipment id names one trip: one already used (on this board or another) is refused.

    Nothing is lost silently at dispatch: a board that holds records not yet synced, or alarms
    latched and not acknowledged (reviewed), is refused until they are synced (isolog sync) and
    acknowledged (isolog ack-alarms), or forced with a reason (force_reason), which the audit
    trail keeps with the user, the time, what was overridden. products: a product template's text
    by name (default: products/NAME.toml looked up from the shipment file, shipment.product_file)."""
    force_reason = (force_reason or "").strip() or None
    if not (0.0 <= start_delay_s <= MAX_START_DELAY_S):
        raise UserError(
            f"the start delay must be between 0 and {MAX_START_DELAY_S / 86400:g} days, "
            f"not {start_delay_s / 3600:g} hours"
        )
    text = shipment.read_text(shipment_path)  # UTF-8 or refused, naming the line
    with Store(db) as store, Link(port) as link:
        before = link.identify()
        device = before["device"]
        authorize(link, store, before)
        prov = store.provisioning(device)
        store_authenticated = prov is not None
        container = store.container_name(device)
        # The container's constants come from its record (board/container.py); host validation:
        # errors name the file and field, a value that differs from the record is refused.
        record = store.container(device)
        defaults = sensor_defaults(record) if record else None
        ship = shipment.loads(text, str(shipment_path), defaults, container, products)
        product = None
        if ship.product:
            product = products(ship.product) if products else shipment.product_text(ship.product, str(shipment_path))
        cfg = ship.to_board_dict()
        dispatch = datetime.now(timezone.utc) + timedelta(seconds=start_delay_s)
        late = record is not None and overdue(record, dispatch)
        if late and force_reason is None:
            assert record is not None
            raise UserError(
                f"{container} not configured: its calibration was due {record['calibration_due']} and the "
                f"shipment leaves {dispatch.date().isoformat()}: have the sensor calibrated and record it with "
                f"`isolog container set {port} ...`; or, to override, --force --reason TEXT (recorded with your name)"
            )
        reused = store.reused_id(ship.id, device)
        if reused:
            raise UserError(f"{shipment_path}: refused for {container}: {reused}")
        log = before["log"]
        lo = int(log["next"]) + int(log.get("in_ram", 0))
        unsynced = lo - int(log["synced"])
        # Records on flash the board was never told are stored (the last minutes in its RAM are
        # committed when the clock is set, and belong to the previous shipment: kept, synced next).
        on_flash = max(0, int(log["next"]) - int(log["synced"]))
        latched = list(link.status().get("alarms") or [])
        blockers = _dispatch_blockers(on_flash, latched, port, before.get("config_id"))
        forced: dict[str, Any] | None = None
        if late and record is not None:
            forced = {"reason": force_reason, "calibration_due": record["calibration_due"]}
        if blockers:
            if force_reason is None:
                raise UserError(
                    f"{container} not configured: it still holds {' and '.join(blockers)}; or, to override, "
                    "--force --reason TEXT (recorded with your name)"
                )
            forced = {
                **(forced or {}),
                "reason": force_reason,
                "unsynced_records": on_flash,
                "latched_alarms": latched,
                "previous_shipment": before.get("config_id"),
            }
        if set_clock:
            set_board_clock(link, store, device, "configure")
        try:
            stored = link.set_config(cfg)
        except BoardError as exc:
            if exc.code == "bad_config":
                raise UserError(
                    f"the board refused {shipment_path}: {exc.board_message} "
                    "(the board checks its own limits; fix the file and configure again)"
                ) from None
            raise
        after = link.identify()
        alog = after["log"]
        hi = int(alog["next"]) + int(alog.get("in_ram", 0))
        store.add_shipment(
            device,
            ship.id,
            text,
            stored,
            lo,
            max(lo, hi),
            before.get("board"),
            before.get("firmware"),
            start_delay_s=start_delay_s,
            forced=forced,
            container=record,
            product=product,
        )
    previous = before.get("config_id")
    return Configured(
        device,
        ship,
        lo,
        previous if previous and previous != ship.id else None,
        max(0, unsynced),
        store_authenticated,
        key_in_hardware(prov),
        container,
        start_delay_s,
    )


def _dispatch_blockers(unsynced: int, latched: list[str], port: str, previous: Any) -> list[str]:
    """What would be lost or go unreviewed if the board were configured now, with what to do."""
    of = f" of shipment {previous}" if previous else ""
    out = []
    if unsynced > 0:
        out.append(f"{unsynced} records{of} not synced yet (run `isolog sync {port}` first)")
    if latched:
        out.append(
            f"a latched {alarm_words(latched)}{of} not acknowledged (review it, then `isolog ack-alarms {port}`)"
        )
    return out


@dataclass
class Acknowledged:
    device: str
    cleared: list[str] = field(default_factory=list)  # the alarms that were latched
    still_active: list[str] = field(default_factory=list)  # conditions still present (will latch again)


def acknowledge_alarms(port: str, db: Path | str | None = None) -> Acknowledged:
    """Clear the board's latched alarms; the next record carries alarm_ack. Audited."""
    with Store(db) as store, Link(port) as link:
        ident = link.identify()
        device = ident["device"]
        authorize(link, store, ident)
        before: dict[str, Any] = link.status()
        after = link.acknowledge_alarms()
        store.audit(
            None,
            device,
            "ack_alarms",
            {"alarms": before.get("alarms"), "active": before.get("active"), "alarms_after": after.get("alarms")},
        )
    return Acknowledged(device, list(before.get("alarms") or []), list(after.get("active") or []))


@dataclass(frozen=True)
class Readiness:
    """What `configure` would refuse on a board before any shipment is given (the guided dispatch,
    board/dispatch.py, asks this first, so the desk does not type a shipment in for nothing)."""

    device: str
    container: str  # "container NAME (board ID)" for messages
    record: dict[str, Any] | None  # the container's record (board/container.py), None: none
    refusals: list[str]  # one line each; empty: ready


def readiness(port: str, db: Path | str | None = None, dispatch: datetime | None = None) -> Readiness:
    """The board on port checked as `configure` checks it at dispatch (now, or at dispatch): records
    not synced, latched alarms, the container's calibration overdue; and a container record, which
    a shipment given at the station (not in a file) needs for its sensor constants."""
    with Store(db) as store, Link(port) as link:
        ident = link.identify()
        device = ident["device"]
        authorize(link, store, ident)
        record = store.container(device)
        name = store.container_name(device)
        log = ident["log"]
        on_flash = max(0, int(log["next"]) - int(log["synced"]))
        latched = list(link.status().get("alarms") or [])
    refusals = []
    if record is None:
        refusals.append(
            f"{name} has no container record in this store (sensor, calibration): "
            f"record it with `isolog container set {port} ...` first"
        )
    elif overdue(record, dispatch or datetime.now(timezone.utc)):
        refusals.append(
            f"{name}: its calibration was due {record['calibration_due']}: have the sensor calibrated and "
            f"record it with `isolog container set {port} ...`"
        )
    blockers = _dispatch_blockers(on_flash, latched, port, ident.get("config_id"))
    if blockers:
        refusals.append(f"{name} still holds {' and '.join(blockers)}")
    return Readiness(device, name, record, refusals)
