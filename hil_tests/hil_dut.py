"""The device under test, the same object for the virtual board and a real board on the bench.

Tests talk to the board only through the product's USB protocol (isolog.link.Link) and the
diagnostic command CMD_DIAG, which the firmware answers only in test mode (/data/testmode on the
board). What differs per target is how power is cut, whether time runs faster than real time, and
whether the sensors can be set (the virtual board's simulated sensors):

    capability        sim                         serial (bench)
    can_power_cut     kill -9 + restart           ISOLOG_HIL_POWER_CMD (e.g. uhubctl), else no
    can_set_sensors   diag "sensor" / "inject"    no (a real DS18B20 and tube)
    can_accelerate    yes (virtual clock)         no (real time)
    can_pulse_out     no (diag "inject" instead)  diag "pulse_out" (boards/mcu.py; loopback wire)

Tests that need a capability call dut.require("can_...") and are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import struct
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from isolog.board.link import BoardError, Link, LinkError
from isolog.log import decode
from isolog.log import image as flash_image
from isolog_fw import frame

# --- memory margin ---------------------------------------------------------------------------------
# The firmware must keep at least this share of the heap free after gc.collect() (diag "read"):
# 8 KiB of the 64 KiB heap the firmware is designed for (the virtual board runs at that heap,
# `-X heapsize=64wK`, which the 64-bit unix port scales to 128 KiB of its twice-as-large objects,
# so the share is what compares). On a real board the share applies to its own heap. Below it, a
# long shipment risks a MemoryError when the heap fragments (see firmware/main.py).
MIN_FREE_FRACTION = 8 / 64
MIN_FREE_BYTES = 8 * 1024  # and never less than this, whatever the heap


class FaultCounter:
    """Fault injections the board survived (counted after the checks that follow them passed)."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, kind: str, n: int = 1) -> None:
        with self.lock:
            self.kinds[kind] += n

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


@dataclass
class HeapReport:
    label: str
    mem_free: int
    mem_alloc: int

    @property
    def total(self) -> int:
        return self.mem_free + self.mem_alloc

    @property
    def margin(self) -> int:
        return max(MIN_FREE_BYTES, int(self.total * MIN_FREE_FRACTION))


HEAP_REPORTS: list[HeapReport] = []


# --- reading the log over the protocol -------------------------------------------------------------


class LogReader:
    """Reads the board's whole log over LIST/READ, without acknowledging anything, and decodes it
    with the host's reader (isolog.logfile: the record layout of the firmware, CRC per chunk).

    Segments only grow at their end or disappear (reclaimed after ACK), so the bytes read stay
    cached and every later read fetches only what was appended: cheap enough to check the log
    after every one of hundreds of power cuts."""

    def __init__(self) -> None:
        self.segs: dict[int, bytearray] = {}
        self._decoded: dict[int, tuple[int, decode.Log]] = {}  # segment -> (bytes decoded, result)
        self.notes: list[str] = []
        self.reads = 0

    def read(self, link: Link | Callable[[], Link], on_read: Callable[[], None] | None = None) -> decode.Log:
        """link: the Link, or a function returning the current one (tests that reconnect)."""
        current = link if callable(link) else (lambda: link)
        listed, _ = current().list_all(0)
        for first, size in listed:
            data = self.segs.setdefault(first, bytearray())
            if size < len(data):
                self.notes.append(f"segment {first} shrank from {len(data)} to {size} bytes: read again")
                data.clear()
            while len(data) < size:
                got = current().read(first, len(data), frame.MAX_READ)
                self.reads += 1
                if on_read is not None:
                    on_read()
                if not got.data:
                    break
                data += got.data
                size = max(size, got.size)
        for gone in set(self.segs) - {f for f, _ in listed}:
            del self.segs[gone]
            self._decoded.pop(gone, None)
        log = decode.Log()
        for first in sorted(self.segs):
            data = self.segs[first]
            hit = self._decoded.get(first)
            if hit is None or hit[0] != len(data):
                part = decode.Log()
                decode.decode_segment(flash_image.segment_name(first), bytes(data), part)
                hit = (len(data), part)
                self._decoded[first] = hit
            log.records.extend(hit[1].records)
            log.problems.extend(hit[1].problems)
            log.segments += 1
        decode.check_sequence(log)
        return log


