"""A shipment's life in the store, dispatch to return (issue 14): the states it went through, the
delivery time, the QA decision, and the trip window the verdict uses.

    configured -> dispatched -> delivered -> returned -> synced -> checked -> released | rejected

`isolog configure` records configured and dispatched (the trip starts after the optional start
delay), `isolog deliver` the delivery (from the delivery note, or the time the data show the
product was taken out, confirmed by the user), `isolog sync` returned and synced, `isolog check`
checked, `isolog decide` the QA decision. The trip window is [dispatch, delivery]: what the board
logged before (packing) or after (the empty return trip) is shown apart, and no rule judges it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from isolog.errors import UserError
from isolog.store import Store
from isolog.units import format_time, parse_time

DECISIONS = ("release", "reject")


@dataclass(frozen=True)
class Life:
    """What the store knows of one shipment's life."""

    id: str
    device: str
    container: str  # "container NAME (board ID)" or "board ID"
    state: str | None  # the last state recorded; None: a store from before issue 14
    events: tuple[dict[str, Any], ...]
    dispatched_s: float | None  # the trip's start (configure time + start delay)
    start_delay_s: float
    delivered_s: float | None  # the delivery time, as recorded
    delivered_source: str | None


def _epoch(text: str) -> float:
    return parse_time(text)


def life(store: Store, ship_id: str) -> Life:
    """A stored shipment's life (UserError when the id is not stored)."""
    ship, _, _ = store.shipment_range(ship_id)
    events = store.shipment_events(ship_id)
    dispatched = store.last_event(ship_id, "dispatched")
    delivered = store.last_event(ship_id, "delivered")
    return Life(
        id=ship_id,
        device=ship["device"],
        container=store.container_name(ship["device"]),
        state=events[-1]["state"] if events else None,
        events=tuple(events),
        dispatched_s=_epoch(dispatched["happened_at"]) if dispatched else None,
        start_delay_s=float(dispatched["details"].get("start_delay_s", 0.0)) if dispatched else 0.0,
        delivered_s=_epoch(delivered["happened_at"]) if delivered else None,
        delivered_source=str(delivered["details"].get("source", "")) if delivered else None,
    )


def window(store: Store, ship_id: str) -> tuple[float, float | None, str]:
    """What the store knows of the trip window: the start delay after configuration (s), the
    delivery time (epoch s, None: not recorded) and where it came from."""
    lf = life(store, ship_id)
    return lf.start_delay_s, lf.delivered_s, lf.delivered_source or ""


def load_for_check(db: Path | str | None, ship_id: str):
    """(records, shipment, verification, trip window) of a stored shipment, for check and report."""
    from isolog.compliance import timebase
    from isolog.compliance import window as trip_window
    from isolog.store import load_for_check as load_stored

    rec, ship = load_stored(db, ship_id)
    with Store(db) as store:
        ver = store.shipment_verification(ship_id)
        delay, end, how = window(store, ship_id)
    tb = timebase.build(rec, ship.interval_s)
    return rec, ship, ver, trip_window.make(tb, rec, delay, end, how)


def detected_delivery(db: Path | str | None, ship_id: str) -> float | None:
    """The unloading the data show (compliance/window.py detect_unloading), after the start."""
    from isolog.compliance import timebase
    from isolog.compliance import window as trip_window
    from isolog.store import load_for_check as load_stored

    rec, ship = load_stored(db, ship_id)
    tb = timebase.build(rec, ship.interval_s)
    return trip_window.detect_unloading(rec, tb, ship.sensor.background_usv_h)


def deliver(db: Path | str | None, ship_id: str, at_s: float, source: str) -> Life:
    """Record a shipment's delivery time (refused in the future). A delivery before the dispatch
    makes the verdict unknown (compliance/engine.py): the board's clock decides, not the desk's."""
    with Store(db) as store:
        lf = life(store, ship_id)
        if lf.state in ("released", "rejected"):
            raise UserError(f"shipment {ship_id} is {lf.state} already: its delivery time cannot change")
        if at_s > datetime.now(timezone.utc).timestamp() + 60:
            raise UserError(f"shipment {ship_id}: delivery {format_time(at_s)} is in the future")
        store.add_event(None, ship_id, lf.device, "delivered", _utc(at_s), {"source": source})
        return life(store, ship_id)


def mark_checked(db: Path | str | None, ship_id: str, verdict: str) -> None:
    with Store(db) as store:
        lf = life(store, ship_id)
        if lf.state in ("released", "rejected"):
            return  # a decided shipment stays decided; checking it again changes nothing
        store.add_event(None, ship_id, lf.device, "checked", None, {"verdict": verdict})


