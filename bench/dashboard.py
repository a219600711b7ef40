"""Bench: the fleet dashboard's pages at fleet scale (issue 15 item 5), served by the real app
(isolog.web.app through Starlette's TestClient: routing, session, SQL, Jinja2 rendering; no network).

The store: 500 boards, 25,000 shipments (50 a board), 200 records and 20 sync sessions a board,
a verdict remembered for 24,000 shipments, 5,000 signatures, written directly in the schema (as
bench/store_synth.py does); plus one shipment of 10,000 records (bench/store_synth.py's) for the
shipment page. Each page is timed from request to the last byte of the response, best and median of
REPEAT; the first open of the shipment page runs the compliance engine and draws nothing (the plot
is a separate request, timed too).

Goals (issue 15 item 5): the shipment list of 25,000 shipments and the container list of 500 boards
in under 200 ms; a shipment page of 10,000 records in under 1 s.
Run: make bench BENCH=dashboard (or python -m bench dashboard).
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from bench import store_synth
from bench.table import print_table, row

BOARDS = 500
SHIPMENTS_PER_BOARD = 50  # 25,000 shipments
RECORDS_PER_BOARD = 200
SESSIONS_PER_BOARD = 20
REPEAT = 7
LIST_GOAL_S = 0.200
SHIPMENT_GOAL_S = 1.0


def build(path: Path) -> None:
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


def main() -> None:
    from starlette.testclient import TestClient

    from isolog.web.app import create_app

    print("Bench: dashboard pages at fleet scale (500 boards, 25,000 shipments; one of 10,000 records)")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "fleet.sqlite3"
        t = time.perf_counter()
        build(db)
        print(f"store built in {time.perf_counter() - t:.1f} s ({db.stat().st_size / 1e6:.0f} MB)")
        app = create_app(db)
        with TestClient(app) as c:
            page = c.get("/signin").text
            token = re.search(r'name="csrf" value="([^"]+)"', page)
            assert token
            r = c.post("/signin", data={"csrf": token.group(1), "user": "bench", "password": "bench-password-1"})
            assert r.status_code == 200
            rows: list = []
            lists = [
                ("shipment list, first page (of 25,000)", "/shipments"),
                ("shipment list, last page (OFFSET 24,950)", "/shipments?page=500"),
                ("shipment list of one board", "/shipments?device=15010c0000000002"),
                ("container list, first page (of 500)", "/containers"),
                ("container list, last page", "/containers?page=10"),
            ]
            for name, url in lists:
                best, med, size = _timed(c, url, REPEAT)
                row(
                    rows,
                    name,
                    f"{best * 1e3:.1f} ms (median {med * 1e3:.1f}, {size // 1024} KB)",
                    "< 200 ms",
                    best < LIST_GOAL_S,
                )
            ship_row = 1  # store_synth's shipment: the first configured
            first, _, _ = _timed(c, f"/shipments/{ship_row}", 1)
            row(
                rows,
                "shipment page, 10,000 records, first open (engine)",
                f"{first * 1e3:.0f} ms",
                "< 1 s",
                first < SHIPMENT_GOAL_S,
            )
            best, med, _ = _timed(c, f"/shipments/{ship_row}", REPEAT)
            row(
                rows,
                "shipment page, 10,000 records, again",
                f"{best * 1e3:.1f} ms (median {med * 1e3:.1f})",
                "< 1 s",
                best < SHIPMENT_GOAL_S,
            )
            best, med, size = _timed(c, f"/shipments/{ship_row}/plot.png", 3)
            row(rows, "its plots (PNG)", f"{best * 1e3:.0f} ms (median {med * 1e3:.0f}, {size // 1024} KB)", "-", None)
            print_table(rows)
