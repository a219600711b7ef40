"""State changes a desk makes on a board: configure it for a shipment (`isolog configure`) and
acknowledge its latched alarms (`isolog ack-alarms`). Both are signed with the board's key when it
is provisioned (board/provision.py) and audited in the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isolog import shipment
from isolog.board.link import BoardError, Link
from isolog.board.provision import authorize, key_in_hardware
from isolog.board.sync import set_board_clock
from isolog.errors import UserError
from isolog.store import Store


@dataclass
class Configured:
    device: str
    shipment: shipment.Shipment
    first_seq: int  # records from this one on belong to the shipment
    replaced: str | None  # the shipment the board was configured for before, if another
    unsynced: int  # records on the board not synced to any store (kept)
    authenticated: bool = True  # False: never provisioned from this store (its log proves nothing)
    key_in_hardware: bool = True  # False: its key is on its flash (no secure element): not authenticated


def configure(port: str, shipment_path: Path, db: Path | None = None, set_clock: bool = True) -> Configured:
    """Validate the shipment file, set the board's clock, store the configuration on the board
    (atomically) and in the store, with an audit entry."""
    text = shipment.read_text(shipment_path)  # UTF-8 or refused, naming the line
    ship = shipment.loads(text, source=str(shipment_path))  # host validation: errors name the file and field
    cfg = ship.to_board_dict()
    with Store(db) as store, Link(port) as link:
        before = link.identify()
        device = before["device"]
        authorize(link, store, before)
        prov = store.provisioning(device)
        store_authenticated = prov is not None
        log = before["log"]
        lo = int(log["next"]) + int(log.get("in_ram", 0))
        unsynced = lo - int(log["synced"])
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
        store.add_shipment(device, ship.id, text, stored, lo, max(lo, hi), before.get("board"), before.get("firmware"))
    previous = before.get("config_id")
    return Configured(
        device,
        ship,
        lo,
        previous if previous and previous != ship.id else None,
        max(0, unsynced),
        store_authenticated,
        key_in_hardware(prov),
    )


@dataclass
class Acknowledged:
    device: str
    cleared: list[str] = field(default_factory=list)  # the alarms that were latched
    still_active: list[str] = field(default_factory=list)  # conditions still present (will latch again)


def acknowledge_alarms(port: str, db: Path | None = None) -> Acknowledged:
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
