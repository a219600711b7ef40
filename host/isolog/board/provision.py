"""Device keys and provisioning (`isolog provision`).

A board gets a name and a random 256-bit key; the key is stored on the board (in its ATECC608B
secure element's slot, boards/atecc.py, or without one in the file data/key) and in the host
store (table device_keys, which keeps every key a board had, so older log segments still verify).
It signs every state-changing request (firmware/protocol.py) and chains a MAC through the board's
log (firmware/record.py). The key is never printed, logged, exported or put in an error message:
only its key id (the first 4 bytes of its SHA-256) is shown.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from isolog.board.link import COUNTER_MAX, COUNTER_RESERVE, Link, LinkError, Signer
from isolog.errors import UserError
from isolog.store import Store
from isolog_fw import frame, mac, record

_COMMAND_NAMES = {
    frame.CMD_SET_CLOCK: "set_clock",
    frame.CMD_SET_CONFIG: "set_config",
    frame.CMD_ACK: "ack_records",
    frame.CMD_ACK_ALARMS: "ack_alarms",
    frame.CMD_PROVISION: "provision",
    frame.CMD_TEST_MODE: "test_mode",
    frame.CMD_MAINTENANCE: "maintenance",
    frame.CMD_COMMIT: "commit",
}


SECURE_ELEMENT = "se"  # IDENTIFY's key_store for a key in the board's ATECC608B (boards/atecc.py)


def key_in_hardware(prov: dict[str, Any] | None) -> bool:
    """Did this store provision the board with its key in a secure element? Only then can its
    log be called verified: a key on the flash can be read by anyone who had the board."""
    return prov is not None and prov.get("key_store") == SECURE_ELEMENT


KEY_ON_FLASH = (
    "NOT AUTHENTICATED: this board keeps its device key on its flash (no secure element): anyone who "
    "had the board could have read the key and written its records"
)


class NotTheBoard(UserError):
    """A board this store provisioned answers without its key (wiped, downgraded) or another board
    claims its device id: refused before anything is stored, signed or acknowledged."""


def not_the_board(device: str, prov: dict[str, Any], what: str) -> NotTheBoard:
    return NotTheBoard(
        f"board {device}: this board was wiped or is not the board you provisioned ({what}; this store "
        f"provisioned it with key {prov['key_id']} on {prov['provisioned_at']}). Nothing was stored, signed "
        "or acknowledged: keep the board aside, do not use its records, and call QA"
    )


def key_for_port(db: Path | str | None, port: str) -> bytes | None:
    """The stored key of the board answering on port (None: not provisioned from this store)."""
    try:
        with Link(port, timeout_s=0.5, retries=2) as link:
            ident = link.identify()
    except (LinkError, UserError):
        return None
    with Store(db) as store:
        return store.current_key(ident["device"])


def provision(port: str, name: str, db: Path | str | None = None, force: bool = False) -> dict[str, Any]:
    """Give the board on port a name and a new key; returns the board's reply (device, name, key_id)."""
    with Store(db) as store, Link(port) as link:
        ident = link.identify()
        device = ident["device"]
        if ident.get("provisioned") and store.provisioning(device) is None:
            raise UserError(
                f"board {device} ({ident.get('name')}) was provisioned from another store: "
                "re-provisioning needs its current key (use that store with --db)"
            )
        try:
            authorize(link, store, ident)  # a board provisioned from here proves it holds its key first
        except NotTheBoard:
            if not (force and not ident.get("provisioned")):
                raise
            # An engineer gives a wiped board (repaired, flash replaced) a new key: forced, audited.
            store.audit(None, device, "reprovision_wiped", {"reported": ident.get("key_id")})
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
        log = ident.get("log") or {}
        keyed_from = int(reply.get("log", {}).get("next", log.get("next", 0)))  # records from here on: the new key
        with store.transaction() as tx:
            store.make_key_current(tx, device, key_id)
            store.set_provisioned(tx, device, key_id, keyed_from, reply.get("key_store"))
            store.audit(
                tx,
                device,
                "provision",
                {"name": name, "key_id": key_id, "forced": force, "previous_key_id": ident.get("key_id")},
            )
        return reply


def authorize(link: Link, store: Store, ident: dict[str, Any]) -> dict[str, Any]:
    """Before anything is stored or signed: is this the board this store provisioned?

    A board this store never provisioned is unauthenticated (its log carries the empty key: the
    commands say so); one provisioned from another store is refused (no key here). A board this
    store provisioned must report the key id it was given and prove, with an IDENTIFY answered to a
    fresh nonce, that it holds that key; otherwise it was wiped or is an impostor (NotTheBoard).
    Then the link signs with the key and this store's counter (never the board's), bound to the
    device id and the board's challenge; every accepted request is audited. Returns the identity
    the proof came with."""
    device = str(ident["device"])
    prov = store.provisioning(device)
    if prov is None:
        if ident.get("provisioned"):
            raise UserError(
                f"board {device} ({ident.get('name') or 'unnamed'}) is provisioned, and this store "
                f"({store.path}) does not hold its key: use the store that provisioned it (--db)"
            )
        return ident
    if not ident.get("provisioned"):
        raise not_the_board(device, prov, "it reports no key")
    if ident.get("key_id") != prov["key_id"]:
        raise not_the_board(device, prov, f"it reports key {ident.get('key_id')}")
    if prov.get("key_store") == SECURE_ELEMENT and ident.get("key_store") != SECURE_ELEMENT:
        # Provisioned into its secure element, now keeping a key on the flash (or not saying):
        # the chip was removed or the firmware replaced by one that reads a key file.
        raise not_the_board(
            device,
            prov,
            f"it reports its key {'on its flash' if ident.get('key_store') else 'in no secure element'}, "
            "but it was provisioned with its key in its secure element",
        )
    key = store.key_by_id(device, prov["key_id"])
    if key is None:
        raise UserError(f"board {device}: this store lost key {prov['key_id']} (device_keys): restore the store")
    if not ident.get("challenge"):
        raise UserError(
            f"board {device} runs firmware {ident.get('firmware')} without challenge-bound requests: "
            "deploy the current firmware (isolog deploy) first"
        )
    nonce = secrets.token_bytes(16)
    proved = link.identify(nonce)
    device_id = bytes.fromhex(device)
    try:
        challenge = bytes.fromhex(str(proved.get("challenge")))
        proof = bytes.fromhex(str(proved.get("proof")))
    except ValueError:
        raise not_the_board(device, prov, "it gave no proof of its key") from None
    if proved.get("device") != device or not mac.equal(proof, mac.identify_proof(key, device_id, nonce, challenge)):
        raise not_the_board(device, prov, "it cannot prove that it holds the key")
    if prov["counter"] is None:  # a store from before device_auth: the board's counter, once (audited)
        store.adopt_counter(device, prov["key_id"], int(proved.get("auth_counter", 0)))

    def next_counter(cmd: int) -> int:
        limit = COUNTER_MAX if cmd == frame.CMD_PROVISION else COUNTER_MAX - COUNTER_RESERVE
        return store.next_counter(device, prov["key_id"], limit)

    def accepted(cmd: int, counter: int) -> None:
        store.audit(None, device, "signed_request", {"command": _COMMAND_NAMES.get(cmd, cmd), "counter": counter})

    link.use_signer(Signer(key, device_id, challenge, next_counter, accepted))
    return proved
