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
result is shown; plugging it in again syncs again. When a board's trip is over (or it had none), the
station offers dispatch: choose a product template (--products), enter the shipment id, activity
and times, confirm; the board is configured as `isolog configure` does, the shipment file written to
--shipments. --no-dispatch: sync only (unattended). Virtual boards are taken only with --sim-dir,
those whose flash image is under it. Ctrl-C ends the station (exit 0).
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
    p.add_argument(
        "--no-dispatch",
        action="store_true",
        help="never offer dispatch: sync, check and certify only (a station nobody answers)",
    )
    p.add_argument(
        "--products",
        metavar="DIR",
        type=Path,
        help="the product templates offered at dispatch (default: products/ in this folder or the nearest parent)",
    )
    p.add_argument(
        "--shipments",
        metavar="DIR",
        type=Path,
        default=Path("shipments"),
        help="where the shipment files entered at dispatch go, one SHIPMENT_ID.toml each (default: ./shipments)",
    )
    p.add_argument(
        "--sim-dir",
        metavar="DIR",
        type=Path,
        help="also take the running virtual boards whose flash image is under DIR (default: none)",
    )


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
        elif isinstance(ev, station.Dispatched):
            self._dispatched(ev)

    def write(self, text: str) -> None:
        """The guided dispatch's questions (no line end after a question: the answer follows)."""
        if self.bar_open:
            self._print()
        print(text, end="", file=self.stream, flush=True)

    def _dispatched(self, d: Any) -> None:
        from isolog.units import format_duration

        c = d.configured
        rule = "=" * 60
        delay = (
            f"the trip starts in {format_duration(c.start_delay_s)}" if c.start_delay_s > 0 else "the trip starts now"
        )
        self._print(
            "\n".join(
                [
                    rule,
                    f"  CONFIGURED {c.container}",
                    f"  SHIPMENT   {c.shipment.id} ({c.shipment.product}, {c.shipment.nuclide})",
                    f"  NEXT       unplug the board and pack it: {delay}",
                    rule,
                    f"  shipment file: {d.file}",
                ]
            )
        )

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
    guide = None
    if not args.no_dispatch:
        from isolog.board import dispatch

        products = args.products or dispatch.find_products()
        if products is None:
            raise UserError("no products/ folder here or in a parent: give --products DIR (or --no-dispatch)")
        dispatch.templates(products)  # templates that cannot be read: one line and exit 2 now
        prompt = dispatch.Prompt(sys.stdin.readline, screen.write)
        guide = dispatch.for_station(args.db, products, args.shipments, prompt)

    sims = f", virtual boards under {args.sim_dir}" if args.sim_dir else ""
    print(f"isolog station: store {store_name(args.db)}, certificates to {out}{sims}; plug a board in (Ctrl-C ends)")
    old = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a service manager stopping the desk PC's station) ends it as Ctrl-C does.
        old = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        station.watch(args.db, out, screen, stop=stop, once=args.once, sim_dir=args.sim_dir, dispatch=guide)
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
