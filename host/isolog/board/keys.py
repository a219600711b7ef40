"""Device keys and provisioning (`isolog provision`).

A board gets a name and a random 256-bit key; the key is stored on the board (data/key) and in
the host store (table device_keys, which keeps every key a board had, so older log segments still
verify). It signs every state-changing request (firmware/protocol.py) and chains a MAC through
the board's log (firmware/record.py). The key is never printed, logged, exported or put in an
error message: only its key id (the first 4 bytes of its SHA-256) is shown.
"""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from isolog.errors import UserError
from isolog.store import Store, open_store
from isolog_fw import record

_SCHEMA = """
CREATE TABLE IF NOT EXISTS device_keys (
    device TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key BLOB NOT NULL,
    name TEXT NOT NULL,
    created TEXT NOT NULL,
    current INTEGER NOT NULL,
    PRIMARY KEY (device, key_id)
)
"""


def _table(store: Store) -> None:
    store.db.execute(_SCHEMA)


def current_key(store: Store, device: str) -> bytes | None:
    _table(store)
    row = store.db.execute("SELECT key FROM device_keys WHERE device = ? AND current = 1", (device,)).fetchone()
    return bytes(row[0]) if row else None


def key_by_id(store: Store, device: str, key_id: str) -> bytes | None:
    _table(store)
    row = store.db.execute("SELECT key FROM device_keys WHERE device = ? AND key_id = ?", (device, key_id)).fetchone()
    return bytes(row[0]) if row else None


def key_for_port(db: Path | None, port: str) -> bytes | None:
    """The stored key of the board answering on port (None: not provisioned from this store)."""
    from isolog.board.link import Link, LinkError

    try:
        with Link(port, timeout_s=0.5, retries=2) as link:
            ident = link.identify()
    except (LinkError, UserError):
        return None
    with open_store(db) as store:
        return current_key(store, ident["device"])


