"""The MAC chain through the log (firmware/record.py): an intact chain verifies; an edited,
dropped, reordered or inserted chunk, a segment cut from its predecessor and a wrong key are each
caught, through both checks the host has: Store.verify (the chunks a sync
stored, with the key the store holds) and isolog.log.decode.decode_segment (a segment's bytes).
Segments are built with the firmware's own encoder (fakes.SegmentBuilder); the key comes from
provisioning a fake board into the store (isolog.board.provision.provision)."""

from __future__ import annotations

import pytest

import fakes
from fakes import SegmentBuilder, recrc, use_fake_ports
from isolog.board import provision

# The two chain checks under test: the lead moves them into isolog.log.chain; repoint these lines.
from isolog.log.decode import Log, decode_segment
from isolog.store import Store
from isolog_fw import record

DEV = fakes.DEVICE_ID.hex()
OTHER_KEY = bytes(range(200, 232))


@pytest.fixture()
def keyed(tmp_path, monkeypatch):
    """A store that provisioned the (fake) board: (store, the board's key)."""
    board = fakes.FakeBoard()
    use_fake_ports(monkeypatch, board)
    db = tmp_path / "store.sqlite3"
    provision.provision("FAKE0", "crate-9", db)
    store = Store(db)
    key = store.current_key(DEV)
    # the key lives in the board's secure element (tests/fakes.py), the firmware holds only its slot
    assert key is not None and key == board.se_chip.slot_key and len(key) == 32
    yield store, key
    store.close()


def segments(key: bytes, forger_key: bytes | None = None) -> tuple[SegmentBuilder, SegmentBuilder]:
    """Records 0..19 in four batches, then a second segment chained on, records 20..34."""
    a = SegmentBuilder(first_seq=0, key=key)
    for b in range(4):
        a.batch(b * 5, [(60_000, 100 + i, 4.0, 0) for i in range(5)], base_uptime_ms=b * 300_000)
    c = SegmentBuilder(first_seq=20, boot=2, key=key, chain=a.chain)
    for b in range(3):
        c.batch(20 + b * 5, [(60_000, 7, 5.0, 0) for _ in range(5)], base_uptime_ms=b * 300_000, boot=2)
    return a, c


# --- tampering, as a forger without the key would ---------------------------------------------------


def chunks(seg: SegmentBuilder) -> list[bytes]:
    return [seg.chunk(i) for i in range(len(seg.chunks))]


def edited(seg: SegmentBuilder, i: int) -> bytes:
    """Batch chunk i with its boot number changed (payload byte 6), its CRC made right again."""
    parts = chunks(seg)
    c = bytearray(parts[i])
    c[4 + 6] ^= 0x01
    parts[i] = recrc(c)
    return b"".join(parts)


def dropped(seg: SegmentBuilder, i: int) -> bytes:
    parts = chunks(seg)
    del parts[i]
    return b"".join(parts)


def swapped(seg: SegmentBuilder, i: int, j: int) -> bytes:
    parts = chunks(seg)
    parts[i], parts[j] = parts[j], parts[i]
    return b"".join(parts)


def inserted(seg: SegmentBuilder, at: int, chunk: bytes) -> bytes:
    parts = chunks(seg)
    parts.insert(at, chunk)
    return b"".join(parts)


def forged_with(key: bytes, claimed_key: bytes) -> SegmentBuilder:
    """A whole segment made with another key, its header claiming the real key's id."""
    seg = SegmentBuilder(first_seq=0, key=key)
    buf = bytearray(2 * record.MAX_CHUNK)
    buf[: seg.chunks[0][1]] = seg.chunk(0)
    kid_at = 4 + record.HEADER_SIZE - 4  # key_id: the last 4 bytes of the header payload
    buf[kid_at : kid_at + 4] = record.key_id(claimed_key)
    size, mac = record.seal_chunk(buf, record.KIND_HEADER, record.HEADER_SIZE, key, record.CHAIN_START)
    seg.data = bytearray(buf[:size])
    seg.chunks = [(0, size, 0, 0)]
    seg.chain = mac
    for b in range(4):
        seg.batch(b * 5, [(60_000, 100 + i, 4.0, 0) for i in range(5)], base_uptime_ms=b * 300_000)
    return seg


