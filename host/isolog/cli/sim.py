"""`isolog sim`: run the firmware on the virtual board."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from isolog.cli.args import Spec
from isolog.errors import UserError
from isolog.sim import scenario as scenario_mod
from isolog.sim.launcher import RESET_LOOP_EXIT, VirtualBoard, describe
from isolog_boards import energy


def _speed(text: str) -> float:
    if text == "max":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a factor such as 60, or 'max'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive, or 'max'")
    return value


def _mah(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a capacity in mAh, such as 2600") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _sim_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", help="scenario TOML file (default: a built-in 7-day Lu-177 shipment)")
    p.add_argument("--flash", type=Path, help="flash image file (created if missing; default: a temporary file)")
    p.add_argument(
        "--flash-size", type=int, default=1024, metavar="KIB", help="size of a new flash image (default 1024)"
    )
    p.add_argument(
        "--heap", type=int, default=64, metavar="KIB", help="MicroPython heap as on a 32-bit board, in KiB (default 64)"
    )
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="FACTOR",
        help="simulated seconds per real second, or 'max' (default 1)",
    )
    p.add_argument("--until-end", action="store_true", help="stop when the scenario ends and exit 0")
    p.add_argument(
        "--hold-at-end",
        action="store_true",
        help="at the scenario's end stop the clock but keep the board up for a sync",
    )
    p.add_argument(
        "--board",
        choices=sorted(energy.BOARDS),
        default=energy.DEFAULT,
        help="the board the virtual board stands for: its flash geometry and its energy model "
        f"(default {energy.DEFAULT})",
    )
    p.add_argument(
        "--battery-mah",
        type=_mah,
        metavar="MAH",
        help=f"battery capacity for the energy line (default: the board's documented battery, {energy.BATTERY_NAME})",
    )
    p.add_argument(
        "--low-power",
        action="store_true",
        help="sleep between samples, the ULP counting (ESP32-S3 only): deep sleep while no host talks",
    )
    p.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    p.add_argument("--device-id", default="15010c0000000001", help="16 hex digits")
    p.add_argument("--quiet", action="store_true", help="do not print board events")
    p.add_argument(
        "--no-secure-element",
        action="store_true",
        help="a board without the ATECC608B: its key on the flash, its log reported as not authenticated",
    )


def run(args: argparse.Namespace) -> int:
    if args.heap < 8:
        raise UserError("--heap must be at least 8 KiB")
    if len(args.device_id) != 16 or any(c not in "0123456789abcdefABCDEF" for c in args.device_id):
        raise UserError("--device-id must be 16 hex digits")
    if args.low_power and energy.board(args.board).coprocessor_ua is None:
        raise UserError(f"--low-power needs a board that counts while it sleeps; {args.board} does not")
    sc = scenario_mod.load(args.scenario)
    tmp = None
    flash = args.flash
    if flash is None:
        tmp = tempfile.TemporaryDirectory(prefix="isolog-flash-")
        flash = Path(tmp.name) / "flash.img"
    board = VirtualBoard(
        sc,
        flash,
        heap_kib=args.heap,
        speed=args.speed,
        until_end=args.until_end,
        hold_at_end=args.hold_at_end,
        seed=args.seed if args.seed is not None else sc["seed"],
        device_id=args.device_id.lower(),
        flash_size_kib=args.flash_size,
        secure_element=not args.no_secure_element,
        profile=args.board,
        low_power=args.low_power,
        on_event=None if args.quiet else lambda ev: print(describe(ev), file=sys.stderr, flush=True),
        on_stderr=lambda line: print(f"board: {line}", file=sys.stderr, flush=True),
        keep_events=False,  # printed as they come; a long trip's memory stays flat
    )
    print(f"virtual board on {board.port}", flush=True)
    print(f"flash image: {flash}" + (" (temporary; use --flash to keep it)" if tmp else ""), flush=True)
    if board.secure_element:
        print(f"secure element memory (outside the image): {board.se_path}", flush=True)
    try:
        code = board.run()
    except KeyboardInterrupt:
        board.stop()
        code = 0
    finally:
        board.close()
        if tmp is not None:
            tmp.cleanup()
    if code == RESET_LOOP_EXIT:
        last = " | ".join(list(board.stderr_tail)[-3:])
        raise UserError(
            f"the virtual board reset {board.max_reset_loop} times in a row at t={board.t0_s:.0f} s: {last}"
        )
    if code != 0:
        raise UserError(f"the virtual board stopped with exit code {code}")
    # The last line: the energy the board spent, priced with its model (boards/energy.py).
    print(energy.estimate(board.energy(), energy.board(args.board)).line(args.battery_mah), flush=True)
    return 0


COMMANDS = {
    "sim": Spec(
        "run the firmware on the virtual board",
        _sim_args,
        run,
        "Run the unchanged firmware in the MicroPython unix port with simulated sensors, flash in a "
        "littlefs image file and the USB link on a pseudo-terminal. The scenario format is described "
        "in scenarios/README.md.",
    ),
}