def provision(port: str, name: str, db: Path | None = None, force: bool = False) -> dict:
    from isolog.board.link import Link

    with open_store(db) as store, Link(port) as link:
        ident = link.identify()
        device = ident["device"]
        if ident.get("provisioned"):
            old = current_key(store, device)
            if old is None:
                raise UserError(f"board {device} ({ident.get('name')}) was provisioned from another store: "
                                "re-provisioning needs its current key (use that store with --db)")
            link.use_key(old, ident.get("auth_counter", 0))
        key = secrets.token_bytes(32)
        key_id = record.key_id(key).hex()
        # The key goes into the store first: a board must never hold a key the host has lost.
        with store.transaction() as tx:
            _table(store)
            tx.execute("INSERT INTO device_keys (device, key_id, key, name, created, current) "
                       "VALUES (?, ?, ?, ?, datetime('now'), 0)", (device, key_id, key, name))
        try:
            reply = link.provision(name, key, force=force)
        except BaseException:
            with store.transaction() as tx:
                tx.execute("DELETE FROM device_keys WHERE device = ? AND key_id = ?", (device, key_id))
            raise
        with store.transaction() as tx:
            tx.execute("UPDATE device_keys SET current = (key_id = ?) WHERE device = ?", (key_id, device))
            store.audit(tx, device, "provision", {"name": name, "key_id": key_id, "forced": force,
                                                  "previous_key_id": ident.get("key_id")})
        return reply


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("provision", help="give a board its name and a new device key",
                       description="Generates a random 256-bit key, stores it in the host store and on the "
                       "board. From then on the board accepts state changes only when signed with it, and "
                       "its log carries a MAC chain made with it. Refused while the board holds unsynced "
                       "records, unless --force.")
    p.add_argument("port", metavar="PORT")
    p.add_argument("--name", required=True, help="the board's name, e.g. its asset tag (1..32 characters)")
    p.add_argument("--force", action="store_true", help="provision even though records are not synced")
    p.add_argument("--db", type=Path, help="the store (default: the user's store)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    reply = provision(args.port, args.name, args.db, args.force)
    print(f"board {reply['device']} provisioned as {reply['name']!r} (key id {reply['key_id']}); "
          "the key is in the store, never shown")
    return 0


# --- using the key ----------------------------------------------------------------------------------

def authorize(link, store: Store, ident: dict) -> None:
    """Sign this link's state changes with the board's key, if it is provisioned."""
    if not ident.get("provisioned"):
        return
    device = str(ident["device"])
    key = key_by_id(store, device, str(ident.get("key_id", ""))) or current_key(store, device)
    if key is None:
        raise UserError(f"board {device} ({ident.get('name') or 'unnamed'}) is provisioned, and this store "
                        f"({store.path}) does not hold its key: use the store that provisioned it (--db)")
    link.use_key(key, int(ident.get("auth_counter", 0)))


def _keys_of(store: Store, device: str) -> dict[str, bytes]:
    _table(store)
    return {kid: bytes(k) for kid, k in store.db.execute(
        "SELECT key_id, key FROM device_keys WHERE device = ?", (device,))}


def verify_stored(store: Store, device: str, segments: list[int] | None = None):
    """Check the MAC chain of the log chunks stored for a device (all segments, or the ones given
    and their link to the one before): returns a decode.Log with the counts and problems (its
    records are not kept). A segment is checked with the key its header names; a board never
    provisioned uses the empty key."""
    from isolog.log import decode
    from isolog_fw import record as rec

    keys = _keys_of(store, device)
    keys.setdefault(rec.key_id(b"").hex(), b"")
    stored = [r[0] for r in store.db.execute(
        "SELECT DISTINCT segment FROM chunks WHERE device = ? ORDER BY segment", (device,))]
    wanted = set(stored if segments is None else segments)
    out = decode.Log()
    previous: bytes | None = None
    for first in stored:
        if first not in wanted:
            previous = None
            last = store.db.execute("SELECT data FROM chunks WHERE device = ? AND segment = ? "
                                    "ORDER BY offset DESC LIMIT 1", (device, first)).fetchone()
            if last is not None:
                previous = bytes(last[0])[-4 - rec.MAC_LEN:-4]
            continue
        # The stored chunks at their offsets; a gap (a chunk damaged on the board, never stored)
        # is zero-filled, so the check sees damage there and restarts the chain instead of
        # calling the chunk after it forged.
        parts = []
        at = None
        for offset, chunk in store.db.execute(
                "SELECT offset, data FROM chunks WHERE device = ? AND segment = ? ORDER BY offset", (device, first)):
            if at is not None and offset > at:
                parts.append(bytes(offset - at))
            parts.append(bytes(chunk))
            at = offset + len(chunk)
        data = b"".join(parts)
        name = f"{decode.LOG_DIR}/{first:08x}.seg"
        key_id = None
        try:
            kind, start, length, _ = rec.check_chunk(data, 0, len(data))
            if kind == rec.KIND_HEADER:
                key_id = rec.decode_header(data, start)["key_id"].hex()
        except rec.RecordError:
            pass
        key = keys.get(key_id) if key_id is not None else None
        if key_id is not None and key is None:
            out.problems.append(decode.Problem(name, f"written with key id {key_id}, which this store does not hold"))
        chain_in, previous = _verify_chunks(name, data, key, previous, out)
    return out


def _verify_chunks(name: str, data: bytes, key: bytes | None, previous: bytes | None, out) -> tuple:
    """The MAC chain of one segment's bytes, chunk by chunk (no record decoding: this runs after
    every sync). Returns (the segment's chain_in, the mac it ends on)."""
    import io

    from isolog.log import decode
    from isolog_fw import record as rec

    reader = rec.ChunkReader(io.BytesIO(data))
    chain: bytes | None = None
    chain_in: bytes | None = None
    damage = 0
    failing = None
    while (got := reader.next()) is not None:
        kind, start, length = got
        if len(reader.damage) != damage:
            damage = len(reader.damage)
            chain = None  # after damage the chain cannot be followed: the next chunk restarts it
        buf = reader.buf
        count, first = 0, None
        if kind == rec.KIND_HEADER:
            header_in = rec.decode_header(buf, start)["chain_in"]
            if chain_in is None:
                chain_in = header_in
                if previous is not None and header_in != previous:
                    out.problems.append(decode.Problem(
                        name, "the MAC chain does not continue from the previous segment"))
                    out.failed += 1
            if chain is None:
                chain = header_in
        elif kind == rec.KIND_BATCH:
            first, count = int.from_bytes(buf[start:start + 4], "little"), buf[start + 4]
        mac_ = rec.chunk_mac(buf, start, length)
        if key is None or chain is None:
            out.unverified += count
            failing = None
        elif rec.verify_chunk(key, chain, buf, start, length):
            out.verified += count
            failing = None
        else:
            out.failed += count
            last = None if first is None else first + count - 1
            if failing is not None:
                failing[0].message = f"records {failing[1]}..{last} fail the MAC check"
            else:
                problem = decode.Problem(name, f"records {first}..{last} fail the MAC check" if first is not None
                                          else "a segment header fails the MAC check")
                out.problems.append(problem)
                failing = [problem, first]
        chain = mac_
    return chain_in, chain
