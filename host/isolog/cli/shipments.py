"""A shipment's life at the desks and in QA: `isolog shipments` (every shipment and its state),
`isolog deliver` (the delivery time), `isolog decide` (release or reject) (host/isolog/trip.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from isolog.cli import args as common
from isolog.cli.args import Spec
from isolog.errors import UserError

EXIT_OK = 0


def _shipments_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", nargs="?", metavar="SHIPMENT_ID", help="show this shipment's life step by step")
    common.db(p)


def cmd_shipments(args: argparse.Namespace) -> int:
    from isolog import trip
    from isolog.store import Store

    if args.id:
        with Store(args.db) as store:
            lf = trip.life(store, args.id)
        print(f"shipment {lf.id} in {lf.container}: {lf.state or 'configured (before shipment states were kept)'}")
        for e in lf.events:
            d = e["details"]
            extra = ""
            if e["state"] == "dispatched" and d.get("start_delay_s"):
                extra = f" (start delay {d['start_delay_s'] / 3600:g} h)"
            elif e["state"] == "delivered":
                extra = f" ({d.get('source')})"
            elif e["state"] in ("checked", "released", "rejected"):
                extra = f" (verdict {str(d.get('verdict')).upper()}" + (
                    f", reason: {d['reason']})" if d.get("reason") else ")"
                )
            print(f"  {e['state']:<10} {e['happened_at']}{extra}  by {e['host_user']}")
        return EXIT_OK
    lives = trip.lives(args.db)
    if not lives:
        print("no shipments stored yet (isolog configure PORT SHIPMENT.toml at dispatch)")
    for lf in lives:
        print(f"{lf.id:<24} {lf.state or 'configured':<10} {lf.container}")
    return EXIT_OK


def _deliver_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", metavar="SHIPMENT_ID")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", metavar="TIME", help="the delivery time from the delivery note, ISO 8601 with a zone")
    when.add_argument(
        "--detected",
        action="store_true",
        help="confirm the time the data show the product was taken out (offered by `isolog check`)",
    )
    common.db(p)


def cmd_deliver(args: argparse.Namespace) -> int:
    from isolog import trip
    from isolog.units import format_time, parse_time

    if args.detected:
        at = trip.detected_delivery(args.db, args.id)
        if at is None:
            raise UserError(
                f"shipment {args.id}: the records do not show the product taken out (the dose rate never "
                "fell to background for good): give the time of the delivery note with --at TIME"
            )
        source = "seen in the data: the dose rate fell to background; confirmed"
    else:
        at = parse_time(args.at)
        source = "delivery note"
    lf = trip.deliver(args.db, args.id, at, source)
    print(f"shipment {lf.id} ({lf.container}): delivered {format_time(at)} ({source}); its trip is judged up to then")
    return EXIT_OK


def _decide_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", metavar="SHIPMENT_ID")
    p.add_argument("decision", choices=("release", "reject"))
    p.add_argument("--reason", metavar="TEXT", help="why (required to reject, or to release a shipment not compliant)")
    common.db(p)


def cmd_decide(args: argparse.Namespace) -> int:
    from isolog import trip

    if args.reason is not None and not args.reason.strip():
        raise UserError("--reason: give the reason in words")
    lf = trip.decide(args.db, args.id, args.decision, args.reason)
    print(f"shipment {lf.id} ({lf.container}): {lf.state}")
    return EXIT_OK


def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="SHIPMENT.toml", type=Path, help="the shipment file to check")


def cmd_validate(args: argparse.Namespace) -> int:
    import sys

    from isolog import shipment
    from isolog.units import format_activity, format_time

    text = shipment.read_text(args.file)  # unreadable or not UTF-8: one line, exit 2
    ship, errors = shipment.validate_text(text, str(args.file))
    if errors or ship is None:
        for e in errors:
            print(e, file=sys.stderr)
        print(
            f"{args.file}: {len(errors)} error{'s' if len(errors) != 1 else ''}: fix them and check again",
            file=sys.stderr,
        )
        return 2
    print(
        f"{args.file}: valid: shipment {ship.id}, {ship.nuclide} {format_activity(ship.activity_bq)} at "
        f"{format_time(ship.reference_time)}, {len(ship.temperature_rules)} temperature rules"
        + (f" (product template {ship.product})" if ship.product else "")
    )
    return EXIT_OK


COMMANDS = {
    "validate": Spec(
        "check a shipment file without a board: every error at once",
        _validate_args,
        cmd_validate,
        "Check a shipment file as configure would, without a board: every field, then the fields "
        "against each other (dates in order, a prescribed activity the shipment can deliver). Every "
        "error is listed, one a line; exit status 0 valid, 2 errors.",
    ),
    "shipments": Spec(
        "the stored shipments and where each is in its life",
        _shipments_args,
        cmd_shipments,
        "List the stored shipments and their state (configured, dispatched, delivered, returned, "
        "synced, checked, released, rejected); with an id, its life step by step.",
    ),
    "deliver": Spec(
        "record a shipment's delivery time (from the delivery note)",
        _deliver_args,
        cmd_deliver,
        "Record when the shipment was delivered: the rules judge its trip from dispatch to then; "
        "what the board logged afterwards (the return trip) is shown apart.",
    ),
    "decide": Spec(
        "QA: release or reject a checked shipment",
        _decide_args,
        cmd_decide,
        "Record QA's decision on a checked shipment, with the user's name and the reason.",
    ),
}
