"""`isolog sync`: copy a board's new records into the store, verified, resumable, idempotent.

  IDENTIFY -> clock anchor (and SET_CLOCK to host UTC, audited) -> LIST from the device's next
  unsynced sequence number -> READ each segment from the offset stored for it, 2048 bytes a piece
  -> only complete chunks are decoded (a chunk cut by a READ boundary waits for the next piece),
  each verified by its CRC-32 -> records inserted in one transaction together with the segment's
  new offset -> ACK up to the first sequence number not stored contiguously.

A pulled cable at any point leaves the store consistent: what was committed is complete chunks
and the offset just after them, so the next sync resumes there. Records are keyed (device, seq):
reading a chunk twice adds nothing. The board is told (ACK) only after the commit is durable.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from isolog.board.link import BoardError, Link, LinkError
from isolog.board.provision import KEY_ON_FLASH, NotTheBoard, authorize, key_in_hardware, not_the_board
from isolog.errors import UserError
from isolog.log import decode
from isolog.log import image as flash_image
from isolog.store import Store
from isolog.units import format_duration
from isolog_boards import energy
from isolog_fw import frame, record

PIECE = frame.MAX_READ  # bytes per READ
WINDOW = 4  # READ requests in flight
COMMIT_BYTES = 64 * 1024  # commit at least this often (bytes read) ...
COMMIT_S = 0.5  # ... or this often (seconds): a pulled cable costs at most this much re-reading


@dataclass
class SyncProgress:
    device: str
    records: int  # added so far
    bytes: int  # segment bytes read so far
    total_bytes: int  # segment bytes this sync expects to read
    pieces: int  # READ replies so far
    elapsed_s: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class SyncResult:
    device: str
    records_added: int
    bytes_read: int
    duration_s: float
    acked_upto: int | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth saying, not damage (exit status 0)
    session: int | None = None
    next_seq: int = 0  # the store's first sequence number not stored contiguously
    board_next: int = 0  # the board's next sequence number when the log was listed
    link_bytes_in: int = 0  # every byte received on the link (frames, replies)
    retries: int = 0
    verification: str = "nothing new to verify"  # the MAC chain of the records this sync stored
    authenticated: bool = True  # False: a board never provisioned from this store (empty key)
    key_in_hardware: bool = True  # False: its key is on its flash (no secure element): not authenticated
    held_from: int | None = None  # records from here on are kept on the board for QA (not acknowledged)
    shipment: str | None = None  # the board's current shipment, marked returned and synced in the store

    @property
    def records_per_s(self) -> float:
        return self.records_added / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def bytes_per_s(self) -> float:
        return self.bytes_read / self.duration_s if self.duration_s > 0 else 0.0


def sync(
    port: str,
    db: Path | str | None = None,
    progress: Callable[[SyncProgress], Any] | None = None,
    set_clock: bool = True,
    delivered_at: float | None = None,
) -> SyncResult:
    """Sync one board into the store at db (default: the user's store). Raises UserError
    (link.LinkError) when the link fails; the store then holds everything committed before.
    delivered_at (epoch s): the delivery time from the delivery note, recorded for the board's
    current shipment."""
    store = Store(db)
    try:
        link = Link(port)
        try:
            job = _Sync(store, link, port, progress, set_clock)
            job.delivered_at = delivered_at
            return job.run()
        finally:
            link.close()
    finally:
        store.close()


def set_board_clock(
    link: Link, store: Store, device: str, by: str, session: int | None = None
) -> tuple[int | None, int]:
    """Set the board's clock to host UTC; audit the board's value before and the host's.
    Returns (board time before or None if it had none, host time sent), epoch ms."""
    before = link.get_clock()
    host_ms = int(time.time() * 1000)
    after = link.set_clock(host_ms)
    board_ms = before.get("time_ms") if before.get("valid") else None
    store.audit(
        None,
        device,
        "clock_set",
        {
            "board_before_ms": board_ms,
            "host_ms": host_ms,
            "offset_ms": board_ms - host_ms if board_ms is not None else None,
            "board_after_ms": after.get("time_ms"),
            "uptime_ms": after.get("uptime_ms"),
            "by": by,
            "session": session,
        },
    )
    return board_ms, host_ms


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, timezone.utc)


class _Pieces:
    """A segment's bytes on the board from offset to its listed size, as a stream (readinto) of
    pipelined READ pieces. A segment shorter than listed ends the stream there; one gone from the
    board (deleted while syncing) ends it with gone set."""

    def __init__(self, sync: _Sync, first: int, offset: int, size: int):
        self.sync = sync
        self.pieces = sync.link.read_pieces(first, offset, size, PIECE, WINDOW)
        self.read_off = offset
        self.size = size
        self.gone = False
        self.error: LinkError | None = None
        self.data = b""  # the rest of the last piece

    def readinto(self, buf: memoryview) -> int:
        if not self.data:
            if self.read_off >= self.size:
                return 0
            try:
                got = next(self.pieces)
            except BoardError as exc:
                if exc.code != "no_segment":
                    raise
                self.gone = True
                return 0
            except LinkError as exc:
                # The link failed: end the stream here, so the complete chunks read so far are
                # still stored (a sync cut at any point keeps what it verified); raised after.
                self.error = exc
                return 0
            except StopIteration:
                return 0
            want = min(PIECE, self.size - self.read_off)
            if not got.data:  # shorter than listed
                self.size = self.read_off
                return 0
            self.read_off += len(got.data)
            self.sync.bytes += len(got.data)
            self.sync.pieces += 1
            if len(got.data) < want:  # shorter than listed: the file was replaced
                self.size = self.read_off
            self.data = got.data
        n = min(len(buf), len(self.data))
        buf[:n] = self.data[:n]
        self.data = self.data[n:]
        return n


class _Pending:
    """Verified chunks and their records not yet committed, with the segment offset after them."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.chunks: list[tuple[int, bytes]] = []
        self.records: list[tuple[int, list[dict[str, Any]]]] = []
        self.damage: list[tuple[int, int, str]] = []
        self.segment: int | None = None
        self.offset: int | None = None
        self.header: bytes | None = None

    def empty(self) -> bool:
        return self.offset is None and not self.damage


class _Sync:
    def __init__(
        self, store: Store, link: Link, port: str, progress: Callable[[SyncProgress], Any] | None, set_clock: bool
    ):
        self.store = store
        self.link = link
        self.port = port
        self.progress = progress
        self.set_clock = set_clock
        self.t0 = time.monotonic()
        self.device = ""
        self.session: int | None = None
        self.added = 0
        self.bytes = 0
        self.total = 0
        self.pieces = 0
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.touched: set[int] = set()  # segments read by this sync
        self.verification = "nothing new to verify"
        self.authenticated = True
        self.key_in_hardware = True
        self.held_from: int | None = None
        self.prov: dict[str, Any] | None = None
        self.keys: set[str] = set()  # key ids this store holds for the device
        self.pending = _Pending()
        self.last_commit = time.monotonic()
        self.delivered_at: float | None = None
        self.shipment: str | None = None

    # --- the whole sync ----------------------------------------------------------------------------

    def run(self) -> SyncResult:
        self.session = self.store.start_session(self.port)
        try:
            result = self._run()
        except BaseException as exc:
            if isinstance(exc, NotTheBoard):
                self.pending.clear()  # a wiped or forged log: nothing of it is stored
            else:
                self._flush_quietly()
            if isinstance(exc, UserError):
                status = f"failed: {exc}"
            elif isinstance(exc, KeyboardInterrupt):
                status = "interrupted"
            else:
                status = f"interrupted: {type(exc).__name__} {exc}".rstrip()
            self._end_session(status, None)
            if isinstance(exc, LinkError):
                done = (
                    f"; {self.added} new records were stored before, `isolog sync` resumes from there"
                    if self.added
                    else ""
                )
                raise LinkError(f"{exc}{done}") from None
            raise
        self._end_session("problems" if result.problems else "ok", result.acked_upto)
        return result

    def _run(self) -> SyncResult:
        store, link = self.store, self.link
        h0 = time.time()
        ident = link.identify()
        h1 = time.time()
        try:
            device = str(ident["device"])
            boot = int(ident["boot"])
            log = ident["log"]
            board_first, board_next, board_synced = int(log["first"]), int(log["next"]), int(log["synced"])
            in_ram = int(log.get("in_ram", 0))
            clock = ident.get("clock") or {}
        except (KeyError, TypeError, ValueError):
            raise LinkError(
                "the board's IDENTIFY reply lacks fields (firmware too old or not an isolog board?)"
            ) from None
        self.device = device
        # One desk syncs a board at a time (Store.claim_device): a second sync of the same board,
        # here or at another desk sharing the store, is refused before it stores anything.
        store.claim_device(device, self.session)
        # A board this store provisioned must prove it holds its key before anything is stored;
        # one never provisioned is synced, its records flagged unauthenticated.
        authorize(link, store, ident)
        self.prov = store.provisioning(device)
        self.authenticated = self.prov is not None
        self.key_in_hardware = key_in_hardware(self.prov)
        if self.authenticated and not self.key_in_hardware:
            self.notes.append(f"unauthenticated: board {device}: " + KEY_ON_FLASH[len("NOT AUTHENTICATED: ") :])
        self.keys = {k for (k,) in store.db.execute("SELECT key_id FROM device_keys WHERE device = ?", (device,))}
        if not self.authenticated:
            self.notes.append(
                f"unauthenticated: board {device} was never provisioned from this store: its records carry "
                "no device key (anyone with the board could have written them); provision it (isolog provision)"
            )
        known = store.device(device) is not None
        with store.transaction() as db:
            dev = store.touch_device(db, device, ident.get("board"), ident.get("firmware"), board_first)
            store.update_session(db, self.session, device=device)
            if clock.get("uptime_ms") is not None:
                store.add_clock_anchor(
                    db,
                    device,
                    boot,
                    int(clock["uptime_ms"]),
                    int((h0 + h1) * 500),
                    clock.get("time_ms") if clock.get("valid") else None,
                    self.session,
                )
        self._keep_status(device, ident)
        if not known and board_first > 0:
            self.notes.append(
                f"new board {device}: this store starts at record {board_first}; the records before "
                "were acknowledged by another host and are no longer on the board"
            )
        next_seq = dev["next_seq"]
        if board_next + in_ram < next_seq:
            self.problems.append(
                f"the board's log restarted: its next record is {board_next + in_ram} but this store holds "
                f"records of {device} up to {next_seq - 1} (flash erased or replaced?). Nothing was read or "
                "acknowledged: ask an engineer before syncing this board"
            )
            return self._result(None, next_seq, board_next)

        if self.set_clock:
            self._set_clock(device)
        try:
            link.commit()  # the records in RAM to flash (LIST does not commit: docs/security.md)
        except BoardError as exc:
            if exc.code != "unknown_command":
                raise

        segments, board_next = link.list_all(next_seq)
        if segments and segments[0][0] > next_seq:
            gone = segments[0][0]
            msg = (
                f"records {next_seq}..{gone - 1} are not on the board any more (reclaimed after another host "
                "acknowledged them) and not in this store"
            )
            self.problems.append(msg)
            with store.transaction() as db:
                store.add_lost(db, device, next_seq, gone, msg, self.session)
                store.advance_next_seq(db, device)

        plan = []
        for i, (first, size) in enumerate(segments):
            got = store.segment(device, first)
            offset, header = got if got else (0, None)
            if offset > size:
                self.problems.append(
                    f"{flash_image.segment_name(first)}: the board has {size} bytes, {offset} were "
                    "stored before: the segment was rewritten; reading it again from its start"
                )
                offset, header = 0, None
            if offset < size:
                plan.append((first, size, offset, header, i == len(segments) - 1))
                self.total += size - offset
        self._check_headers(plan)  # before anything is stored: the keys the new segments name
        for first, size, offset, header, live in plan:
            self._read_segment(first, size, offset, header, live)

        with store.transaction() as db:
            next_seq = store.advance_next_seq(db, device)
        after = store.db.execute(
            "SELECT MIN(seq) FROM records WHERE device = ? AND seq > ?", (device, next_seq)
        ).fetchone()[0]
        if after is not None:
            self.problems.append(
                f"records {next_seq}..{after - 1} are missing (damaged on the board): records are "
                f"acknowledged only up to {next_seq}, the board keeps the rest for investigation"
            )
        # The MAC chain, damage and configuration of what this sync stored (and of any stored
        # segment never checked), kept per segment in the store (Store.check_segments). Nothing
        # from a segment that did not check out is acknowledged, now or in any later sync: the
        # board keeps it as evidence.
        todo = set(self.touched) | set(store.unchecked_segments(device))
        check = store.check_segments(device, todo, self.session) if todo else None
        if check is not None:
            self.verification = check.verification()
            if not self.authenticated:
                self.verification = "NOT AUTHENTICATED (board never provisioned): " + self.verification
            elif not self.key_in_hardware:
                # an intact chain made with a key anyone with the board could read: never "verified"
                self.verification = "NOT AUTHENTICATED (device key on the board's flash, no secure element): " + (
                    self.verification.replace("verified: ", "", 1)
                )
            self.problems += [str(p) for p in check.problems if str(p) not in self.problems]
        upto, why = store.ack_bound(device, next_seq)
        acked = board_synced
        if upto < next_seq:
            self.held_from = upto
            self.problems.append(
                f"records from {upto} on are NOT acknowledged: {'; '.join(why)}. The board keeps them as "
                "evidence: keep the board aside (do not reuse or wipe it) and call QA"
            )
        if upto > board_synced:
            acked = link.acknowledge(upto)
            store.audit(
                None,
                device,
                "ack_records",
                {"upto": upto, "board_synced_before": board_synced, "board_synced": acked, "session": self.session},
            )
        self._mark_returned(ident.get("config_id"))
        return self._result(acked, next_seq, board_next)

    def _keep_status(self, device: str, ident: dict[str, Any]) -> None:
        """The board's battery and storage as it arrived (STATUS, which only looks: the LEDs are
        not touched), kept for the dashboard's container list (Store.set_device_status)."""
        try:
            status = self.link.status()
        except BoardError:
            return  # a board without STATUS: its state stays unknown
        self.store.set_device_status(device, energy.battery_fields(status, str(ident.get("board"))), self.session)

    def _mark_returned(self, ship_id: Any) -> None:
        """The board's current shipment is back: returned (at its first sync), delivered if
        the desk gave the delivery time (--delivered-at), and synced."""
        store, device = self.store, self.device
        if not isinstance(ship_id, str) or not any(s["id"] == ship_id for s in store.shipments(device)):
            return
        events = store.shipment_events(ship_id)
        if events and events[-1]["device"] != device:
            return  # an older store's id reused on another board: not this trip
        self.shipment = ship_id
        states = [e["state"] for e in events]
        with store.transaction() as db:
            if self.delivered_at is not None:
                store.add_event(
                    db, ship_id, device, "delivered", _utc(self.delivered_at), {"source": "delivery note (at sync)"}
                )
            if "returned" not in states:  # the first sync since its configuration: the board is back
                store.add_event(db, ship_id, device, "returned", None, {"session": self.session})
            store.add_event(db, ship_id, device, "synced", None, {"session": self.session, "records": self.added})

    def _check_headers(self, plan: list[tuple[int, int, int, bytes | None, bool]]) -> None:
        """A board this store provisioned writes its log with its key: a new segment whose header
        names the empty key (after the key was given) or a key this store never gave is a wiped or
        forged log. Checked on the headers before anything is stored."""
        if self.prov is None:
            return
        for first, size, offset, header, _ in plan:
            if header is not None or offset > 0:
                continue
            want = min(size, record.CHUNK_OVERHEAD + record.HEADER_SIZE + record.MAC_LEN)
            try:
                data = self.link.read(first, 0, want).data
            except BoardError as exc:
                if exc.code == "no_segment":
                    continue
                raise
            self._check_key(first, _decode_header(data))

    def _check_key(self, first: int, hdr: dict[str, Any] | None) -> None:
        prov = self.prov
        if prov is None or hdr is None:
            return
        kid = bytes(hdr["key_id"]).hex()
        empty = record.key_id(b"").hex()
        name = flash_image.segment_name(first)
        if kid == empty and first >= prov["keyed_from"]:
            raise not_the_board(self.device, prov, f"{name} is written without the device key (empty key)")
        if kid != empty and kid not in self.keys:
            raise not_the_board(self.device, prov, f"{name} is written with key {kid}, never given by this store")

    def _result(self, acked: int | None, next_seq: int, board_next: int) -> SyncResult:
        r = SyncResult(
            self.device,
            self.added,
            self.bytes,
            time.monotonic() - self.t0,
            acked,
            self.problems,
            self.notes,
            self.session,
            next_seq,
            board_next,
            self.link.bytes_in,
            self.link.retried,
        )
        r.verification = self.verification
        r.authenticated = self.authenticated
        r.key_in_hardware = self.key_in_hardware
        r.held_from = self.held_from
        r.shipment = self.shipment
        return r

    def _end_session(self, status: str, acked: int | None) -> None:
        try:
            with self.store.transaction() as db:
                self.store.update_session(
                    db,
                    self.session,
                    ended=_now(),
                    status=status,
                    records_added=self.added,
                    bytes=self.bytes,
                    acked_upto=acked,
                    problems=self.problems,
                )
        except Exception:
            pass  # the session row is bookkeeping: never hide the real outcome

    # --- steps -------------------------------------------------------------------------------------

    def _set_clock(self, device: str) -> None:
        board_ms, host_ms = set_board_clock(self.link, self.store, device, "sync", self.session)
        if board_ms is None:
            self.notes.append(
                "the board's clock was not set: set to host UTC now (earlier records without time "
                "can be placed from the clock anchors in the store)"
            )
        elif abs(board_ms - host_ms) > 2000:
            off = (board_ms - host_ms) / 1000
            self.notes.append(
                f"the board's clock was {format_duration(abs(off))} {'ahead of' if off > 0 else 'behind'} this "
                "computer's (UTC): corrected"
            )

    def _read_segment(self, first: int, size: int, offset: int, header: bytes | None, live: bool) -> None:
        name = flash_image.segment_name(first)
        self.touched.add(first)
        link = self.link
        hdr = None
        if header is not None:
            hdr = _decode_header(header)
            if offset > 0:
                # The segment must still be the file read before (a segment named like an earlier,
                # empty one of a previous boot would not be).
                try:
                    again = link.read(first, 0, len(header)).data
                except BoardError as exc:
                    if exc.code != "no_segment":
                        raise
                    self.notes.append(f"{name}: gone from the board while syncing")
                    return
                if again != header:
                    self.problems.append(
                        f"{name}: the segment was rewritten on the board since the last sync: "
                        "reading it again from its start"
                    )
                    offset, header, hdr = 0, None, None
        # CRC-32 verifies every chunk here. The MAC chain needs the device key, which this store does
        # not hold (yet): the chunks are kept as evidence, so the chain can be checked from the store.
        dec = decode.SegmentDecoder(name, hdr, key=None)
        if hdr is not None and dec.device and dec.device != self.device:
            self.problems.append(f"{name}: written by device {dec.device}, read from {self.device}")
        # The segment's bytes as a stream of pipelined READ pieces (the board reads the next pieces
        # from flash while this one is decoded and stored), scanned by the firmware's own chunk
        # reader: every chunk verified by its CRC, damage skipped and reported with its byte range.
        stream = _Pieces(self, first, offset, size)
        reader = record.ChunkReader(stream)
        checked_device = hdr is not None
        seen_damage = 0
        while True:
            got = reader.next()
            while seen_damage < len(reader.damage):
                at, skipped, reason = reader.damage[seen_damage]
                seen_damage += 1
                if got is None and stream.error is not None:
                    break  # not damage: the rest of the segment never came
                dec.resync()
                self._damage(first, name, offset + at, skipped, reason)
                if got is None and not live:  # an older segment does not grow: past its damaged tail
                    self.pending.header = header
                    self.pending.offset = offset + at + skipped
            if got is None:
                break
            kind, start, length = got
            chunk = bytes(reader.buf[start - 4 : start + length + 4])
            chunk_at = offset + reader.offset - len(chunk)
            problems: list[decode.Problem] = []
            recs = dec.chunk(kind, reader.buf, start, length, problems)
            self.problems.extend(str(p) for p in problems)
            if kind == record.KIND_HEADER:
                self._check_key(first, dec.header)
            if kind == record.KIND_HEADER and header is None:
                header = chunk
                if not checked_device:
                    checked_device = True
                    if dec.device != self.device:
                        self.problems.append(f"{name}: written by device {dec.device}, read from {self.device}")
            if self.pending.segment is not None and self.pending.segment != first:
                self._flush()
            p = self.pending
            p.segment = first
            p.header = header
            p.chunks.append((chunk_at, chunk))
            if recs:
                p.records.append((chunk_at, recs))
            p.offset = chunk_at + len(chunk)
            if self._commit_due():
                self._flush()
            self._report()
        if stream.gone:
            self.notes.append(f"{name}: gone from the board while syncing")
        self._flush()
        self._report()
        if stream.error is not None:
            raise stream.error

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(
                SyncProgress(self.device, self.added, self.bytes, self.total, self.pieces, time.monotonic() - self.t0)
            )

    def _damage(self, first: int, name: str, offset: int, length: int, reason: str) -> None:
        self.problems.append(str(decode.damage_problem(name, offset, length, reason)))
        p = self.pending
        if p.segment is not None and p.segment != first:
            self._flush()
        self.pending.segment = first
        self.pending.damage.append((offset, length, reason))

    def _commit_due(self) -> bool:
        p = self.pending
        size = sum(len(c) for _, c in p.chunks)
        return size >= COMMIT_BYTES or time.monotonic() - self.last_commit >= COMMIT_S

    def _flush(self) -> None:
        """Commit the pending chunks, their records and the segment's new offset in one transaction."""
        p = self.pending
        if p.segment is None:
            return
        store, device = self.store, self.device
        added_total = 0
        found: list[str] = []
        with store.transaction() as db:
            for off, recs in p.records:
                added, problems = store.insert_records(db, device, recs, p.segment, off, self.session)
                added_total += added
                found.extend(problems)
            for off, data in p.chunks:
                store.add_chunk(db, device, p.segment, off, data, self.session)
            for off, length, reason in p.damage:
                store.add_damage(db, device, p.segment, off, length, reason, self.session)
            if p.offset is not None:
                store.set_segment(db, device, p.segment, p.offset, p.header)
            store.advance_next_seq(db, device)
        self.added += added_total
        self.problems.extend(found)
        p.clear()
        self.last_commit = time.monotonic()

    def _flush_quietly(self) -> None:
        """After a failure: keep what was verified (complete chunks) unless the store itself failed."""
        try:
            if self.device:
                self._flush()
        except Exception:
            pass


def _decode_header(chunk: bytes) -> dict[str, Any] | None:
    try:
        kind, start, _, _ = record.check_chunk(chunk, 0, len(chunk))
        if kind != record.KIND_HEADER:
            return None
        return record.decode_header(chunk, start)
    except (record.RecordError, ValueError, struct.error):
        return None


def _now() -> str:
    from isolog.store import now_iso

    return now_iso()
