"""Power loss: hundreds of power cuts of the virtual board at random moments.

Two kinds of cut, each on a flash image that accumulates across many cuts, so that every boot
recovers what the previous cuts left behind:

* kill -9 of the interpreter after a random real delay (the board runs at full speed and keeps
  logging): very short delays land in boot and recovery (mount, boot counter, scan of the last
  segment, first segment of the boot), medium ones while logging, long ones across a segment
  rollover (a segment holds ~3,500 one-minute records, so those are aimed from the logging
  rate measured by the earlier cuts); a small flash also runs into the flash-full policy and
  keeps being cut there, by kill -9 and torn writes.
* torn writes: the board programs half of the Nth block operation of a power-up, then loses
  power (ISOLOG_SIM_TEAR_AT). N sweeps the operations of the boot, then is spread over the
  operations of a clean run of the same scenario; on a long run it is aimed at the segment
  rollover.

After every cut: the image mounts on the host, no damaged record is read back, sequence numbers
are contiguous from 0, and every record of the previous snapshot is still there, unchanged.

The cuts are reproducible from SEED (set ISOLOG_POWER_LOSS_SEED to try another); every failure
names the seed, the chain and the cut. The number of cuts is fixed, not a time budget.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from isolog.errors import UserError
from isolog.log import decode
from isolog.log import image as flash_image
from isolog.sim.launcher import POWER_LOSS_EXIT, VirtualBoard
from isolog_fw import record
from mp_helpers import micropython_binary
from sim_helpers import assert_intact, scenario

SEED = int(os.environ.get("ISOLOG_POWER_LOSS_SEED", "20261126"))
INTERVAL_S = 60  # the logging interval of the shipment the test scenarios install

# Cuts per chain (each chain is one flash image): 2 x 48 + 20 + 2 x 45 + 8 = 214 cuts.
KILL_CHAINS = {"kill-a": 48, "kill-b": 48}
FULL_CHAIN_CUTS = 12  # cuts once the flash is full, about half of them torn writes
FILL_CUTS_MAX = 40  # kill -9 cuts to fill the flash first: how many depends on this machine's speed
FULL_FLASH_KIB = 192  # the firmware takes ~40 KiB of it: room for ~5,000 records
TORN_CHAINS = {"torn-a": 45, "torn-b": 45}
ROLLOVER_TEARS = 8

pytestmark = pytest.mark.skipif(micropython_binary() is None, reason="the MicroPython unix port is not installed")

ENDLESS = scenario(duration="400d")  # kill -9 runs: the board keeps logging until the cut
SHORT = scenario(duration="3h")  # torn-write runs: 180 records, ~100 block operations
_READ_LOCK = threading.Lock()  # littlefs-python reads, one chain at a time (Chain.check)
LONG = scenario(duration="3d")  # one size rollover (~3,500 records) in each power-up
SEGMENT_RECORDS = 3500  # about what the first segment of a boot holds (32 KiB), until measured
RUN_TIMEOUT_S = 120.0  # a power-up that runs longer has hung: it is cut and reported


class CutFailed(AssertionError):
    pass


def _chain_in(data: bytes) -> bytes | None:
    """The MAC chain value a segment starts from: chain_in of its first chunk, the header."""
    reader = record.ChunkReader(io.BytesIO(data))
    got = reader.next()
    if got is None or reader.damage or got[0] != record.KIND_HEADER:
        return None  # damage is reported by the decoder
    try:
        return record.decode_header(reader.buf, got[1]).get("chain_in")
    except (record.RecordError, ValueError):
        return None


@dataclass
class Cut:
    kind: str  # "kill" or "torn"
    index: int
    setting: str  # "delay=0.123s" or "tear_at=57"
    phase: str = ""  # boot, logging, rollover, full
    added: int = 0  # records committed by this power-up
    lost_ram: int = 0  # samples taken by this power-up that never reached flash (torn cuts)
    t_s: float = -1.0  # scenario time of a torn cut (0: during boot, before the first sample)


@dataclass(repr=False)
class Chain:
    name: str
    image: Path
    seed: int
    rng: random.Random = field(init=False)
    previous: list[dict] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # segment files of the last snapshot
    cuts: list[Cut] = field(default_factory=list)
    runs: int = 0  # clean runs (no cut), for learning the operations of a run
    last_ops: int = 0  # block operations of the last clean run
    unsettled_reads: int = 0  # image reads that did not mount at first and did on a later read
    leds: set[str] = field(default_factory=set)
    wall_s: float = 0.0
    board: VirtualBoard | None = None  # one board per chain (it installs the firmware on the image once)
    _cache: dict[str, tuple[bytes, decode.Log, bytes | None, bytes | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.seed}/{self.name}")

    def __repr__(self) -> str:
        return f"<chain {self.name}: {len(self.cuts)} cuts, {len(self.previous)} records>"

    def power_on(self, sc: dict, flash_size_kib: int) -> None:
        """The board of this chain (its flash image is made and the firmware installed here)."""
        self.board = VirtualBoard(
            sc, self.image, heap_kib=64, speed=0, flash_size_kib=flash_size_kib, restart_after_power_loss=False
        )

    def close(self) -> None:
        if self.board is not None:
            self.board.close()

    def where(self, cut: Cut | None) -> str:
        what = f"{cut.kind} cut {cut.index} ({cut.setting})" if cut else "clean run"
        return f"seed={self.seed} chain={self.name} {what}"

    # --- the checks after every cut --------------------------------------------------------------

    def snapshot(self) -> decode.Log:
        """The log on the image, decoded like flash_image.read_image, reusing the decoding of segment
        files whose bytes did not change since the last snapshot (the image is still mounted and
        every file read in full each time)."""
        fs = flash_image.open_image(self.image)  # raises UserError if it does not mount
        if "log" not in fs.listdir(flash_image.LOG_DIR.rsplit("/", 1)[0]):
            names = None  # cut before the first boot made the log folder
        else:
            names = sorted(n for n in fs.listdir(flash_image.LOG_DIR) if n.endswith(".seg"))
        log = decode.Log()
        if names is None:
            self.names = []
            return log
        cache: dict[str, tuple[bytes, decode.Log, bytes | None, bytes | None]] = {}
        chain_end = None  # the MAC the previous segment ended on (flash_image.read_image checks the link)
        for name in names:
            where = f"{flash_image.LOG_DIR}/{name}"
            try:
                with fs.open(where, "rb") as f:
                    data = f.read()
            except Exception as exc:  # littlefs raises its own errors for a broken file
                log.problems.append(decode.Problem(where, f"unreadable: {exc}"))
                chain_end = None
                continue
            hit = self._cache.get(name)
            if hit is None or hit[0] != data:
                seg = decode.Log()
                dec = decode.decode_segment(where, data, seg)
                hit = (data, seg, getattr(dec, "chain", None), _chain_in(data))
            cache[name] = hit
            _, seg, chain_out, chain_in = hit
            if chain_end is not None and chain_in is not None and chain_in != chain_end:
                log.problems.append(decode.Problem(where, "the MAC chain does not continue from the previous segment"))
            chain_end = chain_out
            log.records.extend(seg.records)
            log.problems.extend(seg.problems)
            log.segments += 1
        self._cache = cache
        self.names = names
        decode.check_sequence(log)
        return log

    def _snapshot_settled(self) -> decode.Log:
        """snapshot(), read again up to three times 0.5 s apart when the image does not mount. Twice
        on a fresh clone an image did not mount at the first read after the board was dead, and
        mounted afterwards, unchanged, with both readers; the cause is not found (the closing note of
        2026-11-30). An image that stays unmountable still fails the chain."""
        for attempt in range(4):
            try:
                return self.snapshot()
            except UserError:
                if attempt == 3:
                    raise
                self.unsettled_reads += 1
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def keep(self) -> None:
        """Keep the image as it is before a power-up, to look at after a failure."""
        if self.image.exists():
            shutil.copyfile(self.image, self.image.with_suffix(".before.img"))

    def check(self, cut: Cut | None, full_read: bool = False) -> decode.Log:
        """The checks after a cut, on a snapshot; with full_read also on the host's own reader
        (flash_image.read_image, the authority: it also verifies what the snapshot does not)."""
        ctx = f"{self.where(cut)} [images: {self.image}, {self.image.with_suffix('.before.img')}]"
        try:
            # One image read at a time across the chains' threads: a torn-chain check once failed to
            # mount (LFS_ERR_INVAL) an image that mounted afterwards, byte for byte the same, with both
            # readers (littlefs-python, and MicroPython's VfsLfs2), while another chain's thread was
            # reading its own image through littlefs-python, which runs littlefs outside the GIL.
            with _READ_LOCK:
                log = self._snapshot_settled()
                logs = [log]
                if full_read and self.names:
                    logs.append(flash_image.read_image(self.image))
        except UserError as exc:
            raise CutFailed(f"{ctx}: the image does not mount: {exc}") from None
        except Exception as exc:  # littlefs errors while listing the folders
            raise CutFailed(f"{ctx}: the image is unreadable: {exc!r}") from None
        for one in logs:
            try:
                assert_intact(one, self.previous)
            except AssertionError as exc:
                raise CutFailed(f"{ctx}: {exc}") from None
            if one.records and one.records[0]["seq"] != 0:
                raise CutFailed(f"{ctx}: the log starts at {one.records[0]['seq']}, not 0 (nothing was synced)")
            if len(one.records) != len(log.records):
                raise CutFailed(
                    f"{ctx}: flash_image.read_image reads {len(one.records)} records, the snapshot {len(log.records)}"
                )
        if cut is not None:
            cut.added = len(log.records) - len(self.previous)
        self.previous = log.records
        return log

    def boot_segments(self, first_seq: int) -> list[str]:
        """Segment files of the power-up whose first record would be first_seq."""
        return [n for n in self.names if int(n[:8], 16) >= first_seq]

    # --- one power-up ------------------------------------------------------------------------------

    def kill_after(self, cut: Cut, delay: float) -> None:
        """Power up, keep logging (no scenario end), kill -9 after delay seconds of real time."""
        board = self.board
        assert board is not None
        self.keep()
        board.until_end, board.tear_at = False, 0
        proc = board.power_up()
        time.sleep(delay)
        board.kill()
        try:
            proc.wait(timeout=30)
        except Exception:
            raise CutFailed(f"{self.where(cut)}: the board did not die") from None
        assert proc.stderr is not None
        err = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
        for line in err.splitlines():
            if line.startswith("@sim led "):
                self.leds.add(line.split()[2])
        if proc.returncode != -9:  # it stopped by itself before the cut: a crash
            raise CutFailed(
                f"{self.where(cut)}: the board exited with {proc.returncode} before the cut:\n{err[-2000:]}"
            )

    def run_until_end(self, tear_at: int, cut: Cut | None) -> tuple[int, dict[str, str]]:
        """A power-up of the chain's scenario to its end, torn at block operation tear_at (0:
        never). Returns the exit code and the fields of the power-loss event or, on a clean run,
        of the flash report."""
        board = self.board
        assert board is not None
        lines: list[str] = []
        self.keep()
        board.until_end, board.tear_at, board.boots, board.exit_code = True, tear_at, 0, None
        board.on_stderr = lines.append
        first_event = len(board.events)
        hung = threading.Timer(RUN_TIMEOUT_S, board.kill)
        hung.start()
        try:
            code = board.run()
        finally:
            hung.cancel()
        events = board.events[first_event:]
        self.leds.update(e.words[0] for e in events if e.kind == "led")
        lost = [e for e in events if e.kind == "power_loss"]
        report = [e for e in events if e.kind == "flash"]
        if code == POWER_LOSS_EXIT and lost and "torn" in lost[-1].words[-1]:
            return code, lost[-1].fields
        if code == 0 and report and not lost:
            return code, report[-1].fields
        raise CutFailed(
            f"{self.where(cut)}: unexpected exit {code}, events "
            f"{[(e.kind, e.words) for e in events]}, stderr {lines[-20:]}"
        )

    def torn(self, index: int, tear_at: int, logs_all: bool = True) -> Cut | None:
        """One power-up torn at tear_at; None when the run ended first (a clean run, which
        commits every sample unless the flash is full)."""
        cut = Cut("torn", index, f"tear_at={tear_at}")
        before = len(self.previous)
        code, fields = self.run_until_end(tear_at, cut)
        if code == 0:
            self.runs += 1
            self.last_ops = int(fields["ops"])
            log = self.check(None)
            added = len(log.records) - before
            assert self.board is not None
            expected = int(self.board.scenario["duration_s"] // INTERVAL_S)
            if logs_all and added != expected:
                raise CutFailed(
                    f"{self.where(None)} (tear_at={tear_at} was beyond the run): "
                    f"{added} records added, {expected} samples"
                )
            return None
        self.check(cut, full_read=index % 10 == 0)
        cut.t_s = float(fields["t"])
        samples = int(cut.t_s // INTERVAL_S)
        if cut.added > samples:
            raise CutFailed(f"{self.where(cut)}: {cut.added} records committed from {samples} samples")
        cut.lost_ram = samples - cut.added
        self.cuts.append(cut)
        return cut


def _first_seq(chain: Chain) -> int:
    return len(chain.previous)


# --- the chains --------------------------------------------------------------------------------------


def _aim(points: list[tuple[float, int]], records: float) -> float | None:
    """The delay after which a power-up has committed about `records` records, from a straight
    line fitted through (delay, records committed) of earlier kills."""
    pts = [(d, n) for d, n in points if n > 0]
    if len(pts) < 5:
        return None
    md = sum(d for d, _ in pts) / len(pts)
    mn = sum(n for _, n in pts) / len(pts)
    var = sum((d - md) ** 2 for d, _ in pts)
    if var <= 0:
        return None
    slope = sum((d - md) * (n - mn) for d, n in pts) / var
    if slope <= 0:
        return None
    return md + (records - mn) / slope


def kill_chain(chain: Chain, cuts: int) -> Chain:
    """kill -9 after random delays on a 2 MiB image. Every 16th cut is aimed past the size
    rollover of the boot's first segment, from the logging rate measured by the earlier cuts."""
    chain.power_on(ENDLESS, 2048)
    points: list[tuple[float, int]] = []  # (delay, records committed) of the cuts so far
    per_segment = SEGMENT_RECORDS
    aim: float | None = None
    # How long a power-up takes before it logs depends on this machine and its load: learnt from
    # the cuts that landed in boot, so the cuts meant for logging land after it.
    boot_s = 0.15
    for i in range(cuts):
        aimed = i % 16 == 15
        if aimed:
            if aim is None:
                aim = _aim(points, per_segment * 1.1) or 3.0
            # A segment is ~3,500 records: at a few hundred records a second on a loaded machine (the
            # strict board's flash and secure-element timing) that is over 10 s; the cap only stops a
            # runaway aim.
            delay = min(aim * chain.rng.uniform(1.0, 1.15), 20.0 + 4 * boot_s)
        elif chain.rng.random() < 0.33:
            delay = chain.rng.uniform(0.0, boot_s)  # interpreter start, mount, recovery, first segment
        else:
            delay = boot_s + chain.rng.uniform(0.0, 0.3)  # logging: a few thousand records a second
        meant_for_logging = not aimed and delay >= boot_s
        cut = Cut("kill", i, f"delay={delay:.3f}s")
        first = _first_seq(chain)
        chain.kill_after(cut, delay)
        chain.check(cut, full_read=i % 10 == 9 or aimed or i == cuts - 1)
        segs = chain.boot_segments(first)
        if cut.added == 0:
            cut.phase = "boot"
            if meant_for_logging:  # the boot took longer than learnt so far
                boot_s = min(delay * 1.2, 3.0)
        elif len(segs) > 1:
            cut.phase = "rollover"
            per_segment = int(segs[1][:8], 16) - int(segs[0][:8], 16)
        else:
            cut.phase = "logging"
        if aimed:  # aim the next one from where this one landed
            ratio = per_segment * 1.1 / max(cut.added, 1)
            aim = delay * (0.97 if cut.phase == "rollover" else min(2.0, max(1.1, ratio)))
        points.append((delay, cut.added))
        chain.cuts.append(cut)
    return chain