# Known firmware bug (reported, see test_hil_faults.test_mac_chain_survives_power_cuts): after some
# power cuts the HMAC chain of the log does not continue into the next boot's segment. The records
# are intact (CRC, sequence, content); only their tamper evidence fails. Counted here, printed at the
# end of the run, and failed by that one test instead of every power-cut test.
MAC_PROBLEMS: list[str] = []


def is_mac_problem(p: decode.Problem) -> bool:
    return "MAC" in p.message


def assert_intact(
    log: decode.Log, previous: list[dict] | None = None, start: int | None = None, where: str = "", mac: bool = False
) -> None:
    """No damaged chunk, contiguous sequence numbers (from `start` if given), and every record of an
    earlier read still there, unchanged. MAC-chain problems fail only with mac=True."""
    ctx = f"{where}: " if where else ""
    problems = [p for p in log.problems if mac or not is_mac_problem(p)]
    for p in log.problems:
        if is_mac_problem(p) and str(p) not in MAC_PROBLEMS:
            MAC_PROBLEMS.append(str(p))
    assert not problems, ctx + "; ".join(str(p) for p in problems)
    seqs = [r["seq"] for r in log.records]
    if seqs:
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), ctx + "sequence numbers not contiguous"
        if start is not None:
            assert seqs[0] <= start, f"{ctx}the log starts at {seqs[0]}, records from {start} expected"
    if previous:
        by_seq = {r["seq"]: r for r in log.records}
        for r in previous:
            assert by_seq.get(r["seq"]) == r, f"{ctx}record {r['seq']} changed or lost"


# --- the device under test -------------------------------------------------------------------------


