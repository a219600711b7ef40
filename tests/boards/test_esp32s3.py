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
        self.light = []  # (ms, LED pads on the RTC mux during the sleep) of each light sleep
        self.ext0 = []  # (pin, level) each time the ext0 wake source was set
        self.rtcio = {}  # RTC IO registers the board wrote (machine.mem32), by address


def _pads_rtc(hw):
    """Which LED pads (XTAL_32P: GPIO15, XTAL_32N: GPIO16) the RTC IO mux has (MUX_SEL, bit 19)."""
    return [bool(hw.rtcio.get(addr, 0) & 1 << 19) for addr in (0x600084C0, 0x600084C4)]


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
        ONE_SHOT = 0

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
            if addr >= 0x60000000:
                return hw.rtcio.get(addr, 0)
            return hw.ulp.mem[(addr - 0x50000000) // 4]

        def __setitem__(self, addr, value):
            if addr >= 0x60000000:
                hw.rtcio[addr] = value & 0xFFFFFFFF
            else:
                hw.ulp.mem[(addr - 0x50000000) // 4] = value & 0xFFFFFFFF

    machine.Pin, machine.RTC, machine.mem32 = Pin, RTC, Mem32()
    machine.ADC = machine.Timer = machine.Counter = machine.WDT = Anything
    machine.reset_cause = lambda: hw.reset_cause
    machine.wake_reason = lambda: hw.wake

    def deepsleep(ms):
        hw.slept.append(ms)
        raise SystemExit  # never returns on a board

    machine.deepsleep = deepsleep
    machine.lightsleep = lambda ms: hw.light.append((ms, _pads_rtc(hw)))
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
    esp32.wake_on_ext0 = lambda pin, level: hw.ext0.append((pin, level))
    esp32.wake_on_ulp = lambda *a: None
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


def test_only_a_timer_wake_without_usb_is_quiet(monkeypatch):
    """firmware/main.py asks quiet_wake() before Board(): a power-on or a USB wake loads the link."""
    hw = _Hw([])
    mod = _modules(hw, monkeypatch)
    assert not mod.quiet_wake()  # a power-on
    hw.reset_cause, hw.wake = 4, 4  # a deep-sleep reset by the timer; VBUS low
    assert mod.quiet_wake() and mod.Board().wake_reason() == "deepsleep"
    hw.wake = 2  # VBUS woke it (ext0): the pin reads high
    assert not mod.quiet_wake() and mod.Board().wake_reason() == "usb"


# --- the LEDs through a deep sleep -------------------------------------------------------------

PATTERNS = _load("isolog_leds_for_esp32s3", ROOT / "firmware" / "leds.py").PATTERNS
TICK_MS = 10  # boards/esp32s3_ulp.S: an LED tick


def _table(hw):
    return [hw.ulp.mem[5 + i] & 0xFFFF for i in range(4)]


def test_every_firmware_pattern_fits_the_ulps_table(monkeypatch):
    hw = _Hw([])
    board = _modules(hw, monkeypatch).Board()
    for name, steps in PATTERNS.items():
        board.leds(steps, name)
        expected = [ms // TICK_MS | (green << 14) | (red << 15) for green, red, ms in steps]
        assert _table(hw) == expected + [0] * (4 - len(steps)), name


@pytest.mark.parametrize(
    "steps",
    [
        ((True, False, 100),) * 5,  # more steps than the table
        ((True, False, 105), (False, False, 100)),  # not a whole number of ticks
        ((True, False, 100), (False, False, 163_840)),  # longer than a step can be
    ],
)
def test_a_pattern_the_ulp_cannot_play_is_refused_and_the_table_kept(monkeypatch, steps):
    hw = _Hw([])
    board = _modules(hw, monkeypatch).Board()
    board.leds(PATTERNS["alarm"], "alarm")
    before = _table(hw)
    with pytest.raises(ValueError):
        board.leds(steps, "bad")
    assert _table(hw) == before


def test_the_ulp_plays_the_pattern_through_a_deep_sleep_on_the_rtc_pads(monkeypatch):
    """The pads go to the RTC mux at deepsleep() and back at the wake; the ULP's pattern goes on
    (its step is not reset by the firmware setting the same pattern again after the wake)."""
    hw = _Hw([])
    mod = _modules(hw, monkeypatch)
    board = mod.Board()
    assert _pads_rtc(hw) == [False, False]
    board.leds(PATTERNS["fault"], "fault")  # red 200 ms, dark 1,800 ms
    assert hw.ulp.mem[4] & 0xFFFF == 4  # from its first step, at the next tick
    with pytest.raises(SystemExit):
        board.deepsleep(60_000)
    assert _pads_rtc(hw) == [True, True]
    assert hw.rtcio[0x60008410] == 3 << 25  # RTC output enabled on RTC_GPIO15, 16
    reds = []

    def watch(u):
        red = u.periph.get((1, 0), 0) >> 26 & 1
        if not reds or reds[-1][1] != red:
            reds.append((u.time(), red))

    hw.ulp.run(2.5, watch)
    ons = [t for t, red in reds if red]
    offs = [t for t, red in reds[1:] if not red]
    assert len(ons) == 2 and ons[1] - ons[0] == pytest.approx(2.0, rel=0.01)
    assert offs[0] - ons[0] == pytest.approx(0.2, rel=0.01)
    step = hw.ulp.mem[4] & 0xFFFF
    hw.reset_cause, hw.wake = 4, 4
    board = mod.Board()
    assert _pads_rtc(hw) == [False, False] and hw.rtcio[0x60008414] == 3 << 25
    board.leds(PATTERNS["fault"], "fault")
    assert hw.ulp.mem[4] & 0xFFFF == step  # the ULP's place kept
    assert board._step == step - 5 + 1  # the timer chain shows the same step (its next is + 1)


def test_a_light_sleep_hands_the_leds_to_the_ulp_and_wakes_on_usb(monkeypatch):
    """The timer chain that plays the LEDs awake stops in light sleep too: without the ULP a flash
    lit at the sleep would stay lit through it. Plugging USB in ends the sleep (the virtual board's
    lightsleep does the same)."""
    hw = _Hw([])
    mod = _modules(hw, monkeypatch)
    board = mod.Board()
    board.leds(PATTERNS["logging"], "logging")
    board.lightsleep(750)
    assert hw.light == [(750, [True, True])]  # the ULP drove the pads while the CPU paused
    assert _pads_rtc(hw) == [False, False]  # and the timer chain has them again
    assert len(hw.ext0) == 1 and hw.ext0[0][1] is True  # VBUS high wakes it
