"""QA review of each temperature excursion (issue 15 item 3): a signed decision per excursion, and
the rule that a shipment is not released while one of its excursions awaits review or was rejected.

An excursion is one period beyond a temperature rule's threshold as the compliance engine lists it
(compliance/temperature.py: rule, start, end, first and last record). Its key is its rule and its
start time (UTC, as the engine formats it), or its first record's sequence number when the start
time is unknown: a later sync that adds records may lengthen an excursion still open at the end
of the records, never move its start, so a decision stays with the excursion it was made on.

A decision is an electronic signature (accounts.check_signature: user id and password entered
again, the signing role, the meaning, the reason, the time; 21 CFR 11.50, 11.200): "accepted" (no
impact on the product) or "rejected" (the product may be affected). Decisions are only INSERTed
(web_excursion_reviews, schema step 6); one per excursion: a second is refused. The excursions of
each shipment's last check are kept in web_excursions (replaced at every check; those not listed
are counted in web_verdicts.unlisted_excursions), so the shipment list counts those awaiting
review without running the engine.

The engine lists at most compliance.model.EVIDENCE_LIST_MAX excursions per rule; excursions beyond
that cannot be reviewed one by one here, so they count as awaiting review and a release is
refused: such a shipment is rejected, or its records are reviewed outside the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from isolog import trip
from isolog.errors import UserError
from isolog.store import now_iso
from isolog.web import accounts

if TYPE_CHECKING:
    from isolog.store import Store

# What a decision on an excursion means (21 CFR 11.50(a)(3)), shown with every signature.
MEANINGS = {
    "accepted": "accepted: no impact on the product",
    "rejected": "rejected: the product may be affected",
}


def key_of(rule: str, start: str | None, start_seq: int) -> str:
    """An excursion's stable key: its rule and its start (UTC), or its first record when the start
    time is unknown."""
    return f"{rule} from {start}" if start else f"{rule} from record {start_seq}"


def excursions(result: Any) -> list[dict[str, Any]]:
    """Every excursion the check result lists, with its rule and key, in the engine's order."""
    out = []
    for r in result.rules:
        for e in (r.evidence.get("excursions") or {}).get("items", []):
            out.append(dict(e, rule=r.name, key=key_of(r.name, e.get("start"), int(e["start_seq"]))))
    return out


def unlisted(result: Any) -> int:
    """Excursions the engine counted but did not list (beyond EVIDENCE_LIST_MAX per rule)."""
    n = 0
    for r in result.rules:
        ex = r.evidence.get("excursions") or {}
        n += max(0, int(ex.get("count", 0)) - len(ex.get("items", [])))
    return n


def remember(db: Any, row: int, items: list[dict[str, Any]]) -> None:
    """Keep a check's excursions for the shipment list (in the caller's transaction)."""
    db.execute("DELETE FROM web_excursions WHERE shipment_row = ?", (row,))
    if items:
        db.executemany(
            "INSERT INTO web_excursions (shipment_row, excursion, rule, started_at, ended_at, start_seq, end_seq, "
            "duration_s, extreme_c, violation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (shipment_row, excursion) DO NOTHING",
            [
                (
                    row,
                    e["key"],
                    e["rule"],
                    e.get("start"),
                    e.get("end"),
                    int(e["start_seq"]),
                    int(e["end_seq"]),
                    float(e["duration_s"]),
                    float(e["extreme_c"]),
                    int(bool(e["violation"])),
                )
                for e in items
            ],
        )


_COLS: tuple[str, ...] = (
    "id",
    "excursion",
    "user_name",
    "full_name",
    "meaning",
    "reason",
    "signed_at",
    "records_sha256",
)


def decisions(store: "Store", row: int) -> dict[str, dict[str, Any]]:
    """The signed decisions on a shipment's excursions, by excursion key."""
    rows = store.db.execute(
        f"SELECT {', '.join(_COLS)} FROM web_excursion_reviews WHERE shipment_row = ? ORDER BY id", (row,)
    ).fetchall()
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = dict(zip(_COLS, r))
        d["meaning_text"] = MEANINGS.get(d["meaning"], d["meaning"])
        out.setdefault(d["excursion"], d)
    return out