def full_chain(chain: Chain, cuts: int) -> Chain:
    """A small flash: kill -9 until it is full, then kill -9 and torn writes on the full flash."""
    chain.power_on(SHORT, FULL_FLASH_KIB)  # the kills run on past its end
    full_at = None
    ops = 0
    clean_runs = 0  # torn runs that ended before their tear (tried again)
    i = -1
    # Kills until the flash is full (as many as this machine's speed needs), then `cuts` more on
    # the full flash, kills and torn writes alternating.
    while full_at is None or i - full_at < cuts:
        i += 1
        if full_at is None and i >= FILL_CUTS_MAX:
            break
        if full_at is None or i % 2:
            delay = chain.rng.uniform(0.8, 2.0) if full_at is None else chain.rng.uniform(0.0, 0.5)
            cut = Cut("kill", i, f"delay={delay:.3f}s")
            chain.kill_after(cut, delay)
            chain.check(cut, full_read=True)
            chain.cuts.append(cut)
        else:
            if not ops:  # learn the block operations of a power-up on the full flash
                code, fields = chain.run_until_end(0, None)
                chain.runs += 1
                chain.check(None, full_read=True)
                ops = int(fields["ops"])
            got = chain.torn(i, chain.rng.randint(1, ops), logs_all=False)
            if got is None:
                # The run ended before its tear: it did fewer block operations than learnt (the
                # full flash's state moved on). Tear within what it did, at this same step, so
                # every torn step of the chain lands (a bounded number of tries).
                ops = max(1, chain.last_ops)
                clean_runs += 1
                if clean_runs > 20:
                    raise CutFailed(f"{chain.where(None)}: 20 torn runs ended before their tear (ops={ops})")
                i -= 1
                continue
            cut = got
        last = chain.previous[-1] if chain.previous else None
        if full_at is None and last is not None and "storage_low" in last["flags"] and cut.added == 0:
            full_at = i
        cut.phase = "full" if full_at is not None else ("boot" if cut.added == 0 else "logging")
    if full_at is None:
        raise CutFailed(
            f"seed={chain.seed} chain={chain.name}: the {FULL_FLASH_KIB} KiB flash never filled up "
            f"({len(chain.previous)} records)"
        )
    return chain


