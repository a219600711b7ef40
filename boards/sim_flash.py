"""The virtual board's flash: a littlefs image in a host file, as a NOR-like block device
(erased to 0xFF), with operation counters and torn-write injection, in the geometry of the board
it stands for: on the Pico every program must be 256-byte aligned.

The per-board facts and the exit codes are defined once, in boards/profiles.py; the launcher
passes this board's row in the environment, so the virtual board spends none of the firmware's
heap on the whole table (importing it costs ~2 KiB there):

  ISOLOG_SIM_FLASH     the image file
  ISOLOG_SIM_GEOMETRY  "block,read,prog,lookahead" of the board's littlefs (profiles.flash_geometry)
  ISOLOG_SIM_EXITS     "power_loss,reset,repl": the exit codes the launcher acts on
  ISOLOG_SIM_TEAR_AT   tear the Nth flash operation of this power-up: program part of it, then lose
                       power (exit POWER_LOSS_EXIT), like a cut in the middle of a flash write
"""

import io
import os
import sys


def env_ints(name):
    """A comma-separated list of ints the launcher put in the environment."""
    value = os.getenv(name)
    if not value:
        raise RuntimeError("%s not set: the virtual board is started by isolog's launcher" % name)
    return [int(x) for x in value.split(",")]


POWER_LOSS_EXIT, RESET_EXIT, REPL_EXIT = env_ints("ISOLOG_SIM_EXITS")
# boards/sim.py deepsleep() raises SystemExit(DEEPSLEEP_EXIT); sim_boot.py catches it and runs the
# program again in the same process (it never reaches the launcher)
DEEPSLEEP_EXIT = 79
GEOMETRY = env_ints("ISOLOG_SIM_GEOMETRY")  # block, read, prog, lookahead
BLOCK_SIZE = GEOMETRY[0]
# Flash busy times, typical figures of the Pico's W25Q16JV (Winbond datasheet, AC electrical
# characteristics: page program tPP 0.4 ms typ / 3 ms max per 256-byte page, sector erase tSE
# 45 ms typ / 400 ms max per 4 KiB). An RP2040 runs from this flash (XIP): both cores stall while
# it erases or programs, so this time counts against the watchdog (sim.py).
PAGE_SIZE = 256
PAGE_PROGRAM_US = 400
SECTOR_ERASE_US = 45_000
_ERASED = b"\xff" * 256
# SimFlash.readblocks' copy of the last block read, made once as this module loads
_BLOCK_BUF = bytearray(BLOCK_SIZE)
_BLOCK = io.BytesIO(bytes(BLOCK_SIZE))
FLASH = None  # the mounted device (set by sim_boot.py)
# What outlives a wake from deep sleep, which sim_boot.py runs in this same process with every
# module the firmware and the board module loaded (their RAM) dropped. Only small integers, in lists
# made once as this module loads (low in the heap: an object made later and kept through a wake would
# split the free heap the next start needs whole): the wake (kind: 0 none, 1 timer, 2 a host on the
# link; ms slept; the ULP's count; scenario ms; CPU us at the wake), whether the scenario ended while
# the board slept; and the scenario, which is the outside world (read-only). The models are made
# again (the secure element from its file), as a board's outside world and chips do not live in its
# RAM; their modules (sim_onewire, sim_atecc, sim_uart: sim_boot.py loads them first) stay loaded.
WAKE = [0, 0, 0, 0, 0]
ENDED = [0]
# The scenario (the outside world, read-only), parsed once at power-up and kept through wakes
_SCENARIO = [None]


def scenario():
    """The scenario, parsed from its file at the first call (sim_boot.py, before the models and
    the firmware: low in the heap, as the rule above asks) and kept through wakes from deep sleep."""
    if _SCENARIO[0] is None:
        import ujson

        with open(os.getenv("ISOLOG_SIM_SCENARIO")) as f:
            _SCENARIO[0] = ujson.load(f)
    return _SCENARIO[0]


# The file the virtual board reads its CPU time from (boards/sim.py _cpu_us), opened once here
try:
    SCHEDSTAT = open("/proc/self/schedstat", "rb")
except OSError:
    SCHEDSTAT = None
NOW_MS = [0]  # scenario time in ms, kept by the board (boards/sim.py): the devices' clock


def now_ms():
    return NOW_MS[0]


def say(*parts):
    """A line for the launcher on stderr (stdout is the USB link)."""
    sys.stderr.write("@sim " + " ".join(str(p) for p in parts) + "\n")