@dataclass
class Dut:
    """Common surface; SimDut and SerialDut fill in the target-specific parts."""

    target: str = ""
    link: Link = field(init=False)
    can_power_cut: bool = False
    can_set_sensors: bool = False
    can_accelerate: bool = False
    faults: FaultCounter = field(default_factory=FaultCounter)
    reader: LogReader = field(default_factory=LogReader)
    flash: Path | None = None  # the virtual board's flash image

    # --- capabilities ------------------------------------------------------------------------------

    def require(self, capability: str) -> None:
        if not getattr(self, capability):
            pytest.skip(f"{self.target} target: {capability} is not available ({self.why_not(capability)})")

    def why_not(self, capability: str) -> str:
        return "not supported on this target"

    @property
    def can_pulse_out(self) -> bool:
        if not hasattr(self, "_pulse_out"):
            try:
                self.pulse_max = int(self.diag("pulse_out", pulses=0).get("max", 0))
                self._pulse_out = self.pulse_max > 0
            except BoardError:
                self._pulse_out = False
        return self._pulse_out

    def pulse_out(self, n: int) -> None:
        """n pulses on the loopback wire (boards/mcu.py), in commands of at most the board's cap.
        Each command carries a fresh id: the link's retries resend the same frame, so a retry after
        a lost reply is answered without pulsing again."""
        self.require("can_pulse_out")
        while n > 0:
            k = min(n, self.pulse_max)
            self._pulse_id = (getattr(self, "_pulse_id", random.randrange(1 << 20)) + 1) % (1 << 30)
            reply = self.diag("pulse_out", pulses=k, id=self._pulse_id)
            assert reply.get("sent") == k and reply.get("id") == self._pulse_id, reply
            n -= k

    # --- protocol ----------------------------------------------------------------------------------

    def diag(self, op: str, **kw: Any) -> dict:
        return self.link.call(frame.CMD_DIAG, {"op": op, **kw})

    def read(self) -> dict:
        """diag read: counters, LED, alarms, memory after gc.collect()."""
        return self.diag("read")

    def status(self) -> dict:
        return self.link.status()

    def board_s(self, d: dict | None = None) -> float:
        """Board time in seconds (the scenario's time on the virtual board, uptime on the bench)."""
        d = d or self.read()
        return d["uptime_ms"] / 1000

    def board_to_real_s(self, board_s: float) -> float:
        return board_s

    def next_unlogged(self) -> int:
        """The sequence number the board's next record will get: committed plus in RAM, from one
        read (two reads could straddle a commit, which moves records from RAM to flash)."""
        d = self.read()
        return int(d["next_seq"]) + int(d["in_ram"])

    def led(self) -> str:
        """The LED state the board shows when no host is talking: every request turns the LEDs to
        "syncing" for 3 s of board time, so wait until 3 s passed since the previous request."""
        d = self.read()
        for _ in range(50):
            last = d["uptime_ms"]
            time.sleep(max(0.005, self.board_to_real_s(4.5)))
            d = self.read()
            if d["uptime_ms"] - last > 3500:
                return d["led"]
        raise AssertionError("the board's clock does not advance")

    def led_mark(self) -> int:
        """A point in the board's LED history, for led_shown()."""
        return 0

    def led_shown(self, state: str, mark: int) -> bool:
        """Whether the LEDs showed `state` since mark. A real board is asked right now (call it
        at once after the action); the virtual board reports every change it made, which also
        catches states shorter than a poll (at full speed 3 s of board time pass in microseconds)."""
        return self.read()["led"] == state

    def wait_for(
        self, what: str, pred: Callable[[dict], bool], board_s: float | None = None, timeout_s: float = 60.0
    ) -> dict:
        """Poll diag read until pred holds. A safety timeout in real time, never an assertion on
        how long it took."""
        deadline = time.monotonic() + timeout_s
        poll = 0.01 if self.can_accelerate else 0.5
        while True:
            d = self.read()
            if pred(d):
                return d
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what}: last diag read {d}")
            time.sleep(poll)

    def advance(self, board_s: float, timeout_s: float = 120.0) -> dict:
        """Let at least board_s seconds of board time pass."""
        target = self.board_s() + board_s
        return self.wait_for(
            f"board time {target:.0f} s",
            lambda d: self.board_s(d) >= target,
            timeout_s=max(timeout_s, self.board_to_real_s(board_s) * 2 + 10),
        )

    def records(self) -> decode.Log:
        """The whole log on the board, read over the protocol (nothing acknowledged)."""
        return self.reader.read(lambda: self.link)

    def next_record(self, after_seq: int, timeout_s: float = 60.0) -> None:
        """Wait until a record with seq >= after_seq is committed (diag commit forces the batch out)."""
        self.wait_for(
            f"record {after_seq}",
            lambda d: self.diag("commit") is not None and self.read()["next_seq"] > after_seq,
            timeout_s=timeout_s,
        )

    def set_sensor(self, **kw: Any) -> dict:
        self.require("can_set_sensors")
        return self.diag("sensor", **kw)

    def heap(self, label: str) -> HeapReport:
        """Free heap after gc.collect() on the board; fails under the margin (MIN_FREE_FRACTION)."""
        d = self.read()
        rep = HeapReport(f"{self.target}: {label}", d["mem_free"], d["mem_alloc"] - self.heap_outside())
        HEAP_REPORTS.append(rep)
        assert rep.mem_free >= rep.margin, (
            f"{label}: {rep.mem_free} bytes free of {rep.total} after gc, under the margin of {rep.margin}"
        )
        return rep

    def heap_outside(self) -> int:
        """Bytes of the board's heap that are not the firmware's (the virtual board's models)."""
        return 0

    # --- link cuts ---------------------------------------------------------------------------------

    def reconnect(self) -> None:
        """Close the serial port and open it again (a pulled and replugged cable, host side).
        Request ids continue, so a late reply to a request of the old connection is never taken
        for an answer to a new one."""
        req = self.link._req
        self.link.close()
        self.link = self.open_link()
        self.link._req = req

    def open_link(self) -> Link:
        raise NotImplementedError

    def wait_ready(self, timeout_s: float = 30.0, poll_s: float = 0.03) -> dict:
        """Ask IDENTIFY with short timeouts until the board answers: what a host sends while the
        board boots is lost (USB enumerates, the interpreter starts), as on a real board."""
        deadline = time.monotonic() + timeout_s
        retries, self.link.retries = self.link.retries, 0
        try:
            while True:
                try:
                    return self.link.call(frame.CMD_IDENTIFY, timeout_s=poll_s)
                except LinkError:
                    if time.monotonic() > deadline:
                        raise
        finally:
            self.link.retries = retries

    def torn_request(self, rng: random.Random, keep: int | None = None) -> None:
        """A link cut in the middle of a request: part of a frame goes out, the port closes.

        Not 2 bytes (just the sync pair) unless asked: the board then reads the next frame's
        bytes as the torn frame's length (332) and waits for that many bytes, longer than a
        host's retries send; see test_hil_faults.test_torn_sync_pair_stalls_the_link."""
        data = frame.encode_bytes(frame.CMD_STATUS, (self.link._req + 100) & 0xFF)
        if keep is None:
            keep = rng.choice([k for k in range(1, len(data)) if k != 2])
        self.link.ser.write(data[:keep])
        self.link.ser.flush()
        self.reconnect()

    def cut_reply(self, rng: random.Random, segment: int) -> None:
        """A link cut in the middle of a reply: a READ goes out, part of its reply is read, the
        port closes with the rest in flight."""
        self.link._req = (self.link._req + 1) & 0xFF
        data = frame.encode_bytes(frame.CMD_READ, self.link._req, struct.pack("<IIH", segment, 0, frame.MAX_READ))
        self.link.ser.write(data)
        self.link.ser.flush()
        want = rng.randrange(0, 64)
        got = b""
        deadline = time.monotonic() + 0.5
        while len(got) < want and time.monotonic() < deadline:
            got += self.link.ser.read(want - len(got))
        self.reconnect()

    # --- power -------------------------------------------------------------------------------------

    def power_cut(self, off_s: float = 600.0) -> None:
        raise NotImplementedError

    def close(self) -> None:
        try:
            self.link.close()
        except Exception:
            pass


