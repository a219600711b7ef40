"""isolog.board.sync through a fake cable to the firmware's own protocol server and log store
(tests/fakes.py), into a temporary store, CPython only: a full sync field by field, idempotent,
resumable after the cable is pulled at many points, damage reported and not acknowledged, the
MAC chain checked with the provisioned key."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import fakes
from fakes import CONFIG, FakeBoard, batch_span, chunks_of, flash_records, use_fake_ports
from isolog.board import provision
from isolog.board import sync as sync_mod
from isolog.board.link import LinkError
from isolog.store import Store

PORT = "FAKE0"
EPOCH0 = datetime(2026, 1, 1, tzinfo=timezone.utc)  # fakes.START_EPOCH_MS
assert int(EPOCH0.timestamp() * 1000) == fakes.START_EPOCH_MS


def run_sync(db, **kw):
    return sync_mod.sync(PORT, db=db, set_clock=kw.pop("set_clock", False), **kw)


def expected_records(n: int, boot: int = 1, t_config_ms: int = 0) -> list[dict]:
    """The records a board configured at t_config_ms logs in its first n minutes, from the fake
    counter (fakes.default_counts), the fixed temperature and the configuration."""
    out = []
    c0 = fakes.default_counts(t_config_ms)
    for k in range(n):
        t = t_config_ms + (k + 1) * 60_000
        ic = fakes.default_counts(t) - fakes.default_counts(t - 60_000)
        m = ic / 60  # observed counts per second, dead-time corrected (non-paralyzable), to uSv/h
        true = m / (1 - m * CONFIG["dead_time_us"] * 1e-6)
        dose = max(0.0, true * 60 / CONFIG["cal_cpm_per_usv_h"] - CONFIG["background_usv_h"])
        out.append(
            {
                "device": fakes.DEVICE_ID.hex(),
                "seq": k,
                "boot": boot,
                "time": (EPOCH0 + timedelta(milliseconds=t)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "uptime_s": t / 1000,
                "counts": fakes.default_counts(t) - c0,
                "interval_s": 60.0,
                "interval_counts": ic,
                "dose_rate_usv_h": pytest.approx(dose, abs=1e-6),
                "temperature_c": 4.25,
                "flags": ["boot", "time_valid"] if k == 0 else ["time_valid"],
            }
        )
    return out


def stored(db) -> list[dict]:
    with Store(db) as st:
        recs = list(st.records(fakes.DEVICE_ID.hex()))
    for r in recs:
        r["flags"] = sorted(r["flags"])
    return recs


def stored_tuples(db) -> list[tuple]:
    """The store's records in the firmware's record tuple order, to compare with the flash."""
    with Store(db) as st:
        return [
            (r["seq"], r["boot"], r["uptime_s"], r["counts"], r["interval_s"], r["interval_counts"], r["temperature_c"])
            for r in st.records(fakes.DEVICE_ID.hex())
        ]


def board_tuples(board: FakeBoard) -> list[tuple]:
    return [
        (seq, boot, up / 1000, counts, iv / 1000, ic, temp)
        for seq, boot, _t, up, counts, iv, ic, temp, _f in flash_records(board)
    ]


def contiguous_from_zero(db) -> int:
    """The first sequence number from 0 not in the store, read through a new connection (what
    reached the disk)."""
    with Store(db) as st:
        seqs = [r[0] for r in st.db.execute("SELECT seq FROM records ORDER BY seq")]
    n = 0
    while n < len(seqs) and seqs[n] == n:
        n += 1
    return n


@pytest.fixture()
def board() -> FakeBoard:
    b = FakeBoard()
    b.configure()
    b.run_for(5 * 3600)  # 300 records, the last ones still in RAM
    return b


@pytest.fixture()
def ports(monkeypatch, board):
    return use_fake_ports(monkeypatch, board)


def test_full_sync_stores_every_record_field_by_field(board, ports, tmp_path, store_db):
    db = store_db
    result = run_sync(db)
    assert result.problems == []
    assert result.records_added == 300
    assert stored(db) == expected_records(300)
    assert result.acked_upto == 300 and result.next_seq == 300
    assert board.synced() == 300  # the board was told, and keeps it on flash
    assert (
        result.verification
        == "NOT AUTHENTICATED (board never provisioned): verified: 300 records carry an intact MAC chain"
    )
    with Store(db) as st:
        assert st.device(fakes.DEVICE_ID.hex())["next_seq"] == 300
        (session,) = st.sessions()
        assert (session["status"], session["records_added"], session["acked_upto"]) == ("ok", 300, 300)
        acks = [a for a in st.audit_trail() if a["action"] == "ack_records"]
        assert [a["details"]["upto"] for a in acks] == [300]
        # the raw chunks are kept as evidence: together they are the segment file
        seg = board.segment_paths()[0]
        data = b"".join(bytes(r[0]) for r in st.db.execute('SELECT data FROM chunks ORDER BY "offset"'))
        assert data == board.fs.read(seg)


def test_second_sync_adds_nothing(board, ports, tmp_path, store_db):
    db = store_db
    run_sync(db)
    again = run_sync(db)
    assert again.records_added == 0 and again.bytes_read == 0 and again.problems == []
    assert stored(db) == expected_records(300)
    with Store(db) as st:
        assert [s["status"] for s in st.sessions()] == ["ok", "ok"]
        assert st.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == len(
            chunks_of(board.fs.read(board.segment_paths()[0]))
        )


def test_sync_keeps_the_boards_battery_and_storage(board, ports, tmp_path, store_db):
    """The STATUS the sync reads as the board arrives: the fake board's 3.9 V, the share of its
    flash blocks in use (fakes.MemFS counts them) before the sync committed the batch in RAM, and
    the percent and days left `isolog status --json` shows for the same reply."""
    blocks_used = board.fs.used_blocks() * 100 // board.fs.blocks
    run_sync(store_db)
    with Store(store_db) as st:
        got = st.device_status(fakes.DEVICE_ID.hex())
    assert got is not None
    assert got["battery_v"] == 3.9 and got["storage_used_percent"] == blocks_used
    assert (got["storage_low"], got["storage_full"]) == (0, 0)
    assert got["session"] == 1


def test_the_status_isolog_status_shows_is_what_sync_keeps(board, ports, tmp_path, store_db, capsys):
    import json

    from isolog import cli

    assert cli.main(["status", PORT, "--once", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run_sync(store_db)
    with Store(store_db) as st:
        got = st.device_status(fakes.DEVICE_ID.hex())
    assert got is not None
    assert (got["battery_percent"], got["battery_days_left"]) == (shown["battery_percent"], shown["battery_days_left"])
    assert 0 < got["battery_percent"] < 100 and got["battery_days_left"] > 0


def test_next_sync_takes_only_the_new_records(board, ports, tmp_path, store_db):
    db = store_db
    run_sync(db)
    board.run_for(2 * 3600)
    result = run_sync(db)
    assert result.problems == []
    assert result.records_added == 120
    assert stored(db) == expected_records(420)
    assert board.synced() == 420


def test_records_of_several_boots_and_segments(board, ports, tmp_path, store_db):
    board.power_cut()  # the records in RAM are lost; the next boot logs into a new segment
    board.configure()
    board.run_for(3600)
    board.power_cut()
    board.configure()
    board.run_for(1800)
    assert len(board.segment_paths()) == 3
    db = store_db
    result = run_sync(db)
    assert result.problems == []
    on_flash = board_tuples(board)
    assert [r[0] for r in on_flash] == list(range(len(on_flash)))
    assert stored_tuples(db) == on_flash
    assert {r["boot"] for r in stored(db)} == {1, 2, 3}
    assert board.synced() == len(on_flash)


def test_sync_sets_the_clock_and_audits_the_boards_time(board, ports, tmp_path, store_db):
    db = store_db
    board_ms = fakes.START_EPOCH_MS + board.uptime_ms
    run_sync(db, set_clock=True)
    with Store(db) as st:
        (entry,) = [a for a in st.audit_trail() if a["action"] == "clock_set"]
    assert entry["details"]["board_before_ms"] == board_ms
    assert abs(board.rtc_ms() - entry["details"]["host_ms"]) < 1000


def test_a_board_whose_log_restarted_is_not_acknowledged(board, ports, tmp_path, store_db):
    db = store_db
    run_sync(db)
    fresh = FakeBoard()  # same device id, flash erased
    fresh.configure()
    fresh.run_for(600)
    ports.board = fresh
    result = run_sync(db)
    assert any("log restarted" in p for p in result.problems)
    assert result.records_added == 0 and fresh.synced() == 0


# --- a pulled cable ------------------------------------------------------------------------------


def check_after_a_cut(board: FakeBoard, db) -> None:
    """What a failed sync leaves: only records of the board, unchanged; nothing acknowledged
    that is not on the store's disk."""
    on_flash = {r[0]: r for r in board_tuples(board)}
    for r in stored_tuples(db):
        assert r == on_flash[r[0]]
    assert board.synced() <= contiguous_from_zero(db)


