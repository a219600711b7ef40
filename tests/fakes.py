"""A board in this process, for host tests that run everywhere (no MicroPython unix port, no PTY).

FakeBoard runs the firmware's own code under CPython: logger.Logger (sampling, batching, the
clock), protocol.Server (the USB protocol) and logstore.LogStore (the log on flash), with the
virtual board's simulated DS18B20 bus (boards/sim_onewire.py), on a small fake board:

* flash: an in-memory filesystem (MemFS) with littlefs's semantics where the firmware relies on
  them (rename replaces, a write counts once flushed, statvfs gives the flash size), so nothing
  touches the host's disk and it behaves the same on Windows;
* clock: virtual milliseconds that advance only when a test runs the board (run_for), never
  while a host talks to it;
* counter: counts_at(uptime_ms), a function the test chooses, so it knows every interval's pulses.

The firmware modules are loaded privately for each FakeBoard (their `import os`, `open`, `time`,
`gc` and `micropython` resolve to the fake board's), so nothing is put in sys.modules or on
sys.path and the fake works with or without a CPython stand-in for the `micropython` module.

FakeSerial is the cable: an object with pyserial's surface that `isolog.board.link.Link(port,
serial_obj=...)` accepts. Host writes go to the board; the board answers when the host reads.
Faults: per-frame filters in either direction (drop, hold back, garble, add garbage) and a cable
pulled after a number of bytes in either direction (the bytes in flight are cut, then reads return
nothing and writes raise serial.SerialException, as pyserial does when a USB device goes away).
"""

from __future__ import annotations

import builtins
import errno
import io
import os as _os
import time
import types
from pathlib import Path
from typing import Any, Callable, Sequence

import serial  # pyserial: its exception type is what Link expects from a failing port

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = ROOT / "firmware"
BOARDS_DIR = ROOT / "boards"

DEVICE_ID = bytes.fromhex("15010c00000000f1")
BLOCK_SIZE = 4096
START_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: the fake board's battery-backed RTC

# A board configuration as isolog configure sends it (firmware/config.py validates it).
CONFIG = {
    "id": "LU-TEST-0001",
    "interval_s": 60,
    "cal_cpm_per_usv_h": 153.8,
    "dead_time_us": 190.0,
    "background_usv_h": 0.1,
    "dose_warn_usv_h": 50.0,
    "dose_alarm_usv_h": 100.0,
    "temp_rules": [["frozen", 8.0, "above", 7200, "single"]],
}