@dataclass(frozen=True)
class ReviewState:
    """A shipment's excursions with their decisions (None: awaiting review)."""

    items: list[dict[str, Any]]  # each excursion, with "decision": dict or None
    unlisted: int

    @property
    def awaiting(self) -> int:
        return sum(1 for e in self.items if e["decision"] is None) + self.unlisted

    @property
    def rejected(self) -> int:
        return sum(1 for e in self.items if e["decision"] and e["decision"]["meaning"] == "rejected")

    def release_refusal(self) -> str | None:
        """Why the shipment may not be released now, or None (the same words as `isolog decide`)."""
        return trip.release_refusal(self.awaiting, self.rejected)


def state(store: "Store", row: int, result: Any) -> ReviewState:
    done = decisions(store, row)
    items = [dict(e, decision=done.get(e["key"])) for e in excursions(result)]
    return ReviewState(items, unlisted(result))


def sign(
    store: "Store",
    name: str,
    password: str,
    signer: accounts.User,
    ship: accounts.Shipment,
    result: Any,
    excursion: str,
    meaning: str,
    reason: str,
    throttle: accounts.Throttle | None = None,
    seen_sha256: str | None = None,
) -> dict[str, Any]:
    """QA's signed decision on one excursion of the shipment's current check result; audited.
    Refused (audited, UserError) as any signature is (accounts.check_signature), and when the
    excursion is not in the result or has a decision already."""
    reason = reason.strip()
    current = state(store, ship.row, result)
    found = [e for e in current.items if e["key"] == excursion]
    refusal = None
    if not found:
        refusal = f"no excursion {excursion!r} in the shipment's current check: reload the page"
    elif found[0]["decision"] is not None:
        d = found[0]["decision"]
        refusal = (
            f"excursion {excursion!r} was reviewed already ({d['meaning']} by {d['full_name']} at {d['signed_at']})"
        )
    accounts.check_signature(
        store,
        name,
        password,
        signer,
        ship,
        meaning,
        tuple(MEANINGS),
        reason,
        throttle,
        seen_sha256,
        refusal,
        {"excursion": excursion},
    )
    signed_at = now_iso()
    with store.transaction() as db:
        if db.execute(
            "SELECT 1 FROM web_excursion_reviews WHERE shipment_row = ? AND excursion = ?", (ship.row, excursion)
        ).fetchone():
            raise UserError(f"signature refused: excursion {excursion!r} was reviewed already (just now)")
        cur = db.execute(
            "INSERT INTO web_excursion_reviews (shipment_row, excursion, shipment_id, device, user_name, full_name, "
            "meaning, reason, signed_at, records_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                ship.row,
                excursion,
                ship.id,
                ship.device,
                signer.name,
                signer.full_name,
                meaning,
                reason,
                signed_at,
                ship.records_sha256,
            ),
        )
        sig = {
            "id": cur.fetchone()[0],
            "excursion": excursion,
            "user": signer.name,
            "full_name": signer.full_name,
            "meaning": meaning,
            "meaning_text": MEANINGS[meaning],
            "reason": reason,
            "signed_at": signed_at,
            "shipment": ship.id,
            "shipment_row": ship.row,
            "records_sha256": ship.records_sha256,
        }
        store.audit(db, ship.device, "excursion_review", sig)
    return sig


def awaiting_counts(store: "Store", rows: list[int]) -> dict[int, int]:
    """Per shipment row: its last check's listed excursions without a decision (the shipment list;
    queries.shipments adds those the engine did not list)."""
    if not rows:
        return {}
    marks = ", ".join("?" * len(rows))
    return {
        r[0]: int(r[1])
        for r in store.db.execute(
            f"SELECT e.shipment_row, COUNT(*) FROM web_excursions e WHERE e.shipment_row IN ({marks}) "
            "AND NOT EXISTS (SELECT 1 FROM web_excursion_reviews v WHERE v.shipment_row = e.shipment_row "
            "AND v.excursion = e.excursion) GROUP BY e.shipment_row",
            rows,
        )
    }
