"""The `isolog` command: one table of commands, in the order the README presents the users' jobs.

Only this package parses arguments and prints. Every job is a library function underneath
(board/, log/, store, compliance/, sim/) that returns a result or raises UserError, so a script or
a web page can do what the command line does.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from isolog import __version__
from isolog.errors import UserError

# (command, the cli module that defines it): `isolog --help` lists them in this order.
COMMANDS = [
    # the main job, start to end, on the virtual board
    ("demo", "demo"),
    # logistics staff at the dispatch and return desks
    ("validate", "shipments"),
    ("devices", "board"),
    ("container", "container"),
    ("configure", "board"),
    ("status", "board"),
    ("sync", "board"),
    ("station", "station"),
    ("deliver", "shipments"),
    ("shipments", "shipments"),
    ("ack-alarms", "board"),
    ("export", "board"),
    # QA: verdicts and certificates
    ("check", "compliance"),
    ("report", "compliance"),
    ("decide", "shipments"),
    ("decay", "compliance"),
    # shift leads and QA: the fleet dashboard and its users
    ("serve", "web"),
    ("user", "web"),
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


EXIT_INTERNAL = 3  # a bug in isolog: one line on the terminal, the traceback in a crash file


def crash_dir() -> Path:
    """Where crash files go: the user's log directory (platformdirs), e.g. ~/.local/state/isolog/log."""
    import platformdirs

    return Path(platformdirs.user_log_dir("isolog"))


def _crash_file(command: str, argv: list[str]) -> Path | None:
    import tempfile
    import time
    import traceback

    text = (
        f"isolog {__version__}, Python {sys.version.split()[0]} on {sys.platform}\n"
        f"command: isolog {' '.join(argv)}\n\n{traceback.format_exc()}"
    )
    name = f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{command}.txt"
    for folder in (crash_dir, lambda: Path(tempfile.gettempdir())):
        try:
            d = folder()
            d.mkdir(parents=True, exist_ok=True)
            path = d / name
            path.write_text(text, encoding="utf-8")
            return path
        except Exception:
            continue
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    command = str(args.command)
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
    except OSError as exc:  # the computer, not the data: a full disk, a file that cannot be written
        where = f": {exc.filename}" if exc.filename else ""
        print(f"isolog: error: isolog {command}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except Exception as exc:  # last resort: a bug. One line here, the traceback in a file.
        path = _crash_file(command, sys.argv[1:] if argv is None else list(argv))
        details = f"the details are in {path}" if path else "the details could not be saved"
        print(
            f"isolog: internal error in `isolog {command}` ({type(exc).__name__}): a bug in isolog, "
            f"not in your data; {details} (please send it with a report)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
