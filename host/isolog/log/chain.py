"""The MAC chain of the log (firmware/record.py), checked on the host: one implementation, used
when a segment is decoded (`isolog log dump`, the HIL reader) and after every sync on the chunks
the store holds (`isolog sync`, `check`, `report`), where records are not decoded at all.

Every chunk's mac is HMAC(key, previous chunk's mac | payload)[:16]; a segment header carries the
mac its predecessor ended on (chain_in) and the id of the key it is written with. A chunk that
does not verify was edited, inserted, reordered, or written without the device's key.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from isolog_fw import record


@dataclass
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def mac_failure(first: int | None, last: int | None, header: bool = False) -> str:
    what = "the segment header" if first is None else f"records {first}..{last}"
    if header and first is not None:
        what = f"the segment header and records {first}..{last}"
    return f"{what} fail the MAC check: edited, inserted, reordered, or written without this device's key"


BROKEN_LINK = (
    "the MAC chain does not continue from the previous segment: a segment or chunks between them "
    "were dropped, inserted or reordered"
)


class ChainCheck:
    """Follows the chain through the chunks of one segment, in order.

    keys maps key ids (4 bytes, as in segment headers) to keys; None: nothing is checked (every
    record counts as unverified). Records are counted as verified, failed, or unverified (no key
    for the segment's key id, or right after damage, where the chain cannot be followed)."""

    def __init__(
        self,
        name: str,
        keys: Mapping[bytes, bytes] | None,
        chain: bytes | None = None,
        header: dict[str, Any] | None = None,
        keys_from: str = "the keys given",
    ):
        self.name = name
        self.keys = keys
        self.chain = chain  # mac of the previous chunk; None at the start or after damage
        self.keys_from = keys_from  # where the keys come from, for messages
        self.key: bytes | None = None
        self.chain_in: bytes | None = None  # what the segment's first header links to
        self.verified = 0
        self.failed = 0
        self.unverified = 0
        # the first record that did not verify (failed or unchecked); -1: a header or configuration
        # chunk did not, so nothing after the segment's start can be trusted
        self.first_bad: int | None = None
        self.problems: list[Problem] = []
        self._failing: tuple[Problem, int | None, bool] | None = None  # one message per failing stretch
        if header is not None:  # resuming inside a segment: its header was read before
            self._header(header, follow=False)

    def resync(self) -> None:
        """Damage was skipped: the next chunk cannot be checked against the chain."""
        self.chain = None

    def _header(self, header: dict[str, Any], follow: bool = True) -> None:
        if self.chain_in is None:
            # A segment can hold several headers (a boot cut before its first batch, then the next
            # boot's header appended): it links to its predecessor by the first.
            self.chain_in = header["chain_in"]
        if self.chain is None and follow:
            self.chain = header["chain_in"]
        key_id = bytes(header["key_id"])
        self.key = None if self.keys is None else self.keys.get(key_id)
        if self.keys is not None and self.key is None:
            self.problems.append(
                Problem(
                    self.name,
                    f"written with another device key (key id {key_id.hex()}, not in {self.keys_from}): not checked",
                )
            )

    def chunk(
        self,
        kind: int,
        buf: Any,
        start: int,
        length: int,
        first: int | None = None,
        count: int = 0,
        header: dict[str, Any] | None = None,
    ) -> None:
        """One chunk that passed its CRC check. For a header chunk give its decoded header; for a
        batch the sequence number of its first record and the number of records."""
        if kind == record.KIND_HEADER:
            self._header(header if header is not None else record.decode_header(buf, start))
        mac_ = record.chunk_mac(buf, start, length)
        if self.key is None or self.chain is None:
            self.unverified += count
            self._bad(first)
        elif record.verify_chunk(self.key, self.chain, buf, start, length):
            self.verified += count
            self._failing = None
        else:
            self._bad(first)
            self.failed += count
            last = None if first is None else first + count - 1
            if self._failing is not None:
                problem, started, with_header = self._failing
                first = first if started is None else started
                problem.message = mac_failure(first, last, with_header)
            else:
                with_header = first is None
                problem = Problem(self.name, mac_failure(first, last))
                self.problems.append(problem)
            self._failing = (problem, first, with_header)
        self.chain = mac_

    def _bad(self, first: int | None) -> None:
        at = -1 if first is None else first
        if self.first_bad is None or at < self.first_bad:
            self.first_bad = at

    def links_to(self, previous: bytes | None) -> bool:
        """Whether this segment continues the chain from the mac its predecessor ended on."""
        return previous is None or self.chain_in is None or self.chain_in == previous


@dataclass
class ChainResult:
    """The MAC chain over several segments: counts and problems (records are not decoded)."""

    verified: int = 0
    failed: int = 0
    unverified: int = 0
    problems: list[Problem] = field(default_factory=list)
    # per segment checked, in order: (name, verified, failed, unverified, damaged stretches, first
    # record that did not verify (-1: the segment's start; None: none), problems)
    segments: list[tuple[str, int, int, int, int, int | None, list[Problem]]] = field(default_factory=list)

    def verification(self) -> str:
        return verification_text(self.verified, self.failed, self.unverified, True)


def verification_text(verified: int, failed: int, unverified: int, key_known: bool) -> str:
    """One line for people: did the data verify?"""
    if failed:
        return f"NOT VERIFIED: {failed} records fail the MAC check (edited, inserted, reordered or forged)"
    if not key_known:
        return "not verified: no device key given"
    if unverified:
        return (
            f"NOT VERIFIED: {unverified} records could not be checked (after damage, or written "
            f"with another device key); {verified} verified"
        )
    return f"verified: {verified} records carry an intact MAC chain"


def verify_segments(
    segments: Iterable[tuple[str, bytes, bool]], keys: Mapping[bytes, bytes], keys_from: str = "the keys given"
) -> ChainResult:
    """Check the chain through segments given in log order as (name, bytes, check): chunk by chunk,
    without decoding records (this runs after every sync). A segment given with check False is
    not checked; its bytes (its last chunk is enough) give the mac the next segment must link to."""
    out = ChainResult()
    previous: bytes | None = None
    for name, data, check_it in segments:
        if not check_it:
            previous = (
                bytes(data[-4 - record.MAC_LEN : -4]) if len(data) >= record.CHUNK_OVERHEAD + record.MAC_LEN else None
            )
            continue
        check = ChainCheck(name, keys, keys_from=keys_from)
        reader = record.ChunkReader(io.BytesIO(data))
        damage = 0
        while (got := reader.next()) is not None:
            kind, start, length = got
            if len(reader.damage) != damage:
                damage = len(reader.damage)
                check.resync()
            first, count = None, 0
            if kind == record.KIND_BATCH:  # first_seq u32, count u8 (the batch's fixed start)
                first, count = int.from_bytes(reader.buf[start : start + 4], "little"), reader.buf[start + 4]
            try:
                check.chunk(kind, reader.buf, start, length, first, count)
            except (record.RecordError, ValueError) as exc:  # a header that passed its CRC, yet malformed
                check.problems.append(Problem(name, f"undecodable chunk: {exc}"))
                check.resync()
        own: list[Problem] = []
        broken = 0
        if not check.links_to(previous):
            own.append(Problem(name, BROKEN_LINK))
            broken = 1
            out.failed += 1
        own.extend(check.problems)
        first_bad = -1 if broken else check.first_bad
        out.segments.append(
            (name, check.verified, check.failed + broken, check.unverified, len(reader.damage), first_bad, own)
        )
        out.problems.extend(own)
        out.verified += check.verified
        out.failed += check.failed
        out.unverified += check.unverified
        previous = check.chain
    return out


def key_table(keys: Iterable[bytes]) -> dict[bytes, bytes]:
    """Keys by key id; the empty key of a board never provisioned is always included."""
    table = {record.key_id(b""): b""}
    for k in keys:
        table[record.key_id(k)] = k
    return table
