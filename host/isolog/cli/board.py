"""Commands of the dispatch and return desks, talking to a board over USB: `isolog devices`,
`configure`, `status`, `sync`, `ack-alarms`, and `export` from the store (docs/sync.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from isolog.cli import args as common
from isolog.cli.args import Spec
from isolog.errors import UserError
from isolog_boards import energy

EXIT_OK = 0
EXIT_PROBLEMS = 1

_SYNC_EPILOG = """\
exit status: 0 synced, 1 synced but damage or other problems were found (read the messages),
2 the board could not be reached, the link failed, or the store cannot be used (disk full, damaged,
not an isolog store): run it again once fixed, a sync resumes where it stopped; 3 a bug in isolog."""


# --- devices ---------------------------------------------------------------------------------------


def _devices_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--identify", action="store_true", help="ask each board for its id and log bounds")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_devices(args: argparse.Namespace) -> int:
    from isolog.board.devices import find_devices

    found = find_devices(args.identify)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print(
            "no boards found: plug the board in with a data USB cable (its status LED blinks), "
            "or start a virtual board with `isolog sim`",
            file=sys.stderr,
        )
        return 0
    for d in found:
        line = f"{d['port']:<16} {d['name']}"
        if d["kind"] == "usb":
            line += f"  [{d['usb']}" + (f" sn {d['serial_number']}" if d.get("serial_number") else "") + "]"
        else:
            line += f"  [flash {d.get('flash')}]"
        if "device" in d:
            log = d.get("log") or {}
            line += (
                f"\n{'':16} device {d['device']}, shipment {d.get('shipment') or '(none)'}, "
                f"records {log.get('first')}..{(log.get('next') or 1) - 1}, synced up to {log.get('synced')}"
            )
        elif "error" in d:
            line += f"\n{'':16} not answering: {d['error']}"
        print(line)
    return 0


# --- configure -------------------------------------------------------------------------------------

UNAUTHENTICATED = (
    "NOT AUTHENTICATED: this board was never provisioned: nothing it logs or reports can be attributed "
    "to it (isolog provision PORT --name NAME gives it a key)"
)


def _configure_args(p: argparse.ArgumentParser) -> None:
    common.port(p)
    p.add_argument("shipment", metavar="SHIPMENT.toml", type=Path, help="shipment configuration (docs/shipment.md)")
    p.add_argument("--no-clock", action="store_true", help="do not set the board's clock to this computer's")
    common.db(p)


def cmd_configure(args: argparse.Namespace) -> int:
    from isolog.board.configure import configure

    r = configure(args.port, args.shipment, args.db, set_clock=not args.no_clock)
    print(
        f"{args.port}: board {r.device} configured for shipment {r.shipment.id} ({r.shipment.nuclide}, "
        f"logging every {int(r.shipment.interval_s)} s); records from {r.first_seq} on belong to it"
    )
    if not r.authenticated:
        print(UNAUTHENTICATED)
    if r.replaced:
        print(f"replaced the configuration of shipment {r.replaced}")
    if r.unsynced > 0:
        print(
            f"note: the board still holds {r.unsynced} records not synced to any store "
            f"(run `isolog sync {args.port}`): they are kept",
            file=sys.stderr,
        )
    return EXIT_OK


# --- status, ack-alarms ----------------------------------------------------------------------------


def format_status(s: dict[str, Any]) -> str:
    """One line of `isolog status`; battery_percent and battery_days_left are added by
    energy.battery_fields() (the host's discharge model, boards/energy.py)."""
    dose = s.get("dose_rate_usv_h")
    dose_text = (
        "--" if dose is None else (f"{dose:.3f} uSv/h" + (" (over range: at least)" if s.get("over_range") else ""))
    )
    temp = s.get("temperature_c")
    temp_text = "--" if temp is None else f"{temp:.2f} C"
    batt = s.get("battery_v")
    parts = [f"dose {dose_text}", f"temp {temp_text}"]
    if batt is not None:
        left = s.get("battery_days_left")
        extra = "" if left is None else f" ({s['battery_percent']:.0f} %, {left:.1f} days left)"
        parts.append(f"battery {batt:.2f} V{extra}")
    parts.append(f"LED {s.get('led')}")
    alarms = s.get("alarms") or []
    active = s.get("active") or []
    parts.append("alarms " + (",".join(alarms) if alarms else "none"))
    if active and active != alarms:
        parts.append("active " + ",".join(active))
    if s.get("storage_full"):
        parts.append("STORAGE FULL")
    elif s.get("storage_low"):
        parts.append("storage low")
    parts.append(f"record {s.get('next_seq')}")
    return "  ".join(parts)


def _status_args(p: argparse.ArgumentParser) -> None:
    common.port(p)
    p.add_argument("--once", action="store_true", help="print once and exit")
    p.add_argument("--json", action="store_true", help="one JSON object per refresh")


def cmd_status(args: argparse.Namespace) -> int:
    from isolog.board.link import Link

    tty = sys.stdout.isatty() and not args.json and not args.once
    with Link(args.port) as link:
        ident = link.identify()
        if not ident.get("provisioned") and not args.json:
            print(UNAUTHENTICATED, flush=True)
        try:
            while True:
                s = energy.battery_fields(link.status(), str(ident.get("board")))
                if args.json:
                    print(common.json_text(s), flush=True)
                elif tty:
                    line = time.strftime("%H:%M:%S ") + format_status(s)
                    print("\r\x1b[K" + line, end="", flush=True)
                else:
                    print(time.strftime("%H:%M:%S ") + format_status(s), flush=True)
                if args.once:
                    return EXIT_OK
                time.sleep(1.0)
        except KeyboardInterrupt:
            if tty:
                print()
            return EXIT_OK


def _ack_args(p: argparse.ArgumentParser) -> None:
    common.port(p)
    common.db(p)


def cmd_ack_alarms(args: argparse.Namespace) -> int:
    from isolog.board.configure import acknowledge_alarms

    r = acknowledge_alarms(args.port, args.db)
    print(
        f"{args.port}: board {r.device}: "
        + (f"acknowledged {', '.join(r.cleared)}" if r.cleared else "no alarms latched")
    )
    if r.still_active:
        print(f"still active (will latch again): {', '.join(r.still_active)}")
    return EXIT_OK


# --- sync ------------------------------------------------------------------------------------------


class _ProgressLine:
    def __init__(self, stream: Any = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last = 0.0
        self.shown = False

    def __call__(self, p: Any) -> None:
        now = time.monotonic()
        if not self.tty or now - self.last < 0.1:
            return
        self.last = now
        self.shown = True
        pct = f"{100 * p.bytes / p.total_bytes:3.0f}% " if p.total_bytes else ""
        print(
            f"\r\x1b[Ksync {p.device}: {pct}{p.records} records, {p.bytes / 1024:.1f} KB "
            f"({p.records_per_s:,.0f} records/s, {p.bytes_per_s / 1024:,.1f} KB/s)",
            end="",
            file=self.stream,
            flush=True,
        )

    def done(self) -> None:
        if self.shown:
            print("\r\x1b[K", end="", file=self.stream, flush=True)


def _sync_args(p: argparse.ArgumentParser) -> None:
    common.port(p)
    p.add_argument("--no-clock", action="store_true", help="do not set the board's clock")
    common.db(p)


def cmd_sync(args: argparse.Namespace) -> int:
    from isolog.board.sync import sync
    from isolog.store import default_path

    line = _ProgressLine()
    try:
        r = sync(args.port, args.db, progress=line, set_clock=not args.no_clock)
    finally:
        line.done()
    db = args.db or default_path()
    print(
        f"{args.port}: board {r.device}: {r.records_added} new records, {r.bytes_read / 1024:.1f} KB in "
        f"{r.duration_s:.2f} s ({r.records_per_s:,.0f} records/s, {r.bytes_per_s / 1024:,.1f} KB/s)"
    )
    if r.acked_upto is not None:
        print(
            f"stored up to record {r.next_seq - 1}; the board may now reuse the space of records before {r.acked_upto}"
            if r.next_seq > 0
            else "no records on the board yet"
        )
    print(f"store: {db}")
    print(f"data: {r.verification}")
    for n in r.notes:
        print(f"note: {n}", file=sys.stderr)
    for p in r.problems:
        print(f"isolog: problem: {p}", file=sys.stderr)
    if r.problems:
        print(
            f"{len(r.problems)} problems: the records that could be read are stored; keep the board "
            "and tell an engineer",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    return EXIT_OK


# --- export ----------------------------------------------------------------------------------------


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", metavar="ID", help="device id (16 hex digits; see `isolog export --list`)")
    p.add_argument("--shipment", metavar="ID", help="only the records of this shipment")
    p.add_argument("--format", choices=("csv", "jsonl"), help="default: from the file extension")
    p.add_argument("-o", "--output", metavar="FILE", help="output file ('-' for standard output)")
    p.add_argument("--list", action="store_true", help="list the devices and shipments in the store")
    common.db(p)


def cmd_export(args: argparse.Namespace) -> int:
    from isolog.store import Store, write_rows

    with Store(args.db) as store:
        if args.list:
            return _list_store(store)
        if not args.device and not args.shipment:
            raise UserError("--device ID or --shipment ID required (see `isolog export --list`)")
        if not args.output:
            raise UserError("-o FILE required ('-' for standard output)")
        fmt = args.format or (
            "csv"
            if str(args.output).lower().endswith(".csv")
            else "jsonl"
            if str(args.output).lower().endswith((".jsonl", ".json"))
            else None
        )
        if fmt is None:
            raise UserError(f"--format csv|jsonl required (the extension of {args.output} does not say)")
        if args.shipment:
            ship, rows = store.shipment_rows(args.shipment, args.device)
            device = ship["device"]
        else:
            device = args.device.lower()
            if store.device(device) is None:
                known = ", ".join(d["id"] for d in store.devices()) or "none"
                raise UserError(f"no device {device} in the store {store.path} (devices: {known})")
            rows = store.record_rows(device)
        n, _ = write_rows(device, rows, fmt, sys.stdout if args.output == "-" else args.output)
    if args.output != "-":
        print(
            f"{args.output}: {n} records of {device}" + (f", shipment {args.shipment}" if args.shipment else ""),
            file=sys.stderr,
        )
    return EXIT_OK


def _list_store(store: Any) -> int:
    print(f"store: {store.path}")
    for d in store.devices():
        n = store.count_records(d["id"])
        print(
            f"device {d['id']} ({d['board'] or '?'}): {n} records, stored contiguously up to {d['next_seq'] - 1}, "
            f"last seen {d['last_seen']}"
        )
        for s in store.shipments(d["id"]):
            print(
                f"  shipment {s['id']}: configured {s['configured_at']} by {s['host_user']}, from record "
                f"{s['first_seq']}"
            )
    return EXIT_OK


COMMANDS = {
    "devices": Spec(
        "list connected boards and running virtual boards",
        _devices_args,
        cmd_devices,
        "List serial ports of isolog boards (by USB vendor id) and virtual boards running on this computer.",
    ),
    "configure": Spec(
        "send a shipment configuration to a board",
        _configure_args,
        cmd_configure,
        "Validate SHIPMENT.toml, set the board's clock, store the configuration on the board "
        "(atomically) and in the sync store, with an audit entry.",
    ),
    "status": Spec(
        "live view of a board: dose rate, temperature, LED, alarms",
        _status_args,
        cmd_status,
        "Show the board's live status, refreshed every second until Ctrl-C.",
    ),
    "sync": Spec(
        "copy a board's new records into the store",
        _sync_args,
        cmd_sync,
        "Copy the records logged since the last sync into the store, verified; set the board's\n"
        "clock; then tell the board which records are stored (it may reuse their space).",
        _SYNC_EPILOG,
    ),
    "ack-alarms": Spec(
        "acknowledge (clear) a board's latched alarms",
        _ack_args,
        cmd_ack_alarms,
        "Clear the latched alarms; the next record carries alarm_ack. Audited in the store.",
    ),
    "export": Spec(
        "write stored records as CSV or JSON lines",
        _export_args,
        cmd_export,
        "Write records from the store: JSON lines with the fields of `isolog log dump --json`, or "
        "CSV with the same columns (flags joined by ';').",
    ),
}
