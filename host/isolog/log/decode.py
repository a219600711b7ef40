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
from pathlib import Path
from typing import Any, Iterable

from isolog.errors import UserError
from isolog_fw import counting, record

BLOCK_SIZE = 4096
LOG_DIR = "/data/log"


@dataclass
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


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
        if self.failed:
            return f"NOT VERIFIED: {self.failed} records fail the MAC check (edited, inserted, reordered or forged)"
        if not self.key_known:
            return "not verified: no device key given"
        if self.unverified:
            return (f"NOT VERIFIED: {self.unverified} records could not be checked (after damage, or written "
                    f"with another device key); {self.verified} verified")
        return f"verified: {self.verified} records carry an intact MAC chain"


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
            interval_counts, interval_ms, header["cal_cpm_per_usv_h"], header["dead_time_us"], header["background_usv_h"]
        )
        dose = round(dose, 6)
    return {
        "device": device,
        "seq": seq,
        "boot": boot,
        "time": iso_utc(epoch_ms),
        "uptime_s": uptime_ms / 1000,
        "counts": counts,
        "interval_s": interval_ms / 1000,
        "interval_counts": interval_counts,
        "dose_rate_usv_h": dose,
        "temperature_c": temp_c,
        "flags": record.flag_names(flags),
    }


class SegmentDecoder:
    """Decodes the chunks of one segment in order, remembering its header (device, calibration).

    Shared by decode_segment (whole files) and `isolog sync` (chunks arriving piece by piece):
    the same records, the same problem messages."""

    def __init__(self, name: str, header: dict[str, Any] | None = None, key: bytes | None = b"",
                 chain: bytes | None = None):
        self.name = name
        self.header = header
        self.device = header["device_id"].hex() if header is not None else ""
        self.key = key  # None: do not verify; b"": an unprovisioned board's empty key
        self.chain = chain  # mac of the previous chunk; None at the start or after damage
        self.verified = 0
        self.failed = 0
        self.unverified = 0
        self._failing: tuple[Problem, int | None, bool] | None = None  # a stretch of failures
        self.chain_in: bytes | None = header["chain_in"] if header is not None else None

    def resync(self) -> None:
        """Damage was skipped: the next chunk cannot be checked against the chain."""
        self.chain = None

    def _verify(self, kind: int, buf: Any, start: int, length: int, count: int, problems: list[Problem],
                what: tuple[int | None, int | None]) -> None:
        mac_ = record.chunk_mac(buf, start, length)
        chain = self.chain
        if kind == record.KIND_HEADER and chain is None:
            chain = self.header["chain_in"] if self.header else None
        other_key = self.key is not None and self.header is not None and self.header["key_id"] != record.key_id(self.key)
        if self.key is None or chain is None or other_key:
            if other_key and kind == record.KIND_HEADER:
                problems.append(Problem(self.name, "written with another device key (key id "
                                                   f"{self.header['key_id'].hex()}): not checked"))
            self.unverified += count
        elif record.verify_chunk(self.key, chain, buf, start, length):
            self.verified += count
            self._failing = None
        else:
            self.failed += count
            first, last = what
            if self._failing is not None and self._failing[0] in problems:
                # One message for a stretch of failing chunks.
                problem, started, header = self._failing
                first = first if started is None else started
                problem.message = _mac_failure(first, last, header)
            else:
                header = first is None
                problem = Problem(self.name, _mac_failure(first, last))
                problems.append(problem)
            self._failing = (problem, first, header)
        self.chain = mac_

    def chunk(self, kind: int, buf: Any, start: int, length: int, problems: list[Problem]) -> list[dict[str, Any]]:
        """One verified chunk (record.check_chunk passed): the records it holds as JSON-record dicts.
        Undecodable content goes to problems, never raises."""
        name = self.name
        try:
            if kind == record.KIND_HEADER:
                self.header = record.decode_header(buf, start)
                self.device = self.header["device_id"].hex()
                if self.chain_in is None:
                    # A segment can hold several headers (a boot cut before its first batch, then
                    # the next boot's header appended): it links to its predecessor by the first.
                    self.chain_in = self.header["chain_in"]
                self._verify(kind, buf, start, length, 0, problems, (None, None))
            elif kind == record.KIND_BATCH:
                _, recs = record.decode_batch(buf, start, length)
                if recs:
                    self._verify(kind, buf, start, length, len(recs), problems, (recs[0][0], recs[-1][0]))
                if self.header is None and recs:
                    problems.append(Problem(name, f"records {recs[0][0]}..{recs[-1][0]} have no segment header: "
                                                  "device and calibration unknown, dose rate not computed"))
                return [record_dict(r, self.header, self.device) for r in recs]
            else:
                problems.append(Problem(name, f"unknown chunk kind 0x{kind:02x} skipped"))
        except (record.RecordError, ValueError) as exc:  # struct errors are ValueError too
            problems.append(Problem(name, f"undecodable chunk: {exc}"))
        return []