class SimDut(Dut):
    """A virtual board (isolog.sim.launcher.VirtualBoard) in test mode, one flash image per test."""

    def __init__(
        self,
        scenario: dict,
        flash: Path,
        faults: FaultCounter,
        speed: float = 0.0,
        flash_size_kib: int = 1024,
        seed: int = 1,
        heap_kib: int = 64,
    ):
        super().__init__(
            target="sim", can_power_cut=True, can_set_sensors=True, can_accelerate=True, faults=faults, flash=flash
        )
        from isolog.sim.launcher import VirtualBoard

        self.vb = VirtualBoard(
            scenario, flash, speed=speed, test_mode=True, flash_size_kib=flash_size_kib, seed=seed, heap_kib=heap_kib
        )
        self.stderr: list[str] = []
        self.vb.on_stderr = self.stderr.append
        self._thread: threading.Thread | None = None
        self._power_up()
        self.link = self.open_link()
        self.wait_ready()

    def open_link(self) -> Link:
        return Link(self.vb.port, timeout_s=1.0, retries=5)

    def heap_outside(self) -> int:
        # sim_boot.py reports, at each power-up, what its models and filler hold past the budget.
        for ev in reversed(self.vb.events):
            if ev.kind == "heap":
                return int(ev.fields["outside"])
        return 0

    def _power_up(self) -> None:
        """Start the board and wait until its interpreter runs: bytes sent to a board that is off
        are lost (as on a real wire), so no request goes out before that."""
        old = self.vb.proc
        self._thread = self.vb.start()
        deadline = time.monotonic() + 30
        while self.vb.proc is old or self.vb.proc is None:
            if time.monotonic() > deadline:
                raise AssertionError("the virtual board did not start")
            time.sleep(0.001)

    def _wait_off(self) -> None:
        proc = self.vb.proc
        if proc is not None:
            proc.wait(timeout=30)
        if self._thread is not None:
            self._thread.join(timeout=30)

    @property
    def speed(self) -> float:
        return self.vb.speed

    def board_s(self, d: dict | None = None) -> float:
        d = d or self.read()
        return self.vb.t0_s + d["uptime_ms"] / 1000

    def board_to_real_s(self, board_s: float) -> float:
        return board_s / self.vb.speed if self.vb.speed > 0 else 0.0

    def led_mark(self) -> int:
        return len(self.vb.events)

    def led_shown(self, state: str, mark: int) -> bool:
        deadline = time.monotonic() + 5  # the board's report travels through its stderr pipe
        while True:
            if any(e.kind == "led" and e.words[0] == state for e in list(self.vb.events)[mark:]):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def leds_seen(self) -> list[tuple[str, float]]:
        """LED changes the virtual board reported (state, scenario time)."""
        return [(e.words[0], float(e.fields.get("t", "nan"))) for e in list(self.vb.events) if e.kind == "led"]

    def power_cut(self, off_s: float = 600.0, delay_s: float = 0.0, speed: float | None = None) -> None:
        """Cut the power (SIGKILL: RAM lost, the flash keeps what was committed) after delay_s of
        real time, and power up again off_s of board time later. The scenario time at the cut is
        taken from a diag read just before it; off_s covers what the board ran after that read."""
        d = self.read()
        if delay_s:
            time.sleep(delay_s)
        at = self.vb.t0_s + d["uptime_ms"] / 1000 + delay_s * self.vb.speed
        self.vb.kill()
        self._wait_off()
        self.vb.t0_s = at + off_s
        if speed is not None:
            self.vb.speed = speed
        self._power_up()
        self.wait_ready()

    def restart(self, **changes: Any) -> None:
        """Power-cycle with new launcher settings (speed, scenario dict) on the same flash."""
        if "scenario" in changes:
            self.vb.scenario = changes.pop("scenario")
            (self.vb._dir / "scenario.json").write_text(json.dumps(self.vb.scenario))
        self.power_cut(off_s=changes.pop("off_s", 60.0), speed=changes.pop("speed", None))
        assert not changes, changes

    def close(self) -> None:
        super().close()
        self.vb.close()


