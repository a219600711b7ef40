"""`isolog decay`, `isolog check`, `isolog report`: thin command lines over the engine."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from isolog.cli import args as common
from isolog.cli.args import Spec
from isolog.errors import UserError

_CHECK_EPILOG = """\
exit status: 0 compliant (every rule pass or warn), 1 a rule fails or cannot be decided
(unknown), 2 bad input (one line naming the file), 3 a bug in isolog (details in a crash file).
Verdicts: pass, warn (compliant, read the note), fail, unknown (the data or configuration cannot
decide), n/a (not asked for by the shipment)."""


def _decay_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("nuclide", help="e.g. Lu-177, Mo-99, Ge-68")
    p.add_argument("activity", help="activity at T0 with a unit: 7.4GBq, 200mCi, 5e9Bq")
    p.add_argument(
        "--from",
        dest="t_from",
        metavar="T0",
        help="ISO 8601 time of the activity (with a zone); omit for a relative calculation",
    )
    p.add_argument(
        "--to", dest="t_to", metavar="T1", required=True, help="ISO 8601 time, or a duration after T0: 72h, 3d, 90min"
    )
    p.add_argument(
        "--daughters",
        choices=("none", "equilibrium"),
        default="none",
        help="daughters at T0: none (clean parent, default) or equilibrium (grown in)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _shipment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "stored",
        nargs="?",
        metavar="SHIPMENT_ID",
        help="a shipment from the sync store (isolog configure + isolog sync)",
    )
    common.db(p)
    p.add_argument("--records", metavar="FILE.jsonl", help="records as JSON lines (isolog log dump --json)")
    p.add_argument("--shipment", metavar="SHIPMENT.toml", help="shipment configuration (docs/shipment.md)")


def _check_args(p: argparse.ArgumentParser) -> None:
    _shipment_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable result")


def _report_args(p: argparse.ArgumentParser) -> None:
    _shipment_args(p)
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="report.pdf|report.html|report.png",
        help="output file; the format follows the extension",
    )
    p.add_argument(
        "--time-zone",
        metavar="ZONE",
        help="the site's time zone for the certificate's times, e.g. Europe/Zurich (default: "
        "$ISOLOG_TIME_ZONE, else UTC); every time carries its UTC offset",
    )


def _load(args):
    """(records, shipment, verification, trip window) from the store or from two files."""
    from isolog import shipment
    from isolog.compliance import Verification, records

    if args.stored:
        if args.records or args.shipment:
            raise UserError("give either SHIPMENT_ID (from the store) or --records/--shipment, not both")
        from isolog import trip

        return trip.load_for_check(args.db, args.stored)
    if not args.records or not args.shipment:
        missing = " and ".join(x for x, v in (("--records", args.records), ("--shipment", args.shipment)) if not v)
        raise UserError(f"{missing} required: isolog {args.command} --records FILE.jsonl --shipment SHIPMENT.toml")
    ship = shipment.load(args.shipment)
    rec = records.load(args.records)
    ver = Verification.not_checked(
        "a records file carries no MACs (check the flash image with isolog log dump, or a synced shipment by its id)"
    )
    return rec, ship, ver, None


def cmd_decay(args) -> int:
    from isolog import decay, nuclides
    from isolog.units import (
        format_activity,
        format_duration,
        format_time,
        parse_activity_bq,
        parse_time,
        parse_time_or_offset,
    )

    nuc = nuclides.get(args.nuclide)
    a0 = parse_activity_bq(args.activity)
    t0 = parse_time(args.t_from) if args.t_from else None
    t1 = parse_time_or_offset(args.t_to, t0)
    elapsed = t1 - (t0 or 0.0)
    acts = decay.decay(nuc.name, a0, [elapsed], daughters=args.daughters)
    members = []
    for name, a in acts.items():
        m = nuclides.get(name)
        members.append(
            {
                "nuclide": name,
                "activity_bq": float(a[0]),
                "half_life_s": m.half_life_s,
                "half_life_unc_s": m.half_life_unc_s,
                "half_life_source": m.half_life_source,
            }
        )
    if args.json:
        out = {
            "nuclide": nuc.name,
            "initial_activity_bq": a0,
            "daughters_at_t0": args.daughters,
            "from": format_time(t0) if t0 is not None else None,
            "to": format_time(t1) if t0 is not None else None,
            "elapsed_s": elapsed,
            "members": members,
        }
        print(common.json_text(out, indent=2))
        return 0
    when = (
        f"{format_time(t0)} -> {format_time(t1)} ({format_duration(elapsed)} later)"
        if t0 is not None
        else f"after {format_duration(elapsed)}"
        if elapsed >= 0
        else f"{format_duration(-elapsed)} before"
    )
    print(f"{nuc.name} {format_activity(a0)}, {when}:")
    for m in members:
        print(
            f"  {m['nuclide']:<8} {format_activity(m['activity_bq']):>14}   "
            f"T1/2 {_half_life_text(m['half_life_s'])}  ({m['half_life_source']})"
        )
    untracked = [d for n in acts for d in nuclides.get(n).untracked_daughters]
    if untracked:
        print(f"  not tracked: {', '.join(dict.fromkeys(untracked))}")
    return 0


def _half_life_text(s: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{s / size:.6g} {unit}"
    return f"{s:.6g} s"


def cmd_check(args) -> int:
    from isolog.compliance import check

    rec, ship, ver, window = _load(args)
    result = check(rec, ship, ver, window)
    offer = None
    if args.stored:
        from isolog import trip

        trip.mark_checked(args.db, args.stored, result.overall)
        if window is None or window.end_s is None:
            offer = trip.detected_delivery(args.db, args.stored)
    if args.json:
        print(common.json_text(result.to_dict(), indent=2, default=_json_default))
    else:
        print_table(result, sys.stdout)
    if offer is not None:
        from isolog.units import format_time

        print(
            f"The dose rate fell to background after {format_time(offer)} while the board went on logging: "
            f"the product was taken out then? If so, confirm: isolog deliver {args.stored} --detected",
            file=sys.stderr,
        )
    return result.exit_code


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_table(result, out) -> None:
    from isolog.units import format_activity, format_time

    s = result.shipment
    sm = result.summary
    print(f"Shipment {s.id}: {s.nuclide} {format_activity(s.activity_bq)} at {format_time(s.reference_time)}", file=out)
    print(f"Records: {sm['records']} from {result.records_source}, {sm['first_time']} .. {sm['last_time']}", file=out)
    if result.records_sha256:
        print(f"SHA-256: {result.records_sha256}", file=out)
    if sm.get("data_verification"):
        print(f"Data: {sm['data_verification']}", file=out)
    win = sm.get("trip_window")
    if win:
        print(f"Trip window: {win['how']} ({win['records']} records judged)", file=out)
        from isolog.compliance.window import describe_outside

        for line in describe_outside(sm.get("outside_window") or {}):
            print(f"  shown apart, judged by no rule: {line}", file=out)
    print(file=out)
    width = max(len(r.name) for r in result.rules)
    for r in result.rules:
        print(f"  {r.name:<{width}}  {r.verdict.upper():<7}  {r.detail}", file=out)
    print(file=out)
    facts = []
    if sm.get("transport_index") is not None:
        facts.append(f"TI {sm['transport_index']:g}")
    if sm.get("required_category"):
        facts.append(f"category {sm['required_category']}")
    if sm.get("mkt_c") is not None:
        facts.append(
            f"temperature {sm['temperature_min_c']:.1f}..{sm['temperature_max_c']:.1f} °C, MKT {sm['mkt_c']:.2f} °C"
        )
    hl = sm.get("effective_half_life_h")
    if hl is not None and math.isfinite(hl):
        facts.append(f"effective half-life {hl:.4g} h")
    if facts:
        print("  " + "; ".join(facts), file=out)
    print(f"Verdict: {result.overall.upper()} (exit {result.exit_code})", file=out)


def cmd_report(args) -> int:
    from isolog.compliance import check, report

    out = Path(args.output)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("pdf", "html", "htm", "png"):
        raise UserError(
            f"-o {args.output}: the report format follows the extension: .pdf, .html, or .png (one image a page)"
        )
    rec, ship, ver, window = _load(args)
    result = check(rec, ship, ver, window)
    zone = args.time_zone or os.environ.get("ISOLOG_TIME_ZONE") or None
    if zone:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UserError(
                f"--time-zone {zone}: not a time zone name (e.g. Europe/Zurich, America/New_York)"
            ) from None
    if args.stored:
        from isolog import trip

        result.context = trip.certificate_context(args.db, args.stored)
    result.context["time_zone"] = zone
    try:
        if fmt == "pdf":
            report.write_pdf(result, out)
        elif fmt == "png":
            pages = report.write_pngs(result, out)
            out = Path(f"{pages[0]} .. {pages[-1].name}")
        else:
            report.write_html(result, out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"{out}: {result.overall.upper()} ({len(result.rules)} rules, records SHA-256 {result.records_sha256})")
    return 0


COMMANDS = {
    "check": Spec(
        "check a shipment's records against the rules",
        _check_args,
        cmd_check,
        "Check a shipment's records against the rules.",
        _CHECK_EPILOG,
    ),
    "report": Spec("write a shipment certificate (PDF or HTML)", _report_args, cmd_report),
    "decay": Spec(
        "activity of a nuclide and its daughters at another time",
        _decay_args,
        cmd_decay,
        "Decay an activity from T0 to T1 (closed-form Bateman, nuclide data with provenance).",
    ),
}
