"""`isolog decay`, `isolog check`, `isolog report`: thin command lines over the engine."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from isolog.errors import UserError

_CHECK_EPILOG = """\
exit status: 0 compliant (every rule pass or warn), 1 a rule fails or cannot be decided
(unknown), 2 bad input. Verdicts: pass, warn (compliant, read the note), fail, unknown
(the data or configuration cannot decide), n/a (not asked for by the shipment)."""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "decay",
        help="activity of a nuclide and its daughters at another time",
        description="Decay an activity from T0 to T1 (closed-form Bateman, nuclide data with provenance).",
    )
    p.add_argument("nuclide", help="e.g. Lu-177, Mo-99, Ge-68")
    p.add_argument("activity", help="activity at T0 with a unit: 7.4GBq, 200mCi, 5e9Bq")
    p.add_argument("--from", dest="t_from", metavar="T0",
                   help="ISO 8601 time of the activity (with a zone); omit for a relative calculation")
    p.add_argument("--to", dest="t_to", metavar="T1", required=True,
                   help="ISO 8601 time, or a duration after T0: 72h, 3d, 90min")
    p.add_argument("--daughters", choices=("none", "equilibrium"), default="none",
                   help="daughters at T0: none (clean parent, default) or equilibrium (grown in)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_decay)

    for name, helptext in (("check", "check a shipment's records against the rules"),
                           ("report", "write a shipment certificate (PDF or HTML)")):
        p = subparsers.add_parser(
            name, help=helptext, description=helptext[0].upper() + helptext[1:] + ".",
            epilog=_CHECK_EPILOG if name == "check" else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("stored", nargs="?", metavar="SHIPMENT_ID",
                       help="a shipment from the sync store (isolog configure + isolog sync)")
        p.add_argument("--db", type=Path, metavar="PATH", help="the sync store (default: the user's)")
        p.add_argument("--records", metavar="FILE.jsonl", help="records as JSON lines (isolog log dump --json)")
        p.add_argument("--shipment", metavar="SHIPMENT.toml", help="shipment configuration (docs/shipment.md)")
        if name == "check":
            p.add_argument("--json", action="store_true", help="machine-readable result")
            p.set_defaults(func=cmd_check)
        else:
            p.add_argument("-o", "--output", required=True, metavar="report.pdf|report.html",
                           help="output file; the format follows the extension")
            p.set_defaults(func=cmd_report)


def _load(args):
    from isolog import records, shipment

    if args.stored:
        if args.records or args.shipment:
            raise UserError("give either SHIPMENT_ID (from the store) or --records/--shipment, not both")
        from isolog.store import load_for_check

        return load_for_check(args.db, args.stored)
    if not args.records or not args.shipment:
        missing = " and ".join(x for x, v in (("--records", args.records), ("--shipment", args.shipment)) if not v)
        raise UserError(f"{missing} required: isolog {args.command} --records FILE.jsonl --shipment SHIPMENT.toml")
    ship = shipment.load(args.shipment)
    rec = records.load(args.records)
    return rec, ship


def cmd_decay(args) -> int:
    from isolog import decay, nuclides
    from isolog.units import format_activity, format_duration, format_time, parse_activity_bq, parse_time, parse_time_or_offset

    nuc = nuclides.get(args.nuclide)
    a0 = parse_activity_bq(args.activity)
    t0 = parse_time(args.t_from) if args.t_from else None
    t1 = parse_time_or_offset(args.t_to, t0)
    elapsed = t1 - (t0 or 0.0)
    acts = decay.decay(nuc.name, a0, [elapsed], daughters=args.daughters)
    members = []
    for name, a in acts.items():
        m = nuclides.get(name)
        members.append({"nuclide": name, "activity_bq": float(a[0]), "half_life_s": m.half_life_s,
                        "half_life_unc_s": m.half_life_unc_s, "half_life_source": m.half_life_source})
    if args.json:
        out = {"nuclide": nuc.name, "initial_activity_bq": a0, "daughters_at_t0": args.daughters,
               "from": format_time(t0) if t0 is not None else None,
               "to": format_time(t1) if t0 is not None else None,
               "elapsed_s": elapsed, "members": members}
        print(json.dumps(out, indent=2))
        return 0
    when = (f"{format_time(t0)} -> {format_time(t1)} ({format_duration(elapsed)} later)" if t0 is not None
            else f"after {format_duration(elapsed)}" if elapsed >= 0 else f"{format_duration(-elapsed)} before")
    print(f"{nuc.name} {format_activity(a0)}, {when}:")
    for m in members:
        print(f"  {m['nuclide']:<8} {format_activity(m['activity_bq']):>14}   "
              f"T1/2 {_half_life_text(m['half_life_s'])}  ({m['half_life_source']})")
    untracked = [d for n in acts for d in nuclides.get(n).untracked_daughters]
    if untracked:
        print(f"  not tracked: {', '.join(dict.fromkeys(untracked))}")
    return 0


def _half_life_text(s: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{s / size:.6g} {unit}"
    return f"{s:.6g} s"


def _verification(args):
    """What the records' source says about them (compliance.Verification): for a stored shipment,
    the MAC chain of the segments holding its records (issue 6), the key they name, the ranges the
    store knows are lost, and the shipment's record range; a records file carries no MACs."""
    from isolog.compliance import Verification

    if not args.stored:
        return Verification.not_checked(
            "a records file carries no MACs (check the flash image with isolog log dump, or a synced "
            "shipment by its id)")
    from isolog import keys
    from isolog.store import Store

    with Store(args.db) as st:
        ship, lo, hi = st.shipment_range(args.stored)
        return stored_verification(st, ship, lo, hi, keys.verify_stored)


