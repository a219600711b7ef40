"""The attacks of docs/security.md, each test named after one, on the in-process fake board
(tests/fakes.py: the firmware's own Logger, protocol Server and LogStore behind a fake cable):
a courier with the board in hand (its flash), someone on the USB link (sniffed, replayed,
harvested requests, reads that wear the flash), an impostor board, a downgrade to the empty key.
Every one must end with nothing falsified stored as verified, nothing unverified acknowledged, no
state change taken twice. Then a bounded fuzz of signed and unsigned requests."""

from __future__ import annotations

import json
import random
import struct

import pytest

import fakes
from compliance_helpers import shipment_doc, to_toml
from fakes import FakeBoard, SegmentBuilder, batch_span, chunks_of, link_to, recrc, use_fake_ports
from isolog.board import configure as configure_mod
from isolog.board import provision
from isolog.board import sync as sync_mod
from isolog.board.link import BoardError
from isolog.errors import UserError
from isolog.store import Store, load_for_check
from isolog_fw import frame, mac, record

PORT = "FAKE0"
DEV = fakes.DEVICE_ID.hex()
WIPED = "wiped or is not the board you provisioned"


def run_sync(db, **kw):
    return sync_mod.sync(PORT, db=db, set_clock=kw.pop("set_clock", False), **kw)


def n_records(db) -> int:
    with Store(db) as st:
        return st.count_records(DEV)


def n_chunks(db) -> int:
    with Store(db) as st:
        return st.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]


def board_config(board: FakeBoard) -> dict:
    return json.loads(board.fs.read("data/config.json"))


@pytest.fixture()
def setup(monkeypatch, tmp_path):
    """A board provisioned from a new store, configured through `isolog configure` for a shipment
    (its TOML in the store), logging 2 hours, synced once: (board, ports, db, shipment path)."""
    board = FakeBoard()
    ports = use_fake_ports(monkeypatch, board)
    db = tmp_path / "store.sqlite3"
    provision.provision(PORT, "crate-7", db)
    ship = tmp_path / "ship.toml"
    ship.write_text(to_toml(shipment_doc()))
    configure_mod.configure(PORT, ship, db, set_clock=False)
    board.run_for(2 * 3600)
    first = run_sync(db)
    assert first.problems == [] and first.verification.startswith("verified"), first.problems
    board.run_for(3600)
    return board, ports, db, ship


def committed(board: FakeBoard) -> None:
    board.store.commit()


def plant_key(board: FakeBoard, key: bytes) -> None:
    """Someone with the board writes a key of their own into the secure element's slot, through
    the driver as the firmware would, and names it on the flash."""
    board.secure_element().store_key(key)
    board.fs.write("data/key_id", record.key_id(key))


# --- no downgrade, no impostor ---------------------------------------------------------------------


def test_wiped_board_reporting_no_key_is_refused(setup):
    board, ports, db, _ = setup
    before, synced = n_records(db), board.synced()
    # The courier wipes the board's flash record of its key (the key itself is in the secure
    # element and cannot be read or deleted from the flash).
    board.fs.remove("data/key_id")
    board.power_cut()
    board.run_for(3600)
    assert board.server.identify()["provisioned"] is False
    with pytest.raises(UserError, match=WIPED):
        run_sync(db)
    with pytest.raises(UserError, match=WIPED):
        run_sync(db, set_clock=True)
    assert n_records(db) == before and board.synced() == synced  # nothing stored, nothing acknowledged


def test_downgrade_to_an_empty_key_chain_is_refused(setup):
    """The board still proves its key, but its flash gets a segment re-MACed with the empty key
    (the records the forger wants certified): refused, nothing of it stored."""
    board, ports, db, _ = setup
    committed(board)
    before, chunks_before, synced = n_records(db), n_chunks(db), board.synced()
    nxt = board.store.next_seq
    forged = SegmentBuilder(first_seq=nxt, key=b"").batch(nxt, [(60_000, 10, 4.0, 0)] * 5)
    board.fs.write(f"data/log/{nxt:08x}.seg", forged.data)
    board.store.segments.append(nxt)
    with pytest.raises(UserError, match=WIPED):
        run_sync(db)
    assert (n_records(db), n_chunks(db), board.synced()) == (before, chunks_before, synced)


