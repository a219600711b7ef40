"""Run every rule over one shipment's records and configuration."""

from __future__ import annotations

from isolog.compliance import decay_consistency, delivery, integrity, temperature, timebase, transport
from isolog.compliance.model import CheckResult, Verification, overall_verdict
from isolog.compliance.records import Records
from isolog.shipment import Shipment


def check(rec: Records, ship: Shipment, verification: Verification | None = None) -> CheckResult:
    """All rules, in the order a certificate lists them. Pure: reads nothing, writes nothing.

    `verification`: what the records' source says about them (MAC chain, ranges known missing);
    None means nothing is verified (a records file), and the verdict cannot be better than that."""
    ver = verification if verification is not None else Verification.not_checked()
    tb = timebase.build(rec, ship.interval_s)
    integ_rules, integ_summary = integrity.analyse(rec, ship, tb, ver)
    uncovered = integ_summary["uncovered_s"]
    tr_rules, tr_summary = transport.analyse(rec, ship, tb.t, uncovered)
    missing_at = (
        ver.expected_first_seq is not None and int(rec.seq[0]) > ver.expected_first_seq,
        ver.expected_end_seq is not None and int(rec.seq[-1]) < ver.expected_end_seq - 1,
    )
    te_rules, te_summary, te_plot = temperature.analyse(rec, ship, tb, missing_at)
    dc_rules, dc_summary, dc_plot = decay_consistency.analyse(rec, ship, tb.t)
    de_rules, de_summary = delivery.analyse(ship, tb.t)
    rules = tr_rules + te_rules + dc_rules + integ_rules + de_rules
    summary = {**tr_summary, **te_summary, **dc_summary, **integ_summary, **de_summary}
    return CheckResult(
        shipment=ship,
        records_source=rec.source,
        records_sha256=rec.sha256,
        rules=rules,
        summary=summary,
        overall=overall_verdict(rules),
        series={"records": rec, "timebase": tb, "temperature": te_plot, "decay": dc_plot},
        verification=ver,
    )