def torn_chain(chain: Chain, cuts: int) -> Chain:
    """Torn writes at block operations spread over short runs: first every operation of the
    boot in turn (mount, boot counter, recovery, alarm state), then at random over the run."""
    chain.power_on(SHORT, 1024)
    code, fields = chain.run_until_end(0, None)  # learn the number of operations of a run
    chain.runs += 1
    chain.check(None)
    ops = int(fields["ops"])
    i = 0
    boot_sweep = True
    while len(chain.cuts) < cuts:
        if boot_sweep:
            n = i + 1
        elif chain.rng.random() < 0.2:
            n = chain.rng.randint(1, 10)
        else:
            n = chain.rng.randint(1, ops + ops // 20)
        cut = chain.torn(i, n)
        if cut is None:
            ops = max(ops, n)
        else:
            cut.phase = "boot" if cut.t_s == 0 else "logging"
            boot_sweep = boot_sweep and cut.phase == "boot"
        i += 1
    chain.check(None, full_read=True)
    return chain


def rollover_chain(chain: Chain, tears: int) -> Chain:
    """Torn writes aimed at the size rollover of a long power-up (commit the last batch into the
    full segment, close it, open the next, write its header, commit the first batch into it)."""
    chain.power_on(LONG, 2048)
    code, fields = chain.run_until_end(0, None)
    chain.runs += 1
    chain.check(None)
    ops, recs = int(fields["ops"]), len(chain.previous)
    segs = chain.boot_segments(0)
    assert len(segs) >= 2, f"seed={chain.seed} chain={chain.name}: no rollover in {LONG['duration_s']} s: {segs}"
    per_segment = int(segs[1][:8], 16) - int(segs[0][:8], 16)  # records in the first segment of a boot
    ops_per_record = ops / recs  # grows as the image fills: re-measured from every tear
    i = 0
    while len(chain.cuts) < tears and i < 2 * tears:
        n = max(1, int(per_segment * ops_per_record) + chain.rng.randint(-10, 60))
        first = _first_seq(chain)
        before = len(chain.previous)
        cut = chain.torn(i, n)
        i += 1
        if cut is None:  # the run ended first: its operations still tell the rate
            ops_per_record = chain.last_ops / max(1, len(chain.previous) - before)
            continue
        ops_per_record = n / max(1, cut.added) if cut.added else ops_per_record
        segs = chain.boot_segments(first)
        if len(segs) > 1:
            cut.phase = "rollover"  # the next segment exists: the cut came during or after it
        elif cut.added >= per_segment - 2 * 15:
            cut.phase = "rollover"  # within the last two batches before it
        else:
            cut.phase = "logging"
    chain.check(None, full_read=True)
    return chain


# --- the test ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("power-loss")

    def make(name):
        return Chain(name, tmp / f"{name}.img", SEED)

    jobs = [(rollover_chain, make("rollover"), ROLLOVER_TEARS)]
    jobs += [(kill_chain, make(n), c) for n, c in KILL_CHAINS.items()]
    jobs += [(full_chain, make("full"), FULL_CHAIN_CUTS)]
    jobs += [(torn_chain, make(n), c) for n, c in TORN_CHAINS.items()]
    results: dict[str, Chain | BaseException] = {}

    def timed(fn, chain, n):
        t = time.monotonic()
        try:
            fn(chain, n)
            chain.wall_s = time.monotonic() - t
            return chain
        except BaseException as exc:  # reported by the test of that chain
            return exc
        finally:
            chain.close()

    # Two cuts at a time (2 cores): while one board runs, the other chain checks its image.
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {job[1].name: pool.submit(timed, *job) for job in jobs}
        for name, fut in futures.items():
            results[name] = fut.result()
    return results


def _get(chains, name) -> Chain:
    got = chains[name]
    if isinstance(got, BaseException):
        raise got
    return got


def _phases(chain: Chain) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in chain.cuts:
        out[c.phase] = out.get(c.phase, 0) + 1
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", list(KILL_CHAINS))
def test_kill9_cuts_during_boot_logging_and_rollover(chains, name):
    chain = _get(chains, name)
    phases = _phases(chain)
    ctx = f"seed={chain.seed} chain={name} phases={phases}"
    assert len(chain.cuts) == KILL_CHAINS[name], ctx
    # Where a cut lands depends on this machine's speed: demand a few in boot, most while logging.
    assert phases.get("boot", 0) >= 2 and phases.get("logging", 0) >= 20, ctx
    assert phases.get("rollover", 0) >= 1, ctx
    # Progress: records keep being added across the cuts, not only at the start.
    half = len(chain.cuts) // 2
    assert sum(c.added for c in chain.cuts[:half]) > 1000 and sum(c.added for c in chain.cuts[half:]) > 1000, ctx
    # Every power-up that logged started a segment of its own: the boots are all on flash.
    boots = {r["boot"] for r in chain.previous}
    assert len(boots) == sum(1 for c in chain.cuts if c.added), ctx


@pytest.mark.slow
def test_kill9_and_torn_writes_on_a_full_flash(chains):
    chain = _get(chains, "full")
    phases = _phases(chain)
    ctx = f"seed={chain.seed} chain=full phases={phases} leds={sorted(chain.leds)}"
    assert phases.get("logging", 0) >= 1 and phases.get("full", 0) >= FULL_CHAIN_CUTS - 2, ctx
    assert sum(1 for c in chain.cuts if c.kind == "torn") >= 5, ctx
    # The policy: unsynced records are never overwritten (checked after every cut), the last ones
    # say storage is low, and the board shows "fault".
    assert len(chain.previous) > 1000 and "storage_low" in chain.previous[-1]["flags"], ctx
    assert "fault" in chain.leds, ctx


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TORN_CHAINS))
def test_torn_writes_during_boot_logging_and_commit(chains, name):
    chain = _get(chains, name)
    ctx = f"seed={chain.seed} chain={name}"
    assert len(chain.cuts) == TORN_CHAINS[name], ctx
    at_boot = sum(1 for c in chain.cuts if c.phase == "boot")
    assert at_boot >= 3 and len(chain.cuts) - at_boot >= 20, ctx + f" at_boot={at_boot}"
    # The batch in RAM is lost by design: some cuts must actually have lost samples...
    assert sum(1 for c in chain.cuts if c.lost_ram) >= 10, ctx
    # ...and records keep being added across cuts.
    half = len(chain.cuts) // 2
    assert sum(c.added for c in chain.cuts[:half]) > 100 and sum(c.added for c in chain.cuts[half:]) > 100, ctx


