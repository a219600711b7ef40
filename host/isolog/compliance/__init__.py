"""Compliance engine: rules over a shipment's records and configuration.

Each rule lives in one module with the regulation or standard it comes from:
transport (IAEA SSR-6), temperature (cold chain, USP <1160> MKT), decay_consistency (nuclide
data, counting statistics), integrity (gaps, clock, sensor faults), delivery (activity, expiry).
`check(records, shipment, verification)` runs them all and returns a CheckResult; `verification`
(a Verification) is what the records' source says about them (MAC chain, ranges missing).
"""

from isolog.compliance.engine import check
from isolog.compliance.model import (
    FAIL,
    NOT_APPLICABLE,
    PASS,
    UNKNOWN,
    VERDICTS,
    WARN,
    CheckResult,
    RuleResult,
    SeqRange,
    Verification,
)

__all__ = [
    "check",
    "CheckResult",
    "RuleResult",
    "VERDICTS",
    "PASS",
    "WARN",
    "FAIL",
    "UNKNOWN",
    "NOT_APPLICABLE",
    "Verification",
    "SeqRange",
]
