"""`isolog demo`: the main job on the virtual board, start to end, with the real commands.

1. A blank board (isolog deployed, nothing configured) is plugged in at dispatch: it is
   provisioned with its own key and configured for a 7.4 GBq Lu-177 shipment (`isolog provision`,
   `isolog configure`).
2. The trip: 7 days at one record a minute, accelerated, with a warm hour on the tarmac, a
   temperature sensor drop-out and a power cut (the built-in scenario).
3. Arrival: the board is plugged in again: `isolog sync` copies its log into the store, verified
   by CRC and by the MAC chain made with its key, then `isolog check` and `isolog report` give
   the verdict per rule and the certificate, and `isolog ack-alarms` clears the latched alarm.
4. It ends with the commands that serve the dashboard over the demo's store (it starts no server).
"""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from pathlib import Path

from isolog import cli
from isolog.cli.args import Spec
from isolog.errors import UserError
from isolog.sim import scenario as scenario_mod
from isolog.sim.launcher import VirtualBoard, describe


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        type=Path,
        default=Path("demo-out"),
        help="folder for the flash image, the store and the report (default demo-out)",
    )


def _say(text: str = "") -> None:
    print(text, flush=True)


def _isolog(*args: str) -> int:
    _say("   $ isolog " + " ".join(args))
    code = cli.main(list(args))
    _say(f"   (exit {code})")
    return code


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    sc = scenario_mod.load(None)
    shipment_file = sc["shipment_file"]
    flash, db, report = out / "flash.img", out / "store.sqlite3", out / "report.pdf"
    ship_id = sc["board_config"]["id"]
    t_start = time.monotonic()

    _say("== 1. Dispatch: a new board is provisioned and configured")
    bare = dict(sc, board_config=None)
    board = VirtualBoard(bare, flash, speed=1.0)
    board.start()
    try:
        _say(f"   virtual board on {board.port} (flash {flash})")
        if _isolog("provision", board.port, "--name", "container-17", "--db", str(db)) != 0:
            return 1
        if _isolog("configure", board.port, shipment_file, "--db", str(db)) != 0:
            return 1
    finally:
        board.close()

    _say()
    _say(f"== 2. The trip: {sc['name']} (accelerated)")
    events: list[str] = []
    ended = threading.Event()

    def on_event(ev) -> None:
        if ev.kind in ("led", "power_loss", "boot"):
            _say("   " + describe(ev))
        if ev.kind == "end":
            ended.set()

    board = VirtualBoard(
        sc, flash, speed=0.0, hold_at_end=True, firmware="keep", on_event=on_event, on_stderr=events.append
    )
    thread = board.start()
    try:
        while not ended.wait(0.2):
            if not thread.is_alive():
                raise UserError("the virtual board stopped during the trip: " + " | ".join(events[-5:]))
        _say(f"   arrived after {time.monotonic() - t_start:.1f} s wall time")
        _say()
        _say("== 3. Arrival: sync, check, report")
        sync_code = _isolog("sync", board.port, "--db", str(db))
        check_code = _isolog("check", ship_id, "--db", str(db))
        _isolog("report", ship_id, "--db", str(db), "-o", str(report))
        _isolog("export", "--db", str(db), "--shipment", ship_id, "--format", "jsonl", "-o", str(out / "records.jsonl"))
        _isolog("ack-alarms", board.port, "--db", str(db))
    finally:
        board.close()
    _say()
    _say(
        f"== Done in {time.monotonic() - t_start:.1f} s. In {out}/: the board's flash image, the store, "
        f"the records, and the certificate {report.name}."
    )
    _say("   The verdict fails on purpose: the scenario's warm hour breaks the 25 C rule (see the report).")
    _say()
    _say("== The dashboard over the demo's store: add yourself as QA, then serve it and open the address it prints")
    _say("   (isolog is .venv/bin/isolog when the virtualenv is not activated)")
    _say(f"   isolog user add $USER --role qa --db {db}")
    _say(f"   isolog serve --db {db}")
    return 0 if sync_code == 0 and check_code in (0, 1) else 1


COMMANDS = {
    "demo": Spec(
        "a whole shipment on the virtual board: provision, configure, trip, sync, check, report", _demo_args, run
    ),
}