def test_board_reporting_another_key_is_refused(setup):
    board, ports, db, _ = setup
    before = n_records(db)
    # A key this store never gave, written into the secure element's slot (its WriteConfig lets a
    # write replace the key, never read it: boards/atecc.py) and named on the flash.
    plant_key(board, b"k" * 32)
    board.power_cut()
    board.run_for(1800)
    with pytest.raises(UserError, match=WIPED):
        run_sync(db)
    assert n_records(db) == before


def test_impostor_claiming_the_device_id_is_refused_even_with_no_clock(setup, monkeypatch):
    """Another board (never provisioned from this store) answers with the real board's device id."""
    board, ports, db, _ = setup
    before = n_records(db)
    impostor = FakeBoard()
    impostor.configure()
    impostor.run_for(3 * 3600)
    ports.board = impostor
    for set_clock in (False, True):
        with pytest.raises(UserError, match=WIPED):
            run_sync(db, set_clock=set_clock)
    assert n_records(db) == before and impostor.synced() == 0


def test_impostor_reporting_the_right_key_id_without_the_key_is_refused(setup):
    """An impostor (modified firmware) says what the real board says, key id included: it cannot
    answer the host's nonce with the key."""
    board, ports, db, _ = setup
    real = board.server.identify()
    impostor = FakeBoard()
    impostor.fs.write("data/key", b"i" * 32)
    impostor.power_cut()
    impostor.configure()
    impostor.run_for(3600)
    orig = impostor.server.identify
    impostor.server.identify = lambda nonce=None: dict(orig(nonce), key_id=real["key_id"], key_store="se")
    ports.board = impostor
    with pytest.raises(UserError, match="cannot prove"):
        run_sync(db)
    assert n_records(db) == len({r["seq"] for r in Store(db).records(DEV)})
    assert impostor.synced() == 0


def test_unprovisioned_board_is_flagged_unauthenticated_everywhere(monkeypatch, tmp_path, capsys):
    from isolog import cli

    board = FakeBoard()
    use_fake_ports(monkeypatch, board)
    db = tmp_path / "store.sqlite3"
    ship = tmp_path / "ship.toml"
    ship.write_text(to_toml(shipment_doc()))
    done = configure_mod.configure(PORT, ship, db, set_clock=False)
    assert done.authenticated is False
    board.run_for(3 * 3600)
    result = run_sync(db)
    assert result.authenticated is False and any(n.startswith("unauthenticated") for n in result.notes)
    with Store(db) as st:
        ver = st.shipment_verification(shipment_doc()["shipment"]["id"])
    assert ver.summary().startswith("NOT AUTHENTICATED")
    assert cli.main(["status", PORT, "--once"]) == 0
    assert "NOT AUTHENTICATED" in capsys.readouterr().out


# --- keys in hardware (the ATECC608B secure element, boards/atecc.py) ---------------------------------


def test_key_read_from_the_flash_is_not_there(setup):
    """The courier copies every file off the flash of a board with a secure element: the key is
    in none of them (neither its bytes nor its hex), only its 4-byte id; the chip holds it."""
    board, ports, db, _ = setup
    committed(board)
    with Store(db) as st:
        key = st.current_key(DEV)
    assert key is not None and len(key) == 32
    assert board.se_chip.slot_key == key  # where it is: the chip's slot
    files = {path: bytes(data) for path, data in board.fs.files.items()}
    assert "data/key" not in files and files["data/key_id"] == record.key_id(key)
    for path, data in files.items():
        assert key not in data and key.hex().encode() not in data, path
    # and the chip gives it out to no command: reading its slot is refused
    se = board.secure_element()
    with pytest.raises(OSError, match="status 0x0f"):
        se.wake()
        se._command(0x02, 0x82, 4 << 3, b"", 0, 5)  # Read, data zone, 32 bytes, the key slot


