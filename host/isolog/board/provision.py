"""Device keys and provisioning (`isolog provision`).

A board gets a name and a random 256-bit key; the key is stored on the board (data/key) and in
the host store (table device_keys, which keeps every key a board had, so older log segments still
verify). It signs every state-changing request (firmware/protocol.py) and chains a MAC through
the board's log (firmware/record.py). The key is never printed, logged, exported or put in an
error message: only its key id (the first 4 bytes of its SHA-256) is shown.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from isolog.board.link import Link, LinkError
from isolog.errors import UserError
from isolog.store import Store
from isolog_fw import record


def key_for_port(db: Path | None, port: str) -> bytes | None:
    """The stored key of the board answering on port (None: not provisioned from this store)."""
    try:
        with Link(port, timeout_s=0.5, retries=2) as link:
            ident = link.identify()
    except (LinkError, UserError):
        return None
    with Store(db) as store:
        return store.current_key(ident["device"])


def provision(port: str, name: str, db: Path | None = None, force: bool = False) -> dict[str, Any]:
    """Give the board on port a name and a new key; returns the board's reply (device, name, key_id)."""
    with Store(db) as store, Link(port) as link:
        ident = link.identify()
        device = ident["device"]
        if ident.get("provisioned"):
            old = store.current_key(device)
            if old is None:
                raise UserError(
                    f"board {device} ({ident.get('name')}) was provisioned from another store: "
                    "re-provisioning needs its current key (use that store with --db)"
                )
            link.use_key(old, ident.get("auth_counter", 0))
        key = secrets.token_bytes(32)
        key_id = record.key_id(key).hex()
        # The key goes into the store first: a board must never hold a key the host has lost.
        with store.transaction() as tx:
            store.add_key(tx, device, key_id, key, name)
        try:
            reply = link.provision(name, key, force=force)
        except BaseException:
            with store.transaction() as tx:
                store.remove_key(tx, device, key_id)
            raise
        with store.transaction() as tx:
            store.make_key_current(tx, device, key_id)
            store.audit(
                tx,
                device,
                "provision",
                {"name": name, "key_id": key_id, "forced": force, "previous_key_id": ident.get("key_id")},
            )
        return reply


def authorize(link: Link, store: Store, ident: dict[str, Any]) -> None:
    """Sign this link's state changes with the board's key, if it is provisioned."""
    if not ident.get("provisioned"):
        return
    device = str(ident["device"])
    key = store.key_by_id(device, str(ident.get("key_id", ""))) or store.current_key(device)
    if key is None:
        raise UserError(
            f"board {device} ({ident.get('name') or 'unnamed'}) is provisioned, and this store "
            f"({store.path}) does not hold its key: use the store that provisioned it (--db)"
        )
    link.use_key(key, int(ident.get("auth_counter", 0)))
