"""`isolog demo`: the whole life of a shipment on the virtual board, with the real commands.

1. Dispatch: a blank container (isolog deployed, nothing configured) is provisioned with its own
   key and configured for a 7.4 GBq Lu-177 shipment, its trip starting 2 hours later (packing):
   `isolog provision`, `isolog configure --start-delay 2h`.
2. The trip: 7 days at one record a minute, accelerated: packing at room temperature, a warm hour
   on the tarmac, a temperature sensor drop-out, a power cut; on day 6 the hospital takes the
   product out and the empty container travels back, warm, with the board still logging.
3. Return: `isolog sync`; `isolog check` sees the dose rate fall to background and offers that
   moment as the delivery; `isolog deliver --detected` confirms it; `isolog check` and `isolog
   report` judge the trip from dispatch to delivery and show packing and return apart. The
   latched alarm is reviewed and acknowledged, QA rejects the shipment (the warm hour).
4. The same container again: the unedited shipment file is refused (its id names the first
   trip); the next shipment is configured, travels a day, is synced with the delivery time from
   the delivery note (`isolog sync --delivered-at`), checked, certified and released.

The demo's times are placed in the past (the trips end before now): a delivery is never in the
future.
5. It ends with the commands that serve the dashboard over the demo's store (it starts no server).
"""

from __future__ import annotations

import argparse
import copy
import math
import re
import shutil
import threading
import time
from pathlib import Path

from isolog import cli
from isolog.cli.args import Spec
from isolog.errors import UserError
from isolog.sim import scenario as scenario_mod
from isolog.sim.launcher import VirtualBoard, describe
from isolog.units import format_time

DAY = 86400.0
HOUR = 3600.0
UNLOAD_S = 6 * DAY  # the hospital takes the product out on day 6 of the first trip
SECOND_TRIP_S = 1 * DAY


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        type=Path,
        default=Path("demo-out"),
        help="folder for the flash image, the store and the reports (default demo-out)",
    )


def _say(text: str = "") -> None:
    print(text, flush=True)


def _isolog(*args: str) -> int:
    _say("   $ isolog " + " ".join(args))
    code = cli.main(list(args))
    _say(f"   (exit {code})")
    return code


def _shipment_file(template: str, path: Path, ship_id: str, reference_s: float) -> Path:
    text = re.sub(r'(?m)^id = ".*"', f'id = "{ship_id}"', template)
    text = re.sub(r'(?m)^reference_time = ".*"', f'reference_time = "{format_time(reference_s)}"', text)
    path.write_text(text, encoding="utf-8")
    return path


def _first_trip(sc: dict, start_s: float) -> dict:
    """The built-in 7-day scenario from start_s, the product taken out on day 6, the empty
    container warm on its way back."""
    trip = copy.deepcopy(sc)
    trip["start_epoch_s"] = start_s
    trip["dose"]["steps"] = [[UNLOAD_S, 0.0]]
    points = [p for p in trip["temperature"]["points"] if p[0] < UNLOAD_S]
    trip["temperature"]["points"] = points + [[UNLOAD_S, 7.0], [UNLOAD_S + HOUR, 21.0], [trip["duration_s"], 21.0]]
    return trip


DELIVERED_2_S = 20 * HOUR  # the second shipment's delivery note


def _second_trip(sc: dict, start_s: float) -> dict:
    """A quiet day at 5 °C, no events; the product taken out after 20 hours."""
    trip = copy.deepcopy(sc)
    trip.update(start_epoch_s=start_s, duration_s=SECOND_TRIP_S, events=[], name="Lu-177, one quiet day")
    trip["temperature"] = {"points": [[0.0, 5.0], [SECOND_TRIP_S, 5.0]], "noise_c": 0.1}
    trip["dose"]["steps"] = [[DELIVERED_2_S, 0.0]]
    trip.pop("battery", None)
    return trip


