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
from isolog.words import alarm_words, led_words
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
            first, nxt, synced = log.get("first") or 0, log.get("next") or 0, log.get("synced") or 0
            held = f"records {first} to {nxt - 1} on the board" if nxt > first else "no records on the board"
            unsynced = f", {nxt - synced} not synced yet" if nxt > synced else ", all synced"
            line += (
                f"\n{'':16} "
                + (
                    f"container {d['container']} (board {d['device']})"
                    if d.get("container")
                    else f"board {d['device']}"
                )
                + f", shipment {d.get('shipment') or '(none configured)'}, {held}"
                + (unsynced if nxt > first else "")
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
    p.add_argument(
        "--start-delay",
        metavar="DURATION",
        help="the trip starts this long after now (e.g. 2h, 90min): what the board logs before "
        "(packing, waiting for the courier) is shown apart and judged by no rule",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="configure even though the board holds records not synced or alarms not acknowledged "
        "(needs --reason; recorded in the audit trail)",
    )
    p.add_argument("--reason", metavar="TEXT", help="why --force: recorded with your name and the time")
    common.db(p)


def cmd_configure(args: argparse.Namespace) -> int:
    from isolog.board.configure import configure
    from isolog.board.provision import KEY_ON_FLASH
    from isolog.units import format_duration, parse_duration_s

    delay = 0.0
    if args.start_delay:
        try:
            delay = parse_duration_s(args.start_delay)
        except UserError as exc:
            raise UserError(f"--start-delay: {exc}") from None
    if args.force and not (args.reason or "").strip():
        raise UserError("--force needs --reason TEXT: why the board's records or alarms may be left as they are")
    if args.reason and not args.force:
        raise UserError("--reason goes with --force")
    r = configure(
        args.port,
        args.shipment,
        args.db,
        set_clock=not args.no_clock,
        start_delay_s=delay,
        force_reason=args.reason if args.force else None,
    )
    print(
        f"{args.port}: {r.container} configured for shipment {r.shipment.id} ({r.shipment.nuclide}, "
        f"a record every {format_duration(r.shipment.interval_s)})"
        + (f"; the trip starts in {format_duration(delay)}" if delay > 0 else "; the trip starts now")
    )
    if not r.authenticated:
        print(UNAUTHENTICATED)
    elif not r.key_in_hardware:
        print(KEY_ON_FLASH)
    if r.replaced:
        print(f"replaced the configuration of shipment {r.replaced}")
    if args.force:
        print(f"forced, recorded in the audit trail with the reason: {args.reason.strip()}")
    if r.unsynced > 0:
        print(
            f"the board's last {r.unsynced} records belong to the previous shipment: they stay on the board "
            f"until the next `isolog sync {args.port}`"
        )
    return EXIT_OK


# --- status, ack-alarms ----------------------------------------------------------------------------


def format_status(s: dict[str, Any]) -> str:
    """One line of `isolog status`; battery_percent and battery_days_left are added by
    energy.battery_fields() (the host's discharge model, boards/energy.py)."""
    dose = s.get("dose_rate_usv_h")
    dose_text = (
        "--" if dose is None else (f"{dose:.3f} µSv/h" + (" (over range: at least)" if s.get("over_range") else ""))
    )
    temp = s.get("temperature_c")
    temp_text = "--" if temp is None else f"{temp:.2f} C"
    batt = s.get("battery_v")
    parts = [f"dose {dose_text}", f"temp {temp_text}"]
    if batt is not None:
        left = s.get("battery_days_left")
        extra = "" if left is None else f" ({s['battery_percent']:.0f} %, {left:.1f} days left)"
        parts.append(f"battery {batt:.2f} V{extra}")
    parts.append(f"LED {led_words(s.get('led'))}")
    alarms = s.get("alarms") or []
    active = s.get("active") or []
    parts.append("latched: " + (alarm_words(alarms) if alarms else "no alarm"))
    if active and active != alarms:
        parts.append("now: " + alarm_words(active))
    if s.get("storage_full"):
        parts.append("MEMORY FULL: sync the board")
    elif s.get("storage_low"):
        parts.append("memory low: sync soon")
    parts.append(f"record {s.get('next_seq')}")
    return "  ".join(parts)


def _status_args(p: argparse.ArgumentParser) -> None:
    common.port(p)
    p.add_argument("--once", action="store_true", help="print once and exit")
    p.add_argument("--json", action="store_true", help="one JSON object per refresh")
    common.db(p)


def cmd_status(args: argparse.Namespace) -> int:
    from isolog.board.link import Link
    from isolog.board.provision import KEY_ON_FLASH, SECURE_ELEMENT

    tty = sys.stdout.isatty() and not args.json and not args.once
    with Link(args.port) as link:
        ident = link.identify()
        if not args.json:
            name = (
                f"container {ident['name']} (board {ident['device']})"
                if ident.get("name")
                else f"board {ident['device']}"
            )
            ship = ident.get("config_id")
            from isolog.board.container import calibration_due_line

            cal = calibration_due_line(args.db, str(ident["device"]))
            print(
                f"{args.port}: {name}, "
                + (f"shipment {ship}" if ship else "no shipment configured")
                + (f", {cal}" if cal else ""),
                flush=True,
            )
            if not ident.get("provisioned"):
                print(UNAUTHENTICATED, flush=True)
            elif ident.get("key_store") != SECURE_ELEMENT:
                print(KEY_ON_FLASH, flush=True)
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
    from isolog.store import Store

    with Store(args.db) as store:
        container = store.container_name(r.device)
    print(
        f"{args.port}: {container}: "
        + (f"acknowledged the {alarm_words(r.cleared)}" if r.cleared else "no alarm latched")
    )
    if r.still_active:
        print(f"still present now (it will latch again): {alarm_words(r.still_active)}")
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
    p.add_argument(
        "--delivered-at",
        metavar="TIME",
        help="the delivery time of the board's shipment (from the delivery note), ISO 8601 with a zone",
    )
    common.db(p)


def cmd_sync(args: argparse.Namespace) -> int:
    from isolog.board.sync import sync
    from isolog.store import store_name
    from isolog.units import parse_time

    delivered = parse_time(args.delivered_at) if args.delivered_at else None
    line = _ProgressLine()
    try:
        r = sync(args.port, args.db, progress=line, set_clock=not args.no_clock, delivered_at=delivered)
    finally:
        line.done()
    db = store_name(args.db)
    from isolog.store import Store

    with Store(args.db) as store:
        container = store.container_name(r.device)
    print(
        f"{args.port}: {container}" + (f", shipment {r.shipment}" if r.shipment else "") + f": {r.records_added} "
        f"new records, {r.bytes_read / 1024:.1f} KB in {r.duration_s:.2f} s ({r.records_per_s:,.0f} records/s, "
        f"{r.bytes_per_s / 1024:,.1f} KB/s)"
    )
    if r.acked_upto is not None:
        print(
            f"stored up to record {r.next_seq - 1}; the board may now reuse the space of records before {r.acked_upto}"
            if r.next_seq > 0
            else "no records on the board yet"
        )
    print(f"store: {db}")
    print(f"data: {r.verification}")
    if r.shipment and not args.delivered_at and r.records_added:
        from isolog import trip
        from isolog.units import format_time

        with Store(args.db) as store:
            delivered = trip.life(store, r.shipment).delivered_s
        offer = trip.detected_delivery(args.db, r.shipment) if delivered is None else None
        if offer is not None:
            print(
                f"shipment {r.shipment}: the dose rate fell to background after {format_time(offer)} while the board "
                f"went on logging: the product was taken out then? If so, confirm: isolog deliver {r.shipment} "
                "--detected (or give the delivery note's time: isolog deliver ID --at TIME)"
            )
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
        upto = f"every record up to {d['next_seq'] - 1} stored" if d["next_seq"] > 0 else "no record stored yet"
        print(
            f"{store.container_name(d['id'])}, a {d['board'] or 'board of unknown type'}: {n} records ({upto}), "
            f"last seen {d['last_seen']}"
        )
        for s in store.shipments(d["id"]):
            state = store.shipment_state(s["id"])
            print(
                f"  shipment {s['id']}: configured {s['configured_at']} by {s['host_user']}, from record "
                f"{s['first_seq']}" + (f"; now {state}" if state else "")
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
