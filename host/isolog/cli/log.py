"""`isolog log dump`: print every record of a flash image."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from isolog.cli.args import Spec
from isolog.errors import UserError
from isolog.log import decode
from isolog.log import image as flash_image

EXIT_DAMAGED = 1


def _block_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a whole number of bytes, e.g. 4096") from None
    if value < 128 or value & (value - 1):
        raise argparse.ArgumentTypeError("a power of two of at least 128 bytes, e.g. 4096")
    return value


def _log_args(p: argparse.ArgumentParser) -> None:
    log_sub = p.add_subparsers(dest="log_command", metavar="COMMAND")
    d = log_sub.add_parser(
        "dump",
        help="print every record in a flash image",
        description="Read a littlefs flash image (the virtual board's, or a dump of a real board's "
        "filesystem) and print every record. Damaged records or segments are reported on stderr "
        "and skipped. Exit status: 0 all intact, 1 damage found, 2 unusable input.",
    )
    d.add_argument("--flash", type=Path, required=True, metavar="IMAGE", help="littlefs image file")
    d.add_argument("--json", action="store_true", help="one JSON object a line (fields in docs/shipment.md)")
    d.add_argument(
        "--block-size",
        type=_block_size,
        default=flash_image.BLOCK_SIZE,
        help=f"flash block size (default {flash_image.BLOCK_SIZE})",
    )
    d.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help="the device key (hex) to verify the MAC chain with; default: the empty key of an unprovisioned board",
    )
    p.set_defaults(log_parser=p)


def cmd_log(args: argparse.Namespace) -> int:
    if args.log_command == "dump":
        return run_dump(args)
    args.log_parser.print_help()
    return 2


def format_row(r: dict) -> str:
    temp = "   --   " if r["temperature_c"] is None else f"{r['temperature_c']:7.2f}C"
    dose = "     --     " if r["dose_rate_usv_h"] is None else f"{r['dose_rate_usv_h']:9.3f}µSv/h"
    when = r["time"] or f"(boot {r['boot']} +{r['uptime_s']:.0f}s)"
    flags = ",".join(f for f in r["flags"] if f != "time_valid")
    return f"{r['seq']:8d}  {when:24s} {r['interval_counts']:8d} {dose} {temp}  {flags}"


def read_key(path: Path | None) -> bytes:
    if path is None:
        return b""
    try:
        text = path.read_text().strip()
        return bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError):
        raise UserError(f"{path}: not a readable key file (hex digits expected)") from None


def run_dump(args: argparse.Namespace) -> int:
    log = flash_image.read_image(args.flash, args.block_size, key=read_key(args.key_file))
    out = sys.stdout
    if not args.json:
        print(f"{'seq':>8s}  {'time (UTC)':24s} {'counts':>8s} {'dose rate':>12s} {'temp':>8s}  flags", file=out)
    for r in log.records:
        print(json.dumps(r) if args.json else format_row(r), file=out)
    for p in log.problems:
        print(f"isolog: damaged: {p}", file=sys.stderr)
    print(f"isolog: {log.verification()}", file=sys.stderr)
    if not args.json:
        s = decode.summarise(log.records)
        print(f"{s['records']} records in {log.segments} segments, {len(log.problems)} problems", file=sys.stderr)
    return EXIT_DAMAGED if log.problems else 0


COMMANDS = {
    "log": Spec("read logs without a board (flash images)", _log_args, cmd_log),
}
