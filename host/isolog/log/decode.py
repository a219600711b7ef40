"""Reading the board's log on the host: segment files out of a littlefs image, decoded with the
same record layout the firmware writes (isolog_fw.record), dose rates recomputed with the same
counting code (isolog_fw.counting).

Damage never raises: it is collected as Problem entries, with the byte range and, where the
neighbours tell, the sequence numbers lost. The caller reports them.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from isolog.log.chain import ChainCheck, Problem, key_table, verification_text
from isolog.shipment import RECORD_FIELDS
from isolog_fw import counting, record


@dataclass
class Log:
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    segments: int = 0
    # The MAC chain (firmware/record.py): records whose chunk verified with the device key,
    # failed to, or could not be checked (no key given, or right after damage).
    verified: int = 0
    failed: int = 0
    unverified: int = 0
    key_known: bool = True

    def verification(self) -> str:
        """One line for people: did the data verify?"""
        return verification_text(self.verified, self.failed, self.unverified, self.key_known)


def iso_utc(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    try:
        dt = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None  # a clock set to nonsense: no usable time (the record stays, its time unknown)
    text = dt.isoformat(timespec="milliseconds" if epoch_ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


def record_dict(rec: tuple, header: dict[str, Any] | None, device: str) -> dict[str, Any]:
    """One decoded record as the JSON object of `isolog log dump --json` (docs/shipment.md)."""
    seq, boot, epoch_ms, uptime_ms, counts, interval_ms, interval_counts, temp_c, flags = rec
    dose: float | None = None
    if header is not None and interval_ms > 0 and not flags & (record.F_OVER_RANGE | record.F_GM_SILENT):
        dose, _ = counting.reading(
            interval_counts,
            interval_ms,
            header["cal_cpm_per_usv_h"],
            header["dead_time_us"],
            header["background_usv_h"],
        )
        dose = round(dose, 6)
    return dict(
        zip(
            RECORD_FIELDS,
            (
                device,
                seq,
                boot,
                iso_utc(epoch_ms),
                uptime_ms / 1000,
                counts,
                interval_ms / 1000,
                interval_counts,
                dose,
                temp_c,
                record.flag_names(flags),
            ),
        )
    )


class SegmentDecoder:
    """Decodes the chunks of one segment in order, remembering its header (device, calibration) and
    following the MAC chain (log.chain).

    Shared by decode_segment (whole files) and `isolog sync` (chunks arriving piece by piece):
    the same records, the same problem messages."""

    def __init__(
        self, name: str, header: dict[str, Any] | None = None, key: bytes | None = b"", chain: bytes | None = None
    ):
        self.name = name
        self.header = header
        self.device = header["device_id"].hex() if header is not None else ""
        # key None: do not verify; b"": an unprovisioned board's empty key
        self.check = ChainCheck(name, None if key is None else key_table([key]), chain, header, "the key given")

    @property
    def chain(self) -> bytes | None:
        return self.check.chain

    @property
    def chain_in(self) -> bytes | None:
        return self.check.chain_in

    def resync(self) -> None:
        """Damage was skipped: the next chunk cannot be checked against the chain."""
        self.check.resync()

    def chunk(self, kind: int, buf: Any, start: int, length: int, problems: list[Problem]) -> list[dict[str, Any]]:
        """One verified chunk (record.check_chunk passed): the records it holds as JSON-record dicts.
        Undecodable content goes to problems, never raises."""
        name = self.name
        before = len(self.check.problems)
        out: list[dict[str, Any]] = []
        try:
            if kind == record.KIND_HEADER:
                self.header = record.decode_header(buf, start)
                self.device = self.header["device_id"].hex()
                self.check.chunk(kind, buf, start, length, header=self.header)
            elif kind == record.KIND_BATCH:
                _, recs = record.decode_batch(buf, start, length)
                if recs:
                    self.check.chunk(kind, buf, start, length, recs[0][0], len(recs))
                if self.header is None and recs:
                    problems.append(
                        Problem(
                            name,
                            f"records {recs[0][0]}..{recs[-1][0]} have no segment header: "
                            "device and calibration unknown, dose rate not computed",
                        )
                    )
                out = [record_dict(r, self.header, self.device) for r in recs]
            elif kind == record.KIND_CONFIG:  # the configuration: no records, in the MAC chain
                self.check.chunk(kind, buf, start, length)
            else:
                problems.append(Problem(name, f"unknown chunk kind 0x{kind:02x} skipped"))
        except (record.RecordError, ValueError) as exc:  # struct errors are ValueError too
            problems.append(Problem(name, f"undecodable chunk: {exc}"))
        for p in self.check.problems[before:]:
            if p not in problems:
                problems.append(p)
        return out

    @property
    def verified(self) -> int:
        return self.check.verified

    @property
    def failed(self) -> int:
        return self.check.failed

    @property
    def unverified(self) -> int:
        return self.check.unverified


def damage_problem(name: str, offset: int, skipped: int, reason: str) -> Problem:
    return Problem(name, f"bytes {offset}..{offset + skipped - 1} damaged ({reason}): skipped")


def decode_segment(name: str, data: bytes, log: Log, key: bytes | None = b"") -> SegmentDecoder:
    """Decode one segment file's bytes into log.records, reporting damage into log.problems and
    checking the MAC chain with key (None: not checked). Returns the decoder (its header, and its
    chain: the mac of the segment's last chunk)."""
    log.segments += 1
    reader = record.ChunkReader(io.BytesIO(data))
    dec = SegmentDecoder(name, key=key)
    damage = 0
    while True:
        got = reader.next()
        if got is None:
            break
        if len(reader.damage) != damage:
            damage = len(reader.damage)
            dec.resync()
        kind, start, length = got
        log.records.extend(dec.chunk(kind, reader.buf, start, length, log.problems))
    for offset, skipped, reason in reader.damage:
        log.problems.append(damage_problem(name, offset, skipped, reason))
    log.verified += dec.verified
    log.failed += dec.failed
    log.unverified += dec.unverified
    log.key_known = key is not None
    return dec


def check_sequence(log: Log) -> None:
    """Sort by sequence number; report duplicates and gaps (records lost or never written)."""
    log.records.sort(key=lambda r: r["seq"])
    kept: list[dict[str, Any]] = []
    for rec in log.records:
        if kept and rec["seq"] == kept[-1]["seq"]:
            if rec != kept[-1]:
                log.problems.append(
                    Problem(
                        "log", f"sequence number {rec['seq']} appears twice with different data: the first copy is kept"
                    )
                )
            continue
        if kept and rec["seq"] != kept[-1]["seq"] + 1:
            log.problems.append(Problem("log", f"records {kept[-1]['seq'] + 1}..{rec['seq'] - 1} are missing"))
        kept.append(rec)
    log.records = kept


def finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def summarise(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    recs = list(records)
    temps = [r["temperature_c"] for r in recs if r["temperature_c"] is not None]
    doses = [r["dose_rate_usv_h"] for r in recs if r["dose_rate_usv_h"] is not None]
    flagged: dict[str, int] = {}
    for r in recs:
        for f in r["flags"]:
            flagged[f] = flagged.get(f, 0) + 1
    return {
        "records": len(recs),
        "first_seq": recs[0]["seq"] if recs else None,
        "last_seq": recs[-1]["seq"] if recs else None,
        "boots": sorted({r["boot"] for r in recs}),
        "temperature_min_c": min(temps) if temps else None,
        "temperature_max_c": max(temps) if temps else None,
        "dose_rate_max_usv_h": max(doses) if doses else None,
        "flags": flagged,
    }
