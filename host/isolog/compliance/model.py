"""Rule results and the outcome of a check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASS = "pass"
WARN = "warn"  # compliant, with something the reader must know (missing data, a near miss)
FAIL = "fail"
UNKNOWN = "unknown"  # cannot be decided from the data and configuration: compliance not shown
NOT_APPLICABLE = "n/a"  # the shipment does not ask for this check

VERDICTS = (PASS, WARN, FAIL, UNKNOWN, NOT_APPLICABLE)

# How many items an evidence list shows before "and N more": a million records can hold
# thousands of gaps, and a certificate must stay readable.
EVIDENCE_LIST_MAX = 20


@dataclass
class RuleResult:
    name: str  # stable identifier, e.g. "transport.transport_index"
    title: str  # for people
    verdict: str
    detail: str  # one line: the numbers that decided the verdict
    source: str  # the regulation, standard or engineering rule it comes from
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "verdict": self.verdict,
            "detail": self.detail,
            "source": self.source,
            "evidence": self.evidence,
        }


def overall_verdict(rules: list[RuleResult]) -> str:
    verdicts = {r.verdict for r in rules}
    for v in (FAIL, UNKNOWN, WARN):
        if v in verdicts:
            return v
    return PASS


def exit_code(verdict: str) -> int:
    """0: compliant (every rule pass, warn or n/a); 1: a rule fails or cannot be decided."""
    return 0 if verdict in (PASS, WARN) else 1


def capped(items: list, limit: int = EVIDENCE_LIST_MAX) -> dict[str, Any]:
    """An evidence list with its full count: {'count': n, 'items': first `limit`}."""
    return {"count": len(items), "items": items[:limit]}


@dataclass
class CheckResult:
    shipment: Any  # isolog.shipment.Shipment
    records_source: str
    records_sha256: str | None
    rules: list[RuleResult]
    summary: dict[str, Any]
    overall: str
    # Arrays the report plots (not part of the JSON).
    series: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def exit_code(self) -> int:
        return exit_code(self.overall)

    def rule(self, name: str) -> RuleResult:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        from isolog.units import format_time

        s = self.shipment
        return {
            "shipment": {
                "id": s.id,
                "nuclide": s.nuclide,
                "activity_bq": s.activity_bq,
                "reference_time": format_time(s.reference_time),
                "declared_category": s.declared_category,
                "exclusive_use": s.exclusive_use,
                "source": s.source,
            },
            "records": {"source": self.records_source, "sha256": self.records_sha256},
            "verdict": self.overall,
            "exit_code": self.exit_code,
            "rules": [r.to_dict() for r in self.rules],
            "summary": self.summary,
        }