def test_secure_element_removed_and_key_put_on_the_flash_is_refused(setup):
    """Downgrade: the board was provisioned with its key in the secure element; the chip is taken
    off and the key (even the right one, leaked) put in a flash file. The board then proves the
    key, but says it keeps it on the flash: refused loudly, nothing stored or acknowledged."""
    board, ports, db, _ = setup
    committed(board)
    before, synced = n_records(db), board.synced()
    with Store(db) as st:
        key = st.current_key(DEV)
    board.i2c.devices.clear()  # no chip on the bus any more
    board.fs.write("data/key", key)
    board.power_cut()
    board.run_for(1800)
    ident = board.server.identify()
    assert ident["key_store"] == "flash" and ident["key_id"] == record.key_id(key).hex()
    for set_clock in (False, True):
        with pytest.raises(UserError, match=WIPED) as err:
            run_sync(db, set_clock=set_clock)
        assert "on its flash" in str(err.value)
    assert n_records(db) == before and board.synced() == synced


def test_secure_element_failing_during_a_commit_loses_no_record(setup):
    """A bus glitch answered twice with a bad CRC (the driver retries once): the batch stays in
    RAM, counted as a write error, and the next commit writes it with a MAC that verifies."""
    board, ports, db, _ = setup
    store = board.store
    board.run_for(600)
    n, first, errors = store.count, store.next_seq, store.write_errors
    assert n > 0
    board.se_chip.garble_responses = 2
    assert store.commit() == 0 and store.count == n and store.write_errors == errors + 1
    assert store.commit() == n and store.next_seq == first + n
    result = run_sync(db)
    assert result.problems == [] and result.verification.startswith("verified")


def test_board_without_a_secure_element_is_never_reported_verified(monkeypatch, tmp_path, capsys):
    """A board with no secure element keeps working (provisioned, configured, synced, its chain
    checked), but its key is on its flash: configure, status, sync, the store's verification and
    the certificate's data_verification all say NOT AUTHENTICATED, never "verified" or pass."""
    from isolog import cli
    from isolog.compliance import engine

    board = FakeBoard(secure_element=False)
    use_fake_ports(monkeypatch, board)
    db = tmp_path / "store.sqlite3"
    provision.provision(PORT, "crate-8", db)
    with Store(db) as st:
        assert st.provisioning(DEV)["key_store"] == "flash"
        key = st.current_key(DEV)
    assert board.fs.read("data/key") == key  # where a board without the chip keeps it
    ship = tmp_path / "ship.toml"
    ship.write_text(to_toml(shipment_doc()))
    done = configure_mod.configure(PORT, ship, db, set_clock=False)
    assert done.authenticated is True and done.key_in_hardware is False
    board.run_for(3 * 3600)
    result = run_sync(db)
    assert result.problems == [] and result.key_in_hardware is False
    assert result.verification.startswith("NOT AUTHENTICATED") and "verified" not in result.verification
    assert any(n.startswith("unauthenticated") and "flash" in n for n in result.notes)
    ship_id = shipment_doc()["shipment"]["id"]
    with Store(db) as st:
        ver = st.shipment_verification(ship_id)
    assert ver.key == "key_on_flash" and ver.failed == 0 and ver.verified > 0
    assert ver.summary().startswith("NOT AUTHENTICATED") and "verified:" not in ver.summary()
    rec, ship_obj = load_for_check(db, ship_id)
    rule = engine.check(rec, ship_obj, verification=ver).rule("data_verification")
    assert rule.verdict == "unknown" and "flash" in rule.detail
    assert cli.main(["status", PORT, "--once"]) == 0
    assert "NOT AUTHENTICATED: this board keeps its device key on its flash" in capsys.readouterr().out


# --- never acknowledge unverified evidence ------------------------------------------------------------


def _unsynced_batch(board: FakeBoard, index: int) -> tuple[str, bytearray, int, int]:
    """(path, data, offset, size) of the index-th committed batch not yet acknowledged."""
    committed(board)
    path = board.segment_paths()[-1]
    data = bytearray(board.fs.read(path))
    fresh = [c for c in chunks_of(data) if c[1] == record.KIND_BATCH and batch_span(data, c[0])[0] >= board.synced()]
    off, _, size = fresh[index]
    return path, data, off, size


