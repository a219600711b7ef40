"""Run every rule over one shipment's records and configuration."""

from __future__ import annotations

from isolog.compliance import decay_consistency, delivery, integrity, temperature, timebase, transport
from isolog.compliance import window as trip_window
from isolog.compliance.model import UNKNOWN, CheckResult, RuleResult, Verification, overall_verdict
from isolog.compliance.records import Records
from isolog.compliance.window import TripWindow
from isolog.shipment import Shipment
from isolog.units import format_time


def check(
    rec: Records, ship: Shipment, verification: Verification | None = None, window: TripWindow | None = None
) -> CheckResult:
    """All rules, in the order a certificate lists them. Pure: reads nothing, writes nothing.

    `verification`: what the records' source says about them (MAC chain, ranges known missing);
    None means nothing is verified (a records file), and the verdict cannot be better than that.
    `window`: the trip (compliance/window.py): the transport, temperature, decay and delivery
    rules judge the records inside it; data integrity judges every record."""
    ver = verification if verification is not None else Verification.not_checked()
    tb = timebase.build(rec, ship.interval_s)
    integ_rules, integ_summary = integrity.analyse(rec, ship, tb, ver)
    uncovered = integ_summary["uncovered_s"]  # over all records: never less than the window's
    missing_at = (
        ver.expected_first_seq is not None and int(rec.seq[0]) > ver.expected_first_seq,
        ver.expected_end_seq is not None and int(rec.seq[-1]) < ver.expected_end_seq - 1,
    )
    win = window if window is not None and not window.open else None
    trip_rules: list[RuleResult] = []
    win_summary: dict = {}
    delivered_s = None
    full_rec, full_tb = rec, tb
    if win is not None:
        i0, i1 = trip_window.bounds(tb, win)
        win_summary = {
            "trip_window": {
                "start": format_time(win.start_s) if win.start_s is not None else None,
                "end": format_time(win.end_s) if win.end_s is not None else None,
                "how": win.how,
                "records": i1 - i0,
            },
            "outside_window": trip_window.outside(rec, tb, i0, i1),
        }
        if win.start_s is not None and win.end_s is not None and win.end_s <= win.start_s:
            trip_rules.append(_window_rule(UNKNOWN, f"the delivery is not after the dispatch ({win.how})", win))
        elif i1 - i0 < 1:
            trip_rules.append(_window_rule(UNKNOWN, f"no record inside the trip window ({win.how})", win))
        else:
            missing_at = (missing_at[0] and i0 == 0, missing_at[1] and i1 == len(rec))
            rec, tb = trip_window.take(rec, i0, i1), trip_window.take_timebase(tb, i0, i1)
            delivered_s = win.end_s
    tr_rules, tr_summary = transport.analyse(rec, ship, tb.t, uncovered)
    te_rules, te_summary, te_plot = temperature.analyse(rec, ship, tb, missing_at)
    dc_rules, dc_summary, dc_plot = decay_consistency.analyse(rec, ship, tb.t)
    de_rules, de_summary = delivery.analyse(ship, tb.t, delivered_s)
    rules = tr_rules + te_rules + dc_rules + integ_rules + trip_rules + de_rules
    summary = {**tr_summary, **te_summary, **dc_summary, **integ_summary, **de_summary, **win_summary}
    return CheckResult(
        shipment=ship,
        records_source=full_rec.source,
        records_sha256=full_rec.sha256,
        rules=rules,
        summary=summary,
        overall=overall_verdict(rules),
        series={"records": full_rec, "timebase": full_tb, "temperature": te_plot, "decay": dc_plot, "window": win},
        verification=ver,
    )


_SRC_WINDOW = (
    "the shipment's trip: dispatch (after the start delay given at configure) to delivery (delivery "
    "note, or the unloading found in the data and confirmed): isolog, issue 14"
)


def _window_rule(verdict: str, detail: str, win: TripWindow) -> RuleResult:
    return RuleResult("trip_window", "Trip window", verdict, detail, _SRC_WINDOW, {"how": win.how})
