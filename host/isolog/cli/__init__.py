"""The `isolog` command: one table of commands, in the order the README presents the users' jobs.

Only this package parses arguments and prints. Every job is a library function underneath
(board/, log/, store, compliance/, sim/) that returns a result or raises UserError, so a script or
a web page can do what the command line does.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from isolog import __version__
from isolog.errors import UserError

# (command, the cli module that defines it): `isolog --help` lists them in this order.
COMMANDS = [
    # the main job, start to end, on the virtual board
    ("demo", "demo"),
    # logistics staff at the dispatch and return desks
    ("devices", "board"),
    ("configure", "board"),
    ("status", "board"),
    ("sync", "board"),
    ("ack-alarms", "board"),
    ("export", "board"),
    # QA: verdicts and certificates
    ("check", "compliance"),
    ("report", "compliance"),
    ("decay", "compliance"),
    # engineers: the virtual board, flash images, provisioning, firmware
    ("sim", "sim"),
    ("log", "log"),
    ("provision", "engineer"),
    ("flash", "engineer"),
    ("deploy", "engineer"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isolog",
        description="Radioisotope shipment logger: sync boards, check shipments, write certificates; "
        "the virtual board and the engineers' tools.",
    )
    parser.add_argument("--version", action="version", version=f"isolog {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS:
        spec = importlib.import_module(f"isolog.cli.{module}").COMMANDS[name]
        p = sub.add_parser(
            name,
            help=spec.help,
            description=spec.description or spec.help[0].upper() + spec.help[1:] + ".",
            epilog=spec.epilog,
            formatter_class=(argparse.RawDescriptionHelpFormatter if spec.epilog else argparse.HelpFormatter),
        )
        spec.add(p)
        p.set_defaults(func=spec.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"isolog: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("isolog: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