class SerialDut(Dut):
    """A real board with MicroPython and isolog (test mode) on a serial port (hil_tests/README.md)."""

    def __init__(self, port: str, faults: FaultCounter):
        # A command that power-cycles the board (a relay or a switchable USB hub), or "manual": the
        # suite asks the technician on the terminal (run pytest with -s).
        power_cmd = os.environ.get("ISOLOG_HIL_POWER_CMD", "")
        super().__init__(
            target="serial", can_power_cut=bool(power_cmd), can_set_sensors=False, can_accelerate=False, faults=faults
        )
        self.port = port
        self.power_cmd = power_cmd
        self.link = self.open_link()
        try:
            self.diag("read")
        except BoardError as exc:
            raise pytest.UsageError(
                f"{port}: the board does not answer diagnostics ({exc}): create /data/testmode "
                "on it (hil_tests/README.md)"
            ) from None

    def why_not(self, capability: str) -> str:
        return {
            "can_power_cut": "set ISOLOG_HIL_POWER_CMD to a command that power-cycles the board, e.g. "
            "'uhubctl -l 1-1 -p 2 -a cycle -d 2' (hil_tests/README.md)",
            "can_set_sensors": "the bench board has a real temperature sensor and GM tube",
            "can_accelerate": "a real board runs in real time",
            "can_pulse_out": "the board module has no diag 'pulse_out' (boards/README.md, loopback wire)",
        }.get(capability, "not supported on this target")

    def open_link(self, wait_s: float = 20.0) -> Link:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return Link(self.port, timeout_s=1.0, retries=5)
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def power_cut(self, off_s: float = 2.0, delay_s: float = 0.0, speed: float | None = None) -> None:
        """Run ISOLOG_HIL_POWER_CMD (a switchable USB hub cuts VBUS; the port disappears), then
        reopen the port once the board has booted again."""
        self.require("can_power_cut")
        if delay_s:
            time.sleep(delay_s)
        self.link.close()
        if self.power_cmd == "manual":
            _ask(
                "POWER CUT: unplug the board's USB cable (and its battery, if one is fitted), count "
                "to five, plug it back in, then press Enter"
            )
        else:
            subprocess.run(shlex.split(self.power_cmd), check=True, stdout=subprocess.DEVNULL)
        time.sleep(1.0)  # USB enumeration and MicroPython's boot
        self.link = self.open_link(wait_s=30)
        self.wait_ready(timeout_s=30, poll_s=0.3)

    def restart(self, **changes: Any) -> None:
        if changes:
            pytest.skip(f"a real board cannot be restarted with {sorted(changes)}")
        self.power_cut()


def _ask(prompt: str) -> None:
    """A prompt for the technician, answered with Enter on the terminal (not pytest's stdin)."""
    try:
        with open("/dev/tty", "r+") as tty:
            tty.write(f"\n>>> {prompt}: ")
            tty.flush()
            tty.readline()
    except OSError:
        pytest.skip("ISOLOG_HIL_POWER_CMD=manual needs a terminal (run pytest from one, with -s)")


def run_parallel(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run jobs in threads (each drives its own virtual board: two cores, two boards)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 2))) as pool:
        futures = [pool.submit(j) for j in jobs]
        return [f.result() for f in futures]
