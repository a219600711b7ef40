"""Bench: the store on SQLite and on PostgreSQL, side by side (docs/store.md takes its sizing from here).

  trip        a 7-day Lu-177 trip at 1-minute logging (10,080 records, about one shipment) on the
              in-process fake board (tests/fakes.py: the firmware's own logger, log store and
              protocol), synced into a new store on each back end (in-process, `isolog.board.sync`):
              sync time, then the bytes the store holds per record, table by table, as the back end
              counts them (SQLite: the dbstat table's pages; PostgreSQL: pg_total_relation_size,
              heap + indexes + TOAST). The evidence (chunks: the board's flash bytes) is counted apart;
              "whole store" includes every table's fixed first pages (a few KB each, which do not
              grow with records), so the 10-year projection scales records + chunks only.
  check       `isolog check SHIPMENT --json` and `isolog export` on a stored shipment of 10^5 records
              (bench/store_synth.py), whole process start to exit, best of REPEAT, interleaved.

PostgreSQL is a real server (pgserver's PostgreSQL 16 wheel, requirements/dev.txt) on a Unix socket
in a temporary folder, started and stopped by the bench: client and server share the machine, so
the figures hold no network round trip (a desk on a LAN adds one per statement; docs/store.md).

Run: make bench BENCH=store_backends (or python -m bench store_backends).
BENCH_STORE_SIZES=10000,100000 (environment) chooses the check sizes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.table import print_table, row

ROOT = Path(__file__).resolve().parents[1]
SIZES = tuple(int(x) for x in os.environ.get("BENCH_STORE_SIZES", "100000").split(","))
REPEAT = 3
TRIP_DAYS = 7

# The sizing docs/store.md states (issue 15): shipments a year x records a shipment x years.
SHIPMENTS_PER_YEAR = 2_500
RECORDS_PER_SHIPMENT = 10_000
YEARS = 10


def _server(where: Path):
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_helpers import Server

    return Server(where)


def _trip(db: Path | str) -> tuple[int, float]:
    """A 7-day trip synced into db: (records, sync seconds)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import fakes
    from isolog.board import link as link_mod
    from isolog.board import sync as sync_mod

    board = fakes.FakeBoard(flash_blocks=1024)
    board.configure()
    board.run_for(TRIP_DAYS * 86400)
    real = link_mod.Link
    sync_mod.Link = lambda port, *a, **k: real(
        port, timeout_s=0.05, retries=2, serial_obj=fakes.FakeSerial(board, port)
    )  # type: ignore[assignment]
    try:
        t = time.perf_counter()
        r = sync_mod.sync("BENCH", db=db, set_clock=False)
        dt = time.perf_counter() - t
    finally:
        sync_mod.Link = real  # type: ignore[assignment]
    if r.problems:
        raise SystemExit(f"bench: the trip's sync reported problems: {r.problems}")
    return r.records_added, dt


def table_bytes(db: Path | str) -> dict[str, int]:
    """Bytes each table of the store takes, indexes included, as the back end counts them."""
    from isolog.store import Store

    with Store(db) as st:
        if st.kind == "sqlite":
            # dbstat: one row per page; an index belongs to its table (sqlite_master.tbl_name)
            rows = st.db.execute(
                "SELECT m.tbl_name, SUM(d.pgsize) FROM dbstat d JOIN sqlite_master m ON m.name = d.name "
                "GROUP BY m.tbl_name"
            ).fetchall()
        else:
            st.db.execute("VACUUM ANALYZE")  # settle the visibility map; sizes count pages either way
            rows = st.db.execute(
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            ).fetchall()
    return {str(name): int(size) for name, size in rows}


def _check(isolog: str, db: Path | str, out: Path) -> dict[str, tuple[float, float]]:
    from bench.commands import measure
    from bench.store_synth import SHIP_ID

    cmds = {
        "check": [isolog, "check", SHIP_ID, "--db", str(db), "--json"],
        "export": [isolog, "export", "--shipment", SHIP_ID, "--db", str(db), "-o", str(out)],
    }
    best = {k: (float("inf"), 0.0) for k in cmds}
    for _ in range(REPEAT):
        for name, argv in cmds.items():
            rc, dt, rss, text = measure(argv)
            if rc not in ((0, 1) if name == "check" else (0,)):
                raise SystemExit(f"bench: {' '.join(argv)} exited {rc}")
            if name == "check":
                json.loads(text)
            best[name] = min(best[name], (dt, rss))
    return best


def main() -> None:
    from bench import store_synth
    from isolog.store import Store

    print("== store back ends: SQLite and PostgreSQL 16, the same schema ==", flush=True)
    isolog = str(Path(sys.executable).with_name("isolog"))
    rows: list = []
    tmp = Path(tempfile.mkdtemp(prefix="isolog-bench-store-"))
    pgdata = Path(tempfile.mkdtemp(prefix="isolog-bench-pgdata-"))
    srv = _server(pgdata)
    per_record: dict[str, dict[str, float]] = {}
    try:
        print(f"  PostgreSQL: {srv.admin.execute('SHOW server_version').fetchone()[0]}", flush=True)
        for kind in ("sqlite", "postgresql"):
            db: Path | str = tmp / "trip.sqlite3" if kind == "sqlite" else srv.new_database("bench_trip")
            n, dt = _trip(db)
            sizes = table_bytes(db)
            records_b = sizes.get("records", 0) / n
            chunks_b = sizes.get("chunks", 0) / n
            total_b = sum(sizes.values()) / n
            per_record[kind] = {"records": records_b, "chunks": chunks_b, "total": total_b}
            if kind == "postgresql":
                with Store(db) as st:
                    heap, index = st.db.execute(
                        "SELECT pg_relation_size('records'), pg_indexes_size('records')"
                    ).fetchone()
                row(
                    rows,
                    f"{kind}: records heap / primary key, per record",
                    f"{heap / n:6.1f} B / {index / n:.1f} B",
                    "",
                    None,
                )
            row(
                rows,
                f"{kind}: sync of a {TRIP_DAYS}-day trip",
                f"{n:,} records in {dt:.2f} s ({n / dt:,.0f}/s)",
                "",
                None,
            )
            row(rows, f"{kind}: records table + key, per record", f"{records_b:6.1f} B", "", None)
            row(rows, f"{kind}: chunks (flash evidence), per record", f"{chunks_b:6.1f} B", "", None)
            row(rows, f"{kind}: whole store, per record", f"{total_b:6.1f} B", "", None)
            print(f"  {kind}: trip synced and measured", flush=True)
        for n in SIZES:
            for kind in ("sqlite", "postgresql"):
                db = tmp / f"s{n}.sqlite3" if kind == "sqlite" else srv.new_database(f"bench_check_{n}")
                store_synth.build(db, n)
                best = _check(isolog, db, tmp / "r.jsonl")
                for name, (t, rss) in best.items():
                    row(rows, f"{kind}: isolog {name} {n:,} records", f"{t:6.2f} s, {rss:5.0f} MB peak RSS", "", None)
                print(f"  {kind}: check of {n:,} records measured", flush=True)
        total_records = SHIPMENTS_PER_YEAR * RECORDS_PER_SHIPMENT * YEARS
        for kind, b in per_record.items():
            row(
                rows,
                f"{kind}: {total_records / 1e6:,.0f} M records ({YEARS} years)",
                f"records {total_records * b['records'] / 1e9:,.0f} GB, with the evidence "
                f"{total_records * (b['records'] + b['chunks']) / 1e9:,.0f} GB",
                "",
                None,
            )
    finally:
        srv.stop()
        shutil.rmtree(pgdata, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows)


if __name__ == "__main__":
    main()
