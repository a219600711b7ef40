"""Bench: the fleet dashboard's pages at fleet scale (issue 15 item 5), served by the real app
(isolog.web.app through Starlette's TestClient: routing, session, SQL, Jinja2 rendering; no network),
on SQLite and on PostgreSQL, side by side.

The store, the same on both back ends: 500 boards, 25,000 shipments (50 a board), 200 records and
20 sync sessions a board, each board's status from its last sync and its calibration record, a
verdict remembered for 24,000 shipments (one in seven failing, each with two excursions, half of
those reviewed), 5,000 signatures and as many certificates, each shipment's life (dispatched,
delivered, returned, synced; each board's latest trip still out, 100 of them overdue returns),
written directly in the schema (as bench/store_synth.py does);
plus one shipment of 10,000 records (bench/store_synth.py's) for the shipment page. Each page is
timed from request to the last byte of the response, best and median of REPEAT; the first open of
the shipment page runs the compliance engine and draws nothing (the plot is a separate request,
timed too).

PostgreSQL is a real server (pgserver's PostgreSQL 16 wheel, requirements/dev.txt; the tests'
tests/pg_helpers.py) on a Unix socket in a temporary folder, started and stopped by the bench:
client and server share the machine, so no network round trip is counted (a desk on a LAN adds one
per statement: a page runs about ten). After the bulk load the bench runs ANALYZE there (what
autovacuum does on its own within a minute of such a load), so the planner knows the tables' sizes.

Goals (issue 15 item 5): the shipment list of 25,000 shipments and the container list of 500 boards
in under 200 ms; a shipment page of 10,000 records in under 1 s; on both back ends.
Run: make bench BENCH=dashboard (or python -m bench dashboard). BENCH_DASHBOARD_BACKENDS=sqlite
(environment) measures one back end only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bench import store_synth
from bench.table import print_table, row

BOARDS = 500
SHIPMENTS_PER_BOARD = 50  # 25,000 shipments
RECORDS_PER_BOARD = 200
SESSIONS_PER_BOARD = 20
OVERDUE_BOARDS = BOARDS // 5  # boards whose latest shipment is an overdue return (build)
TODAY = date(2026, 11, 30)  # the dashboard's "today" (create_app's today): the overdue returns hold still
REPEAT = 7
LIST_GOAL_S = 0.200
SHIPMENT_GOAL_S = 1.0
ROOT = Path(__file__).resolve().parents[1]
BACKENDS = tuple(os.environ.get("BENCH_DASHBOARD_BACKENDS", "sqlite,postgresql").split(","))


def build(path: Path | str) -> None:
    from isolog.store import Store
    from isolog.web import accounts

    store_synth.build(path, 10_000)  # the 10,000-record shipment, on store_synth.DEVICE
    toml = store_synth.shipment_toml()
    with Store(path) as st:
        accounts.add_user(st, "bench", "qa", "bench-password-1", "Bench QA")
        with st.transaction() as db:
            flags = json.dumps(["time_valid"])
            for b in range(BOARDS):
                dev = f"15010c00{b + 2:08x}"
                n = RECORDS_PER_BOARD * SHIPMENTS_PER_BOARD
                db.execute(
                    "INSERT INTO devices (id, board, firmware, first_seen, last_seen, base_seq, next_seq) "
                    "VALUES (?, 'pico', '1.0', '2026-01-01T00:00:00Z', '2026-11-29T10:00:00Z', 0, ?)",
                    (dev, n),
                )
                db.executemany(
                    "INSERT INTO records (device, seq, boot, time, uptime_s, counts, interval_s, interval_counts, "
                    "dose_rate_usv_h, temperature_c, flags) VALUES (?, ?, 0, '2026-11-29T10:00:00Z', ?, 0, 60, 0, "
                    "0.1, 5.0, ?)",
                    [(dev, n - RECORDS_PER_BOARD + i, float(i * 60), flags) for i in range(RECORDS_PER_BOARD)],
                )
                db.execute(
                    "INSERT INTO device_keys (device, key_id, key, name, created, current) "
                    "VALUES (?, ?, ?, ?, '2026-01-01T00:00:00Z', 1)",
                    (dev, f"{b:08x}", b"\0" * 32, f"container-{b:03d}"),
                )
                db.executemany(
                    "INSERT INTO sync_sessions (device, port, started, ended, status, records_added, acked_upto) "
                    "VALUES (?, '/dev/ttyACM0', '2026-11-29T10:00:00Z', '2026-11-29T10:01:00Z', 'ok', 200, ?)",
                    [(dev, (s + 1) * n // SESSIONS_PER_BOARD) for s in range(SESSIONS_PER_BOARD)],
                )
                db.executemany(
                    "INSERT INTO shipments (id, device, toml, board_config, configured_at, first_seq, first_seq_max, "
                    "host_user) VALUES (?, ?, ?, '{}', '2026-11-29T08:00:00Z', ?, ?, 'bench')",
                    [
                        (f"LU-{b:03d}-{k:03d}", dev, toml, k * RECORDS_PER_BOARD, k * RECORDS_PER_BOARD)
                        for k in range(SHIPMENTS_PER_BOARD)
                    ],
                )
            db.execute(
                "INSERT INTO web_verdicts (shipment_row, verdict, records, records_sha256, next_seq, final, "
                "checked_at) SELECT rowid, CASE WHEN rowid % 7 = 0 THEN 'fail' ELSE 'pass' END, 200, 'x', 0, 1, "
                "'2026-11-29T10:00:00Z' FROM shipments WHERE rowid % 25 != 0"
            )
            db.execute(
                "INSERT INTO web_excursions (shipment_row, excursion, rule, started_at, ended_at, start_seq, "
                "end_seq, duration_s, extreme_c, violation) SELECT rowid, 'temperature.' || r.name || "
                "' from 2026-11-29T09:00:00Z', 'temperature.' || r.name, '2026-11-29T09:00:00Z', "
                "'2026-11-29T10:00:00Z', first_seq + 60, first_seq + 120, 3600, 30.5, 1 FROM shipments "
                "CROSS JOIN (SELECT 'high' AS name UNION ALL SELECT 'warm-total') r WHERE rowid % 7 = 0"
            )
            db.execute(
                "INSERT INTO web_excursion_reviews (shipment_row, excursion, shipment_id, device, user_name, "
                "full_name, meaning, reason, signed_at, records_sha256) SELECT e.shipment_row, e.excursion, s.id, "
                "s.device, 'bench', 'Bench QA', 'accepted', 'bench', '2026-11-29T11:00:00Z', 'x' "
                "FROM web_excursions e JOIN shipments s ON s.rowid = e.shipment_row WHERE e.shipment_row % 14 = 0"
            )
            db.execute(
                "INSERT INTO device_status (device, battery_v, battery_percent, battery_days_left, "
                "storage_used_percent, storage_low, storage_full, taken_at, session) SELECT id, 3.8, 60, 12.5, 40, 0, "
                "0, '2026-11-29T10:00:00Z', NULL FROM devices"
            )
            db.execute(
                "INSERT INTO containers (device, sensor_model, cal_cpm_per_usv_h, dead_time_us, calibrated_on, "
                "calibration_due, updated_at) SELECT id, 'SBM-20', 153.8, 190.0, '2025-12-01', '2026-12-01', "
                "'2026-01-01T00:00:00Z' FROM devices"
            )
            # Each shipment's life (shipment_events): every trip but each board's latest is back
            # (dispatched, delivered, returned, synced); the latest is out, and on one board in five
            # it was delivered 19 days before TODAY: OVERDUE_BOARDS overdue returns.
            ev = (
                "INSERT INTO shipment_events (shipment, device, state, happened_at, recorded_at, host_user, details) "
                "SELECT id, device, ?, ?, '2026-11-29T10:00:00.000Z', 'bench', '{}' FROM shipments "
                "WHERE id LIKE 'LU-___-___' AND "
            )
            latest = f"id LIKE '%-{SHIPMENTS_PER_BOARD - 1:03d}'"
            overdue = "CAST(SUBSTR(id, 4, 3) AS INTEGER) % 5 = 0"
            db.execute(ev + "1 = 1", ("configured", "2026-09-30T08:00:00.000Z"))
            for state, at in (
                ("dispatched", "2026-10-01T08:00:00.000Z"),
                ("delivered", "2026-10-02T12:00:00.000Z"),
                ("returned", "2026-10-05T09:00:00.000Z"),
                ("synced", "2026-10-05T09:01:00.000Z"),
            ):
                db.execute(ev + f"NOT {latest}", (state, at))
            db.execute(ev + f"{latest} AND {overdue}", ("dispatched", "2026-11-10T08:00:00.000Z"))
            db.execute(ev + f"{latest} AND {overdue}", ("delivered", "2026-11-11T12:00:00.000Z"))
            db.execute(ev + f"{latest} AND NOT {overdue}", ("dispatched", "2026-11-28T08:00:00.000Z"))
            # a certificate (a small stand-in PDF) for every signed shipment: 5,000 in the archive
            db.execute(
                "INSERT INTO web_certificates (shipment_row, shipment_id, device, verdict, records_sha256, sha256, "
                "size, pdf, issued_by, issued_at) SELECT rowid, id, device, 'pass', 'x', 'y', 10, ?, 'bench', "
                "'2026-11-29T10:30:00.000Z' FROM shipments WHERE rowid % 5 = 0",
                (b"%PDF-bench",),
            )
            db.execute(
                "INSERT INTO web_signatures (shipment_row, shipment_id, device, user_name, full_name, meaning, "
                "reason, signed_at, verdict, records_sha256) SELECT rowid, id, device, 'bench', 'Bench QA', "
                "'released', 'bench', '2026-11-29T10:00:00Z', 'pass', 'x' FROM shipments WHERE rowid % 5 = 0"
            )


def _timed(client, url: str, repeat: int) -> tuple[float, float, int]:
    times = []
    size = 0
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(url)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, (url, r.status_code, r.text[:200])
        size = len(r.content)
    return min(times), statistics.median(times), size


def _server(where: Path):
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_helpers import Server

    return Server(where)


def measure(db: Path | str) -> list[tuple[str, float, float, int | None, float | None]]:
    """(page, best s, median s, bytes or None, goal s or None) of every page on the store at db."""
    from starlette.testclient import TestClient

    from isolog.web.app import create_app

    out: list[tuple[str, float, float, int | None, float | None]] = []
    app = create_app(db, today=lambda: TODAY)
    with TestClient(app) as c:
        page = c.get("/signin").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token
        r = c.post("/signin", data={"csrf": token.group(1), "user": "bench", "password": "bench-password-1"})
        assert r.status_code == 200
        lists = [
            ("shipment list, first page (of 25,000)", "/shipments"),
            ("shipment list, last page (OFFSET 24,950)", "/shipments?page=500"),
            ("shipment list of one board", "/shipments?device=15010c0000000002"),
            (f"shipment list, overdue returns ({OVERDUE_BOARDS} of 25,000)", "/shipments?overdue=1"),
            ("container list, first page (of 500)", "/containers"),
            ("container list, last page", "/containers?page=10"),
        ]
        for name, url in lists:
            best, med, size = _timed(c, url, REPEAT)
            out.append((name, best, med, size, LIST_GOAL_S))
        # the filter found what build() made: OVERDUE_BOARDS shipments, delivered 19 days before TODAY
        overdue = c.get("/shipments?overdue=1").text
        assert f"<small>{OVERDUE_BOARDS} overdue returns" in overdue, overdue[:500]
        assert overdue.count("OVERDUE return, 19 days") == min(OVERDUE_BOARDS, 50)
        ship_row = 1  # store_synth's shipment: the first configured
        first, _, _ = _timed(c, f"/shipments/{ship_row}", 1)
        out.append(("shipment page, 10,000 records, first open (engine)", first, first, None, SHIPMENT_GOAL_S))
        best, med, size = _timed(c, f"/shipments/{ship_row}", REPEAT)
        out.append(("shipment page, 10,000 records, again", best, med, size, SHIPMENT_GOAL_S))
        best, med, size = _timed(c, f"/shipments/{ship_row}/plot.png", 3)
        out.append(("its plots (PNG)", best, med, size, None))
    return out


def _ms(best: float, med: float, once: bool = False) -> str:
    if once:
        return f"{best * 1e3:.0f} ms"
    return f"{best * 1e3:.1f} ms (median {med * 1e3:.1f})"


def main() -> None:
    print(
        "Bench: dashboard pages at fleet scale (500 boards, 25,000 shipments; one of 10,000 records), "
        + " and ".join(BACKENDS),
        flush=True,
    )
    results: dict[str, list] = {}
    tmp = Path(tempfile.mkdtemp(prefix="isolog-bench-dashboard-"))
    pgdata = Path(tempfile.mkdtemp(prefix="isolog-bench-pgdata-")) if "postgresql" in BACKENDS else None
    srv = _server(pgdata) if pgdata else None
    try:
        for kind in BACKENDS:
            if kind == "sqlite":
                db: Path | str = tmp / "fleet.sqlite3"
            elif srv is not None:
                db = srv.new_database("bench_dashboard")
            else:
                raise SystemExit(f"BENCH_DASHBOARD_BACKENDS: sqlite or postgresql, not {kind!r}")
            t = time.perf_counter()
            build(db)
            built = time.perf_counter() - t
            if srv is not None and kind == "postgresql":
                from isolog.store import Store

                with Store(db) as st:
                    st.db.execute("ANALYZE")
                    size = st.db.execute("SELECT pg_database_size(current_database())").fetchone()[0]
                version = srv.admin.execute("SHOW server_version").fetchone()[0]
                print(f"  postgresql {version}: store built in {built:.1f} s ({size / 1e6:.0f} MB)", flush=True)
            else:
                print(f"  sqlite: store built in {built:.1f} s ({Path(db).stat().st_size / 1e6:.0f} MB)", flush=True)
            results[kind] = measure(db)
    finally:
        if srv is not None:
            srv.stop()
        if pgdata is not None:
            shutil.rmtree(pgdata, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    rows: list = []
    kinds = list(results)
    for i, (name, _, _, size, goal) in enumerate(results[kinds[0]]):
        figures = [results[k][i] for k in kinds]
        once = "first open" in name  # one run: it is the first
        value = "; ".join(f"{k}: {_ms(f[1], f[2], once)}" for k, f in zip(kinds, figures))
        if size is not None:
            value += f"; {size // 1024} KB"
        ok = None if goal is None else all(f[1] < goal for f in figures)
        row(rows, name, value, "-" if goal is None else f"< {goal * 1e3:.0f} ms", ok)
    print_table(rows)