def _mac_failure(first: int | None, last: int | None, header: bool = False) -> str:
    what = "the segment header" if first is None else f"records {first}..{last}"
    if header and first is not None:
        what = f"the segment header and records {first}..{last}"
    return f"{what} fail the MAC check: edited, inserted, reordered, or written without this device's key"


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
                log.problems.append(Problem("log", f"sequence number {rec['seq']} appears twice with different data: "
                                                   "the first copy is kept"))
            continue
        if kept and rec["seq"] != kept[-1]["seq"] + 1:
            log.problems.append(Problem("log", f"records {kept[-1]['seq'] + 1}..{rec['seq'] - 1} are missing"))
        kept.append(rec)
    log.records = kept


def littlefs_over(data: bytearray, block_size: int = BLOCK_SIZE):
    """littlefs-python over an image in memory, unmounted, with the geometry MicroPython's VfsLfs2
    uses (read, prog and lookahead sizes 32): what the boards and the virtual board write."""
    from littlefs import LittleFS, UserContext

    return LittleFS(context=UserContext(buffer=data), block_size=block_size, block_count=len(data) // block_size,
                    read_size=32, prog_size=32, lookahead_size=32, mount=False)


def open_image(path: Path, block_size: int = BLOCK_SIZE):
    """Mount a littlefs image read from a file (a virtual board's flash, or a dump of a real
    board's filesystem partition)."""
    from littlefs.errors import LittleFSError

    try:
        data = bytearray(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"flash image not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read flash image {path}: {exc.strerror}") from None
    if not data or len(data) % block_size:
        raise UserError(f"{path}: {len(data)} bytes is not a whole number of {block_size}-byte blocks")
    fs = littlefs_over(data, block_size)
    try:
        fs.mount()
    except LittleFSError as exc:
        raise UserError(f"{path}: not a mountable littlefs image ({exc})") from None
    return fs


def read_image(path: Path, block_size: int = BLOCK_SIZE, key: bytes | None = b"") -> Log:
    """Every record on a flash image, checked: CRC of every chunk, MAC chain with key (b"": an
    unprovisioned board; None: not checked), sequence numbers contiguous."""
    fs = open_image(path, block_size)
    log = Log()
    try:
        names = sorted(n for n in fs.listdir(LOG_DIR) if n.endswith(".seg"))
    except Exception:  # littlefs raises its own error types for a missing folder
        raise UserError(f"{path}: no log folder {LOG_DIR} on this image") from None
    previous: bytes | None = None
    for name in names:
        where = f"{LOG_DIR}/{name}"
        try:
            with fs.open(where, "rb") as f:
                data = f.read()
        except Exception as exc:  # a broken file must not hide the others
            log.problems.append(Problem(where, f"unreadable: {exc}"))
            previous = None
            continue
        first_problem = len(log.problems)
        dec = decode_segment(where, data, log, key)
        # The chain links segments too: a segment's chain_in is the mac its predecessor ended on.
        if key is not None and previous is not None and dec.chain_in is not None:
            if dec.chain_in != previous:
                log.problems.insert(first_problem, Problem(
                    where, "the MAC chain does not continue from the previous segment: "
                           "a segment or chunks between them were dropped, inserted or reordered"))
                log.failed += 1
        previous = dec.chain
    check_sequence(log)
    return log


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
