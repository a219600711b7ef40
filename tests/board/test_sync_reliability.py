"""The link cut at random points during `isolog sync`, well over 100 times (at least 100
are required): the host process killed (SIGKILL of `python -m isolog sync`), the cable pulled under a sync
running in this process (its serial port fails from then on, as pyserial does on Linux when a USB
device goes away), and the board's power cut (and the board started again) while a sync runs.

After every cut a clean sync runs, and:
- the store holds the board's log from record 0 with no gap and no duplicate, and the sync found no
  problem (no damage, nothing missing);
- two stores synced independently (one kept through every cut, one new for the cut) hold the same
  records;
- when the board was cut, its flash (read while it is off) is intact, still holds every record it
  held before, unchanged, and the store holds every record of it, equal;
- at the end (after a final sync and a last power cut), the store equals the board's log on flash.

Two boards are cut in parallel (the link waits dominate; 2 cores), each with its own stores. The
timing of the cuts is random (fixed seed) and so is where they land; the invariants hold wherever.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import serial

from isolog.board import link as link_mod
from isolog.board import sync as sync_mod
from isolog.board.link import Link, LinkError
from isolog.sim.launcher import VirtualBoard
from isolog.store import Store
from sim_helpers import assert_intact, read_log, scenario

pytestmark = [pytest.mark.slow, pytest.mark.sim_only]

SEED = 31337
CUTS_PER_BOARD = {"kill_host": 20, "close_port": 20, "kill_board": 20}  # x 2 boards = 120 cuts
LINK_RATE = 50_000  # bytes/s: a whole one-day log takes ~0.3 s to move, so cuts land inside transfers
SLOW_LINK_RATE = 20_000  # while `isolog sync` runs in a process to kill: a whole log takes ~1 s
SPEED = 600  # virtual seconds per real second: a one-minute record every 0.1 s
LINK_TIMEOUT_S = 0.3  # the in-process syncs wait this long for a reply before retrying


class Unplugged(serial.SerialException):
    pass


class Cable:
    """A serial port whose cable can be pulled: every later read, write or query fails as pyserial
    fails on Linux when a USB device goes away (the port is closed by its owner, the Link)."""

    def __init__(self, ser):
        self.ser = ser
        self.pulled = False

    def pull(self) -> None:
        self.pulled = True

    def _check(self) -> None:
        if self.pulled:
            raise Unplugged("device reports readiness to read but returned no data (device disconnected?)")

    @property
    def in_waiting(self) -> int:
        self._check()
        return self.ser.in_waiting

    def read(self, n: int = 1) -> bytes:
        self._check()
        return self.ser.read(n)

    def write(self, data: bytes) -> int:
        self._check()
        return self.ser.write(data)

    def flush(self) -> None:
        self._check()
        self.ser.flush()

    def close(self) -> None:
        self.ser.close()


class Links:
    """Makes the Links of the in-process syncs, their serial ports with a pullable cable, and
    remembers them by port so a test can pull the cable under a running sync."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cables: dict[str, Cable] = {}
        self.real = sync_mod.Link
        self.timeout_s: dict[str, float] = {}  # per port, while a clean sync runs

    def __call__(self, port: str, *args, **kw) -> Link:
        cable = Cable(serial.Serial(port, baudrate=115200, timeout=0.05, write_timeout=2, exclusive=True))
        kw.setdefault("timeout_s", self.timeout_s.get(port, LINK_TIMEOUT_S))
        link = self.real(port, *args, serial_obj=cable, **kw)
        with self.lock:
            self.cables[port] = cable
        return link

    def pull(self, port: str) -> bool:
        with self.lock:
            cable = self.cables.get(port)
        if cable is None:
            return False
        cable.pull()
        return True


def store_state(db: Path, device: str) -> tuple[int, int]:
    """(count, next_seq) of a store, after checking it holds records 0..next_seq-1 exactly."""
    with Store(db) as st:
        dev = st.device(device)
        if dev is None:
            return 0, 0
        lo, hi, n = st.db.execute(
            "SELECT MIN(seq), MAX(seq), COUNT(*) FROM records WHERE device = ?", (device,)
        ).fetchone()
    if n:
        assert lo == 0 and hi == n - 1, f"{db.name}: records {lo}..{hi} but {n} stored: a gap"
    assert dev["next_seq"] == n, f"{db.name}: next_seq {dev['next_seq']} with {n} records stored"
    return n, dev["next_seq"]


