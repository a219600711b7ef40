"""The `isolog` command. Each command lives in its own module with `add_parser(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

from isolog import __version__
from isolog.errors import UserError

# Command modules, in the order `isolog --help` lists them. Each defines add_parser(subparsers),
# which registers one or more subcommands and sets `func(args) -> int` on them.
COMMAND_MODULES = [
    "isolog.cli.sim",
    "isolog.cli.log",
    "isolog.cli.demo",
    "isolog.cli.board",
    "isolog.board.keys",
    "isolog.board.deploy",
    "isolog.cli.compliance",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isolog",
        description="Radioisotope shipment logger: virtual board, logs, sync and compliance.",
    )
    parser.add_argument("--version", action="version", version=f"isolog {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
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