_THREE: list[FakeBoard] = []


def three_segment_board() -> FakeBoard:
    """Three boots of logging, then the board powered up again on that flash (a fourth boot):
    made once, cloned for each use."""
    if not _THREE:
        _THREE.append(_three_segments())
    return _THREE[0].clone()


def _three_segments() -> FakeBoard:
    b = FakeBoard()
    b.configure()
    b.run_for(4 * 3600)
    b.power_cut()
    b.configure()
    b.run_for(2 * 3600)
    b.power_cut()
    b.configure()
    b.run_for(3600)
    return b


def test_resumes_after_the_cable_is_pulled_at_many_points(monkeypatch, tmp_path):
    """A fresh board and store for each cut point, spread over every byte position of a whole sync
    in both directions (a cut while the board answers, a cut while the host sends); then a sync
    on a good cable completes it: the store equals the board's log."""
    ref = three_segment_board()
    ports = use_fake_ports(monkeypatch, ref)
    run_sync(tmp_path / "ref.sqlite3")
    to_host, to_board = ports.cables[0].bytes_to_host, ports.cables[0].bytes_to_board
    expected = board_tuples(ref)
    assert [r[0] for r in expected] == list(range(len(expected))) and len(expected) > 350  # RAM lost at power cuts
    assert to_host > 4000
    cuts = [("to_host", n) for n in range(1, to_host + 1, max(1, to_host // 30))] + [("to_host", to_host - 1)]
    cuts += [("to_board", n) for n in range(1, to_board + 1, max(1, to_board // 10))]
    failed = 0
    for i, (direction, at) in enumerate(cuts):
        board = three_segment_board()
        ports.board = board
        db = tmp_path / f"cut{i}.sqlite3"
        ports.serial_kw = {f"cut_{direction}": at, "read_raises": bool(i % 2)}
        try:
            run_sync(db)
        except LinkError as exc:
            failed += 1
            assert PORT in str(exc)
        check_after_a_cut(board, db)
        ports.serial_kw = {}
        result = run_sync(db)
        assert result.problems == [], (direction, at)
        assert stored_tuples(db) == expected, (direction, at)
        assert board.synced() == len(expected)
        with Store(db) as st:
            statuses = [s["status"] for s in st.sessions()]
        assert statuses[-1] == "ok"
    assert failed >= len(cuts) - 2  # nearly every cut lands inside the sync (the last bytes: after the ACK)


def test_resumes_through_repeated_cuts_while_the_board_keeps_logging(monkeypatch, tmp_path, store_db):
    board = three_segment_board()
    board.run_for(20 * 3600)  # about 12 KiB in the last segment
    ports = use_fake_ports(monkeypatch, board)
    db = store_db
    attempts = 0
    while True:
        attempts += 1
        assert attempts < 200, "no progress"
        # a sync needs IDENTIFY, LIST and one READ piece (2 KiB) through to make progress
        ports.serial_kw = {"cut_to_host": 2600 + 331 * (attempts % 7)}
        try:
            result = run_sync(db)
        except LinkError:
            check_after_a_cut(board, db)
            board.run_for(60 * (attempts % 3))
            continue
        break
    assert attempts > 3
    ports.serial_kw = {}
    result = run_sync(db)
    assert result.problems == []
    assert stored_tuples(db) == board_tuples(board)
    assert board.synced() == len(board_tuples(board))


# --- damage and forgery on the board's flash ------------------------------------------------------


def batches(data: bytes | bytearray) -> list[tuple[int, int]]:
    return [(off, size) for off, kind, size in chunks_of(data) if kind == 0x42]


def test_damage_in_a_segment_is_reported_and_not_acknowledged(board, ports, tmp_path, store_db):
    board.store.commit()
    path = board.segment_paths()[0]
    data = bytearray(board.fs.read(path))
    off, size = batches(data)[3]
    first, count = batch_span(data, off)
    data[off + size // 2] ^= 0xFF  # a flash error: the chunk's CRC no longer checks out
    board.fs.write(path, data)
    db = store_db
    result = run_sync(db)
    assert f"/{path}: bytes {off}..{off + size - 1} damaged (CRC mismatch): skipped" in result.problems
    assert any(f"records {first}..{first + count - 1} are missing" in p for p in result.problems)
    assert result.acked_upto == first and board.synced() == first
    seqs = [r["seq"] for r in stored(db)]
    assert seqs == [s for s in range(300) if not first <= s < first + count]
    with Store(db) as st:
        assert st.db.execute('SELECT "offset", length FROM damage').fetchall() == [(off, size)]
        assert st.sessions()[-1]["status"] == "problems"
    again = run_sync(db)  # still missing, still not acknowledged past the damage
    assert any(f"records {first}..{first + count - 1} are missing" in p for p in again.problems)
    assert board.synced() == first


def provisioned(monkeypatch, tmp_path, db):
    """A board provisioned from a new store, then logging 3 hours with its key."""
    board = FakeBoard()
    board.configure()
    board.run_for(600)
    ports = use_fake_ports(monkeypatch, board)
    run_sync(db)  # provisioning is refused while records are unsynced
    provision.provision(PORT, "crate-7", db)
    board.run_for(3 * 3600)
    return board, ports, db


def test_mac_chain_verified_with_the_provisioned_key(monkeypatch, tmp_path, store_db):
    board, ports, db = provisioned(monkeypatch, tmp_path, store_db)
    assert board.app.key and len(board.se_chip.slot_key) == 32  # the key is in the secure element
    with Store(db) as st:
        assert st.current_key(fakes.DEVICE_ID.hex()) == board.se_chip.slot_key
    result = run_sync(db)
    assert result.problems == []
    assert result.records_added == 180
    assert result.verification == "verified: 180 records carry an intact MAC chain"
    assert board.synced() == 190  # the ACK was signed with the key: a provisioned board takes no other
    with Store(db) as st:
        check = st.verify(fakes.DEVICE_ID.hex())
    assert (check.verified, check.failed, check.unverified) == (190, 0, 0)


def test_forged_chunk_is_caught_and_nothing_acknowledged(monkeypatch, tmp_path, store_db):
    board, ports, db = provisioned(monkeypatch, tmp_path, store_db)
    board.store.commit()
    path = board.segment_paths()[-1]
    data = bytearray(board.fs.read(path))
    off, size = batches(data)[2]
    first, count = batch_span(data, off)
    # A forger without the key changes the boot number of a batch (payload byte 6) and fixes the
    # CRC (over kind..payload, docs in firmware/record.py): the chunk checks out, its MAC cannot.
    data[off + 4 + 6] ^= 0x01
    from binascii import crc32

    data[off + size - 4 : off + size] = (crc32(data[off + 1 : off + size - 4]) & 0xFFFFFFFF).to_bytes(4, "little")
    board.fs.write(path, data)
    before = board.synced()
    result = run_sync(db)
    assert any(f"records {first}..{first + count - 1} fail the MAC check" in p for p in result.problems)
    assert any(f"records from {first} on are NOT acknowledged" in p and "call QA" in p for p in result.problems)
    assert result.verification.startswith("NOT VERIFIED")
    assert before < board.synced() == first  # the verified records before the forgery only