# --- through decode_segment ---------------------------------------------------------------------------


def check_bytes(data: bytes | bytearray, key: bytes | None) -> Log:
    log = Log()
    decode_segment("/data/log/00000000.seg", bytes(data), log, key)
    return log


def messages(log: Log) -> list[str]:
    return [str(p) for p in log.problems]


def test_decode_intact_chain_verifies():
    key = bytes(range(32))
    a, _ = segments(key)
    log = check_bytes(a.data, key)
    assert (log.verified, log.failed, log.unverified) == (20, 0, 0)
    assert log.problems == []
    assert log.verification() == "verified: 20 records carry an intact MAC chain"


def test_decode_catches_an_edited_chunk():
    key = bytes(range(32))
    a, _ = segments(key)
    log = check_bytes(edited(a, 2), key)  # records 5..9
    assert (log.verified, log.failed) == (15, 5)
    assert any("records 5..9 fail the MAC check" in m for m in messages(log))
    assert log.verification().startswith("NOT VERIFIED: 5 records fail the MAC check")


def test_decode_catches_a_dropped_chunk():
    key = bytes(range(32))
    a, _ = segments(key)
    log = check_bytes(dropped(a, 2), key)  # records 5..9 gone: the next chunk no longer follows
    assert (log.verified, log.failed) == (10, 5)
    assert any("records 10..14 fail the MAC check" in m for m in messages(log))


def test_decode_catches_reordered_chunks():
    key = bytes(range(32))
    a, _ = segments(key)
    log = check_bytes(swapped(a, 2, 3), key)  # 0..4, 10..14, 5..9, 15..19: only the first still follows
    assert (log.verified, log.failed) == (5, 15)
    assert any("fail the MAC check" in m for m in messages(log))


def test_decode_catches_an_inserted_copy_of_an_earlier_chunk():
    key = bytes(range(32))
    a, _ = segments(key)
    log = check_bytes(inserted(a, 3, a.chunk(1)), key)  # records 0..4 replayed after 5..9
    assert log.failed == 10  # the copy, and the chunk after it
    assert log.verified == 15


def test_decode_catches_an_inserted_chunk_made_without_the_key():
    key = bytes(range(32))
    a, _ = segments(key)
    fake = SegmentBuilder(key=OTHER_KEY, chain=a.chain).batch(20, [(60_000, 1, 1.0, 0)]).chunk(1)
    log = check_bytes(a.data + fake, key)
    assert (log.verified, log.failed) == (20, 1)
    assert any("records 20..20 fail the MAC check" in m for m in messages(log))


def test_decode_with_a_wrong_key_verifies_nothing():
    key = bytes(range(32))
    a, _ = segments(key)
    log = check_bytes(a.data, OTHER_KEY)
    assert log.verified == 0 and log.unverified == 20
    assert any("written with another device key" in m for m in messages(log))
    assert log.verification().startswith("NOT VERIFIED")


def test_decode_catches_a_segment_made_with_another_key_claiming_the_right_one():
    key = bytes(range(32))
    log = check_bytes(forged_with(OTHER_KEY, claimed_key=key).data, key)
    assert log.verified == 0 and log.failed == 20


def test_decode_without_a_key_says_so():
    key = bytes(range(32))
    a, _ = segments(key)
    log = check_bytes(a.data, None)
    assert log.verified == log.failed == 0
    assert log.verification() == "not verified: no device key given"


def test_decode_of_an_unprovisioned_boards_chain_uses_the_empty_key():
    a, _ = segments(b"")
    assert check_bytes(a.data, b"").verified == 20
    assert check_bytes(edited(a, 1), b"").failed == 5


# --- through Store.verify (the chunks a sync keeps) ---------------------------------------------------


