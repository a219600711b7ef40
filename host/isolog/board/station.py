"""The sync station (issue 15 item 2): watch the port listing for boards being plugged in, sync
each new one, check its shipment and write the certificate, without a keystroke.

No printing here: `watch` hands each event to a callback (the command line draws them, cli/station.py).
A port that disappears is forgotten, so plugging the board in again syncs it again. An error on one
board (a cut link, a refused downgrade, a store that refuses it) is a Failed event for that board;
the station goes on with the others.

Which boards are the station's: every USB board isolog runs on, and only the virtual boards whose
flash image lies under the station's sim_dir (none without one). Virtual boards register in one
folder per user (sim/launcher.py), so on a shared machine a station would otherwise take the
boards of every test run and `isolog sim` of the same user.

After a board is done and its trip is over (or it had none), the station can offer dispatch: a
`dispatch` callback (board/dispatch.py's guided step, asked at the desk) configures it for its
next shipment; its result is a Dispatched event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isolog.board import devices
from isolog.board.dispatch import Dispatched
from isolog.board.link import Link
from isolog.board.sync import SyncProgress, SyncResult, sync
from isolog.errors import UserError
from isolog.store import Store

POLL_S = 0.5  # how often the port listing is read (issue 15: a board is noticed within a second)
# A board just plugged in enumerates before its firmware answers (a virtual board's MicroPython
# starts in about a second on a loaded machine): IDENTIFY is tried this long before the port is
# reported as not answering.
IDENTIFY_WAIT_S = 10.0

# What to do next, by verdict (compliance/engine.py verdicts; trip.py states)
NEXT_STEPS = {
    "pass": "release in the dashboard",
    "warn": "compliant with a note: read it, then release in the dashboard",
    "fail": "QA review needed: a rule fails (review it in the dashboard)",
    "unknown": "QA review needed: the data cannot decide (review it in the dashboard)",
}
NEXT_PROBLEMS = "keep the board, call QA"  # the sync met damaged or unverifiable data
NEXT_NO_RECORDS = "no records of its shipment yet (it logs from its configuration on): nothing to check"
NEXT_NO_SHIPMENT = "no shipment of this board is known in this store: configure it at the dispatch desk"


@dataclass(frozen=True)
class Plugged:
    port: str


@dataclass(frozen=True)
class Progress:
    port: str
    progress: SyncProgress


@dataclass(frozen=True)
class Done:
    """One board handled: synced, and its shipment checked when the store knows it."""

    port: str
    device: str
    container: str  # the provisioned name, or "board ID" for a board never provisioned
    shipment: str | None
    sync: SyncResult
    verdict: str | None  # pass | warn | fail | unknown; None: nothing checked
    certificate: Path | None
    state: str | None  # the shipment's state after the check (trip.py)
    next_step: str


@dataclass(frozen=True)
class Failed:
    port: str
    message: str  # one plain line


@dataclass(frozen=True)
class Gone:
    port: str


Event = Plugged | Progress | Done | Failed | Gone | Dispatched


def list_ports(sim_dir: Path | None = None) -> set[str]:
    """The ports of the station's boards found now: the USB boards isolog runs on, and the running
    virtual boards whose flash image is under sim_dir (none when sim_dir is None)."""
    root = sim_dir.resolve() if sim_dir is not None else None
    out = set()
    for d in devices.find_devices():
        if d["kind"] == "virtual" and not (root is not None and d.get("flash") and _under(Path(d["flash"]), root)):
            continue
        out.add(str(d["port"]))
    return out


def _under(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a path that cannot be resolved (a symlink loop): not the station's
        return False


def offers_dispatch(done: Done) -> bool:
    """A board ready for its next shipment: synced without problems, and its shipment (if this
    store knows one) checked now, so its trip is over. A board whose shipment has no records yet
    (configured and plugged in again before it left) keeps its shipment."""
    if done.sync.problems:
        return False
    return done.verdict is not None or done.next_step == NEXT_NO_SHIPMENT


def identify(port: str, wait_s: float = IDENTIFY_WAIT_S, stop: threading.Event | None = None) -> dict[str, Any]:
    """The board's IDENTIFY answer, tried until wait_s has passed (UserError then)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with Link(port, timeout_s=0.5, retries=1) as link:
                return link.identify()
        except UserError:
            if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                raise
            time.sleep(0.2)