def default_counts(uptime_ms: int) -> int:
    """Cumulative pulses at an uptime: 3 per second plus a burst every 7th minute, so intervals
    differ from each other (a field mix-up shows)."""
    minutes = uptime_ms // 60_000
    return 3 * (uptime_ms // 1000) + 11 * (minutes // 7)


# --- flash: an in-memory filesystem ----------------------------------------------------------------


class MemFS:
    """Files and folders in RAM. A write reaches the "flash" on flush or close (littlefs's commit
    point); power_cut() forgets what open files had not flushed."""

    def __init__(self, blocks: int = 256, block_size: int = BLOCK_SIZE):
        self.block_size = block_size
        self.blocks = blocks
        self.files: dict[str, bytearray] = {}
        self.dirs: set[str] = {""}
        self.generation = 0  # bumped at a power cut: files opened before it write nothing more

    @staticmethod
    def norm(path: str) -> str:
        return "/".join(p for p in str(path).split("/") if p)

    def _parent_ok(self, path: str) -> bool:
        return path.rpartition("/")[0] in self.dirs

    def used_blocks(self) -> int:
        per_file = sum(max(1, -(-len(d) // self.block_size)) for d in self.files.values())
        return 2 + len(self.dirs) + per_file  # superblock pair, one metadata block per folder

    # the firmware's view: open() and the os functions it calls

    def open(self, path: str, mode: str = "r", *args: Any, **kwargs: Any) -> "MemFile":
        p = self.norm(path)
        if "r" in mode:
            if p not in self.files:
                raise OSError(errno.ENOENT, "no such file", path)
            return MemFile(self, p, mode, bytearray(self.files[p]), 0)
        if not self._parent_ok(p) or p in self.dirs:
            raise OSError(errno.ENOENT, "no such folder", path)
        if "a" in mode:
            data = bytearray(self.files.get(p, b""))
            self.files.setdefault(p, bytearray())
            return MemFile(self, p, mode, data, len(data))
        self.files[p] = bytearray()
        return MemFile(self, p, mode, bytearray(), 0)

    def stat(self, path: str) -> tuple:
        p = self.norm(path)
        if p in self.dirs:
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        if p in self.files:
            return (0x8000, 0, 0, 0, 0, 0, len(self.files[p]), 0, 0, 0)
        raise OSError(errno.ENOENT, "no such file", path)

    def listdir(self, path: str) -> list[str]:
        p = self.norm(path)
        if p not in self.dirs:
            raise OSError(errno.ENOENT, "no such folder", path)
        prefix = p + "/" if p else ""
        names = [
            n[len(prefix) :]
            for n in list(self.files) + list(self.dirs)
            if n.startswith(prefix) and n != p and "/" not in n[len(prefix) :]
        ]
        return sorted(names)

    def ilistdir(self, path: str):
        p = self.norm(path)
        for name in self.listdir(path):
            full = f"{p}/{name}" if p else name
            yield (name, 0x4000 if full in self.dirs else 0x8000, 0, len(self.files.get(full, b"")))

    def mkdir(self, path: str) -> None:
        p = self.norm(path)
        if p in self.dirs or p in self.files:
            raise OSError(errno.EEXIST, "exists", path)
        if not self._parent_ok(p):
            raise OSError(errno.ENOENT, "no such folder", path)
        self.dirs.add(p)

    def remove(self, path: str) -> None:
        p = self.norm(path)
        if p not in self.files:
            raise OSError(errno.ENOENT, "no such file", path)
        del self.files[p]

    def rename(self, old: str, new: str) -> None:
        o, n = self.norm(old), self.norm(new)
        if o not in self.files:
            raise OSError(errno.ENOENT, "no such file", old)
        if not self._parent_ok(n):
            raise OSError(errno.ENOENT, "no such folder", new)
        self.files[n] = self.files.pop(o)  # littlefs: an atomic replace

    def statvfs(self, path: str) -> tuple:
        free = max(0, self.blocks - self.used_blocks())
        return (self.block_size, self.block_size, self.blocks, free, free, 0, 0, 0, 0, 255)

    # the tests' view

    def copy(self) -> "MemFS":
        """The flash as a power cut now would leave it (what open files flushed)."""
        fs = MemFS(self.blocks, self.block_size)
        fs.files = {p: bytearray(d) for p, d in self.files.items()}
        fs.dirs = set(self.dirs)
        return fs

    def read(self, path: str) -> bytes:
        return bytes(self.files[self.norm(path)])

    def write(self, path: str, data: bytes | bytearray) -> None:
        """Change a file behind the firmware's back (damage, forgery)."""
        self.files[self.norm(path)] = bytearray(data)


class MemFile:
    def __init__(self, fs: MemFS, path: str, mode: str, data: bytearray, pos: int):
        self.fs, self.path, self.mode = fs, path, mode
        self.data = data
        self.pos = pos
        self.text = "b" not in mode
        self.writable = "r" not in mode
        self.generation = fs.generation
        self.closed = False

    def __enter__(self) -> "MemFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, n: int = -1):
        end = len(self.data) if n is None or n < 0 else min(len(self.data), self.pos + n)
        out = bytes(self.data[self.pos : end])
        self.pos = end
        return out.decode() if self.text else out

    def readinto(self, buf) -> int:
        n = min(len(buf), len(self.data) - self.pos)
        buf[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n

    def write(self, data) -> int:
        if not self.writable:
            raise OSError(errno.EBADF, "not open for writing")
        raw = data.encode() if isinstance(data, str) else bytes(data)
        if "a" in self.mode:
            self.pos = len(self.data)
        self.data[self.pos : self.pos + len(raw)] = raw
        self.pos += len(raw)
        return len(raw)

    def flush(self) -> None:
        if not self.writable or self.generation != self.fs.generation:
            return  # opened before a power cut: its RAM is gone
        old = self.fs.files.get(self.path)
        grow = -(-len(self.data) // self.fs.block_size) - (-(-len(old) // self.fs.block_size) if old else 0)
        if grow > 0 and self.fs.used_blocks() + grow > self.fs.blocks:
            raise OSError(errno.ENOSPC, "no space left on the flash")
        self.fs.files[self.path] = bytearray(self.data)

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else (self.pos + offset if whence == 1 else len(self.data) + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.flush()


# --- the firmware, loaded privately for one board ----------------------------------------------


def _micropython_stub() -> types.ModuleType:
    m = types.ModuleType("micropython", "the fake board's micropython module")
    m.const = lambda value: value  # type: ignore[attr-defined]
    m.kbd_intr = lambda chr_: None  # type: ignore[attr-defined]
    m.heap_lock = lambda: 0  # type: ignore[attr-defined]
    m.heap_unlock = lambda: 0  # type: ignore[attr-defined]
    return m


_BOARD_MODULES = ("sim_onewire", "atecc", "sim_atecc")  # from boards/: the models and the SE driver


class Firmware:
    """The firmware modules executed from firmware/*.py (and boards/sim_onewire.py) in their own
    namespaces: `import X` of another firmware module gets this board's copy; os, open, time, gc
    and micropython are the fake board's; everything else is CPython's."""

    def __init__(self, fs: MemFS, ticks_period: int = 1 << 30):
        self.fs = fs
        self.modules: dict[str, types.ModuleType] = {}
        self.os = types.ModuleType("os", "the fake board's os")
        for name in ("stat", "listdir", "ilistdir", "mkdir", "remove", "rename", "statvfs"):
            setattr(self.os, name, getattr(fs, name))
        self.os.urandom = _os.urandom  # type: ignore[attr-defined]  # the ports have it (protocol.py)
        self.time = types.ModuleType("time", "the fake board's time")
        self.time.ticks_diff = lambda a, b: ((a - b + ticks_period // 2) % ticks_period) - ticks_period // 2  # type: ignore[attr-defined]
        self.time.ticks_add = lambda a, d: (a + d) % ticks_period  # type: ignore[attr-defined]
        # the secure element driver's waits (boards/atecc.py): the fake board's time stands still
        self.time.sleep_ms = lambda ms: None  # type: ignore[attr-defined]
        self.time.sleep_us = lambda us: None  # type: ignore[attr-defined]
        self.gc = types.ModuleType("gc", "the fake board's gc")
        self.gc.collect = lambda: None  # type: ignore[attr-defined]
        self.gc.mem_free = lambda: 100_000  # type: ignore[attr-defined]
        self.gc.mem_alloc = lambda: 50_000  # type: ignore[attr-defined]
        self.special = {"os": self.os, "time": self.time, "gc": self.gc, "micropython": _micropython_stub()}
        self.builtins = dict(vars(builtins))
        self.builtins["open"] = fs.open
        self.builtins["__import__"] = self._import

    def _import(self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0):
        if level == 0:
            if name in self.special:
                return self.special[name]
            if (FIRMWARE_DIR / f"{name}.py").is_file() or name in _BOARD_MODULES:
                return self.load(name)
        return builtins.__import__(name, globals, locals, fromlist, level)

    def load(self, name: str) -> types.ModuleType:
        if name in self.modules:
            return self.modules[name]
        path = BOARDS_DIR / f"{name}.py" if name in _BOARD_MODULES else FIRMWARE_DIR / f"{name}.py"
        mod = types.ModuleType(name)
        mod.__file__ = str(path)
        mod.__dict__["__builtins__"] = self.builtins
        self.modules[name] = mod  # before running it: firmware modules import each other
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), mod.__dict__)
        return mod


# --- the board -------------------------------------------------------------------------------------


class FakeBoard:
    """The board surface of boards/README.md, driving the real Logger and protocol Server."""

    NAME = "fake"

    def __init__(
        self,
        flash_blocks: int = 256,
        counts_at: Callable[[int], int] = default_counts,
        temp_c: float = 4.25,
        rtc_epoch_ms: int | None = START_EPOCH_MS,
        device_id: bytes = DEVICE_ID,
        flash: MemFS | None = None,
        secure_element: bool = True,
        se_chip: Any = None,
    ):
        self.fs = MemFS(flash_blocks) if flash is None else flash
        self.fw = Firmware(self.fs)
        # The ATECC608B on the board's I2C bus (boards/sim_atecc.py, its memory in this object,
        # apart from the flash); secure_element=False: a board without one (key on the flash).
        self.i2c = self.fw.load("sim_atecc").SimI2C()
        self.se_chip = se_chip
        if secure_element and se_chip is None:
            self.se_chip = self.fw.load("sim_atecc").SimATECC608(None)
        if self.se_chip is not None:
            self.se_chip.clock_ms = lambda: self.uptime_ms  # its watchdog on the board's time
            self.i2c.devices[0x60] = self.se_chip
        self.counts_at = counts_at
        self.temp_c = temp_c
        self.rtc_base_ms = rtc_epoch_ms  # epoch ms at uptime 0 of this boot (None: no RTC)
        self.id = device_id
        self.cable: FakeSerial | None = None
        self.rx = bytearray()  # bytes from the host not yet read by the firmware
        self.uptime_ms = 0
        self.boots = 0
        self.frozen = True  # time stands still unless run_for() runs the board
        self._until = 0
        self.led_state = ""
        self.app: Any = None
        self.server: Any = None
        self.bus = self.fw.load("sim_onewire").SimDS18B20Bus()
        self.power_on()

    # lifecycle

    def power_on(self) -> None:
        if self.se_chip is not None:
            self.se_chip._to_sleep()  # the chip powers up asleep; its slots and locks stay
        self.uptime_ms = 0
        self.boots += 1
        self.rx.clear()
        self.bus.set_c(self.temp_c)
        self.app = self.fw.load("logger").Logger(self)
        self.server = self.fw.load("protocol").Server(self.app, self.NAME)

    def power_cut(self) -> None:
        """Power gone: what was not flushed to flash is lost; the board starts again (a new boot)."""
        self.fs.generation += 1
        if self.rtc_base_ms is not None:
            self.rtc_base_ms += self.uptime_ms  # the RTC keeps time; uptime starts again at 0
        self.power_on()

    def clone(self) -> "FakeBoard":
        """Another board powered up on a copy of this one's flash (as a power cut now would leave
        it), its RTC at this board's time: the same log, quickly, for many tests."""
        return FakeBoard(
            counts_at=self.counts_at,
            temp_c=self.temp_c,
            rtc_epoch_ms=self.rtc_ms(),
            device_id=self.id,
            flash=self.fs.copy(),
            se_chip=self._se_copy(),
        )

    def _se_copy(self) -> Any:
        if self.se_chip is None:
            return None
        chip = self.fw.load("sim_atecc").SimATECC608(None)
        chip.slot_key, chip.data_locked = self.se_chip.slot_key, self.se_chip.data_locked
        return chip

    def configure(self, cfg: dict | None = None) -> dict:
        """As a host's SET_CONFIG would (firmware/logger.py Logger.configure)."""
        return self.app.configure(dict(CONFIG if cfg is None else cfg))

    def run_for(self, seconds: float) -> None:
        """Let the firmware run its main loop for this much virtual time, up to and including its
        end (it samples, commits): configured at 0, run_for(3600) logs 60 one-minute records."""
        end = self.uptime_ms + int(seconds * 1000)
        self.frozen = False
        self._until = end
        try:
            while self.uptime_ms < end:
                self.app.step()
        finally:
            self.frozen = True
        self.app.step()  # the moment `end` itself: a sample due then is taken

    def serve(self) -> None:
        """The host sent something: the main loop answers every whole request waiting (time stands
        still meanwhile: the board's answers do not depend on how fast the host is)."""
        for _ in range(10_000):
            before = len(self.rx)
            busy = self.server.service() if self.app.link is self.server else False
            self.app.update_leds()
            if not busy and (not self.rx or len(self.rx) == before):
                return
        raise AssertionError("the fake board kept busy: a request loop?")

    # what the test sees

    @property
    def store(self) -> Any:
        return self.app.store

    def segment_paths(self) -> list[str]:
        return sorted(p for p in self.fs.files if p.startswith("data/log/") and p.endswith(".seg"))

    def synced(self) -> int:
        """The first record a host has not acknowledged, as the board keeps it on flash."""
        try:
            return int(self.fs.read("data/synced"))
        except KeyError:
            return 0

    # --- the board surface (boards/README.md) ------------------------------------------------------

    def mount(self) -> str:
        if "data" not in self.fs.dirs:
            self.fs.mkdir("data")
        return "/data"

    def ticks_ms(self) -> int:
        return self.uptime_ms % (1 << 30)

    def idle(self, ms: int) -> None:
        if self.frozen or ms <= 0:
            return
        self.uptime_ms = min(self.uptime_ms + ms, self._until)
        self.bus.set_c(self.temp_c)

    def running(self) -> bool:
        return True

    def counts(self) -> int:
        return self.counts_at(self.uptime_ms) & 0x3FFFFFFF

    def temp_bus(self):
        return self.bus

    low_battery_v = 3.4  # the board surface's level (boards/energy.py for the real boards)

    def battery_v(self) -> float | None:
        return 3.9

    def leds(self, steps, name: str) -> None:
        self.led_state = name

    def rtc_ms(self) -> int | None:
        return None if self.rtc_base_ms is None else self.rtc_base_ms + self.uptime_ms

    def rtc_set_ms(self, epoch_ms: int) -> None:
        self.rtc_base_ms = epoch_ms - self.uptime_ms

    def wdt_start(self, timeout_ms: int) -> None:
        pass

    def wdt_feed(self) -> None:
        pass

    def link_readinto(self, buf) -> int:
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        del self.rx[:n]
        return n

    def link_write(self, data) -> None:
        if self.cable is not None:
            self.cable._from_board(bytes(data))

    def reset(self) -> None:
        self.power_cut()

    def unique_id(self) -> bytes:
        return self.id

    def secure_element(self) -> Any:
        return self.fw.load("atecc").detect(self.i2c)


# --- the cable -------------------------------------------------------------------------------------

Filter = Callable[[int, bytes], bytes]  # (index of the frame in this direction, its bytes) -> bytes sent


class FakeSerial:
    """pyserial's surface (write, flush, read, in_waiting, reset_input_buffer, close) over a cable
    to a FakeBoard. to_board / to_host filter each frame (the host writes one frame per write, the
    board one per link_write); cut_after() pulls the cable after so many bytes."""

    def __init__(
        self,
        board: FakeBoard | None,
        port: str = "FAKE0",
        to_board: Filter | None = None,
        to_host: Filter | None = None,
        read_raises: bool = False,
        cut_to_board: int | None = None,
        cut_to_host: int | None = None,
    ):
        self.board = board
        self.port = port
        self.to_board = to_board
        self.to_host = to_host
        self.read_raises = read_raises  # after a pull: reads raise too (else they return nothing)
        self.inbox = bytearray()  # from the board, not yet read by the host
        self.frames_to_board = 0
        self.frames_to_host = 0
        self.bytes_to_board = 0
        self.bytes_to_host = 0
        self.sent: list[bytes] = []  # every frame the host wrote, as written (before filters)
        self.cut_to_board: int | None = cut_to_board  # pull the cable once this many bytes went that way
        self.cut_to_host: int | None = cut_to_host
        self.pulled = False
        self.is_open = True
        self.timeout = 0.05
        if board is not None:
            board.cable = self
            board.rx.clear()  # a new connection: nothing of an earlier cable is in flight

    def cut_after(self, to_board: int | None = None, to_host: int | None = None) -> None:
        """Pull the cable once this many more bytes went towards the board / the host."""
        self.cut_to_board = None if to_board is None else self.bytes_to_board + to_board
        self.cut_to_host = None if to_host is None else self.bytes_to_host + to_host

    def pull(self) -> None:
        self.pulled = True
        if self.board is not None and self.board.cable is self:
            self.board.cable = None
            self.board.rx.clear()
        self.inbox.clear()

    def _cut(self, data: bytes, sent: int, limit: int | None) -> tuple[bytes, bool]:
        if limit is not None and sent + len(data) >= limit:
            return data[: max(0, limit - sent)], True
        return data, False

    def _from_board(self, data: bytes) -> None:
        if self.pulled:
            return
        i = self.frames_to_host
        self.frames_to_host += 1
        if self.to_host is not None:
            data = self.to_host(i, data)
        data, cut = self._cut(data, self.bytes_to_host, self.cut_to_host)
        self.bytes_to_host += len(data)
        self.inbox += data
        if cut:
            self._pull_keep_inbox()

    def _pull_keep_inbox(self) -> None:
        """The cable goes; what already reached the host's driver can still be read."""
        kept = bytes(self.inbox)
        self.pull()
        self.inbox += kept

    # pyserial's surface

    def write(self, data: bytes) -> int:
        if self.pulled or not self.is_open:
            raise serial.SerialException("write failed: [Errno 5] Input/output error (device disconnected)")
        data = bytes(data)
        self.sent.append(data)
        i = self.frames_to_board
        self.frames_to_board += 1
        out = self.to_board(i, data) if self.to_board is not None else data
        out, cut = self._cut(out, self.bytes_to_board, self.cut_to_board)
        self.bytes_to_board += len(out)
        if self.board is not None:
            self.board.rx += out
        if cut:
            if self.board is not None:
                self.board.serve()  # the board takes what reached it before the pull
            self.pull()
        return len(data)

    def flush(self) -> None:
        if self.pulled:
            raise serial.SerialException("flush failed: device disconnected")

    def _serve(self) -> None:
        if not self.pulled and self.board is not None and self.board.rx:
            self.board.serve()

    @property
    def in_waiting(self) -> int:
        if self.pulled and self.read_raises:
            raise serial.SerialException("device disconnected")
        self._serve()
        return len(self.inbox)

    def read(self, size: int = 1) -> bytes:
        if self.pulled and self.read_raises and not self.inbox:
            raise serial.SerialException(
                "device reports readiness to read but returned no data "
                "(device disconnected or multiple access on port?)"
            )
        self._serve()
        if not self.inbox:
            time.sleep(0.001)  # pyserial waits up to its timeout for data
            return b""
        out = bytes(self.inbox[:size])
        del self.inbox[:size]
        return out

    def reset_input_buffer(self) -> None:
        self.inbox.clear()

    def reset_output_buffer(self) -> None:
        pass

    def close(self) -> None:
        self.is_open = False
        if self.board is not None and self.board.cable is self:
            self.board.cable = None


# --- frame filters (faults) -------------------------------------------------------------------------


def drop(*indices: int) -> Filter:
    """Lose these frames entirely."""
    return lambda i, data: b"" if i in indices else data


def garble(*indices: int, at: int = 9) -> Filter:
    """Flip one byte of these frames (their CRC no longer checks out)."""

    def f(i: int, data: bytes) -> bytes:
        if i not in indices:
            return data
        b = bytearray(data)
        b[min(at, len(b) - 1)] ^= 0x5A
        return bytes(b)

    return f


def lose_byte(*indices: int, at: int = 9) -> Filter:
    """Drop one byte from the middle of these frames."""
    return lambda i, data: data[:at] + data[at + 1 :] if i in indices else data


def garbage_before(*indices: int, junk: bytes = b"MicroPython v1.28 on 2026-01-01; >>> \r\nIL\x01\xff\xff") -> Filter:
    """Garbage (a REPL banner and a false frame start) ahead of these frames."""
    return lambda i, data: junk + data if i in indices else data


class Hold:
    """Hold frame `index` back and deliver it just before frame `release` (a late reply)."""

    def __init__(self, index: int, release: int):
        self.index, self.release = index, release
        self.held = b""

    def __call__(self, i: int, data: bytes) -> bytes:
        if i == self.index:
            self.held = data
            return b""
        if i == self.release:
            return self.held + data
        return data


def chain(*filters: Filter) -> Filter:
    def f(i: int, data: bytes) -> bytes:
        for flt in filters:
            data = flt(i, data)
        return data

    return f


# --- reading the board's flash in the test, from the documented layout (firmware/record.py header) ---


def chunks_of(data: bytes | bytearray) -> list[tuple[int, int, int]]:
    """(offset, kind, total size) of each chunk of an intact segment, walked by the chunk framing
    alone (0xA5 | kind | length u16 LE | payload | CRC u32): no CRC or MAC check here."""
    out = []
    pos = 0
    while pos < len(data):
        assert data[pos] == 0xA5, f"no chunk at {pos}"
        length = data[pos + 2] | data[pos + 3] << 8
        out.append((pos, data[pos + 1], 8 + length))
        pos += 8 + length
    return out


def batch_span(data: bytes | bytearray, offset: int) -> tuple[int, int]:
    """(first_seq, count) of the batch chunk at offset: payload starts first_seq u32, count u8."""
    return int.from_bytes(data[offset + 4 : offset + 8], "little"), data[offset + 8]


def link_to(board: FakeBoard, port: str = "FAKE0", timeout_s: float = 0.25, retries: int = 3, **serial_kw: Any):
    """A Link over a new FakeSerial to the board: (link, serial)."""
    from isolog.board.link import Link

    ser = FakeSerial(board, port, **serial_kw)
    return Link(port, timeout_s=timeout_s, retries=retries, serial_obj=ser), ser


class FakePorts:
    """Every Link the host opens by port name (sync, provision, ...) becomes a fake cable to
    self.board, with FakeSerial keyword arguments self.serial_kw (faults, cuts): change them
    between syncs. self.cables lists the cables opened, newest last."""

    def __init__(self, board: FakeBoard, timeout_s: float, retries: int, serial_kw: dict[str, Any]):
        from isolog.board import link as link_mod

        self.real = link_mod.Link
        self.board = board
        self.timeout_s = timeout_s
        self.retries = retries
        self.serial_kw = serial_kw
        self.cables: list[FakeSerial] = []

    def open(self, port: str, *args: Any, **kwargs: Any):
        ser = FakeSerial(self.board, port, **self.serial_kw)
        self.cables.append(ser)
        return self.real(port, timeout_s=self.timeout_s, retries=self.retries, serial_obj=ser)


def use_fake_ports(
    monkeypatch, board: FakeBoard, timeout_s: float = 0.05, retries: int = 2, **serial_kw: Any
) -> FakePorts:
    """Point the host's Link (isolog.board.link.Link and the names board/ modules imported) at fake
    cables."""
    from isolog.board import configure as configure_mod
    from isolog.board import devices as devices_mod
    from isolog.board import link as link_mod
    from isolog.board import provision as provision_mod
    from isolog.board import sync as sync_mod

    ports = FakePorts(board, timeout_s, retries, serial_kw)
    for mod in (link_mod, sync_mod, provision_mod, configure_mod, devices_mod):
        monkeypatch.setattr(mod, "Link", ports.open)
    return ports


def flash_records(board: FakeBoard) -> list[tuple]:
    """Every record on the board's flash, decoded with the firmware's own record.py (the
    counterpart of the encoder that wrote them): the board's log as the board sees it."""
    record = board.fw.load("record")
    out = []
    for path in board.segment_paths():
        reader = record.ChunkReader(io.BytesIO(board.fs.read(path)))
        while (got := reader.next()) is not None:
            kind, start, length = got
            if kind == record.KIND_BATCH:
                out += record.decode_batch(reader.buf, start, length)[1]
    return sorted(out)


# --- segments built with the firmware's own encoder (firmware/record.py) ---------------------------

# Record flag bits: part of the on-flash format (firmware/record.py, docs/shipment.md).
FLAG_BITS = {
    "boot": 0x0001,
    "over_range": 0x0002,
    "gm_silent": 0x0004,
    "temp_fault": 0x0008,
    "dose_warn": 0x0010,
    "dose_alarm": 0x0020,
    "temp_alarm": 0x0040,
    "low_battery": 0x0080,
    "storage_low": 0x0100,
    "data_dropped": 0x0200,
    "alarm_ack": 0x0400,
}


class SegmentBuilder:
    """One segment file made chunk by chunk with record.encode_header / record.encode_batch, as
    the board's log store writes it. self.chunks lists (offset, size, first_seq, count) per chunk
    (count 0 for a header); self.chain is the MAC of the last chunk (the next one chains on it)."""

    def __init__(
        self,
        first_seq: int = 0,
        boot: int = 1,
        device_id: bytes = DEVICE_ID,
        interval_s: int = 60,
        cal: float = 153.8,
        dead_time_us: float = 190.0,
        background: float = 0.1,
        key: bytes = b"",
        chain: bytes | None = None,
    ):
        from isolog_fw import record

        self.record = record
        self.key = key
        self.boot = boot
        self.interval_s = interval_s
        self.chain_in = record.CHAIN_START if chain is None else chain
        self.chain = self.chain_in
        self.buf = bytearray(2 * record.MAX_CHUNK)
        self.data = bytearray()
        self.chunks: list[tuple[int, int, int, int]] = []
        size, mac = record.encode_header(
            self.buf, boot, first_seq, device_id, interval_s, cal, dead_time_us, background, key, self.chain
        )
        self._add(size, mac, first_seq, 0)

    def _add(self, size: int, mac: bytes, first_seq: int, count: int) -> None:
        self.chunks.append((len(self.data), size, first_seq, count))
        self.data += self.buf[:size]
        self.chain = mac

    def batch(
        self,
        first_seq: int,
        entries: Sequence[tuple[int, int, float | None, int]],
        clock_valid: bool = True,
        clock_offset_ms: int = START_EPOCH_MS,
        base_uptime_ms: int = 0,
        base_counts: int = 0,
        boot: int | None = None,
    ) -> "SegmentBuilder":
        """entries: (interval_ms, interval_counts, temp_c or None, flags) per record."""
        flat: list[int] = []
        for interval_ms, counts, temp_c, flags in entries:
            flat += [interval_ms, counts, self.record.encode_temp(temp_c), flags]
        size, mac = self.record.encode_batch(
            self.buf,
            first_seq,
            self.boot if boot is None else boot,
            self.interval_s,
            clock_valid,
            clock_offset_ms,
            base_uptime_ms,
            base_counts,
            flat,
            len(entries),
            self.key,
            self.chain,
        )
        self._add(size, mac, first_seq, len(entries))
        return self

    def chunk(self, i: int) -> bytes:
        off, size, _, _ = self.chunks[i]
        return bytes(self.data[off : off + size])


def recrc(chunk: bytearray | bytes) -> bytes:
    """A chunk with its CRC-32 (over kind, length and payload) made right again: what a forger
    without the key can do after editing it."""
    from binascii import crc32

    out = bytearray(chunk)
    out[-4:] = (crc32(bytes(out[1:-4])) & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(out)


__all__ = [
    "CONFIG",
    "DEVICE_ID",
    "FakeBoard",
    "FakeSerial",
    "MemFS",
    "Hold",
    "drop",
    "garble",
    "lose_byte",
    "garbage_before",
    "chain",
    "chunks_of",
    "batch_span",
    "link_to",
    "use_fake_ports",
    "FakePorts",
    "flash_records",
    "default_counts",
    "FLAG_BITS",
    "SegmentBuilder",
    "recrc",
]
