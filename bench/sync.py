"""Bench: `isolog sync` from the virtual board, side by side in one run.

  throughput  sync of a multi-day log from a virtual board whose USB link is limited to 1 MB/s
              (native USB) and to 115200 baud (11,520 B/s, a USB-UART bridge): records/s and the
              share of the link's raw byte rate reached = segment bytes moved / (duration x rate)
              (the frames' own bytes on the link are shown too). Goal >= 50 % at 1 MB/s.
  mpremote    `mpremote fs cp` of the same segment files over the same emulated link: the MicroPython
              unix REPL with a copy of the same flash image mounted at /flash, on the device side of
              a rate-limited relay (bench/sync.py's own: two pseudo-terminals, the REPL raw on one).
              Timed for the whole copy in one mpremote run, less mpremote's own start-up (a run that
              copies nothing), which favours mpremote. Goal: sync >= 10x faster.
  cadence     the board logging at a finite speed (virtual seconds per real second) during a full
              sync at 115200 baud: every record whose interval falls in the sync window must be one
              configured interval (60 s) long - no missed sample - and the board's virtual clock must
              keep up with real time x speed (in the virtual board time advances only while the
              firmware idles, so a loop kept busy by the link shows as lag, not as a long interval).

Logs stay under 12 days of uptime: the virtual board's tick counter wraps at 2^30 ms (see the sync
bench notes in the report).

Run: python -m bench (all benches) or python -c "import bench.sync as b; b.main()".
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import tty
from pathlib import Path

from bench.table import print_table, row

RATE_USB = 1_000_000  # bytes/s: native USB, the rate the sync goal is stated at (>= 50 % of it)
RATE_UART = 11_520  # bytes/s: 115200 baud, 8N1
DAYS_USB = 10  # the log synced at 1 MB/s (1-minute records)
DAYS_UART = 4  # the log synced at 115200 baud (mpremote needs ~3x as long for the same bytes)
SPEED = 60  # virtual seconds per real second while syncing (the throughput runs)
CADENCE_SPEED = 300  # the 115200 run, for the cadence: ~25 one-minute samples during the sync
INTERVAL_S = 60  # the built-in shipment's logging interval
USB_REPEAT = 5  # syncs at 1 MB/s (a fraction of a second each): the median is reported
SHARE_GOAL = 0.50
SPEEDUP_GOAL = 10.0
INTERVAL_TOLERANCE_S = 1.0


# --- the virtual board and sync ----------------------------------------------------------------------


def _scenario(days: int) -> dict:
    from isolog.sim import scenario as scenario_mod

    return scenario_mod.steady("bench-sync", f"{days}d")


def make_log(path: Path, days: int) -> None:
    """A flash image holding `days` of one-minute records, logged at full speed."""
    from isolog.sim.launcher import VirtualBoard

    with VirtualBoard(_scenario(days), path, speed=0, until_end=True) as b:
        code = b.run()
    if code != 0:
        raise RuntimeError(f"the virtual board logging {days} days exited with {code}")


def segments(image: Path) -> list[tuple[str, int]]:
    from isolog.log import image as flash_image

    fs = flash_image.open_image(image)
    names = sorted(n for n in fs.listdir(flash_image.LOG_DIR) if n.endswith(".seg"))
    return [(n, fs.stat(f"{flash_image.LOG_DIR}/{n}").size) for n in names]


def _clock(port: str) -> tuple[float, int]:
    from isolog.board.link import Link

    with Link(port) as link:
        t = time.monotonic()
        return t, int(link.get_clock()["uptime_ms"])


def run_sync(image: Path, tmp: Path, rate: int, speed: float, tag: str = "") -> dict:
    """Sync a copy of image from a virtual board at this link rate; then the cadence of the records
    logged while it ran."""
    from isolog.board.link import Link
    from isolog.board.sync import sync
    from isolog.log import image as flash_image
    from isolog.sim.launcher import VirtualBoard

    flash = tmp / f"sync-{rate}{tag}.img"
    shutil.copyfile(image, flash)
    db = tmp / f"sync-{rate}{tag}.sqlite3"
    board = VirtualBoard(_scenario(60), flash, speed=speed, until_end=False, link_rate=rate)
    with board:
        board.start()
        with Link(board.port) as link:
            boot = link.identify()["boot"]
        t0, u0 = _clock(board.port)
        marks: list[tuple[float, int]] = []  # (time, segment bytes read) at each READ reply
        t_call = time.monotonic()
        r = sync(board.port, db, progress=lambda p: marks.append((time.monotonic(), p.bytes)))
        t1, u1 = _clock(board.port)
        with Link(board.port) as link:
            link.commit()  # the records in RAM (LIST does not commit)
        board.stop()
        if board.proc is not None:
            board.proc.wait(timeout=10)
    log = flash_image.read_image(flash)
    # Records of this boot whose whole interval lies in the sync window (virtual uptime).
    window = [x for x in log.records if x["boot"] == boot and u0 / 1000 + INTERVAL_S <= x["uptime_s"] <= u1 / 1000]
    deviations = [abs(x["interval_s"] - INTERVAL_S) for x in window]
    expected = max(0, int((u1 - u0) / 1000 // INTERVAL_S) - 1)
    # The transfer phase alone: from the first READ reply to the last (IDENTIFY, clock, LIST before it
    # and ACK after it left out).
    steady = None
    if len(marks) >= 3 and marks[-1][0] > marks[0][0]:
        steady = (marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0]) / rate
    return {
        "result": r,
        "rate": rate,
        "steady_share": steady,
        "setup_s": marks[0][0] - t_call if marks else None,
        "share": r.bytes_read / (r.duration_s * rate),
        "link_share": r.link_bytes_in / (r.duration_s * rate),
        "window_records": len(window),
        "expected_records": expected,
        "missed": sum(1 for d in deviations if d > INTERVAL_TOLERANCE_S),
        "max_dev_s": max(deviations) if deviations else None,
        "lag_s": (t1 - t0) * speed - (u1 - u0) / 1000,
        "virtual_s": (u1 - u0) / 1000,
        "speed": speed,
        "problems": r.problems + [str(p) for p in log.problems],
    }


# --- mpremote over the same emulated link --------------------------------------------------------------

_DEVICE_BOOT = """\
import os, vfs, termios
BS = 4096
class Flash:
    def __init__(self, path):
        self.f = open(path, "r+b")
        self.f.seek(0, 2)
        self.n = self.f.tell() // BS
    def readblocks(self, block, buf, offset=0):
        self.f.seek(block * BS + offset)
        self.f.readinto(buf)
    def writeblocks(self, block, buf, offset=None):
        self.f.seek(block * BS + (offset or 0))
        self.f.write(buf)
    def ioctl(self, op, arg):
        if op == 4:
            return self.n
        if op == 5:
            return BS
        return 0