def handle(
    port: str,
    db: Path | str | None,
    out: Path,
    progress: Callable[[SyncProgress], Any] | None = None,
) -> Done:
    """Sync the board on port, then check its current shipment and write its certificate to out
    (out/SHIPMENT.pdf, the newest check) when the store knows the shipment. UserError on failure."""
    from isolog import trip

    r = sync(port, db, progress=progress)
    with Store(db) as store:
        name = store.provisioned_name(r.device) or f"board {r.device}"
        known = bool(r.shipment) and any(s["id"] == r.shipment for s in store.shipments(r.device))
        logged = False
        if known:
            _, lo, hi = store.shipment_range(str(r.shipment), r.device)
            logged = any(True for _ in store.record_rows(r.device, lo, hi, size=1))
    if not r.shipment or not known or not logged:
        nxt = NEXT_PROBLEMS if r.problems else NEXT_NO_SHIPMENT if not known else NEXT_NO_RECORDS
        return Done(port, r.device, name, r.shipment, r, None, None, None, nxt)
    ship_id = str(r.shipment)
    from isolog.compliance import check, report

    rec, ship, ver, window = trip.load_for_check(db, ship_id)
    result = check(rec, ship, ver, window)
    trip.mark_checked(db, ship_id, result.overall)
    result.context = trip.certificate_context(db, ship_id)
    out.mkdir(parents=True, exist_ok=True)
    cert = out / f"{_file_name(ship_id)}.pdf"
    try:
        report.write_pdf(result, cert)
    except OSError as exc:
        raise UserError(f"cannot write the certificate {cert}: {exc.strerror or exc}") from None
    with Store(db) as store:
        state = trip.life(store, ship_id).state
    if r.problems or result.overall not in NEXT_STEPS:
        nxt = NEXT_PROBLEMS
    elif state in ("released", "rejected"):
        nxt = f"decided already ({state}): nothing to do"
    else:
        nxt = NEXT_STEPS[result.overall]
    return Done(port, r.device, name, ship_id, r, result.overall, cert, state, nxt)


def _file_name(ship_id: str) -> str:
    """A shipment id as a file name (ids are free text in the shipment file: docs/shipment.md)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in ship_id).lstrip(".") or "shipment"


def watch(
    db: Path | str | None,
    out: Path,
    on_event: Callable[[Event], Any],
    stop: threading.Event | None = None,
    once: bool = False,
    poll_s: float = POLL_S,
    ports: Callable[[], set[str]] | None = None,
    sim_dir: Path | None = None,
    dispatch: Callable[[Done], Dispatched | None] | None = None,
) -> Done | None:
    """Watch the port listing (ports, default: list_ports(sim_dir)) until stop is set (or, with
    once, until the first board is done and, with dispatch, offered dispatch); every event goes
    to on_event. dispatch(done) is called for each board done that offers_dispatch (it asks at
    the desk: the station waits for it). Returns the last board done (None: none)."""
    stop = stop or threading.Event()
    if ports is None:
        ports = lambda: list_ports(sim_dir)  # noqa: E731
    known: set[str] = set()
    last: Done | None = None
    while not stop.is_set():
        now = ports()
        for p in sorted(known - now):
            known.discard(p)
            on_event(Gone(p))
        for p in sorted(now - known):
            known.add(p)
            if stop.is_set():
                break
            on_event(Plugged(p))
            try:
                identify(p, stop=stop)
                done = handle(p, db, out, progress=lambda g, p=p: on_event(Progress(p, g)))
            except UserError as exc:
                on_event(Failed(p, str(exc)))
                continue
            except OSError as exc:  # the computer, not the board: a full disk, a port gone bad
                on_event(Failed(p, f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")))
                continue
            on_event(done)
            last = done
            if dispatch is not None and offers_dispatch(done) and not stop.is_set():
                try:
                    configured = dispatch(done)
                except UserError as exc:
                    on_event(Failed(p, str(exc)))
                except OSError as exc:
                    on_event(Failed(p, f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")))
                else:
                    if configured is not None:
                        on_event(configured)
            if once:
                return last
        stop.wait(poll_s)
    return last
