"""The dashboard's reads: one page of containers or shipments in a few SQL statements, whatever the
size of the fleet (pages of PAGE rows; the work per page does not grow with the number of rows:
aggregates run once per page, over the devices on that page, through the store's primary keys).

Read-only on the store's tables (isolog/store.py's schema); the dashboard's own tables are in
web/tables.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from isolog.store import SHIPMENT_STATES

if TYPE_CHECKING:
    from isolog.store import Store

PAGE = 50  # rows a page
ALARM_FLAGS = ("dose_alarm", "temp_alarm")  # firmware/record.py F_DOSE_ALARM, F_TEMP_ALARM


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    page: int
    pages: int
    total: int


def _page_of(total: int, page: int) -> tuple[int, int]:
    pages = max(1, -(-total // PAGE))
    page = min(max(1, page), pages)
    return page, pages


def containers(store: "Store", page: int = 1, today: date | None = None) -> Page:
    """Boards, by device id: name (from provisioning), last sync, records not acknowledged at the
    last sync, alarms in the last synced record, current (latest configured) shipment; battery and
    storage as the last sync read them (device_status; None: never read), the calibration due date
    (containers; None: no record) and whether it is past (today, UTC)."""
    db = store.db
    today = today or datetime.now(timezone.utc).date()
    (total,) = db.execute("SELECT COUNT(*) FROM devices").fetchone()
    page, pages = _page_of(total, page)
    devs = db.execute(
        "SELECT id, board, firmware, last_seen, next_seq FROM devices ORDER BY id LIMIT ? OFFSET ?",
        (PAGE, (page - 1) * PAGE),
    ).fetchall()
    if not devs:
        return Page([], page, pages, total)
    ids = [d[0] for d in devs]
    marks = ", ".join("?" * len(ids))
    names = dict(
        db.execute(f"SELECT device, name FROM device_keys WHERE current = 1 AND device IN ({marks})", ids).fetchall()
    )
    syncs = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT s.device, s.ended, s.status, s.acked_upto FROM sync_sessions s WHERE s.id IN "
            f"(SELECT MAX(id) FROM sync_sessions WHERE device IN ({marks}) AND status != 'running' GROUP BY device)",
            ids,
        )
    }
    current = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT s.device, s.rowid, s.id FROM shipments s WHERE s.rowid IN "
            f"(SELECT MAX(rowid) FROM shipments WHERE device IN ({marks}) GROUP BY device)",
            ids,
        )
    }
    state = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT device, battery_percent, battery_days_left, battery_v, storage_used_percent, storage_low, "
            f"storage_full, taken_at FROM device_status WHERE device IN ({marks})",
            ids,
        )
    }
    due = dict(db.execute(f"SELECT device, calibration_due FROM containers WHERE device IN ({marks})", ids).fetchall())
    rows = []
    for dev, board, firmware, last_seen, next_seq in devs:
        last = db.execute(
            "SELECT flags FROM records WHERE device = ? AND seq = ?", (dev, next_seq - 1)
        ).fetchone()  # the primary key: one lookup
        flags = json.loads(last[0]) if last else []
        sync = syncs.get(dev)
        acked = sync[2] if sync and sync[2] is not None else None
        ship = current.get(dev)
        st = state.get(dev) or (None,) * 7
        cal = due.get(dev)
        rows.append(
            {
                "device": dev,
                "name": names.get(dev) or "",
                "board": board or "",
                "firmware": firmware or "",
                "last_seen": last_seen,
                "last_sync": sync[0] if sync else None,
                "sync_status": sync[1] if sync else None,
                "records": next_seq,
                "held": max(0, next_seq - acked) if acked is not None else None,
                "alarms": [f for f in flags if f in ALARM_FLAGS],
                "shipment_row": ship[0] if ship else None,
                "shipment": ship[1] if ship else None,
                "battery_percent": st[0],
                "battery_days_left": st[1],
                "battery_v": st[2],
                "storage_used_percent": st[3],
                "storage_low": None if st[4] is None else bool(st[4]),
                "storage_full": None if st[5] is None else bool(st[5]),
                "status_at": st[6],
                "calibration_due": cal,
                "calibration_overdue": cal is not None and today > date.fromisoformat(cal),
            }
        )
    return Page(rows, page, pages, total)


RETURN_DAYS = 14  # `isolog serve --return-days` default: a site policy setting, no regulation (docs/dashboard.md)
# Events that say the container is back (isolog/board/sync.py records both at its first sync after
# the trip): a shipment with either is not awaiting its return.
_BACK = ("returned", "synced")


def _overdue_where() -> str:
    """The condition on shipments s of an overdue return (its one ?: the cutoff date): the board's
    latest configuration (a board configured since came back to a desk: its earlier trips are over),
    not back (_BACK), its delivery (or, none recorded, its dispatch) on a day before the cutoff. At
    most one candidate a board, each looked up through shipment_events' index: the fleet's history
    is never scanned."""
    ev = "FROM shipment_events e WHERE e.shipment = s.id AND e.device = s.device AND e.state"
    back = ", ".join(f"'{b}'" for b in _BACK)
    return (
        "s.rowid IN (SELECT MAX(rowid) FROM shipments GROUP BY device) "
        f"AND NOT EXISTS (SELECT 1 {ev} IN ({back})) "
        f"AND COALESCE((SELECT MAX(e.happened_at) {ev} = 'delivered'), "
        f"(SELECT MAX(e.happened_at) {ev} = 'dispatched')) < ?"
    )


def shipments(
    store: "Store",
    page: int = 1,
    device: str | None = None,
    overdue_only: bool = False,
    today: date | None = None,
    return_days: int = RETURN_DAYS,
) -> Page:
    """Shipment configurations, newest first, with the furthest stage of their life (stage: one of
    store.SHIPMENT_STATES; None: nothing recorded), their last verdict (web_verdicts; None: never
    checked; stale when the device synced since), their life (shipment_events: the last dispatch,
    delivery and return times, None: not recorded), the last certificate issued (web_certificates:
    number, when, by whom; None: none) and whether the container's return is overdue: delivered
    (or dispatched, no delivery recorded) more than return_days days before today (UTC; a site's
    policy) and not back (no returned or synced event, and its board not configured again since).
    overdue_only: those only."""
    db = store.db
    today = today or datetime.now(timezone.utc).date()
    cutoff = (today - timedelta(days=return_days)).isoformat()  # since < cutoff: more than return_days days
    conds, args = (["s.device = ?"], [device]) if device else ([], [])
    if overdue_only:
        conds.append(_overdue_where())
        args.append(cutoff)
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
    (total,) = db.execute(f"SELECT COUNT(*) FROM shipments s {where}", args).fetchone()
    page, pages = _page_of(total, page)
    cols: tuple[str, ...] = (
        "row",
        "id",
        "device",
        "configured_at",
        "host_user",
        "next_seq",
        "verdict",
        "records",
        "checked_next_seq",
        "final",
        "unlisted",
    )
    q = (
        "SELECT s.rowid, s.id, s.device, s.configured_at, s.host_user, d.next_seq, v.verdict, v.records, v.next_seq, "
        "v.final, v.unlisted_excursions FROM shipments s JOIN devices d ON d.id = s.device "
        f"LEFT JOIN web_verdicts v ON v.shipment_row = s.rowid {where} ORDER BY s.rowid DESC LIMIT ? OFFSET ?"
    )
    rows: list[dict[str, Any]] = [dict(zip(cols, r)) for r in db.execute(q, (*args, PAGE, (page - 1) * PAGE))]
    if rows:
        marks = ", ".join("?" * len(rows))
        row_ids = [r["row"] for r in rows]
        signed = {
            r[0]: r[1:]
            for r in db.execute(
                "SELECT shipment_row, meaning, full_name, signed_at FROM web_signatures WHERE id IN "
                f"(SELECT MAX(id) FROM web_signatures WHERE shipment_row IN ({marks}) GROUP BY shipment_row)",
                row_ids,
            )
        }
        certs = {
            r[0]: r[1:]
            for r in db.execute(
                "SELECT c.shipment_row, c.id, c.issued_at, c.issued_by, u.full_name FROM web_certificates c "
                "LEFT JOIN web_users u ON u.name = c.issued_by WHERE c.id IN "
                f"(SELECT MAX(id) FROM web_certificates WHERE shipment_row IN ({marks}) GROUP BY shipment_row)",
                row_ids,
            )
        }
        ids = sorted({r["id"] for r in rows})
        life: dict[tuple[str, str], dict[str, str]] = {}
        for ship, dev, state, at in db.execute(
            "SELECT shipment, device, state, MAX(happened_at) FROM shipment_events "
            f"WHERE shipment IN ({', '.join('?' * len(ids))}) GROUP BY shipment, device, state",
            ids,
        ):
            life.setdefault((ship, dev), {})[state] = at
        devs = sorted({r["device"] for r in rows})
        latest = {
            r[0]
            for r in db.execute(
                f"SELECT MAX(rowid) FROM shipments WHERE device IN ({', '.join('?' * len(devs))}) GROUP BY device",
                devs,
            )
        }
        from isolog.web import reviews

        awaiting = reviews.awaiting_counts(store, row_ids)
        for r in rows:
            r["awaiting"] = awaiting.get(r["row"], 0) + (r["unlisted"] or 0)
            r["stale"] = r["verdict"] is not None and not r["final"] and r["checked_next_seq"] != r["next_seq"]
            r["decision"] = signed.get(r["row"])
            cert = certs.get(r["row"])
            r["certificate"] = (
                {"id": cert[0], "issued_at": cert[1], "issued_by": cert[2], "full_name": cert[3]} if cert else None
            )
            ev = life.get((r["id"], r["device"]), {})
            # the furthest stage of its life the store recorded (store.SHIPMENT_STATES, in order)
            r["stage"] = max(ev, key=SHIPMENT_STATES.index) if ev else None
            r["dispatched"], r["delivered"], r["returned"] = (
                ev.get(k) for k in ("dispatched", "delivered", "returned")
            )
            since = r["delivered"] or r["dispatched"]
            back = any(k in ev for k in _BACK) or r["row"] not in latest  # configured again since: back
            days = (today - date.fromisoformat(since[:10])).days if since and not back else None
            r["out_days"] = days
            r["overdue"] = days is not None and days > return_days
    return Page(rows, page, pages, total)


def shipment_row(store: "Store", row: int) -> dict[str, Any] | None:
    r = store.db.execute(
        "SELECT rowid, id, device, configured_at, host_user, first_seq FROM shipments WHERE rowid = ?", (row,)
    ).fetchone()
    if r is None:
        return None
    return dict(zip(("row", "id", "device", "configured_at", "host_user", "first_seq"), r))


def device_next_seq(store: "Store", device: str) -> int:
    r = store.db.execute("SELECT next_seq FROM devices WHERE id = ?", (device,)).fetchone()
    return int(r[0]) if r else 0


def remember_verdict(
    store: "Store",
    row: int,
    verdict: str,
    records: int,
    sha256: str,
    next_seq: int,
    final: bool = False,
    excursions: list[dict[str, Any]] | None = None,
    unlisted: int = 0,
) -> None:
    """Keep a shipment's check result for the list (web_verdicts) with its excursions
    (web_excursions, reviews.excursions; unlisted: those counted but not listed, reviews.unlisted);
    final: its records ended within what the store held
    (next_seq), so no later sync can change them."""
    from isolog.store import now_iso
    from isolog.web import reviews

    with store.transaction() as db:
        db.execute(
            "INSERT INTO web_verdicts (shipment_row, verdict, records, records_sha256, next_seq, final, checked_at, "
            "unlisted_excursions) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(shipment_row) DO UPDATE SET "
            "verdict = excluded.verdict, records = excluded.records, records_sha256 = excluded.records_sha256, "
            "next_seq = excluded.next_seq, final = excluded.final, checked_at = excluded.checked_at, "
            "unlisted_excursions = excluded.unlisted_excursions",
            (row, verdict, records, sha256, next_seq, int(final), now_iso(), unlisted),
        )
        reviews.remember(db, row, excursions or [])


def next_unchecked(store: "Store") -> dict[str, Any] | None:
    """The newest shipment configuration without a current verdict (never checked, or its device
    synced since and its records were still open), or None."""
    r = store.db.execute(
        "SELECT s.rowid FROM shipments s JOIN devices d ON d.id = s.device "
        "LEFT JOIN web_verdicts v ON v.shipment_row = s.rowid "
        "WHERE v.shipment_row IS NULL OR (v.final = 0 AND v.next_seq != d.next_seq) ORDER BY s.rowid DESC LIMIT 1"
    ).fetchone()
    return shipment_row(store, r[0]) if r else None


def audit_page(store: "Store", device: str | None, page: int = 1) -> tuple[Page, list[str]]:
    """The audit trail (Store.audit_trail), newest first, one page; and the devices it names."""
    trail = store.audit_trail(device or None)
    trail.reverse()
    page, pages = _page_of(len(trail), page)
    devices = [
        r[0] for r in store.db.execute("SELECT DISTINCT device FROM audit WHERE device IS NOT NULL ORDER BY device")
    ]
    return Page(trail[(page - 1) * PAGE : page * PAGE], page, pages, len(trail)), devices