def stored(db: Path, device: str) -> dict[int, dict]:
    with Store(db) as st:
        return {r["seq"]: r for r in st.records(device)}


class Worker:
    """One board, its stores and its share of the cuts."""

    def __init__(self, index: int, tmp: Path, links: Links):
        self.index = index
        self.tmp = tmp
        self.links = links
        self.rng = random.Random(SEED + index)
        self.device = f"15010c00000000{index + 1:02x}"
        self.flash = tmp / "flash.img"
        # A one-day log, written at full speed; then the board logs on while being synced and cut.
        with VirtualBoard(scenario(duration="1d"), self.flash, speed=0, until_end=True, device_id=self.device) as b:
            b.run()
        self.board = VirtualBoard(
            scenario(duration="60d"),
            self.flash,
            speed=SPEED,
            until_end=False,
            link_rate=LINK_RATE,
            device_id=self.device,
        )
        self.board_thread = self.board.start()
        self.main_db = tmp / "main.sqlite3"
        self.snapshot: list[dict] = read_log(self.flash).records  # the board's log at its last power cut
        self.outcomes: dict[str, dict[str, int]] = {}
        self.failures: list[BaseException] = []
        self.errors: dict[str, int] = {}
        self.cuts = 0

    # --- one cut and its checks ----------------------------------------------------------------------

    def run(self) -> None:
        try:
            kinds = [k for k, n in CUTS_PER_BOARD.items() for _ in range(n)]
            self.rng.shuffle(kinds)
            for i, kind in enumerate(kinds):
                # Most cuts go to a new store, which has the whole log to copy: cuts land inside long
                # transfers. The rest go to the store kept from the start (incremental syncs).
                db = self.main_db if self.rng.random() < 0.3 else self.tmp / f"cut{i}.sqlite3"
                before, _ = store_state(db, self.device) if db.exists() else (0, 0)
                getattr(self, kind)(db)
                self.cuts += 1
                after, _ = store_state(db, self.device)
                total = store_state(self.main_db, self.device)[0] if self.main_db.exists() else 0
                where = "nothing committed" if after == before else "all" if after >= total else "part"
                self.outcomes.setdefault(kind, {}).setdefault(where, 0)
                self.outcomes[kind][where] += 1
                self.clean_sync(db)
                if kind == "kill_board":
                    # The store holds every record the board held at the cut, equal.
                    recs = stored(db, self.device)
                    for r in self.snapshot:
                        assert recs.get(r["seq"]) == r, f"record {r['seq']} of the board's flash differs in the store"
                if db != self.main_db:
                    self.clean_sync(self.main_db)
                    self.same_records(db, self.main_db)
                    for p in self.tmp.glob(f"{db.name}*"):
                        p.unlink()
            self.finish()
        except BaseException as exc:  # reported by the test thread
            self.failures.append(exc)
        finally:
            self.board.close()

    def clean_sync(self, db: Path) -> None:
        # The checking sync waits as long as `isolog sync` does: replies still queued on the 50 KB/s
        # link for the host that was cut (up to a pseudo-terminal's buffer) come first, as they
        # would on a real serial line.
        self.links.timeout_s[self.board.port] = link_mod.TIMEOUT_S
        try:
            r = sync_mod.sync(self.board.port, db)
        finally:
            self.links.timeout_s.pop(self.board.port, None)
        assert r.device == self.device
        assert not r.problems, r.problems
        _, nxt = store_state(db, self.device)
        assert nxt >= r.board_next, (nxt, r.board_next)
        assert r.acked_upto == nxt

    def same_records(self, a: Path, b: Path) -> None:
        ra, rb = stored(a, self.device), stored(b, self.device)
        common = min(len(ra), len(rb))
        assert common > 0
        for seq in range(common):
            assert ra[seq] == rb[seq], f"record {seq} differs between two stores"

    def note_error(self, exc: BaseException | None) -> None:
        name = type(exc).__name__ if exc is not None else "completed"
        self.errors[name] = self.errors.get(name, 0) + 1

    def sync_in_thread(self, db: Path) -> tuple[threading.Thread, list]:
        out: list = []

        def run() -> None:
            try:
                sync_mod.sync(self.board.port, db)
                out.append(None)
            except BaseException as exc:
                out.append(exc)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, out

    # --- the three kinds of cut ------------------------------------------------------------------------

    def kill_host(self, db: Path) -> None:
        """`isolog sync` killed (SIGKILL) after a random delay: Python starts in ~0.3 s, then the sync."""
        self.board.link_rate = SLOW_LINK_RATE  # the transfer, not Python's start-up, takes most of the time
        try:
            seen = len(self.board.events)
            proc = subprocess.Popen(
                [sys.executable, "-m", "isolog", "sync", self.board.port, "--db", str(db)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            # From the sync's first request on (the board's LED turns to "syncing"), not from Python's start.
            deadline = time.monotonic() + 10
            while (
                time.monotonic() < deadline
                and proc.poll() is None
                and not any(e.kind == "led" and e.words[:1] == ["syncing"] for e in self.board.events[seen:])
            ):
                time.sleep(0.002)
            time.sleep(self.rng.uniform(0.0, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        finally:
            self.board.link_rate = LINK_RATE

    def close_port(self, db: Path) -> None:
        """The cable pulled under a sync running in this process: the serial port fails."""
        self.links.cables.pop(self.board.port, None)
        t, out = self.sync_in_thread(db)
        deadline = time.monotonic() + 10
        while self.board.port not in self.links.cables and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(self.rng.uniform(0.0, 0.4))
        assert self.links.pull(self.board.port)
        t.join(30)
        assert not t.is_alive(), "the sync hangs after its port failed"
        self.note_error(out[0])
        # The sync stops with the link error `isolog sync` reports (or had finished before).
        assert out[0] is None or isinstance(out[0], LinkError), repr(out[0])

    def kill_board(self, db: Path) -> None:
        """The board's power cut during a sync, the flash checked while it is off, then the board
        started again: the sync's retries may reach the new boot."""
        t, out = self.sync_in_thread(db)
        time.sleep(self.rng.uniform(0.0, 0.4))
        self.board.kill()
        self.board_thread.join(10)
        assert not self.board_thread.is_alive()
        log = read_log(self.flash)
        assert_intact(log, self.snapshot)  # the board lost nothing it had committed
        assert len(log.records) >= len(self.snapshot)
        self.snapshot = log.records
        off = self.rng.random()
        if off < 0.25:  # off longer than the sync's retries last: the sync gives up
            time.sleep((link_mod.RETRIES + 2) * LINK_TIMEOUT_S)
        elif off < 0.6:  # off for a moment: the sync's retries reach the new boot
            time.sleep(self.rng.uniform(0.0, 2 * LINK_TIMEOUT_S))
        self.board_thread = self.board.start()
        t.join(30)
        assert not t.is_alive(), "the sync hangs after a power cut of the board"
        self.note_error(out[0])
        assert out[0] is None or isinstance(out[0], LinkError), repr(out[0])

    # --- the end ---------------------------------------------------------------------------------------

    def finish(self) -> None:
        r = sync_mod.sync(self.board.port, self.main_db)
        assert not r.problems, r.problems
        self.board.kill()
        self.board_thread.join(10)
        log = read_log(self.flash)
        assert_intact(log, self.snapshot)
        recs = stored(self.main_db, self.device)
        n, nxt = store_state(self.main_db, self.device)
        assert log.records[0]["seq"] == 0 and n >= r.board_next
        on_flash = {x["seq"]: x for x in log.records}
        assert [recs[s] for s in range(n)] == [on_flash[s] for s in range(n)], "the store differs from the board"
        # What the flash holds beyond the store was logged after the final sync listed the log.
        assert all(x["seq"] >= r.board_next for x in log.records[n:])
        self.final_records = n


def test_sync_survives_cuts(tmp_path: Path, monkeypatch):
    links = Links()
    monkeypatch.setattr(sync_mod, "Link", links)
    workers = []
    for i in range(2):
        (tmp_path / f"board{i}").mkdir()
        workers.append(Worker(i, tmp_path / f"board{i}", links))
    t0 = time.monotonic()
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
        assert not t.is_alive(), "a board's cuts did not finish"
    elapsed = time.monotonic() - t0
    for w in workers:
        if w.failures:
            raise w.failures[0]
    cuts = sum(w.cuts for w in workers)
    assert cuts >= 100
    print(
        f"\n{cuts} cuts in {elapsed:.0f} s; where they landed: "
        f"{[w.outcomes for w in workers]}; in-process syncs ended by: {[w.errors for w in workers]}; "
        f"records per board at the end: {[w.final_records for w in workers]}"
    )