def _travel(sc: dict, flash: Path) -> tuple[VirtualBoard, threading.Thread]:
    """Run a trip at full speed; return the board held at its end, waiting for a sync."""
    events: list[str] = []
    ended = threading.Event()
    t_start = time.monotonic()

    def on_event(ev) -> None:
        if ev.kind in ("led", "power_loss", "boot"):
            _say("   " + describe(ev))
        if ev.kind == "end":
            ended.set()

    board = VirtualBoard(
        sc, flash, speed=0.0, hold_at_end=True, firmware="keep", on_event=on_event, on_stderr=events.append
    )
    thread = board.start()
    while not ended.wait(0.2):
        if not thread.is_alive():
            board.close()
            raise UserError("the virtual board stopped during the trip: " + " | ".join(events[-5:]))
    _say(f"   back after {time.monotonic() - t_start:.1f} s wall time")
    return board, thread


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    sc = scenario_mod.load(None)
    template = Path(sc["shipment_file"]).read_text(encoding="utf-8")
    flash, db = out / "flash.img", str(out / "store.sqlite3")
    # Both trips end before now, on the hour: the first starts 9 days ago.
    start1 = math.floor((time.time() - 9 * DAY) / HOUR) * HOUR
    start2 = start1 + sc["duration_s"] + 6 * HOUR
    first, second = "LU-2026-11-0042", "LU-2026-11-0043"
    ship1 = _shipment_file(template, out / f"{first}.toml", first, start1)
    ship2 = _shipment_file(template, out / f"{second}.toml", second, start2)
    t_start = time.monotonic()
    codes: dict[str, int] = {}

    _say("== 1. Dispatch: a new container is provisioned and configured; the trip starts in 2 hours")
    board = VirtualBoard(dict(sc, board_config=None), flash, speed=1.0)
    board.start()
    try:
        _say(f"   virtual board on {board.port} (flash {flash})")
        if _isolog("provision", board.port, "--name", "container-17", "--db", db) != 0:
            return 1
        if _isolog("configure", board.port, str(ship1), "--start-delay", "2h", "--db", db) != 0:
            return 1
    finally:
        board.close()

    _say()
    _say(f"== 2. The trip: {sc['name']}; the product taken out on day 6, the container back empty")
    board, _ = _travel(_first_trip(sc, start1), flash)
    try:
        _say()
        _say("== 3. Return: sync, the delivery found in the data and confirmed, check, certificate")
        codes["sync1"] = _isolog("sync", board.port, "--db", db)
        _isolog("check", first, "--db", db)
        codes["deliver"] = _isolog("deliver", first, "--detected", "--db", db)
        codes["check1"] = _isolog("check", first, "--db", db)
        _isolog("report", first, "--db", db, "-o", str(out / f"{first}.pdf"))
        _isolog("export", "--db", db, "--shipment", first, "--format", "jsonl", "-o", str(out / "records.jsonl"))
        _say("   (the latched temperature alarm has been reviewed: acknowledged; QA rejects the shipment)")
        _isolog("ack-alarms", board.port, "--db", db)
        _isolog("decide", first, "reject", "--reason", "the warm hour on the tarmac broke the 25 °C rule", "--db", db)

        _say()
        _say("== 4. The same container, the next shipment")
        _say("   (the first trip's file again, unedited: refused, its id names the first trip)")
        codes["reuse"] = _isolog("configure", board.port, str(ship1), "--db", db)
        codes["configure2"] = _isolog("configure", board.port, str(ship2), "--db", db)
    finally:
        board.close()
    if codes["configure2"] != 0:
        return 1
    _say()
    _say("== 5. The second trip: one quiet day; the delivery time from the delivery note at sync")
    board, _ = _travel(_second_trip(sc, start2), flash)
    try:
        delivered = format_time(start2 + DELIVERED_2_S)
        codes["sync2"] = _isolog("sync", board.port, "--delivered-at", delivered, "--db", db)
        codes["check2"] = _isolog("check", second, "--db", db)
        _isolog("report", second, "--db", db, "-o", str(out / f"{second}.pdf"))
        _isolog("decide", second, "release", "--db", db)
        _isolog("shipments", "--db", db)
        _isolog("shipments", first, "--db", db)
    finally:
        board.close()
    _say()
    _say(
        f"== Done in {time.monotonic() - t_start:.1f} s. In {out}/: the container's flash image, the store, "
        f"the shipment files, the records, and the certificates {first}.pdf and {second}.pdf."
    )
    _say(f"   {first} fails on purpose: the scenario's warm hour breaks the 25 °C rule (see its certificate).")
    ok = (
        codes["sync1"] == 0
        and codes["deliver"] == 0
        and codes["check1"] == 1
        and codes["reuse"] == 2
        and codes["sync2"] == 0
        and codes["check2"] in (0, 1)
    )
    _say()
    _say("== The dashboard over the demo's store: add yourself as QA, then serve it and open the address it prints")
    _say("   (isolog is .venv/bin/isolog when the virtualenv is not activated)")
    _say(f"   isolog user add $USER --role qa --db {db}")
    _say(f"   isolog serve --db {db}")
    return 0 if ok else 1


COMMANDS = {
    "demo": Spec(
        "a shipment's whole life on the virtual board: dispatch, trip, delivery, return, check, certificate",
        _demo_args,
        run,
    ),
}
