"""`isolog demo`: the main job on the virtual board, start to end."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from isolog import logfile
from isolog.logdump import format_row
from isolog.sim import scenario as scenario_mod
from isolog.sim.launcher import VirtualBoard, describe


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run a shipment on the virtual board and show its log")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="folder for the flash image (default demo-out)")
    p.add_argument("--scenario", help="scenario TOML (default: the built-in 7-day Lu-177 shipment)")
    p.set_defaults(func=run)


def _say(text: str = "") -> None:
    print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    sc = scenario_mod.load(args.scenario)
    flash = out / "flash.img"
    _say(f"== 1. Virtual board: {sc['name']}")
    _say(f"   firmware in the MicroPython unix port, flash {flash}, scenario time accelerated")
    start = time.monotonic()
    board = VirtualBoard(sc, flash, speed=0.0, until_end=True, seed=sc["seed"],
                         on_event=lambda ev: _say("   " + describe(ev)) if ev.kind != "flash" else None,
                         on_stderr=lambda line: print("   board: " + line, file=sys.stderr))
    try:
        code = board.run()
    finally:
        board.close()
    _say(f"   {board.boots} power-up(s), {time.monotonic() - start:.1f} s wall time, exit code {code}")
    if code != 0:
        return 1

    _say()
    _say(f"== 2. The log on the flash (isolog log dump --flash {flash})")
    log = logfile.read_image(flash)
    rows = log.records
    _say(f"   {'seq':>8s}  {'time (UTC)':24s} {'counts':>8s} {'dose rate':>12s} {'temp':>8s}  flags")
    interesting = [r for r in rows if set(r["flags"]) - {"time_valid"}]
    shown = rows[:3] + interesting[:12] + rows[-3:]
    last = -1
    for r in sorted({r["seq"]: r for r in shown}.values(), key=lambda r: r["seq"]):
        if last >= 0 and r["seq"] != last + 1:
            _say("        ...")
        _say("   " + format_row(r))
        last = r["seq"]
    s = logfile.summarise(rows)
    _say()
    _say(f"   {s['records']} records (seq {s['first_seq']}..{s['last_seq']}), boots {s['boots']}, "
         f"{len(log.problems)} problems")
    _say(f"   temperature {s['temperature_min_c']} .. {s['temperature_max_c']} C, "
         f"max dose rate {s['dose_rate_max_usv_h']:.2f} uSv/h")
    _say("   flags: " + ", ".join(f"{k} x{v}" for k, v in sorted(s["flags"].items())))
    for p in log.problems:
        _say(f"   damaged: {p}")
    return 0 if not log.problems else 1