def store_segment(store: Store, first_seq: int, data: bytes | bytearray, device: str = DEV) -> None:
    """Keep a segment's bytes as sync does: one row per chunk at its offset (walked by the chunk
    framing, fakes.chunks_of)."""
    with store.transaction() as db:
        for off, _kind, size in fakes.chunks_of(bytes(data)):
            store.add_chunk(db, device, first_seq, off, bytes(data[off : off + size]), None)


def test_stored_intact_chain_verifies(keyed):
    store, key = keyed
    a, c = segments(key)
    store_segment(store, 0, a.data)
    store_segment(store, 20, c.data)
    check = store.verify(DEV)
    assert (check.verified, check.failed, check.unverified) == (35, 0, 0)
    assert check.problems == []


@pytest.mark.parametrize(
    "tamper, bad",
    [
        (lambda a: edited(a, 2), "records 5..9"),
        (lambda a: dropped(a, 2), "records 10..14"),
        (lambda a: swapped(a, 2, 3), ""),
        (lambda a: inserted(a, 3, a.chunk(1)), ""),
    ],
    ids=["edited", "dropped", "reordered", "inserted"],
)
def test_stored_chain_catches_tampering(keyed, tamper, bad):
    store, key = keyed
    a, c = segments(key)
    store_segment(store, 0, tamper(a))
    store_segment(store, 20, c.data)
    check = store.verify(DEV)
    assert check.failed >= 5
    msgs = messages(check)
    assert any(f"{bad} fail the MAC check" in m for m in msgs), msgs
    assert check.verification().startswith("NOT VERIFIED")


def test_stored_chain_catches_a_segment_cut_from_its_predecessor(keyed):
    """The last chunk of the first segment dropped: inside it nothing shows, the next segment's
    chain_in does not match."""
    store, key = keyed
    a, c = segments(key)
    store_segment(store, 0, dropped(a, 4))
    store_segment(store, 20, c.data)
    check = store.verify(DEV)
    assert check.failed >= 1
    assert any("does not continue from the previous segment" in m for m in messages(check))
    only_new = store.verify(DEV, [20])  # a sync that read only the second segment
    assert any("does not continue from the previous segment" in m for m in messages(only_new))


def test_stored_chain_with_a_deleted_chunk_row_is_not_verified(keyed):
    """A chunk row removed from the store leaves a gap at its offset: taken for damage, the chain
    restarts after it, so the result is "not verified", not "failed"."""
    store, key = keyed
    a, c = segments(key)
    store_segment(store, 0, a.data)
    off = a.chunks[2][0]
    store.db.execute("DELETE FROM chunks WHERE segment = 0 AND offset = ?", (off,))
    check = store.verify(DEV)
    assert check.verified == 10 and check.unverified == 5
    assert check.verification().startswith("NOT VERIFIED")


def test_stored_segment_written_with_a_key_the_store_lacks(keyed):
    store, key = keyed
    a, _ = segments(OTHER_KEY)
    store_segment(store, 0, a.data)
    check = store.verify(DEV)
    assert check.verified == 0 and check.unverified == 20
    assert any(
        f"written with another device key (key id {record.key_id(OTHER_KEY).hex()}, not in the store" in m
        for m in messages(check)
    )


def test_stored_segment_made_with_another_key_claiming_the_boards_is_caught(keyed):
    store, key = keyed
    store_segment(store, 0, forged_with(OTHER_KEY, claimed_key=key).data)
    check = store.verify(DEV)
    assert check.verified == 0 and check.failed == 20


def test_stored_chain_of_an_unprovisioned_board_uses_the_empty_key(keyed):
    store, _ = keyed
    other = "00000000000000aa"
    a, _ = segments(b"")
    store_segment(store, 0, a.data, device=other)
    assert store.verify(other).verified == 20
    store_segment(
        store, 20, edited(SegmentBuilder(first_seq=20, chain=a.chain).batch(20, [(60_000, 1, 1.0, 0)]), 1), device=other
    )
    check = store.verify(other)
    assert (check.verified, check.failed) == (20, 1)
