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


@dataclass(frozen=True)
class SeqRange:
    """Records [first, end) the source knows to be missing, and why (lost before a sync, damaged)."""

    first: int
    end: int
    reason: str = ""


# What a record source can say about the key its MAC chain was made with.
KEY_DEVICE = "device_key"  # every checked segment names a key of the device, and the store holds it
KEY_EMPTY = "empty_key"  # never provisioned: the chain (made with the empty key) shows damage, not authorship
KEY_DOWNGRADED = "downgraded"  # segments made with the empty key although the device has a key of its own
KEY_MISSING = "missing"  # a segment names a key this store does not hold
KEY_NONE = "none"  # no MAC chain at all (a records file)
# The device's own key, kept on the board's flash (no secure element, boards/atecc.py): anyone who
# had the board could read it and write a chain that checks, so the chain shows damage, not authorship.
KEY_ON_FLASH = "key_on_flash"
KEY_STATES = (KEY_DEVICE, KEY_EMPTY, KEY_DOWNGRADED, KEY_MISSING, KEY_NONE, KEY_ON_FLASH)


@dataclass(frozen=True)
class Verification:
    """What the source of the records says about them: did they verify (MAC chain, firmware/record.py),
    and which records of the shipment's range are known to be missing. The engine takes it as input;
    it never reads a store, a board or a log image itself (the store builds this: Store.shipment_verification).

    method "mac_chain": the records' chunks were checked against the device's MAC chain;
    "none": the source carries no MACs (a JSON records file), so nothing about them is verified."""

    method: str  # "mac_chain" | "none"
    verified: int = 0  # records whose chunk verified with the key
    failed: int = 0  # records whose chunk failed the MAC check (edited, inserted, reordered, forged)
    unverified: int = 0  # records that could not be checked (after damage, key not held)
    key: str = KEY_NONE  # one of KEY_STATES
    expected_first_seq: int | None = None  # first record of the shipment's range, when the source knows it
    expected_end_seq: int | None = None  # end (exclusive) of the range; None: open or unknown
    missing: tuple[SeqRange, ...] = ()  # ranges the source knows are missing (lost, damaged)
    problems: tuple[str, ...] = ()  # the source's own words (damage, chain breaks), for the evidence
    note: str = ""  # how it was checked, for people
    # where the configuration the board logged under (MAC'd: segment header and "C" chunk) differs
    # from the one configured, each naming the field
    config_differences: tuple[str, ...] = ()

    def __post_init__(self):
        if self.method not in ("mac_chain", "none"):
            raise ValueError(f"verification method must be 'mac_chain' or 'none', not {self.method!r}")
        if self.key not in KEY_STATES:
            raise ValueError(f"key state must be one of {', '.join(KEY_STATES)}, not {self.key!r}")
        for n in (self.verified, self.failed, self.unverified):
            if n < 0:
                raise ValueError("record counts must be >= 0")

    @classmethod
    def not_checked(cls, note: str = "a records file carries no MACs") -> "Verification":
        return cls(method="none", note=note)

    def summary(self) -> str:
        """One line for people (the certificate's "Data:" line)."""
        if self.method == "none":
            return f"NOT VERIFIED: {self.note}" if self.note else "NOT VERIFIED: no MAC chain"
        parts = []
        if self.failed:
            parts.append(f"{self.failed} records fail the MAC check (edited, inserted, reordered or forged)")
        if self.unverified:
            parts.append(
                f"{self.unverified} records could not be checked (after damage, or a key this store does not hold)"
            )
        if self.key == KEY_DOWNGRADED:
            parts.append("segments signed with the empty key although the board has a key of its own")
        if self.key == KEY_MISSING:
            parts.append("a segment names a key this store does not hold")
        if self.config_differences:
            parts.append("the board logged under another configuration: " + "; ".join(self.config_differences[:3]))
        if parts:
            return "NOT VERIFIED: " + "; ".join(parts) + f"; {self.verified} verified"
        if self.key == KEY_EMPTY:
            return (
                f"NOT AUTHENTICATED: board never provisioned; {self.verified} records carry an intact MAC "
                "chain made with the empty key (shows damage, not who wrote them)"
            )
        if self.key == KEY_ON_FLASH:
            return (
                f"NOT AUTHENTICATED: the board keeps its device key on its flash (no secure element); "
                f"{self.verified} records carry an intact MAC chain made with that key (shows damage; "
                "anyone who had the board could have read the key and written them)"
            )
        return f"verified: {self.verified} records carry an intact MAC chain"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "verified": self.verified,
            "failed": self.failed,
            "unverified": self.unverified,
            "key": self.key,
            "expected_first_seq": self.expected_first_seq,
            "expected_end_seq": self.expected_end_seq,
            "missing": [{"first": m.first, "end": m.end, "reason": m.reason} for m in self.missing],
            "problems": list(self.problems),
            "note": self.note,
            "config_differences": list(self.config_differences),
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
    verification: Verification | None = None
    # What the certificate adds from the shipment's life (isolog.trip.certificate_context): the
    # container, dispatch and delivery, alarms and their acknowledgements, the QA decision, the
    # site's time zone. Not part of the verdict.
    context: dict[str, Any] = field(default_factory=dict, repr=False)

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
            "verification": self.verification.to_dict() if self.verification is not None else None,
            "verdict": self.overall,
            "exit_code": self.exit_code,
            "rules": [r.to_dict() for r in self.rules],
            "summary": self.summary,
        }