def release_refusal(awaiting: int, rejected: int) -> str | None:
    """Why a shipment may not be released while its temperature excursions await QA review or one
    was rejected (the dashboard's excursion review, web/reviews.py), or None."""
    if awaiting:
        return (
            f"{awaiting} temperature excursion{'s' if awaiting != 1 else ''} await{'' if awaiting != 1 else 's'} "
            "QA review: sign a decision on each before releasing the shipment"
        )
    if rejected:
        return (
            f"{rejected} temperature excursion{'s were' if rejected != 1 else ' was'} rejected: "
            "the shipment cannot be released"
        )
    return None


def decide(db: Path | str | None, ship_id: str, decision: str, reason: str | None) -> Life:
    """QA's decision on a checked shipment. A release needs a compliant last check, or a reason
    (a QA override, audited); a rejection always needs a reason. A release is refused while the
    dashboard lists excursions of the shipment awaiting review, or one rejected
    (Store.excursions_on_hold; reviewed in the dashboard only)."""
    if decision not in DECISIONS:
        raise UserError(f"the decision is release or reject, not {decision!r}")
    reason = (reason or "").strip() or None
    with Store(db) as store:
        lf = life(store, ship_id)
        checks = [e for e in lf.events if e["state"] == "checked"]
        if not checks:
            raise UserError(f"shipment {ship_id} was not checked yet: run `isolog check {ship_id}` first")
        if lf.state in ("released", "rejected"):
            raise UserError(f"shipment {ship_id} is {lf.state} already")
        verdict = str(checks[-1]["details"].get("verdict"))
        if decision == "reject" and reason is None:
            raise UserError(f"rejecting shipment {ship_id} needs a reason: --reason TEXT")
        if decision == "release" and verdict not in ("pass", "warn") and reason is None:
            raise UserError(
                f"shipment {ship_id}: the last check says {verdict.upper()}: releasing it needs a reason "
                "(--reason TEXT, recorded with your name)"
            )
        if decision == "release":
            ship, _, _ = store.shipment_range(ship_id, lf.device)
            held = release_refusal(*store.excursions_on_hold(int(ship["rowid"])))
            if held:
                raise UserError(f"shipment {ship_id}: {held} (in the dashboard, `isolog serve`)")
        state = "released" if decision == "release" else "rejected"
        details = {"reason": reason, "verdict": verdict}
        with store.transaction() as tx:
            store.add_event(tx, ship_id, lf.device, state, None, details)
            store.audit(tx, lf.device, f"shipment_{state}", {"shipment": ship_id, **details})
        return life(store, ship_id)


def lives(db: Path | str | None) -> list[Life]:
    """Every stored shipment's life, in the order configured (an id once, its latest trip)."""
    with Store(db) as store:
        ids = list(dict.fromkeys(s["id"] for s in store.shipments()))
        return [life(store, i) for i in ids]


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, timezone.utc)


def certificate_context(db: Path | str | None, ship_id: str) -> dict[str, Any]:
    """What the certificate shows of a stored shipment's life (compliance/report.py): the
    container, the board, the states with who and when, the alarms acknowledged on the board
    while it carried the shipment (who, when, which), a forced configuration, the QA decision."""
    with Store(db) as store:
        lf = life(store, ship_id)
        ship, _, _ = store.shipment_range(ship_id)
        name = store.provisioned_name(lf.device)
        since = ship["configured_at"]
        nxt = [s for s in store.shipments(lf.device) if s["rowid"] > ship["rowid"] and s["id"] != ship_id]
        until = nxt[0]["configured_at"] if nxt else None
        audit = [
            a
            for a in store.audit_trail(lf.device)
            if _iso(a["time"]) >= _iso(since) and (until is None or _iso(a["time"]) <= _iso(until))
        ]
    acks = [
        {"time": a["time"], "by": a["host_user"], "alarms": a["details"].get("alarms") or []}
        for a in audit
        if a["action"] == "ack_alarms"
    ]
    forced = [
        {
            "time": a["time"],
            "by": a["host_user"],
            "reason": a["details"].get("reason"),
            "calibration_due": a["details"].get("calibration_due"),
        }
        for a in audit
        if a["action"] == "configure_forced" and a["details"].get("shipment") == ship_id
    ]
    decision = next((e for e in reversed(lf.events) if e["state"] in ("released", "rejected")), None)
    return {
        "container": name,
        "device": lf.device,
        # the container's sensor and calibration as configured (board/container.py), or None
        "sensor": ship.get("container"),
        "state": lf.state,
        "events": [
            {"state": e["state"], "time": e["happened_at"], "by": e["host_user"], "details": e["details"]}
            for e in lf.events
        ],
        "acknowledgements": acks,
        "forced": forced,
        "decision": (
            {
                "state": decision["state"],
                "time": decision["recorded_at"],
                "by": decision["host_user"],
                "reason": decision["details"].get("reason"),
            }
            if decision
            else None
        ),
    }


def _iso(text: str) -> str:
    return str(text).replace("T", " ").rstrip("Z")[:23]
