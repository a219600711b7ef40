"""Several desks on one store (SQLite file, or one PostgreSQL database shared by stations): two
syncs of the same board at once cannot both win, and two stations syncing different boards see
each other's shipments. Boards are tests/fakes.py's FakeBoard (the firmware's own code), each
behind its own port name."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

import fakes
from fakes import FakeBoard, FakeSerial
from isolog.board import configure as configure_mod
from isolog.board import link as link_mod
from isolog.board import provision as provision_mod
from isolog.board import sync as sync_mod
from isolog.errors import UserError
from isolog.store import Store


def plug(monkeypatch, boards: dict[str, FakeBoard]) -> None:
    """Each port name its own board (fakes.use_fake_ports gives one board to every port)."""
    real = link_mod.Link

    def open_port(port: str, *args, **kwargs):
        return real(port, timeout_s=0.05, retries=2, serial_obj=FakeSerial(boards[port], port))

    for mod in (link_mod, sync_mod, provision_mod, configure_mod):
        monkeypatch.setattr(mod, "Link", open_port)


def test_two_syncs_of_the_same_board_at_once_cannot_both_win(monkeypatch, store_db):
    """The same board (its log and device id: a clone of its flash) synced from two desks at the
    same moment: the first holds the board until it ends; the second is refused before it stores
    anything, says so in one line, and its session says why."""
    board = FakeBoard()
    board.configure()
    board.run_for(5 * 3600)  # 300 records
    twin = board.clone()
    plug(monkeypatch, {"DESK-A": board, "DESK-B": twin})
    inside = threading.Event()  # desk A is reading the board
    b_done = threading.Event()
    results: dict[str, object] = {}

    def hold(progress) -> None:
        inside.set()
        b_done.wait(30)  # desk A stays in the middle of its sync while desk B tries

    def desk_a() -> None:
        try:
            results["A"] = sync_mod.sync("DESK-A", db=store_db, progress=hold, set_clock=False)
        except BaseException as exc:  # reported to the test below
            results["A"] = exc

    a = threading.Thread(target=desk_a)
    a.start()
    try:
        assert inside.wait(30), "desk A never started reading"
        with pytest.raises(UserError) as refused:
            sync_mod.sync("DESK-B", db=store_db, set_clock=False)
    finally:
        b_done.set()
        a.join(60)
    device = fakes.DEVICE_ID.hex()
    assert f"board {device} is being synced by another" in str(refused.value)
    assert "\n" not in str(refused.value)
    won = results["A"]
    assert isinstance(won, sync_mod.SyncResult), won
    assert won.records_added == 300 and won.acked_upto == 300
    assert board.synced() == 300 and twin.synced() == 0  # only the winner's board was acknowledged
    with Store(store_db) as st:
        assert st.count_records(device) == 300
        assert st.device(device)["next_seq"] == 300
        statuses = sorted(s["status"].split(":")[0] for s in st.sessions())
        assert statuses == ["failed", "ok"]
        acks = [a["details"]["upto"] for a in st.audit_trail() if a["action"] == "ack_records"]
        assert acks == [300]
    # once desk A is done, desk B may sync the board: nothing new, nothing twice
    again = sync_mod.sync("DESK-B", db=store_db, set_clock=False)
    assert again.records_added == 0 and again.next_seq == 300


def test_two_stations_on_one_postgresql_database_sync_different_boards_and_see_each_others_shipments(
    monkeypatch, tmp_path, pg_server, shipment_file
):
    """Station 1 and station 2: two processes' worth of Store objects on the same URL. Each
    provisions, configures and syncs its own board; each then lists both shipments, reads the
    other's records, and checks the other's shipment."""
    url = pg_server.new_database("isolog_stations")
    one = FakeBoard(device_id=bytes.fromhex("15010c00000000a1"))
    two = FakeBoard(device_id=bytes.fromhex("15010c00000000b2"))
    plug(monkeypatch, {"ST1": one, "ST2": two})
    ships = {"ST1": "LU-ST1-0001", "ST2": "LU-ST2-0001"}
    for port, board in (("ST1", one), ("ST2", two)):
        provision_mod.provision(port, f"crate-{port}", url)
        path = shipment_file(shipment__id=ships[port])
        configure_mod.configure(port, path, url, set_clock=False)
        board.run_for(2 * 3600)  # 120 records each
        r = sync_mod.sync(port, db=url, set_clock=False)
        assert r.records_added == 120 and r.problems == [], r.problems
    with Store(url) as station1, Store(url) as station2:
        for st in (station1, station2):
            got = {(s["id"], s["device"]) for s in st.shipments()}
            assert got == {(ships["ST1"], one.id.hex()), (ships["ST2"], two.id.hex())}
        # station 1 reads station 2's board and the other way round
        assert station1.count_records(two.id.hex()) == 120 == station2.count_records(one.id.hex())
        # the keys live in the store: either station holds both boards' keys
        assert station1.current_key(two.id.hex()) == bytes(two.se_chip.slot_key)
        assert station2.current_key(one.id.hex()) == bytes(one.se_chip.slot_key)
    # a third process on the same URL (a desk's command line) lists both stations' shipments
    isolog = str(Path(sys.executable).with_name("isolog"))
    listed = subprocess.run([isolog, "export", "--list", "--db", url], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    for port, board in (("ST1", one), ("ST2", two)):
        assert f"(board {board.id.hex()}), a fake: 120 records" in listed.stdout
        assert f"  shipment {ships[port]}: configured " in listed.stdout
    from isolog.store import load_for_check

    rec, ship = load_for_check(url, ships["ST2"])
    assert len(rec.seq) == 120 and ship.id == ships["ST2"]


def test_a_sync_left_running_by_a_desk_that_vanished_is_marked_abandoned(monkeypatch, pg_server):
    """PostgreSQL: a desk that crashed mid-sync leaves its session "running" but holds no lock any
    more (its connection is gone): the next sync of that board takes it and marks it abandoned."""
    url = pg_server.new_database()
    board = FakeBoard()
    board.configure()
    board.run_for(3600)
    plug(monkeypatch, {"DESK-A": board})
    device = board.id.hex()
    crashed = Store(url)
    sid = crashed.start_session("DESK-A")
    crashed.claim_device(device, sid)
    crashed.db.conn.close()  # the desk vanishes: no release, no session end
    r = sync_mod.sync("DESK-A", db=url, set_clock=False)
    assert r.records_added == 60
    with Store(url) as st:
        assert [(s["id"], s["status"]) for s in st.sessions()] == [(sid, "abandoned"), (sid + 1, "ok")]
