"""Data integrity: what the records do not cover, and what the sensors said about themselves.

Verdict (isolog's rule, so that no verdict silently ignores missing data):
- fail: records are missing (a gap in seq, the board says it dropped samples: data_dropped, the
  source knows ranges lost or damaged, the records start after the shipment's first record or
  end before its last, or the first record does not open a boot or configuration: flag boot):
  the board measured something that is not in the data;
- warn: time without records (power off), sparse sampling, clock not valid or stepping back,
  reboots, sensor faults (temp_fault, gm_silent), over-range readings, low battery or storage,
  unknown flags, records that cannot be placed in time;
- pass: none of these.
Each problem is listed with where it happened; the other rules mention what they could not use.

Data verification (rule data_verification), from the Verification the record source gives:
- fail: records fail the MAC check, could not be checked (after damage, key not held), or were
  signed with the empty key although the board has a key of its own (a downgrade);
- unknown: nothing is verified (a records file carries no MACs; a board never provisioned signs
  with the empty key, which shows damage but not who wrote the records);
- pass: every record of the shipment verified with a key of the device held by this store.
"""

from __future__ import annotations

import math

import numpy as np

from isolog.compliance.model import (
    FAIL,
    KEY_DOWNGRADED,
    KEY_EMPTY,
    KEY_MISSING,
    KEY_ON_FLASH,
    PASS,
    UNKNOWN,
    WARN,
    RuleResult,
    Verification,
    capped,
)
from isolog.compliance.records import Records
from isolog.compliance.timebase import GAP_FRACTION, SPARSE_FACTOR, Timebase
from isolog.shipment import Shipment
from isolog.units import format_duration, format_time

_SRC = (
    "isolog data-integrity rule; 21 CFR Part 11-style completeness of electronic records "
    "(docs/references.md#cold-chain-loggers, #21-cfr-11)"
)
_SRC_VER = (
    "isolog data-verification rule: the MAC chain of the board's log (firmware/record.py); "
    "21 CFR Part 11-style authenticity of electronic records"
)


def _at(rec: Records, tb: Timebase, i: int) -> str:
    t = tb.t[i]
    return format_time(float(t)) if math.isfinite(t) else f"seq {int(rec.seq[i])}"


def _runs(mask: np.ndarray):
    """(start, end) inclusive index pairs of the runs of True in mask."""
    if not mask.any():
        return []
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def _periods(rec: Records, tb: Timebase, mask: np.ndarray) -> dict:
    runs = _runs(mask)
    items = []
    for s, e in runs[:50]:
        items.append(
            {
                "from": _at(rec, tb, s),
                "to": _at(rec, tb, e),
                "seq": [int(rec.seq[s]), int(rec.seq[e])],
                "records": e - s + 1,
                "duration_s": float(rec.interval_s[s : e + 1].sum()),
            }
        )
    return {
        "count": len(runs),
        "records": int(mask.sum()),
        "duration_s": float(rec.interval_s[mask].sum()),
        "items": items[:20],
    }


