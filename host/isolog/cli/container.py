"""`isolog container set|show`: a container's sensor and calibration (board/container.py)."""

from __future__ import annotations

import argparse

from isolog.cli import args as common
from isolog.cli.args import Spec
from isolog.errors import UserError

EXIT_OK = 0


def _args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    s = sub.add_parser("set", help="record the container's sensor and calibration (audited)")
    s.add_argument("target", metavar="PORT_OR_DEVICE", help="the board's serial port, board id or container name")
    s.add_argument("--sensor-model", required=True, metavar="TEXT", help="the sensor, e.g. 'LND 7317 GM tube'")
    s.add_argument("--calibration-cpm-per-usv-h", required=True, type=float, metavar="X")
    s.add_argument("--dead-time-us", required=True, type=float, metavar="Y")
    s.add_argument("--one-metre-factor", type=float, metavar="F", help="dose rate at 1 m = F x reading")
    s.add_argument("--surface-factor", type=float, metavar="S", help="surface dose rate = S x reading")
    s.add_argument("--calibrated-on", required=True, metavar="YYYY-MM-DD")
    s.add_argument("--calibration-due", required=True, metavar="YYYY-MM-DD")
    common.db(s)
    w = sub.add_parser("show", help="the container's record")
    w.add_argument("target", metavar="PORT_OR_DEVICE", help="the board's serial port, board id or container name")
    common.db(w)


def _describe(r: dict) -> list[str]:
    lines = [
        f"  sensor model: {r['sensor_model']}",
        f"  calibration: {r['cal_cpm_per_usv_h']:g} cpm per µSv/h, dead time {r['dead_time_us']:g} µs",
        f"  calibrated on {r['calibrated_on']}, calibration due {r['calibration_due']}",
    ]
    factors = [
        f"{label} {r[key]:g}"
        for key, label in (("surface_factor", "surface factor"), ("one_metre_factor", "one-metre factor"))
        if r.get(key) is not None
    ]
    if factors:
        lines.append("  " + ", ".join(factors))
    return lines


def cmd_container(args: argparse.Namespace) -> int:
    from isolog.board import container

    if args.action == "set":
        values = container.checked_values(
            args.sensor_model,
            args.calibration_cpm_per_usv_h,
            args.dead_time_us,
            args.one_metre_factor,
            args.surface_factor,
            args.calibrated_on,
            args.calibration_due,
        )
        r = container.set_container(args.target, values, args.db)
        changed = [k for k in values if r.old is None or r.old.get(k) != values[k]]
        what = "recorded" if r.old is None else ("updated: " + ", ".join(changed) if changed else "unchanged")
        print(f"{r.name}: {what} (in the audit trail with your name)")
        for line in _describe(values):
            print(line)
        return EXIT_OK
    if args.action == "show":
        device, name, record = container.show_container(args.target, args.db)
        if record is None:
            raise UserError(
                f"{name} has no sensor and calibration record: record it with `isolog container set {args.target} ...`"
            )
        print(f"{name}: set {record['updated_at']} by {record['host_user']}")
        for line in _describe(record):
            print(line)
        return EXIT_OK
    raise UserError("isolog container: say set or show (isolog container --help)")


COMMANDS = {
    "container": Spec(
        "a container's sensor and calibration: set or show",
        _args,
        cmd_container,
        "The container's engineering constants live with the container: sensor model, calibration "
        "factor, dead time, geometry factors, calibration dates. `isolog configure` takes them from "
        "here (a shipment file need not give them) and refuses a container whose calibration is "
        "overdue at dispatch. Every change is in the audit trail (who, when, old and new values).",
    ),
}