def _no_clock():
    return 0.0


class SimFlash:
    """Block device over a host file, with operation counters and torn-write injection."""

    def __init__(self, path, tear_at, clock=_no_clock, prog_size=32):
        self.prog_size = prog_size  # every program must start and end on this alignment
        self.misaligned = 0
        self.clock = clock  # scenario time in seconds, for the power-loss message (set by the board)
        self.f = open(path, "r+b")
        self.f.seek(0, 2)
        self.block_count = self.f.tell() // BLOCK_SIZE
        self.tear_at = tear_at
        self.ops = 0
        self.erases = 0
        self.programmed = 0
        self.dead = False
        self.busy_us = 0  # time the flash was busy erasing and programming (see PAGE_PROGRAM_US)
        self.on_op = None  # called after each erase and program (the board checks its watchdog)
        self._cached = -1  # the block in _BLOCK (-1: none)

    def _op(self):
        self.ops += 1
        return self.ops == self.tear_at

    def readblocks(self, block, buf, offset=0):
        # littlefs reads in cache-sized pieces (128 bytes at the boards' sizes): the last block
        # read is kept whole (_BLOCK), so an import costs one host read per block, not one per piece.
        # No heap here (a temporary object per read would scatter the firmware's imports over the
        # heap): the copies go through a stream's readinto.
        if offset + len(buf) > BLOCK_SIZE:
            self._cached = -1
            self.f.seek(block * BLOCK_SIZE + offset)
            self.f.readinto(buf)
            return
        if block != self._cached:
            self._cached = -1
            self.f.seek(block * BLOCK_SIZE)
            self.f.readinto(_BLOCK_BUF)
            _BLOCK.seek(0)
            _BLOCK.write(_BLOCK_BUF)
            self._cached = block
        _BLOCK.seek(offset)
        _BLOCK.readinto(buf)

    def writeblocks(self, block, buf, offset=None):
        if self.dead:
            return
        if offset is None:  # simple interface: erase, then program the whole block
            self.ioctl(6, block)
            offset = 0
        if offset % self.prog_size or len(buf) % self.prog_size:
            # littlefs mounted with a smaller program size than the board's (a host that wrote the
            # image in another geometry, or a mount without the board's progsize): the Pico's flash
            # programs whole 256-byte pages, so this write would not land as littlefs expects.
            self.misaligned += 1
            say("flash_fault", "misaligned_program", "block=%d" % block, "offset=%d" % offset, "len=%d" % len(buf))
            raise OSError(5)  # EIO: littlefs reports LFS_ERR_IO
        torn = self._op()
        self._cached = -1
        self.f.seek(block * BLOCK_SIZE + offset)
        if torn:
            self.f.write(memoryview(buf)[: len(buf) // 2])
            self.lose_power("torn program of block %d" % block)
        self.f.write(buf)
        self.programmed += len(buf)
        # pages touched by this program operation
        self.busy_us += ((offset + len(buf) - 1) // PAGE_SIZE - offset // PAGE_SIZE + 1) * PAGE_PROGRAM_US
        if self.on_op is not None:
            self.on_op()

    def ioctl(self, op, arg):
        if op == 4:
            return self.block_count
        if op == 5:
            return BLOCK_SIZE
        if op == 6:
            if self.dead:
                return 0
            torn = self._op()
            self._cached = -1
            self.f.seek(arg * BLOCK_SIZE)
            # Erase in small pieces from one preallocated buffer: the simulated flash must not
            # take heap the firmware on a real board would have.
            for _ in range((BLOCK_SIZE // 2 if torn else BLOCK_SIZE) // len(_ERASED)):
                self.f.write(_ERASED)
            self.erases += 1
            self.busy_us += SECTOR_ERASE_US
            if torn:
                self.lose_power("torn erase of block %d" % arg)
            if self.on_op is not None:
                self.on_op()
        return 0

    def lose_power(self, why):
        self.dead = True
        say("power_loss", "t=%.3f" % self.clock(), "off=0", why.replace(" ", "_"))
        raise SystemExit(POWER_LOSS_EXIT)


def open_flash(tear=True):
    """The flash device, its counters at zero (tear: the first power-up's torn operation, if asked)."""
    global FLASH
    if FLASH is not None:
        FLASH.f.close()
    value = os.getenv("ISOLOG_SIM_TEAR_AT") if tear else None
    FLASH = SimFlash(os.getenv("ISOLOG_SIM_FLASH"), int(value) if value else 0, prog_size=GEOMETRY[2])
    return FLASH