def analyse(
    rec: Records, ship: Shipment, tb: Timebase, ver: Verification | None = None
) -> tuple[list[RuleResult], dict]:
    ver = ver or Verification.not_checked()
    fails: list[str] = []
    warns: list[str] = []
    ev: dict = {
        "records": len(rec),
        "first_seq": int(rec.seq[0]),
        "last_seq": int(rec.seq[-1]),
        "configured_interval_s": ship.interval_s,
    }

    # Records missing at the edges of the shipment's range, and ranges the source knows are gone.
    first, last = int(rec.seq[0]), int(rec.seq[-1])
    edge_missing = 0
    if ver.expected_first_seq is not None and first > ver.expected_first_seq:
        edge_missing += first - ver.expected_first_seq
        fails.append(
            f"records {ver.expected_first_seq}..{first - 1} missing at the start of the shipment "
            f"(its first record is {ver.expected_first_seq})"
        )
    elif ver.expected_first_seq is None and not rec.has("boot")[0]:
        fails.append(
            f"the first record (seq {first}) does not open a boot or configuration (flag boot): "
            "records before it are missing"
        )
    if ver.expected_end_seq is not None and last < ver.expected_end_seq - 1:
        edge_missing += ver.expected_end_seq - 1 - last
        fails.append(f"records {last + 1}..{ver.expected_end_seq - 1} missing at the end of the shipment")
    known_gone = [
        m
        for m in ver.missing
        if m.end > (ver.expected_first_seq if ver.expected_first_seq is not None else first)
        and (ver.expected_end_seq is None or m.first < ver.expected_end_seq)
    ]
    ev["known_missing"] = capped([{"first": m.first, "end": m.end, "reason": m.reason} for m in known_gone])
    for m in known_gone[:3]:
        fails.append(f"records {m.first}..{m.end - 1} are not in the data: {m.reason or 'lost'}")
    if len(known_gone) > 3:
        fails.append(f"{len(known_gone) - 3} more range(s) of records lost")
    ev["missing_at_edges"] = edge_missing

    # Missing records.
    seq_gap_idx = np.flatnonzero(tb.seq_missing_before > 0)
    n_missing = int(tb.seq_missing_before.sum())
    ev["seq_gaps"] = capped(
        [
            {
                "after_seq": int(rec.seq[i - 1]),
                "before_seq": int(rec.seq[i]),
                "missing": int(tb.seq_missing_before[i]),
                "at": _at(rec, tb, i),
            }
            for i in seq_gap_idx[:50]
        ]
    )
    ev["seq_gaps"]["count"] = int(seq_gap_idx.size)
    if n_missing:
        fails.append(f"{n_missing} record(s) missing in {seq_gap_idx.size} seq gap(s)")
    dropped = rec.has("data_dropped")
    ev["data_dropped"] = _periods(rec, tb, dropped)
    if dropped.any():
        fails.append(f"board dropped samples (flash full) before {int(dropped.sum())} record(s)")

    # Time not covered by records.
    gap_idx = np.flatnonzero(tb.gap_before > 0)
    uncovered = float(tb.gap_before.sum())
    ev["time_gaps"] = capped(
        [
            {
                "from": format_time(float(tb.t[i - 1])),
                "to": format_time(float(tb.t[i] - rec.interval_s[i])),
                "duration_s": float(tb.gap_before[i]),
                "before_seq": int(rec.seq[i]),
            }
            for i in gap_idx[:50]
        ]
    )
    ev["time_gaps"]["count"] = int(gap_idx.size)
    ev["uncovered_s"] = uncovered
    if gap_idx.size:
        warns.append(
            f"{gap_idx.size} time gap(s) without records, {format_duration(uncovered)} in total "
            f"(> {GAP_FRACTION:g} x the configured interval)"
        )
    sparse = tb.sparse
    ev["sparse_records"] = _periods(rec, tb, sparse)
    if sparse.any():
        warns.append(f"{int(sparse.sum())} record(s) cover more than {SPARSE_FACTOR:g} configured intervals")

    # Clock.
    null_time = ~np.isfinite(rec.time_s)
    ev["time_null"] = {
        "records": int(null_time.sum()),
        "placed_from_uptime": int(tb.placed.sum()),
        "unplaced": int(tb.unplaced.sum()),
    }
    if null_time.any():
        msg = f"{int(null_time.sum())} record(s) without a valid clock"
        if tb.placed.any():
            msg += f" ({int(tb.placed.sum())} placed from uptime within their boot)"
        if tb.unplaced.any():
            msg += f"; {int(tb.unplaced.sum())} cannot be placed in time and are left out of time-based analyses"
        warns.append(msg)
    ev["unplaced_records"] = _periods(rec, tb, tb.unplaced)
    boots = np.flatnonzero(np.diff(rec.boot) != 0) + 1
    ev["reboots"] = capped(
        [{"seq": int(rec.seq[i]), "boot": int(rec.boot[i]), "at": _at(rec, tb, i)} for i in boots[:50]]
    )
    ev["reboots"]["count"] = int(boots.size)
    if boots.size:
        warns.append(f"{boots.size} reboot(s) of the logger")
    back_idx = np.flatnonzero(tb.backwards)
    ev["clock_steps_back"] = capped(
        [{"seq": int(rec.seq[i]), "by_s": float(tb.t[i - 1] - tb.t[i])} for i in back_idx[:50]]
    )
    ev["clock_steps_back"]["count"] = int(back_idx.size)
    if back_idx.size:
        warns.append(f"the clock stepped back {back_idx.size} time(s)")

    # Sensors and board.
    for flag, text in (
        ("temp_fault", "temperature sensor fault"),
        ("gm_silent", "radiation sensor silent (GM tube fault)"),
        ("over_range", "dose rate over range (reading is a lower bound)"),
        ("low_battery", "low battery"),
        ("storage_low", "storage low"),
    ):
        mask = rec.has(flag)
        if flag == "temp_fault":
            mask = mask | ~np.isfinite(rec.temperature_c)
        ev[flag] = _periods(rec, tb, mask)
        if mask.any():
            warns.append(f"{text}: {int(mask.sum())} record(s), {format_duration(ev[flag]['duration_s'])}")
    if rec.unknown_flags:
        ev["unknown_flags"] = dict(rec.unknown_flags)
        warns.append("unknown flag(s): " + ", ".join(sorted(rec.unknown_flags)))

    ev["problems"] = fails + warns
    if fails:
        verdict = FAIL
    elif warns:
        verdict = WARN
    else:
        verdict = PASS
    detail = (
        "; ".join(fails + warns)
        if fails or warns
        else (f"{len(rec)} records, seq {int(rec.seq[0])}..{int(rec.seq[-1])}, no gaps, clock valid, sensors healthy")
    )
    known = tb.known
    summary = {
        "records": len(rec),
        "first_time": format_time(float(np.nanmin(tb.t))) if known.any() else None,
        "last_time": format_time(float(np.nanmax(tb.t))) if known.any() else None,
        "uncovered_s": uncovered,
        "missing_records": n_missing + edge_missing,
        "data_verification": ver.summary(),
    }
    return [
        verification_rule(rec, ver),
        RuleResult("data_integrity", "Data integrity", verdict, detail, _SRC, ev),
    ], summary


