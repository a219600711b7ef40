"""The sync station (board/station.py) against virtual boards plugged in (started) and unplugged
(closed) while it watches in a thread: it syncs a new board, checks its shipment and writes the
certificate; a board unplugged mid-sync is one Failed event and the station goes on; plugging it in
again syncs the rest. Needs the virtual board (MicroPython unix port)."""

from __future__ import annotations

import tempfile
import threading
import time

import pytest

from compliance_helpers import template_config
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

    def __init__(self, db, out, sim_dir, **kw):
        self.events: list = []
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=station.watch,
            args=(db, out, self.events.append),
            kwargs={"stop": self.stop, "poll_s": 0.2, "sim_dir": sim_dir, **kw},
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
    w = Watcher(db, out, tmp_path)
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
    w = Watcher(db, out, tmp_path)
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
        done = station.watch(db, tmp_path / "certs", events.append, once=True, poll_s=0.2, sim_dir=tmp_path)
    finally:
        b.close()
    assert isinstance(done, station.Done) and events[-1] is done
    assert (done.container, done.shipment, done.verdict, done.certificate) == (NAME, None, None, None)
    assert done.next_step == station.NEXT_NO_SHIPMENT
    assert not (tmp_path / "certs").exists()


def _provisioned_board(tmp_path, db, flash="flash.img"):
    """A virtual board provisioned, with its container's record, never configured; started."""
    from datetime import date, timedelta

    from isolog.sim.launcher import VirtualBoard
    from sim_helpers import scenario

    sc = scenario(duration="1h")
    sc["board_config"] = None
    b = VirtualBoard(sc, tmp_path / flash, speed=0, hold_at_end=True)
    b.start()
    today = date.today()
    assert cli.main(["provision", b.port, "--name", NAME, "--db", str(db)]) == 0
    assert (
        cli.main(
            ["container", "set", b.port, "--db", str(db), "--sensor-model", "LND 7317"]
            + ["--calibration-cpm-per-usv-h", "153.8", "--dead-time-us", "190", "--one-metre-factor", "0.04"]
            + ["--calibrated-on", (today - timedelta(days=30)).isoformat()]
            + ["--calibration-due", (today + timedelta(days=365)).isoformat()]
        )
        == 0
    )
    return b


class Desk:
    """Scripted answers at the station's desk, and what the station wrote."""

    def __init__(self, lines):
        self.lines = iter(lines)
        self.out: list[str] = []

    def read_line(self):
        return next(self.lines, "")

    @property
    def text(self):
        return "".join(self.out)


def test_a_board_without_a_shipment_is_dispatched_with_exactly_the_values_entered(tmp_path, private_registry):
    import tomllib
    from pathlib import Path

    from isolog import trip
    from isolog.board import dispatch
    from isolog.board.link import Link
    from isolog.store import Store
    from isolog.units import format_time

    repo = Path(__file__).resolve().parents[2]
    db = tmp_path / "s.sqlite3"
    shipments = tmp_path / "shipments"
    leaves = float(int(time.time()) + 2 * 3600)  # the trip starts in two hours
    desk = Desk(
        [
            "y\n",
            "9\n",  # not a template number: asked again
            "mo99-generator\n",
            "MO-2026-0001\n",
            "Mo-99\n",
            "40\n",  # no unit: asked again
            "40GBq\n",
            "2026-11-30T06:00:00\n",  # no zone: asked again
            "2026-11-30T06:00:00Z\n",
            "III-yellow\n",  # not a category as spelt: asked again
            "III-YELLOW\n",
            "\n",  # the sensor's position: surface (the default)
            "5s\n",  # below the board's 10 s: asked again
            "2min\n",
            format_time(time.time() + 8 * 86400) + "\n",  # more than a week ahead: asked again
            format_time(leaves) + "\n",
            "yes\n",
        ]
    )
    board = _provisioned_board(tmp_path, db)
    events: list = []
    try:
        hook = dispatch.for_station(db, repo / "products", shipments, dispatch.Prompt(desk.read_line, desk.out.append))
        done = station.watch(
            db, tmp_path / "certs", events.append, once=True, poll_s=0.2, sim_dir=tmp_path, dispatch=hook
        )
        assert isinstance(done, station.Done) and done.next_step == station.NEXT_NO_SHIPMENT
        got = events[-1]
        assert isinstance(got, dispatch.Dispatched), (events, desk.text)
        with Link(board.port) as link:
            config = link.get_config()
            ident = link.identify()
    finally:
        board.close()
    # every mistake was one line, then the same question again
    for question, times in (
        ("product template (number or name): ", 2),
        ("activity at the reference time", 2),
        ("reference time of that activity", 2),
        ("declared category", 2),
        ("record interval [60s]: ", 2),
        ("dispatch time (ISO 8601 with a zone, or now) [now]: ", 2),
    ):
        assert desk.text.count(question) == times, (question, desk.text)
    # the board holds exactly what was entered, the template's limits and the container's record
    want = template_config(repo / "products" / "mo99-generator.toml", "MO-2026-0001", 120, {"1h": 3600})
    assert config is not None and {k: config[k] for k in want} == want
    assert ident["config_id"] == "MO-2026-0001"
    # the shipment file holds the answers; the store keeps it and the trip starts at the time entered
    written = tomllib.loads((shipments / "MO-2026-0001.toml").read_text())
    assert written == {
        "shipment": {
            "id": "MO-2026-0001",
            "product": "mo99-generator",
            "nuclide": "Mo-99",
            "activity": "40GBq",
            "reference_time": "2026-11-30T06:00:00Z",
            "declared_category": "III-YELLOW",
        },
        "sensor": {"position": "surface"},
        "logging": {"interval_s": 120},
    }
    with Store(db) as st:
        (row,) = st.shipments(board.device_id)
        assert row["toml"] == (shipments / "MO-2026-0001.toml").read_text()
        life = trip.life(st, "MO-2026-0001")
    assert abs(life.dispatched_s - leaves) < 2.0
    assert got.configured.shipment.activity_bq == 40e9


def test_the_station_takes_only_the_virtual_boards_under_its_sim_dir(tmp_path, private_registry):
    """Two virtual boards of the same user in the same registry (as a test run's and a desk's):
    the station with --sim-dir A syncs A's board and never opens the other."""
    from isolog.sim.launcher import VirtualBoard
    from sim_helpers import scenario

    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    sc = scenario(duration="1h")
    sc["board_config"] = None
    a = VirtualBoard(sc, ours / "flash.img", speed=0, hold_at_end=True)
    b = VirtualBoard(sc, theirs / "flash.img", speed=0, hold_at_end=True, device_id="15010c0000000002")
    try:
        a.start()
        b.start()
        assert station.list_ports(ours) == {a.port}
        assert station.list_ports(theirs) == {b.port}
        assert {a.port, b.port}.isdisjoint(station.list_ports(None))  # no --sim-dir: no virtual board
        w = Watcher(tmp_path / "s.sqlite3", tmp_path / "certs", ours)
        try:
            done = w.wait_for(station.Done, timeout=40)
            time.sleep(1.0)  # five more looks at the port listing
        finally:
            w.close()
    finally:
        a.close()
        b.close()
    assert done.port == a.port and done.device == a.device_id
    assert not [e for e in w.events if getattr(e, "port", None) == b.port], w.events