@pytest.mark.slow
def test_torn_writes_at_segment_rollover(chains):
    chain = _get(chains, "rollover")
    phases = _phases(chain)
    ctx = f"seed={chain.seed} chain=rollover phases={phases} added={[c.added for c in chain.cuts]}"
    assert len(chain.cuts) == ROLLOVER_TEARS, ctx
    assert phases.get("rollover", 0) >= len(chain.cuts) // 2, ctx
    # Coverage: most tears land while records wait in RAM (a tear right after a commit, e.g. at
    # the configuration chunk written when the next segment opens, correctly loses nothing; that
    # nothing committed is ever lost is checked after every cut).
    assert sum(1 for c in chain.cuts if c.lost_ram) >= len(chain.cuts) // 2, ctx


@pytest.mark.slow
def test_at_least_200_power_cuts(chains):
    done = [c for c in chains.values() if not isinstance(c, BaseException)]
    kinds: dict[str, int] = {}
    for chain in done:
        for cut in chain.cuts:
            kinds[cut.kind] = kinds.get(cut.kind, 0) + 1
    summary = "; ".join(
        f"{c.name}: {len(c.cuts)} cuts {_phases(c)}, {len(c.previous)} records, {c.wall_s:.1f}s" for c in done
    )
    print(f"\npower cuts (seed {SEED}): {kinds}; {summary}")
    assert len(done) == len(chains), "a chain failed: see its own test"
    assert sum(kinds.values()) >= 200 and kinds.get("kill", 0) >= 90 and kinds.get("torn", 0) >= 90, kinds