def verification_rule(rec: Records, ver: Verification) -> RuleResult:
    """Did the records verify? Never better than the evidence: no MAC chain is `unknown`."""
    name, title = "data_verification", "Data verification"
    ev = ver.to_dict()
    ev["records_checked"] = len(rec)
    if ver.method == "none":
        return RuleResult(
            name, title, UNKNOWN, f"not verified: {ver.note or 'the records carry no MAC chain'}", _SRC_VER, ev
        )
    fails = []
    if ver.failed:
        fails.append(f"{ver.failed} record(s) fail the MAC check (edited, inserted, reordered or forged)")
    if ver.unverified:
        fails.append(
            f"{ver.unverified} record(s) could not be checked (after damage, or a key this store does not hold)"
        )
    if ver.key == KEY_DOWNGRADED:
        fails.append("segments signed with the empty key although the board has a key of its own (downgrade)")
    if ver.key == KEY_MISSING:
        fails.append("a segment names a key this store does not hold")
    if ver.config_differences:
        fails.append(
            "the board logged under a configuration other than the one configured: "
            + "; ".join(ver.config_differences[:5])
        )
    fails += [p for p in ver.problems if p not in fails][:5]
    if fails:
        return RuleResult(name, title, FAIL, "NOT VERIFIED: " + "; ".join(fails), _SRC_VER, ev)
    if ver.key == KEY_EMPTY:
        return RuleResult(
            name,
            title,
            UNKNOWN,
            f"{ver.verified} record(s) carry an intact MAC chain made with the empty key: the board "
            "was never provisioned, so the chain shows damage but not who wrote the records",
            _SRC_VER,
            ev,
        )
    if ver.key == KEY_ON_FLASH:
        return RuleResult(
            name,
            title,
            UNKNOWN,
            f"{ver.verified} record(s) carry an intact MAC chain made with the device key, but the board "
            "keeps that key on its flash (no secure element): anyone who had the board could have read it "
            "and written the records, so the chain shows damage but not who wrote them",
            _SRC_VER,
            ev,
        )
    if ver.verified < len(rec):
        return RuleResult(
            name,
            title,
            UNKNOWN,
            f"only {ver.verified} of {len(rec)} record(s) are covered by the MAC check",
            _SRC_VER,
            ev,
        )
    return RuleResult(name, title, PASS, f"verified: {ver.verified} record(s) carry an intact MAC chain", _SRC_VER, ev)
