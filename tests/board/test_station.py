"""The sync station (board/station.py) against virtual boards plugged in (started) and unplugged
(closed) while it watches in a thread: it syncs a new board, checks its shipment and writes the
certificate; a board unplugged mid-sync is one Failed event and the station goes on; plugging it in
again syncs the rest. Needs the virtual board (MicroPython unix port)."""

from __future__ import annotations

import tempfile
import threading
import time

import pytest

from isolog import cli
from isolog.board import station
from sim_helpers import read_log

pytestmark = pytest.mark.sim_only

SHIP_ID = "LU-2026-11-0042"  # the built-in shipment (scenarios/shipments/lu177-lutathera.toml)
NAME = "container-17"


@pytest.fixture
def private_registry(tmp_path, monkeypatch):
    """Virtual boards register in the temporary folder: give this test its own, so the station
    sees this test's boards only (not other runs' on the same machine)."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def _configured_board(tmp_path, db, **kw):
    """A virtual board provisioned and configured with the built-in shipment, then the rest of its 12 hours logged
    (hold_at_end: the clock stops at the end and the board stays up); unplugged (closed)."""
    from isolog.sim.launcher import VirtualBoard
    from sim_helpers import SHIPMENT, scenario

    sc = scenario(duration="12h")
    sc["board_config"] = None
    # 15,000 times real time: the 12 h take about 3 s, and the configuration lands early in them
    b = VirtualBoard(sc, tmp_path / "flash.img", speed=15_000, hold_at_end=True, **kw)
    b.start()
    assert cli.main(["provision", b.port, "--name", NAME, "--db", str(db)]) == 0
    seen = len(b.events)
    assert cli.main(["configure", b.port, str(SHIPMENT), "--db", str(db), "--no-clock"]) == 0
    deadline = time.monotonic() + 20
    while not any(e.kind == "end" for e in b.events[seen:]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(e.kind == "end" for e in b.events[seen:]), "the board did not log to its end"
    return b, sc


class Watcher:
    """The station watching in a thread; its events in a list."""

    def __init__(self, db, out):
        self.events: list = []
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=station.watch, args=(db, out, self.events.append), kwargs={"stop": self.stop, "poll_s": 0.2}
        )
        self.thread.start()

    def wait_for(self, kind, n=1, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [e for e in self.events if isinstance(e, kind)]
            if len(got) >= n:
                return got[n - 1]
            time.sleep(0.05)
        raise AssertionError(f"no {kind.__name__} #{n} in {timeout} s: {self.events}")

    def close(self):
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def test_station_syncs_checks_and_certifies_a_board_plugged_in(tmp_path, private_registry):
    db = tmp_path / "s.sqlite3"
    out = tmp_path / "certs"
    board, _ = _configured_board(tmp_path, db)
    w = Watcher(db, out)
    try:
        plugged = w.wait_for(station.Plugged)
        assert plugged.port == board.port
        done = w.wait_for(station.Done, timeout=40)
    finally:
        w.close()
        board.close()
    assert done.port == board.port
    assert done.container == NAME
    assert done.shipment == SHIP_ID
    assert done.device == board.device_id
    # the store holds every record of the board's flash (read from the image, not over the link)
    log = read_log(tmp_path / "flash.img")
    assert done.sync.next_seq == log.records[-1]["seq"] + 1
    assert done.sync.records_added >= 60  # at least an hour logged after configure
    assert done.verdict in ("pass", "warn")  # the steady scenario stays within every limit
    assert done.next_step == station.NEXT_STEPS[done.verdict]
    assert done.certificate == out / f"{SHIP_ID}.pdf"
    assert done.certificate.read_bytes()[:5] == b"%PDF-"
    assert done.state == "checked"
    assert any(isinstance(e, station.Progress) for e in w.events)
    # the board unplugged: forgotten
    assert not [e for e in w.events if isinstance(e, station.Failed)], w.events


def test_a_board_unplugged_mid_sync_is_one_line_and_plugging_it_again_syncs_the_rest(tmp_path, private_registry):
    from isolog.sim.launcher import VirtualBoard
    from isolog.store import Store

    db = tmp_path / "s.sqlite3"
    out = tmp_path / "certs"
    # a slow link (20 KB/s each way), so the cable is pulled while the records flow
    board, sc = _configured_board(tmp_path, db, link_rate=20_000)
    w = Watcher(db, out)
    again = None
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
            isinstance(e, station.Progress) and e.progress.bytes > 0 for e in w.events
        ):
            time.sleep(0.01)
        board.close()  # unplugged mid-sync
        failed = w.wait_for(station.Failed)
        gone = w.wait_for(station.Gone)
        assert failed.port == gone.port == board.port
        assert "\n" not in failed.message and failed.message
        assert not [e for e in w.events if isinstance(e, station.Done)]
        with Store(db) as st:
            (device,) = [d["id"] for d in st.devices()]
            before = sum(1 for _ in st.records(device))
        assert before > 0  # the cut came after a commit (the sync commits every 0.5 s)
        log = read_log(tmp_path / "flash.img")
        # plugged in again: the same board (its flash), its clock at the scenario's end (it holds,
        # logging no more); the sync goes on where the cut left it
        again = VirtualBoard(sc, tmp_path / "flash.img", speed=0, hold_at_end=True, firmware="keep")
        again.t0_s = 12 * 3600.0
        again.start()
        done = w.wait_for(station.Done, timeout=30)
    finally:
        w.close()
        if again is not None:
            again.close()
        board.close()
    assert done.port == again.port
    assert done.device == device
    assert done.shipment == SHIP_ID
    assert done.certificate is not None and done.certificate.read_bytes()[:5] == b"%PDF-"
    # the second sync read only what the first did not store, and the store now holds the whole log
    assert done.sync.records_added == len(log.records) - before
    assert done.sync.next_seq == log.records[-1]["seq"] + 1
    assert [type(e).__name__ for e in w.events].count("Failed") == 1


def test_a_board_without_a_shipment_is_synced_and_sent_to_the_dispatch_desk(tmp_path, private_registry):
    from isolog.sim.launcher import VirtualBoard
    from sim_helpers import scenario

    db = tmp_path / "s.sqlite3"
    sc = scenario(duration="1h")
    sc["board_config"] = None
    b = VirtualBoard(sc, tmp_path / "flash.img", speed=0, hold_at_end=True)
    b.start()
    try:
        assert cli.main(["provision", b.port, "--name", NAME, "--db", str(db)]) == 0
        events: list = []
        done = station.watch(db, tmp_path / "certs", events.append, once=True, poll_s=0.2)
    finally:
        b.close()
    assert isinstance(done, station.Done) and events[-1] is done
    assert (done.container, done.shipment, done.verdict, done.certificate) == (NAME, None, None, None)
    assert done.next_step == station.NEXT_NO_SHIPMENT
    assert not (tmp_path / "certs").exists()