vfs.mount(vfs.VfsLfs2(Flash(os.getenv("BENCH_FLASH"))), "/flash")
termios.setraw(0)
"""


class RateRelay:
    """The MicroPython unix REPL on one pseudo-terminal, the host's port on another, and a relay
    between their masters limited to `rate` bytes/s each way (the way the virtual board's relay
    paces: 256-byte pieces, no credit carried over an idle link)."""

    def __init__(self, image: Path, tmp: Path, rate: float):
        self.rate = rate
        self.host_m, self.host_s = os.openpty()
        self.dev_m, self.dev_s = os.openpty()
        tty.setraw(self.host_s)
        tty.setraw(self.dev_s)
        self.port = os.ttyname(self.host_s)
        boot = tmp / "mp_boot.py"
        boot.write_text(_DEVICE_BOOT)
        home = tmp / "mp-home"
        home.mkdir(exist_ok=True)
        env = dict(os.environ, BENCH_FLASH=str(image), HOME=str(home), MICROPYPATH="")
        self.proc = subprocess.Popen(
            [_micropython(), "-i", str(boot)], stdin=self.dev_s, stdout=self.dev_s, stderr=subprocess.DEVNULL, env=env
        )
        self.stop = threading.Event()
        for a, b in ((self.host_m, self.dev_m), (self.dev_m, self.host_m)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: int, dst: int) -> None:
        started, sent = time.monotonic(), 0
        while not self.stop.is_set():
            try:
                ready, _, _ = select.select([src], [], [], 0.2)
                if not ready:
                    started, sent = time.monotonic(), 0
                    continue
                data = os.read(src, 256)
            except OSError:
                return
            if not data:
                return
            try:
                os.write(dst, data)
            except OSError:
                return
            sent += len(data)
            ahead = sent / self.rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)

    def close(self) -> None:
        self.stop.set()
        self.proc.kill()
        self.proc.wait()
        time.sleep(0.25)
        for fd in (self.host_m, self.host_s, self.dev_m, self.dev_s):
            try:
                os.close(fd)
            except OSError:
                pass


def _micropython() -> str:
    exe = Path(sysconfig.get_path("scripts")) / "micropython"
    return str(exe) if exe.exists() else (shutil.which("micropython") or "micropython")


def _mpremote(port: str, *args: str, timeout: float = 600) -> float:
    exe = Path(sysconfig.get_path("scripts")) / "mpremote"
    cmd = [str(exe) if exe.exists() else "mpremote", "connect", port, "resume", *args]
    t = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - t
    if proc.returncode != 0:
        raise RuntimeError(f"mpremote {' '.join(args)} failed: {proc.stderr.strip()[-300:]}")
    return took


def run_mpremote(image: Path, tmp: Path, rate: float) -> dict:
    """`mpremote fs cp` of every segment file of image, in one run, over a link at this rate."""
    from isolog.log import image as flash_image

    flash = tmp / f"mp-{int(rate)}.img"
    shutil.copyfile(image, flash)
    segs = segments(flash)
    out = tmp / f"mp-out-{int(rate)}"
    out.mkdir()
    relay = RateRelay(flash, tmp, rate)
    try:
        time.sleep(0.3)  # the REPL starts
        startup = min(_mpremote(relay.port, "exec", "pass") for _ in range(2))
        took = _mpremote(relay.port, "fs", "cp", *[f":/flash{flash_image.LOG_DIR}/{n}" for n, _ in segs], f"{out}/")
    finally:
        relay.close()
    fs = flash_image.open_image(flash)
    for n, _ in segs:  # the copies are the segment files, byte for byte
        with fs.open(f"{flash_image.LOG_DIR}/{n}", "rb") as f:
            if (out / n).read_bytes() != f.read():
                raise RuntimeError(f"mpremote's copy of {n} differs from the flash")
    nbytes = sum(size for _, size in segs)
    transfer = max(took - startup, 1e-3)
    return {
        "bytes": nbytes,
        "segments": len(segs),
        "total_s": took,
        "startup_s": startup,
        "transfer_s": transfer,
        "bytes_per_s": nbytes / transfer,
    }


# --- the table ------------------------------------------------------------------------------------------


def _rate_name(rate: int) -> str:
    return "1 MB/s" if rate == RATE_USB else "115200 baud"


def main() -> None:
    print("== sync bench (virtual board, MicroPython unix port; mpremote over the same relayed link) ==", flush=True)
    t_start = time.perf_counter()
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="isolog-bench-sync-") as d:
        tmp = Path(d)
        runs = []
        for rate, days, speed, repeat in (
            (RATE_USB, DAYS_USB, SPEED, USB_REPEAT),
            (RATE_UART, DAYS_UART, CADENCE_SPEED, 1),
        ):
            image = tmp / f"log-{days}d.img"
            make_log(image, days)
            tries = sorted(
                (run_sync(image, tmp, rate, speed, f"-{i}") for i in range(repeat)), key=lambda x: x["share"]
            )
            s = tries[len(tries) // 2]  # the median run
            s["range"] = (tries[0]["share"], tries[-1]["share"])
            m = run_mpremote(image, tmp, rate)
            runs.append((rate, days, s, m))

    for rate, days, s, m in runs:
        r = s["result"]
        name = _rate_name(rate)
        sync_bps = r.bytes_read / r.duration_s
        speedup = sync_bps / m["bytes_per_s"]
        row(
            rows,
            f"sync @{name}: {days}-day log",
            f"{r.records_added:,} records, {r.bytes_read / 1024:.1f} KB in {r.duration_s:.2f} s ({r.retries} retries)",
            "",
            None,
        )
        row(rows, f"sync @{name}: records/s", f"{r.records_per_s:,.0f}", "", None)
        row(
            rows,
            f"sync @{name}: share of link rate (segment bytes)",
            f"{100 * s['share']:.1f} %",
            f">= {100 * SHARE_GOAL:.0f} %" if rate == RATE_USB else "",
            s["share"] >= SHARE_GOAL if rate == RATE_USB else None,
        )
        if s["range"][0] != s["range"][1]:
            row(
                rows,
                f"sync @{name}: share, range over runs",
                f"{100 * s['range'][0]:.1f} .. {100 * s['range'][1]:.1f} %",
                "",
                None,
            )
        row(rows, f"sync @{name}: share of link rate (all bytes in)", f"{100 * s['link_share']:.1f} %", "", None)
        if s["steady_share"] is not None:
            row(
                rows,
                f"sync @{name}: share while reading (first to last READ)",
                f"{100 * s['steady_share']:.1f} % (first READ after {s['setup_s']:.2f} s)",
                "",
                None,
            )
        row(
            rows,
            f"mpremote fs cp @{name}: {m['segments']} segments",
            f"{m['bytes'] / 1024:.1f} KB in {m['transfer_s']:.2f} s (+{m['startup_s']:.2f} s start-up), "
            f"{m['bytes_per_s'] / 1024:.1f} KB/s",
            "",
            None,
        )
        if rate == RATE_USB:
            row(
                rows, f"sync vs mpremote @{name}", f"{speedup:.1f}x", f">= {SPEEDUP_GOAL:.0f}x", speedup >= SPEEDUP_GOAL
            )
        else:
            # The link caps any protocol at 11.52 KB/s: against mpremote's rate, 10x cannot be reached.
            ceiling = rate / m["bytes_per_s"]
            row(
                rows,
                f"sync vs mpremote @{name}",
                f"{speedup:.1f}x (link ceiling {ceiling:.1f}x)",
                f">= {SPEEDUP_GOAL:.0f}x",
                speedup >= SPEEDUP_GOAL,
            )
            if speedup < SPEEDUP_GOAL <= ceiling:
                pass
            elif ceiling < SPEEDUP_GOAL:
                notes.append(
                    f"at {name} mpremote reaches {100 * m['bytes_per_s'] / rate:.0f} % of the link, so no "
                    f"protocol can be {SPEEDUP_GOAL:.0f}x faster there (at most {ceiling:.1f}x)"
                )
        if s["problems"]:
            row(rows, f"sync @{name}: problems", "; ".join(s["problems"][:3]), "none", False)

    rate, days, s, _ = runs[-1]
    name = _rate_name(rate)
    row(
        rows,
        f"cadence @{name}, {s['speed']:g}x: samples in the sync window",
        f"{s['window_records']} (expected {s['expected_records']}, {s['virtual_s']:.0f} virtual s)",
        f">= {s['expected_records']}",
        s["window_records"] >= s["expected_records"] > 0,
    )
    row(
        rows,
        f"cadence @{name}: missed sample intervals",
        f"{s['missed']}" + (f" (max deviation {s['max_dev_s']:.3f} s)" if s["max_dev_s"] is not None else ""),
        f"0 (|interval - {INTERVAL_S} s| <= {INTERVAL_TOLERANCE_S:g} s)",
        s["missed"] == 0 and s["window_records"] > 0,
    )
    row(
        rows,
        f"cadence @{name}: virtual clock behind real time x speed",
        f"{s['lag_s']:.1f} virtual s",
        f"< {INTERVAL_S} s",
        s["lag_s"] < INTERVAL_S,
    )

    print_table(rows)
    for n in notes:
        print(f"note: {n}")
    print(f"(sync bench took {time.perf_counter() - t_start:.0f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
