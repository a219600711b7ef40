"""boards/esp32s3.py's low-power side, run unchanged with stand-ins for the port's modules: the ULP
(esp32.ULP) is the interpreter of tests/ulp_s3_model.py running the board's real binary, and
machine.mem32 reads its memory, so counts() reads what the ULP counted."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

import ulp_s3_model as model

ROOT = Path(__file__).resolve().parents[2]
US = 1e-6


class _Hw:
    """The chip's state that survives a deep sleep: RTC memory, the ULP, the RTC clock."""

    def __init__(self, lows_us):
        self.rtc_mem = b""
        self.ulp = None
        self.lows = [(a * US, b * US) for a, b in lows_us]
        self.reset_cause = 0  # power on
        self.wake = 0
        self.clock_ns = 1_000_000_000
        self.loads = 0
        self.slept = []


def _modules(hw, monkeypatch):
    machine = types.ModuleType("machine")
    machine.DEEPSLEEP_RESET, machine.EXT0_WAKE, machine.TIMER_WAKE = 4, 2, 4

    class Pin:
        IN, OUT, PULL_UP = 0, 1, 2

        def __init__(self, pin_id, mode=None, pull=None, value=None):
            self.id = pin_id

        def value(self, v=None):
            return 1 if self.id == 10 and hw.wake == 2 else 0

        def init(self, *a, **k):
            pass

    class Anything:
        ATTN_11DB = 3

        def __init__(self, *a, **k):
            pass

        def __getattr__(self, name):
            return lambda *a, **k: None

    class RTC:
        def memory(self, data=None):
            if data is None:
                return hw.rtc_mem
            hw.rtc_mem = bytes(data)

        def datetime(self, t=None):
            return (2026, 11, 30, 0, 8, 0, 0, 0)

    class Mem32:
        def __getitem__(self, addr):
            return hw.ulp.mem[(addr - 0x50000000) // 4]

    machine.Pin, machine.RTC, machine.mem32 = Pin, RTC, Mem32()
    machine.ADC = machine.Timer = machine.Counter = machine.WDT = Anything
    machine.reset_cause = lambda: hw.reset_cause
    machine.wake_reason = lambda: hw.wake

    def deepsleep(ms):
        hw.slept.append(ms)
        raise SystemExit  # never returns on a board

    machine.deepsleep = deepsleep
    machine.unique_id = lambda: b"\x01" * 6
    esp32 = types.ModuleType("esp32")

    class ULP:
        def load_binary(self, addr, binary):
            assert addr == 0
            hw.loads += 1
            hw.ulp = model.Ulp(binary, 6, model.Waveform(hw.lows))

        def run(self, entry_bytes):
            hw.ulp.pc = entry_bytes // 4

    esp32.ULP, esp32.WAKEUP_ANY_HIGH = ULP, True
    esp32.wake_on_ext0 = esp32.wake_on_ulp = lambda *a: None
    onewire = types.ModuleType("onewire")
    onewire.OneWire = Anything
    micropython = types.ModuleType("micropython")
    micropython.const = lambda v: v
    for name, mod in (("machine", machine), ("esp32", esp32), ("onewire", onewire), ("micropython", micropython)):
        monkeypatch.setitem(sys.modules, name, mod)
    devnull = open("/dev/null", "r+")
    monkeypatch.setattr(sys, "stdin", devnull)
    monkeypatch.setattr(sys, "stdout", devnull)
    for name in ("esp32s3_ulp", "mcu"):
        monkeypatch.setitem(sys.modules, name, _load(name, ROOT / "boards" / f"{name}.py"))
    board = _load("esp32s3_board_under_test", ROOT / "boards" / "esp32s3.py")
    monkeypatch.setattr(board.time, "time_ns", lambda: hw.clock_ns, raising=False)
    return board


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_counts_go_on_through_a_deep_sleep_with_the_firmwares_rtc_memory(monkeypatch):
    pulses = [(200 + 300 * i, 230 + 300 * i) for i in range(40)]
    hw = _Hw(pulses)
    mod = _modules(hw, monkeypatch)
    board = mod.Board()
    assert board.low_power and board.wake_reason() == "power_on" and board.slept_ms() == 0
    assert hw.loads == 1
    hw.ulp.run(300 * 20 * US)  # 20 pulses pass
    assert board.counts() == 20
    board.rtc_set_ms(1_700_000_000_000)
    board.rtc_memory(b"batch of records")
    assert board.rtc_memory() == b"batch of records"
    with pytest.raises(SystemExit):
        board.deepsleep(60_000)
    assert hw.slept == [60_000]
    # the CPU sleeps; the ULP counts the rest; a timer wake 61 s later
    hw.ulp.run(300 * 41 * US)
    hw.reset_cause, hw.wake, hw.clock_ns = 4, 4, hw.clock_ns + 61_000_000_000
    board = mod.Board()
    assert hw.loads == 1  # not loaded again: it was running
    assert board.wake_reason() == "deepsleep"
    assert board.slept_ms() == 61_000
    hw.clock_ns += 250_000_000  # the wake's start-up: the firmware's uptime goes on from the call
    assert board.slept_ms() == 61_250
    assert board.counts() == 40
    assert board.rtc_memory() == b"batch of records"
    assert board.rtc_ms() is not None  # the clock marker survived beside the firmware's bytes


def test_a_usb_wake_and_the_rtc_memory_limit(monkeypatch):
    hw = _Hw([])
    mod = _modules(hw, monkeypatch)
    board = mod.Board()
    assert board.rtc_ms() is None and not board.usb_present()
    with pytest.raises(ValueError):
        board.rtc_memory(bytes(2048 - 24 + 1))
    board.rtc_memory(bytes(2048 - 24))
    hw.reset_cause, hw.wake = 4, 2
    board = mod.Board()
    assert board.wake_reason() == "usb" and board.usb_present()
    assert len(board.rtc_memory()) == 2048 - 24
