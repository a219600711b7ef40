"""`isolog station`: the sync station's screen over board/station.py (plug a board in, read the result)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from isolog.cli import args as common
from isolog.cli.args import Spec
from isolog.errors import UserError

_EPILOG = """\
Leave it running at the return desk: plug a board in and the station syncs it, checks its shipment,
writes the certificate to --out and shows the verdict and what to do next. Unplug the board when its
result is shown; plugging it in again syncs again. Ctrl-C ends the station (exit 0).
exit status: 0 (Ctrl-C, or --once with a board done), 2 bad input."""

BAR = 30  # characters of the progress bar


def _station_args(p: argparse.ArgumentParser) -> None:
    common.db(p)
    p.add_argument(
        "--out",
        metavar="DIR",
        default="certificates",
        help="where the certificates go, one SHIPMENT_ID.pdf each (the newest check; default: ./certificates)",
    )
    p.add_argument("--once", action="store_true", help="end after the first board is done (scripts, tests)")


class _Screen:
    """Draws the station's events: a progress line during a sync (redrawn on a terminal, a few
    plain lines otherwise), the result large and plain."""

    def __init__(self, stream: Any = None):
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last = 0.0
        self.shown_pct = -1
        self.bar_open = False

    def _print(self, text: str = "") -> None:
        if self.bar_open:
            print("\r\x1b[K" if self.tty else "", end="", file=self.stream)
            self.bar_open = False
        print(text, file=self.stream, flush=True)

    def __call__(self, ev: Any) -> None:
        from isolog.board import station

        if isinstance(ev, station.Plugged):
            self.shown_pct = -1
            self._print(f"{ev.port}: board plugged in, syncing ...")
        elif isinstance(ev, station.Progress):
            self._progress(ev)
        elif isinstance(ev, station.Done):
            self._done(ev)
        elif isinstance(ev, station.Failed):
            self._print(f"{ev.port}: NOT DONE: {ev.message}")
        elif isinstance(ev, station.Gone):
            self._print(f"{ev.port}: unplugged")

    def _progress(self, ev: Any) -> None:
        p = ev.progress
        pct = int(100 * p.bytes / p.total_bytes) if p.total_bytes else 0
        pct = min(pct, 100)
        now = time.monotonic()
        if self.tty:
            if now - self.last < 0.1:
                return
            self.last = now
            fill = BAR * pct // 100
            print(
                f"\r\x1b[K  [{'#' * fill}{'.' * (BAR - fill)}] {pct:3d}%  {p.records} records",
                end="",
                file=self.stream,
                flush=True,
            )
            self.bar_open = True
        elif pct // 25 > self.shown_pct // 25:  # plain text: a line at 0, 25, 50, 75, 100 %
            self.shown_pct = pct
            self._print(f"  sync {pct}%: {p.records} records")

    def _done(self, d: Any) -> None:
        r = d.sync
        rule = "=" * 60
        lines = [
            rule,
            f"  CONTAINER  {d.container}",
            f"  SHIPMENT   {d.shipment or '(none)'}",
            f"  VERDICT    {d.verdict.upper() if d.verdict else '(not checked)'}",
            f"  NEXT       {d.next_step}",
            rule,
            f"  {r.records_added} new records in {r.duration_s:.1f} s; data: {r.verification}",
        ]
        if d.certificate:
            lines.append(f"  certificate: {d.certificate}")
        lines += [f"  problem: {p}" for p in r.problems]
        self._print("\n".join(lines))


def cmd_station(args: argparse.Namespace) -> int:
    from isolog.board import station
    from isolog.store import store_name

    screen = _Screen()
    stop = threading.Event()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: not a folder (the certificates go into a folder)")
    from isolog.store import Store

    with Store(args.db):  # a store that cannot be used: one line and exit 2 now, not at the first board
        pass
    print(f"isolog station: store {store_name(args.db)}, certificates to {out}; plug a board in (Ctrl-C ends)")
    old = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a service manager stopping the desk PC's station) ends it as Ctrl-C does.
        old = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        station.watch(args.db, out, screen, stop=stop, once=args.once)
    except KeyboardInterrupt:
        screen._print("isolog station: ended")
        return 0
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    return 0


COMMANDS = {
    "station": Spec(
        "the sync station: sync, check and certify every board plugged in",
        _station_args,
        cmd_station,
        "Watch for boards being plugged in; sync each, check its shipment, write its certificate.",
        _EPILOG,
    ),
}
