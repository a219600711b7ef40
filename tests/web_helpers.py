"""Helpers for the dashboard tests: a signed-in TestClient and the CSRF token of a page; shipments
with a known life (LIVES) for the shipment list's dispatch, delivery, return and overdue columns."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from starlette.testclient import TestClient

from isolog.web.queries import RETURN_DAYS

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def signed_in(app, name: str, password: str) -> TestClient:
    c = TestClient(app)
    token = csrf_of(c.get("/signin").text)
    r = c.post("/signin", data={"csrf": token, "user": name, "password": password, "next": "/containers"})
    assert r.status_code == 200 and r.url.path == "/containers", r.text[:300]
    return c


def text_of(html: str) -> str:
    """The page's text, tags removed, white space collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


# --- the shipment list's life columns, certificate and overdue returns (issue 15 item 3) -----------

TODAY = date(2026, 11, 30)
# shipment id -> (dispatched, delivered, returned) as recorded (None: no such event); each on its own board
LIVES: dict[str, tuple[datetime | None, datetime | None, datetime | None]] = {
    "LU-BACK": (
        datetime(2026, 11, 1, 8, 0, tzinfo=UTC),
        datetime(2026, 11, 2, 10, 30, tzinfo=UTC),
        datetime(2026, 11, 5, 9, 15, tzinfo=UTC),
    ),
    "LU-LATE": (datetime(2026, 11, 10, 8, 0, tzinfo=UTC), datetime(2026, 11, 11, 16, 0, tzinfo=UTC), None),
    "LU-OUT": (datetime(2026, 11, 20, 7, 0, tzinfo=UTC), None, None),  # dispatched 10 days ago, no delivery
    "LU-DELIVERED-LATELY": (datetime(2026, 10, 1, 8, 0, tzinfo=UTC), datetime(2026, 11, 25, 12, 0, tzinfo=UTC), None),
    "LU-EDGE-OVER": (datetime(2026, 11, 15, 23, 59, tzinfo=UTC), None, None),  # 15 days: one past the window
    "LU-EDGE-IN": (datetime(2026, 11, 16, 0, 0, tzinfo=UTC), None, None),  # 14 days: the window's last day
    "LU-NO-EVENTS": (None, None, None),  # a store from before shipment_events
    "LU-OLD-TRIP": (datetime(2026, 9, 1, 8, 0, tzinfo=UTC), None, None),  # no return recorded, but ...
    "LU-NEW-TRIP": (datetime(2026, 11, 29, 8, 0, tzinfo=UTC), None, None),  # ... its board configured since
}
# shipment -> the shipment whose board it was configured on, later (that one's container came back)
SAME_BOARD = {"LU-NEW-TRIP": "LU-OLD-TRIP"}


def life_iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def expected_life(ship_id: str, today: date = TODAY, days: int = RETURN_DAYS) -> dict:
    """What the list must show of LIVES[ship_id], from the times alone: out_days counts the days
    since the delivery (or the dispatch, no delivery) while the container is not back; overdue past
    `days` of them."""
    sent, delivered, back = LIVES[ship_id]
    since = None if ship_id in SAME_BOARD.values() else delivered or sent  # configured again: it is back
    out = (today - since.date()).days if since and not back else None
    # build_lives records configured for each, then dispatched, delivered, returned and synced
    stage = "synced" if back else "delivered" if delivered else "dispatched" if sent else "configured"
    return {
        "stage": stage,
        "dispatched": life_iso(sent) if sent else None,
        "delivered": life_iso(delivered) if delivered else None,
        "returned": life_iso(back) if back else None,
        "out_days": out,
        "overdue": out is not None and out > days,
    }


def build_lives(st) -> tuple[dict[str, int], dict]:
    """Write LIVES's shipments (each on its own board, its events at the times given) into the store
    st, a QA user quinn ("Quinn Quality", password qa-password-123) and two certificates for
    LU-BACK (the list shows the later one): ({shipment id: row}, the later certificate as archived)."""
    from isolog.web import accounts

    rows: dict[str, int] = {}
    devs: dict[str, str] = {}
    for n, (ship_id, (sent, delivered, back)) in enumerate(LIVES.items()):
        dev = devs[ship_id] = devs[SAME_BOARD[ship_id]] if ship_id in SAME_BOARD else f"dev{n}"
        with st.transaction() as db:
            st.touch_device(db, dev, "pico", "1", 0)
            db.execute(
                "INSERT INTO shipments (id, device, toml, board_config, configured_at, first_seq, first_seq_max) "
                "VALUES (?, ?, '', '{}', '2026-10-01T00:00:00Z', 0, 0)",
                (ship_id, dev),
            )
        rows[ship_id] = st.db.execute("SELECT rowid FROM shipments WHERE id = ?", (ship_id,)).fetchone()[0]
        st.add_event(None, ship_id, dev, "configured", datetime(2026, 9, 30, tzinfo=UTC))
        for state, at in (("dispatched", sent), ("delivered", delivered), ("returned", back), ("synced", back)):
            if at is not None:
                st.add_event(None, ship_id, dev, state, at)
    quinn = accounts.add_user(st, "quinn", "qa", "qa-password-123", "Quinn Quality")
    ship = accounts.Shipment(rows["LU-BACK"], "LU-BACK", "dev0", "pass", "ab" * 32)
    accounts.archive_certificate(st, ship, b"%PDF-first", quinn)
    last = accounts.archive_certificate(st, ship, b"%PDF-second", quinn)
    return rows, last