def _iso_key(text: str) -> str:
    """'2026-11-26T08:00:00.000Z' and '2026-11-26 08:00:00' (SQLite) compared as the same kind of text."""
    return str(text).replace("T", " ").rstrip("Z")[:19]


def stored_verification(st, ship: dict, lo: int, hi: int | None, verify_stored):
    """compliance.Verification of a stored shipment's records [lo, hi) on its device."""
    import sqlite3

    from isolog.compliance import SeqRange, Verification, model
    from isolog_fw import record as fw_record

    device = ship["device"]
    rng = "seq >= ?" + (" AND seq < ?" if hi is not None else "")
    rng_args = [lo] + ([hi] if hi is not None else [])
    segments = [r[0] for r in st.db.execute(
        f"SELECT DISTINCT segment FROM records WHERE device = ? AND {rng} AND segment IS NOT NULL",
        [device, *rng_args])]
    outside_log = st.db.execute(
        f"SELECT COUNT(*) FROM records WHERE device = ? AND {rng} AND segment IS NULL",
        [device, *rng_args]).fetchone()[0]
    log = verify_stored(st, device, segments)

    # The key the segments name: a segment made with the empty key after the board got a key of
    # its own (before this shipment was configured) is a downgrade.
    empty_id = fw_record.key_id(b"").hex()
    try:
        held = {kid: created for kid, created in st.db.execute(
            "SELECT key_id, created FROM device_keys WHERE device = ?", (device,))}
    except sqlite3.OperationalError:  # no device_keys table: no board was ever provisioned from this store
        held = {}
    named = set()
    for seg in segments:
        row = st.db.execute("SELECT header FROM segments WHERE device = ? AND first_seq = ?",
                            (device, seg)).fetchone()
        header = bytes(row[0]) if row and row[0] is not None else None
        try:
            kind, start, _, _ = fw_record.check_chunk(header, 0, len(header)) if header else (None, 0, 0, 0)
            if kind == fw_record.KIND_HEADER:
                named.add(fw_record.decode_header(header, start)["key_id"].hex())
        except (fw_record.RecordError, ValueError):
            pass
    provisioned_before = any(_iso_key(c) <= _iso_key(ship["configured_at"])
                             for kid, c in held.items() if kid != empty_id)
    if empty_id in named and provisioned_before:
        key = model.KEY_DOWNGRADED
    elif named - {empty_id} - set(held):
        key = model.KEY_MISSING
    elif empty_id in named:
        key = model.KEY_EMPTY
    else:
        key = model.KEY_DEVICE
    lost = tuple(SeqRange(int(a), int(b), str(reason)) for a, b, reason in st.db.execute(
        "SELECT first_seq, end_seq, reason FROM lost WHERE device = ? AND end_seq > ?"
        + (" AND first_seq < ?" if hi is not None else "") + " ORDER BY first_seq",
        [device, lo] + ([hi] if hi is not None else [])))
    return Verification(
        method="mac_chain",
        verified=int(log.verified),
        failed=int(log.failed),
        unverified=int(log.unverified) + int(outside_log),
        key=key,
        expected_first_seq=int(lo),
        expected_end_seq=int(hi) if hi is not None else None,
        missing=lost,
        problems=tuple(str(p) for p in log.problems),
        note=f"MAC chain of {len(segments)} stored segment(s) of device {device}",
    )


def cmd_check(args) -> int:
    from isolog.compliance import check

    rec, ship = _load(args)
    result = check(rec, ship, _verification(args))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=_json_default, allow_nan=False))
    else:
        print_table(result, sys.stdout)
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
        facts.append(f"temperature {sm['temperature_min_c']:.1f}..{sm['temperature_max_c']:.1f} °C, MKT {sm['mkt_c']:.2f} °C")
    hl = sm.get("effective_half_life_h")
    if hl is not None and math.isfinite(hl):
        facts.append(f"effective half-life {hl:.4g} h")
    if facts:
        print("  " + "; ".join(facts), file=out)
    print(f"Verdict: {result.overall.upper()} (exit {result.exit_code})", file=out)


def cmd_report(args) -> int:
    from isolog import report
    from isolog.compliance import check

    out = Path(args.output)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("pdf", "html", "htm"):
        raise UserError(f"-o {args.output}: the report format follows the extension: .pdf or .html")
    rec, ship = _load(args)
    result = check(rec, ship, _verification(args))
    try:
        if fmt == "pdf":
            report.write_pdf(result, out)
        else:
            report.write_html(result, out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"{out}: {result.overall.upper()} ({len(result.rules)} rules, records SHA-256 {result.records_sha256})")
    return 0