def _forge_batch(board: FakeBoard, index: int) -> tuple[int, int]:
    """A forger without the key edits a committed batch and fixes its CRC: (first seq, count)."""
    path, data, off, size = _unsynced_batch(board, index)
    first, count = batch_span(data, off)
    data[off + 4 + 6] ^= 0x01
    data[off : off + size] = recrc(data[off : off + size])
    board.fs.write(path, data)
    return first, count


def test_mac_failure_is_never_acknowledged_in_a_later_sync(setup):
    board, ports, db, _ = setup
    first, count = _forge_batch(board, 1)
    r1 = run_sync(db)
    assert any("NOT acknowledged" in p and "call QA" in p for p in r1.problems)
    assert board.synced() <= first
    board.run_for(4 * 3600)  # new, genuine records in new batches after the forged one
    r2 = run_sync(db)
    assert r2.verification.startswith("verified") or r2.problems  # what is new verifies...
    assert board.synced() <= first  # ...and still nothing from the forged range on is acknowledged
    assert any("NOT acknowledged" in p for p in r2.problems)


def test_damage_without_a_gap_is_never_acknowledged_in_a_later_sync(setup):
    """Bytes that are no chunk between two intact batches (no record missing, so no gap): damage
    all the same, and the segment is kept on the board."""
    board, ports, db, _ = setup
    path, data, off, size = _unsynced_batch(board, 1)
    first, _ = batch_span(data, off)
    data[off + size : off + size] = b"\xa5\x42\x10\x00" + bytes(20)  # junk after the batch
    board.fs.write(path, data)
    r1 = run_sync(db)
    assert any("damaged" in p for p in r1.problems)
    assert board.synced() <= first + 16
    board.run_for(4 * 3600)
    run_sync(db)
    assert board.synced() <= first + 16


