"""Bench: `isolog check`, `report` and `export` on a stored shipment of 10^4, 10^5 and 10^6 records,
as a user runs them (process start to exit), against the floor: a process that only reads the
same columns from the same SQLite file into NumPy (bench.commands.read_columns, the plain
`SELECT ... ORDER BY seq` a fetch at a time). Each measure runs in its own small wrapper process
that times the command and reads its peak RSS with resource.getrusage(RUSAGE_CHILDREN); the
commands are interleaved (floor, check, report, export, floor, ...) and the best of REPEAT is kept,
as the machine is shared. The stores are built directly (bench/store_synth.py), not by syncing.

Goals (issue 11): `isolog check` of 1,000,000 records within 2x the floor, and < 500 MB.
Run: make bench BENCH=commands (or python -m bench commands).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.table import print_table, row

# BENCH_SIZES=10000,100000 (environment) to run fewer sizes while working on the commands.
SIZES = tuple(int(x) for x in os.environ.get("BENCH_SIZES", "10000,100000,1000000").split(","))
REPEAT = {10_000: 5, 100_000: 3}  # best of 3 above
RATIO_GOAL = 2.0
RSS_GOAL_MB = 500.0
ROOT = Path(__file__).resolve().parents[1]

_WRAPPER = """
import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL if "--json" not in sys.argv else None)
dt = time.perf_counter() - t
print(f"\\n@@ {rc} {dt:.6f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
"""


def read_columns(db: str, device: str) -> None:
    """The floor: read the records' columns of a device from the store into NumPy, nothing else."""
    import sqlite3

    import numpy as np

    con = sqlite3.connect(db)
    cur = con.execute(
        "SELECT seq, boot, time, uptime_s, counts, interval_s, interval_counts, dose_rate_usv_h, "
        "temperature_c, flags FROM records WHERE device = ? AND seq >= 0 ORDER BY seq",
        (device,),
    )
    types = (np.int64, np.int64, object, np.float64, np.int64, np.float64, np.int64, np.float64, np.float64, object)
    parts: list[list] = [[] for _ in types]
    while rows := cur.fetchmany(16384):
        for part, col, t in zip(parts, zip(*rows), types):
            part.append(np.array(col, dtype=t))
    cols = [np.concatenate(p) for p in parts]
    print(len(cols[0]))


def measure(argv: list[str]) -> tuple[int, float, float, str]:
    """(exit code, wall seconds, peak RSS MB, stdout) of a command, process start to exit, timed in
    a small wrapper process (its children's peak RSS); stdout kept only for a --json command."""
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv], capture_output=True, text=True, cwd=ROOT, check=False
    ).stdout
    head, _, tail = out.rpartition("\n@@ ")
    rc, dt, rss_kb = tail.split()
    return int(rc), float(dt), int(rss_kb) / 1024, head


def main() -> None:
    from bench import store_synth
    from isolog.compliance.records import sha256_file

    print("== commands bench: check, report, export of a stored shipment, whole process, best of N ==", flush=True)
    isolog = str(Path(sys.executable).with_name("isolog"))
    rows: list = []
    with tempfile.TemporaryDirectory(prefix="isolog-bench-commands-") as d:
        tmp = Path(d)
        for n in SIZES:
            db = tmp / f"store-{n}.sqlite3"
            store_synth.build(db, n)
            ship = store_synth.SHIP_ID
            cmds = {
                "floor": [
                    sys.executable,
                    "-c",
                    f"from bench.commands import read_columns; read_columns({str(db)!r}, {store_synth.DEVICE!r})",
                ],
                "check": [isolog, "check", ship, "--db", str(db), "--json"],
                "report": [isolog, "report", ship, "--db", str(db), "-o", str(tmp / "c.pdf")],
                "export": [isolog, "export", "--shipment", ship, "--db", str(db), "-o", str(tmp / "r.jsonl")],
            }
            best = {k: (float("inf"), 0.0) for k in cmds}
            cert = None
            for _ in range(REPEAT.get(n, 3)):
                for name, argv in cmds.items():
                    rc, dt, rss, out = measure(argv)
                    if name == "check":
                        cert = json.loads(out)["records"]["sha256"]
                        ok_rc = rc in (0, 1)
                    else:
                        ok_rc = rc == 0
                    if not ok_rc:
                        raise SystemExit(f"bench: {' '.join(argv)} exited {rc}")
                    if dt < best[name][0]:
                        best[name] = (dt, rss)
            same = cert == sha256_file(tmp / "r.jsonl")
            floor_t, floor_rss = best["floor"]
            for name in ("floor", "check", "report", "export"):
                t, rss = best[name]
                ratio = t / floor_t
                goal, ok = "", None
                if name == "check" and n == 1_000_000:
                    goal = f"<= {RATIO_GOAL:g}x floor, < {RSS_GOAL_MB:g} MB"
                    ok = ratio <= RATIO_GOAL and rss < RSS_GOAL_MB
                value = f"{t:6.2f} s, {rss:5.0f} MB peak RSS" + ("" if name == "floor" else f", {ratio:.2f}x floor")
                row(rows, f"{name} {n:>9,} records", value, goal, ok)
            row(rows, f"sha256(export) == certificate hash, {n:,}", "yes" if same else "NO", "equal", same)
            print(f"  {n:,} records done", flush=True)
    print_table(rows)


if __name__ == "__main__":
    main()