def test_damage_is_never_acknowledged_in_a_later_sync(setup):
    board, ports, db, _ = setup
    path, data, off, size = _unsynced_batch(board, 1)
    first, _ = batch_span(data, off)
    data[off + size // 2] ^= 0xFF  # a flash error: CRC mismatch
    board.fs.write(path, data)
    run_sync(db)
    assert board.synced() <= first
    board.run_for(4 * 3600)
    run_sync(db)
    assert board.synced() <= first


# --- sequence numbers are never reused --------------------------------------------------------------


def test_damaged_tail_crc_does_not_make_the_board_reuse_sequence_numbers(setup):
    board, ports, db, _ = setup
    committed(board)
    issued = board.store.next_seq
    path = board.segment_paths()[-1]
    data = bytearray(board.fs.read(path))
    off, _, size = chunks_of(data)[-1]
    data[off + size - 1] ^= 0xFF  # the last batch's CRC
    board.fs.write(path, data)
    board.power_cut()
    assert board.store.next_seq >= issued


def test_copied_segment_does_not_make_the_board_reuse_sequence_numbers(setup):
    board, ports, db, _ = setup
    for _ in range(3):  # a segment per boot
        board.run_for(1800)
        committed(board)
        board.power_cut()
    board.run_for(1800)
    committed(board)
    issued = board.store.next_seq
    paths = board.segment_paths()
    assert len(paths) >= 3
    last = paths[-1]
    old = board.fs.read(paths[0])
    board.fs.remove(last)  # the newest segment replaced by a copy of an older one, under its name
    board.fs.write(last, old)
    board.power_cut()
    assert board.store.next_seq >= issued


# --- reads never wear the flash ---------------------------------------------------------------------


def test_list_every_minute_does_not_force_commits(monkeypatch):
    """An unauthenticated LIST (and STATUS, READ) once a minute: no more batches than without."""

    def batches_written(poll: bool) -> int:
        b = FakeBoard()
        b.configure()
        link, _ = link_to(b)
        for _ in range(6 * 60):
            b.run_for(60)
            if poll:
                link.list_segments(0)
                link.status()
        b.store.commit()
        return sum(1 for p in b.segment_paths() for c in chunks_of(b.fs.read(p)) if c[1] == record.KIND_BATCH)

    quiet, polled = batches_written(False), batches_written(True)
    assert polled == quiet, (polled, quiet)


def test_unsigned_commit_on_an_unprovisioned_board_is_rate_limited():
    b = FakeBoard()
    b.configure()
    link, _ = link_to(b)
    commits = 0
    for _ in range(60):
        b.run_for(60)
        commits += link.commit() > 0
    assert commits <= 60 * 60_000 // 900_000 + 1


# --- replay-proof commands --------------------------------------------------------------------------


def _signed(key: bytes, cmd: int, counter: int, challenge: bytes, body: bytes) -> bytes:
    c4 = struct.pack("<I", counter)
    return body + c4 + mac.request_mac(key, cmd, c4, fakes.DEVICE_ID, challenge, body)


def test_replayed_signed_request_is_refused(setup):
    """A signed ACK_ALARMS captured on the wire, sent again later (same boot, and after a reboot)."""
    board, ports, db, _ = setup
    key = board.app.key
    with Store(db) as st:
        provision.authorize(link := link_to(board)[0], st, link.identify())
        captured_challenge = link.signer.challenge
        link.acknowledge_alarms()
        counter = link.signer.counter
    body = _signed(key, frame.CMD_ACK_ALARMS, counter, captured_challenge, b"")
    board.run_for(60)  # later: no longer a host's retry of its last request
    fresh, _ = link_to(board)
    before = board.app.pending_flags
    with pytest.raises(BoardError) as err:
        fresh.request(frame.CMD_ACK_ALARMS | frame.AUTH, body)
    assert err.value.code in ("replayed", "bad_mac")
    board.power_cut()
    with pytest.raises(BoardError):
        link_to(board)[0].request(frame.CMD_ACK_ALARMS | frame.AUTH, body)
    assert board.app.pending_flags == before


def test_request_harvested_by_a_fake_device_is_refused_by_the_real_board(setup):
    """A fake device with the real device id reports a huge counter and its own challenge: the
    host keeps its own counter (never the board's), and what it signs for another challenge is
    refused by the real board."""
    board, ports, db, _ = setup
    key = board.app.key
    with Store(db) as st:
        counter = st.provisioning(DEV)["counter"]
    harvested = _signed(key, frame.CMD_SET_CLOCK, counter + 1, b"\x01" * 8, b'{"time_ms": 1000000000000}')
    link, _ = link_to(board)
    with pytest.raises(BoardError) as err:
        link.request(frame.CMD_SET_CLOCK | frame.AUTH, harvested)
    assert err.value.code == "bad_mac"
    assert board.app.clock_offset_ms + board.app.uptime_ms > 1_700_000_000_000


def test_board_reporting_a_huge_counter_does_not_steer_the_host(setup):
    board, ports, db, _ = setup
    board.fs.write("data/auth", b"4294967295")  # a board (or impostor) at the counter's end
    board.power_cut()
    with Store(db) as st:
        ours = st.provisioning(DEV)["counter"]
    # The board refuses the store's (lower) counter: a clear refusal, never a struct error.
    with pytest.raises(UserError, match="counter is ahead of this store"):
        run_sync(db, set_clock=True)
    with Store(db) as st:
        assert st.provisioning(DEV)["counter"] <= ours + 2


def test_counter_exhaustion_asks_for_a_new_key_and_rekeying_works(setup):
    board, ports, db, ship = setup
    with Store(db) as st, st.transaction() as tx:
        tx.execute("UPDATE device_auth SET counter = ? WHERE device = ?", (0xFFFFFFFF - 16, DEV))
    board.fs.write("data/auth", str(0xFFFFFFFF - 16).encode())
    board.power_cut()
    ship = ship.with_name("next.toml")  # the next trip: a shipment id names one trip
    ship.write_text(to_toml(shipment_doc(shipment__id="LU-TEST-0002")))
    why = "the last hour's records are not needed"  # the board holds them unsynced: forced, audited
    with pytest.raises(UserError, match="re-provision"):
        configure_mod.configure(PORT, ship, db, set_clock=False, force_reason=why)
    board.store.commit()
    provision.provision(PORT, "crate-7b", db, force=True)  # the re-key itself still has a counter
    with Store(db) as st:
        assert st.provisioning(DEV)["counter"] == 0
    configure_mod.configure(PORT, ship, db, set_clock=True, force_reason=why)


def test_exact_retry_is_answered_but_not_acted_on_again(setup):
    board, ports, db, _ = setup
    link, _ = link_to(board)
    with Store(db) as st:
        provision.authorize(link, st, link.identify())
        challenge = link.signer.challenge
        counter = st.next_counter(DEV, st.provisioning(DEV)["key_id"], 10**9)
    body = _signed(board.app.key, frame.CMD_ACK_ALARMS, counter, challenge, b"")
    link.request(frame.CMD_ACK_ALARMS | frame.AUTH, body)
    board.app.pending_flags = 0
    link.request(frame.CMD_ACK_ALARMS | frame.AUTH, body)  # the reply was lost: sent again
    assert board.app.pending_flags == 0  # not acknowledged twice


def test_every_accepted_state_change_is_audited_with_the_host_user(setup):
    board, ports, db, ship = setup
    configure_mod.acknowledge_alarms(PORT, db)
    run_sync(db, set_clock=True)
    with Store(db) as st:
        signed = [a for a in st.audit_trail(DEV) if a["action"] == "signed_request"]
        counters = [a["details"]["counter"] for a in signed]
    names = {a["details"]["command"] for a in signed}
    assert {"set_config", "ack_alarms", "set_clock", "ack_records", "commit"} <= names
    assert counters == sorted(counters) and len(set(counters)) == len(counters)
    assert all(a["host_user"] for a in signed)


# --- everything the verdict depends on is authenticated ---------------------------------------------


@pytest.mark.parametrize(
    "field,change",
    [
        ("cal_cpm_per_usv_h", lambda v: v * 10),
        ("dead_time_us", lambda v: v + 50),
        ("background_usv_h", lambda v: v + 1),
        ("dose_alarm_usv_h", lambda v: v * 100),
        ("temp_rules", lambda v: [[r[0], r[1] + 20] + r[2:] for r in v]),
    ],
)
def test_config_edited_on_the_board_fails_the_data_check_naming_the_field(setup, field, change):
    """The courier edits the board's configuration file (no key needed) and the board restarts:
    it signs the edited values into its log; the host compares them with what it configured."""

    board, ports, db, _ = setup
    cfg = board_config(board)
    cfg[field] = change(cfg[field])
    board.fs.write("data/config.json", json.dumps(cfg).encode())
    board.power_cut()
    edited_from = board.store.next_seq  # what the board logs from now on is under the edited values
    board.run_for(3 * 3600)
    result = run_sync(db)
    assert any(field in p for p in result.problems), result.problems
    assert board.synced() <= edited_from  # nothing logged under the edited configuration is acknowledged
    ship_id = shipment_doc()["shipment"]["id"]
    with Store(db) as st:
        ver = st.shipment_verification(ship_id)
    assert any(d.split(": ")[1] == field for d in ver.config_differences), ver.config_differences
    from isolog.compliance import engine

    rec, ship_obj = load_for_check(db, ship_id)
    res = engine.check(rec, ship_obj, verification=ver)
    rule = res.rule("data_verification")
    assert rule.verdict == "fail" and field in rule.detail


# --- a bounded fuzz of signed and unsigned requests -------------------------------------------------


def test_fuzzed_signed_and_unsigned_requests_change_nothing_without_a_fresh_signature(setup):
    board, ports, db, _ = setup
    key = board.app.key
    link, _ = link_to(board)
    rng = random.Random(1010)
    cfg_before = board_config(board)
    synced, clock = board.synced(), board.app.clock_offset_ms
    counter_on_board = board.server.auth_counter
    kinds = {}
    for i in range(2000):
        base = rng.choice(frame.STATE_CHANGING)
        body = rng.choice(
            [b"", b"{}", b'{"time_ms": 946684800001}', json.dumps(cfg_before).encode(), rng.randbytes(30)]
        )
        mode = rng.choice(["plain", "short", "random_mac", "wrong_key", "old_challenge", "old_counter", "wrong_device"])
        kinds[mode] = kinds.get(mode, 0) + 1
        ch = board.server.challenge
        c = counter_on_board + rng.randint(1, 5)
        if mode == "plain":
            cmd, payload = base, body
        elif mode == "short":
            cmd, payload = base | frame.AUTH, rng.randbytes(rng.randrange(20))
        elif mode == "random_mac":
            cmd, payload = base | frame.AUTH, body + struct.pack("<I", c) + rng.randbytes(16)
        elif mode == "wrong_key":
            cmd, payload = (
                base | frame.AUTH,
                body
                + struct.pack("<I", c)
                + mac.request_mac(b"w" * 32, base, struct.pack("<I", c), fakes.DEVICE_ID, ch, body),
            )
        elif mode == "old_challenge":
            cmd, payload = base | frame.AUTH, _signed(key, base, c, rng.randbytes(8), body)
        elif mode == "old_counter":
            cmd, payload = base | frame.AUTH, _signed(key, base, rng.randint(0, counter_on_board), ch, body)
        else:
            c4 = struct.pack("<I", c)
            cmd, payload = base | frame.AUTH, body + c4 + mac.request_mac(key, base, c4, b"\x99" * 8, ch, body)
        with pytest.raises(BoardError) as err:
            link.request(cmd, payload)
        assert err.value.code in ("unauthenticated", "bad_mac", "replayed", "bad_request"), err.value
    # nothing changed
    assert board_config(board) == cfg_before and board.synced() == synced
    assert board.app.clock_offset_ms == clock and board.server.auth_counter == counter_on_board
    assert len(kinds) == 7
    # unsigned reads kept answering throughout, and a correctly signed request still works
    with Store(db) as st:
        provision.authorize(link, st, link.identify())
        link.set_clock(1_800_000_000_000)
    assert board.server.auth_counter > counter_on_board


def test_store_from_before_device_auth_keeps_working(setup):
    """A store written before device_auth (keys in device_keys only): migrated on open, the board's
    counter taken once (audited), then kept by the store."""
    board, ports, db, _ = setup
    with Store(db) as st, st.transaction() as tx:  # as such a store was: schema version 1, step 1 without device_auth
        tx.execute("DROP TABLE device_auth")
        tx.execute("ALTER TABLE sync_sessions DROP COLUMN host")
        # and without what the later steps added (schema steps 3-5), which opening it adds again
        for table in ("shipment_events", "containers", "web_sessions", "web_signatures", "web_certificates"):
            tx.execute(f"DROP TABLE {table}")
        for table in ("web_verdicts", "web_settings", "web_users"):
            tx.execute(f"DROP TABLE {table}")
        tx.execute("ALTER TABLE shipments DROP COLUMN container")
        tx.execute("ALTER TABLE shipments DROP COLUMN product")
        tx.execute("UPDATE schema_version SET version = 1")
    with Store(db) as st:
        prov = st.provisioning(DEV)
        assert prov is not None and prov["counter"] is None and prov["key_id"] == record.key_id(board.app.key).hex()
    r = run_sync(db, set_clock=True)
    # Such a store never recorded where the board keeps its key (provisioning is the only trusted
    # moment to learn it): its log is reported as not authenticated, never "verified", until the
    # board is provisioned again.
    assert r.authenticated and r.problems == [] and not r.key_in_hardware
    assert r.verification.startswith("NOT AUTHENTICATED (device key on the board's flash")
    with Store(db) as st:
        assert st.provisioning(DEV)["counter"] == board.server.auth_counter
        assert [a for a in st.audit_trail(DEV) if a["action"] == "counter_adopted"]
