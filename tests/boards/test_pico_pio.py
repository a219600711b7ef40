"""The Pico's pulse counter (boards/pico.py) run on a PIO emulator, the way the board runs it.

boards/pico.py is imported unchanged with a model of MicroPython's `rp2` module (tests/rp2_model.py:
MicroPython's assembler semantics, pico-sdk's loader, rp2040-pio-emulator for the state machine)
and stand-ins for `machine` and `onewire`. Board() loads the program like the board does; the
tests place it at every offset pico-sdk may choose, drive the GM input pin with pulse trains and
read the count back with Board.counts() (the exec'd mov/in/push that reads X).

Expected counts are the number of pulses the test generated, and which ones the filter must
drop follows from the window stated in boards/README.md ("Pulse width window"): a low shorter than
10 us is noise, a low of 12 us or more after a high of 12 us or more is a pulse.
"""

import importlib.util
import sys
import types
from pathlib import Path

import pytest

import rp2_model

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "boards"

# The tube's fastest pulse train: an SBM-20's dead time is 190 us (shared/reference/domain.md
# section 5; the shipments' dead_time_us), so a saturated tube gives at most one pulse per 190 us.
DEAD_TIME_US = 190
# The filter window both boards promise (boards/README.md): lows under NOISE_US are never counted,
# lows (and the highs between them) of PULSE_US or more always are.
NOISE_US = 10
PULSE_US = 12
PIN_GM = 15  # boards/pico.py, wiring table
CLOCK_CALLS: list = []  # machine.freq(hz) calls, with the number of state machines existing then


# --- stand-ins for the board's modules ------------------------------------------------------------


class _Pin:
    IN, OUT, PULL_UP = 0, 1, 2

    def __init__(self, pin_id, mode=None, pull=None, value=None):
        self.id = pin_id
        self._value = value or 0

    def value(self, v=None):
        if v is not None:
            self._value = v
        return self._value

    def init(self, *a, **kw):
        pass


class _Anything:
    """ADC, Timer, OneWire, WDT: constructed by Board() but not used by counting."""

    def __init__(self, *a, **kw):
        pass

    def __getattr__(self, name):
        return lambda *a, **kw: None


@pytest.fixture
def pico_module(monkeypatch):
    rp2_model.reset_model()
    rp2 = types.ModuleType("rp2")
    for name in ("PIO", "PIOASMError", "StateMachine", "asm_pio", "asm_pio_encode"):
        setattr(rp2, name, getattr(rp2_model, name))
    machine = types.ModuleType("machine")
    machine.Pin = _Pin
    machine.ADC = machine.Timer = machine.WDT = machine.I2C = _Anything
    machine.reset = lambda: None
    machine.freq = lambda hz: CLOCK_CALLS.append(("freq", hz, len(rp2_model.STATE_MACHINES)))
    machine.unique_id = lambda: b"\x01" * 8
    onewire = types.ModuleType("onewire")
    onewire.OneWire = _Anything
    micropython = types.ModuleType("micropython")  # what the board modules use of it
    micropython.const = lambda value: value
    micropython.kbd_intr = lambda chr_: None
    for name, mod in (("rp2", rp2), ("machine", machine), ("onewire", onewire), ("micropython", micropython)):
        monkeypatch.setitem(sys.modules, name, mod)
    # mcu.McuBoard polls stdin: give it a real file while pytest holds the console.
    devnull = open("/dev/null", "r+")
    monkeypatch.setattr(sys, "stdin", devnull)
    monkeypatch.setattr(sys, "stdout", devnull)
    mcu = _load("mcu", BOARDS / "mcu.py")
    monkeypatch.setitem(sys.modules, "mcu", mcu)
    yield _load("pico_under_test", BOARDS / "pico.py")
    devnull.close()


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_system_clock_is_set_low_before_the_counter_starts(pico_module):
    """Issue 13: the Pico runs at 48 MHz. The PIO divider is computed from clk_sys when the state
    machine is created, so the clock must be set first, and 48 MHz / 2 MHz is a whole 24."""
    CLOCK_CALLS.clear()
    _board_at(pico_module, 32 - _program_length(pico_module))
    assert CLOCK_CALLS == [("freq", 48_000_000, 0)]
    assert 48_000_000 % rp2_model.STATE_MACHINES[0].freq == 0


def _program_length(pico):
    return len(pico._count_falling_edges[0])


def _board_at(pico, offset):
    """Board() with its counting program loaded at `offset`: other programs hold the words above,
    so pico-sdk's top-down search stops there."""
    rp2_model.reset_model()
    prog = pico._count_falling_edges
    for i in range(1, 4):
        prog[i] = -1  # not loaded yet (the program object keeps its offsets, as on the board)
    rp2_model.PIO_BLOCKS[0].reserve_above(offset, _program_length(pico))
    board = pico.Board()
    sm = rp2_model.STATE_MACHINES[0]
    assert sm.offset == offset
    assert sm.in_pin == PIN_GM
    return board, sm


# --- pulse trains ---------------------------------------------------------------------------------


def _train(lows, start_us=50):
    """Level against time for a list of (gap_before_us, low_us): the line idles high and each entry
    pulls it low for low_us after gap_before_us of high. Returns (level(t), end time)."""
    edges = []
    t = start_us
    for gap, low in lows:
        t += gap
        edges.append((t, t + low))
        t += low
    end = t + 50

    def level(t_us):
        for a, b in edges:
            if a <= t_us < b:
                return 0
            if t_us < a:
                break
        return 1

    return level, end


def _count(board, sm, lows, start_us=50):
    level, end = _train(lows, start_us)
    sm.level_at_us = level
    sm.run_until(end)
    return board.counts()


# --- the tests ------------------------------------------------------------------------------------


def test_assembler_matches_the_datasheet_encodings():
    """The model's assembler against hand-assembled words from the RP2040 datasheet's instruction
    tables (section 3.4), independent of MicroPython's code."""
    enc = rp2_model.asm_pio_encode
    assert enc("set(x, 0)", 0) == 0xE020  # SET 111, dest X 001, data 0
    assert enc("mov(isr, null)", 0) == 0xA0C3  # MOV 101, dest ISR 110, op 00, src NULL 011
    assert enc("in_(x, 30)", 0) == 0x403E  # IN 010, src X 001, bit count 30
    assert enc("push()", 0) == 0x8020  # PUSH 100, bit 7 = 0, IfFull 0, Block 1
    assert enc("wait(0, pin, 0)", 0) == 0x2020  # WAIT 001, polarity 0, source PIN 01, index 0

    @rp2_model.asm_pio()
    def squarewave():  # the datasheet's squarewave.pio (section 3.2.2), assembled: e081 e101 e000 0001
        set(pindirs, 1)  # noqa: F821
        label("again")  # noqa: F821
        set(pins, 1)[1]  # noqa: F821
        set(pins, 0)  # noqa: F821
        jmp("again")  # noqa: F821

    assert list(squarewave[0]) == [0xE081, 0xE101, 0xE000, 0x0001]


def test_the_loader_relocates_like_pico_sdk():
    """A jump to a label after the last instruction lands outside the program once pico-sdk adds
    the load offset: the case the model must be able to show."""
    block = rp2_model.PioBlock()
    offset = block.add_program([0x2020, 0x0043])  # wait 0 pin 0; jmp x-- 3 (past the end)
    assert offset == 30  # top of the empty memory
    assert block.instr_mem[30:32] == [0x2020, (0x0043 + 30) & 0xFFFF]  # 0x0061: jmp !y 1


def test_every_offset_counts_a_train_at_the_tubes_maximum_rate(pico_module):
    """At every offset pico-sdk can load the program, 40 pulses at one per dead time (the fastest
    a saturated tube gives), each 30 us low, count 40, read back as the board reads X."""
    n = 40
    length = _program_length(pico_module)
    for offset in range(0, 33 - length):  # 32 words of instruction memory
        board, sm = _board_at(pico_module, offset)
        got = _count(board, sm, [(DEAD_TIME_US - 30, 30)] * n)
        assert got == n, "offset %d: %d pulses counted of %d" % (offset, got, n)


def test_counts_accumulate_across_reads(pico_module):
    board, sm = _board_at(pico_module, 32 - _program_length(pico_module))
    level, end = _train([(DEAD_TIME_US - 40, 40)] * 25)
    sm.level_at_us = level
    seen = []
    for t in range(0, end + 500, 700):  # read while pulses arrive, as the logger does each interval
        sm.run_until(t)
        seen.append(board.counts())
    assert seen == sorted(seen)
    assert seen[-1] == 25


def _offsets(pico):
    return range(0, 33 - _program_length(pico))


def _count_at_every_offset(pico, lows):
    return {offset: _count(*_board_at(pico, offset), lows) for offset in _offsets(pico)}


def test_glitches_shorter_than_the_window_are_never_counted(pico_module):
    """HV-converter spikes and ringing: lows of 1 to 9.9 us, at many phases of the PIO clock, are
    noise (as the ESP32-S3's PCNT filter treats anything under 10 us)."""
    lows = []
    for width_tenths in range(10, NOISE_US * 10, 7):  # 1.0 .. 9.4 us in 0.7 us steps
        lows.append((PULSE_US + 40 + width_tenths % 7 / 10, width_tenths / 10))
    for width in (9.5, 9.9, 9.99):  # just under the window, at four phases of the PIO clock
        for phase in (0.0, 0.13, 0.25, 0.37):
            lows.append((PULSE_US + 40 + phase, width))
    got = _count_at_every_offset(pico_module, lows)
    assert got == {offset: 0 for offset in _offsets(pico_module)}


def test_pulses_at_and_past_the_window_always_count(pico_module):
    lows = []
    for width_tenths in range(PULSE_US * 10, 200 * 10, 37):  # 12 us .. 200 us, odd phases
        lows.append((PULSE_US + width_tenths % 10 / 10, width_tenths / 10))
    got = _count_at_every_offset(pico_module, lows)
    assert got == {offset: len(lows) for offset in _offsets(pico_module)}


def test_fastest_train_the_window_allows(pico_module):
    """Lows and highs of exactly PULSE_US alternate: every low is a pulse."""
    got = _count_at_every_offset(pico_module, [(PULSE_US, PULSE_US)] * 50)
    assert got == {offset: 50 for offset in _offsets(pico_module)}


def test_ringing_on_an_edge_counts_once(pico_module):
    """A pulse whose edges ring (short highs inside the low, short lows after it) is one pulse."""
    one_ringing_pulse = [(0, 3), (1, 2), (1, 40), (2, 3), (1.5, 1)]  # (gap_before, low) pieces
    lows = []
    for _ in range(10):
        lows.append((DEAD_TIME_US, one_ringing_pulse[0][1]))
        lows.extend(one_ringing_pulse[1:])
    got = _count_at_every_offset(pico_module, lows)
    assert got == {offset: 10 for offset in _offsets(pico_module)}


def test_thirty_bit_wrap_of_the_count(pico_module):
    """X counts down from 0: the board reports -X mod 2**30, so the count stays a small int on a
    31-bit port and wraps at 2**30 like the ESP32-S3's."""
    board, sm = _board_at(pico_module, 32 - _program_length(pico_module))
    sm.state = rp2_model.replace(sm.state, x_register=5)  # 5 more pulses wrap the count to 0
    assert board.counts() == (1 << 30) - 5
    assert _count(board, sm, [(DEAD_TIME_US, 30)] * 7) == 2


# --- Pico W: battery and LED (boards/pico.py) --------------------------------------------------


def test_the_pico_w_is_told_from_its_board_name(pico_module):
    # os.uname().machine = MICROPY_HW_BOARD_NAME " with " MICROPY_HW_MCU_NAME (ports/rp2/boards/*/
    # mpconfigboard.h).
    assert pico_module.is_pico_w("Raspberry Pi Pico W with RP2040")
    assert pico_module.is_pico_w("Raspberry Pi Pico 2 W with RP2350")
    assert not pico_module.is_pico_w("Raspberry Pi Pico with RP2040")
    assert not pico_module.is_pico_w("Raspberry Pi Pico 2 with RP2350")


class _RecordingPin(_Pin):
    made: list = []

    def __init__(self, pin_id, mode=None, pull=None, value=None):
        super().__init__(pin_id, mode, pull, value)
        self.mode = mode
        _RecordingPin.made.append(self)


class _Adc:
    def __init__(self, channel):
        self.channel = channel

    def read_u16(self):
        return 26_000  # 26000 / 65535 x 3.3 V x 3 = 3.928 V on VSYS


def _board_named(pico_module, monkeypatch, machine):
    _RecordingPin.made = []
    monkeypatch.setattr(pico_module, "Pin", _RecordingPin)
    monkeypatch.setattr(pico_module, "ADC", _Adc)
    monkeypatch.setattr(pico_module.os, "uname", lambda: types.SimpleNamespace(machine=machine))
    return pico_module.Board()


def test_a_pico_w_reads_its_battery_with_the_wifi_chip_deselected_and_keeps_off_its_led(pico_module, monkeypatch):
    """On the Pico W, GP29 (VSYS/3 on ADC3) is also the WiFi chip's SPI clock and the onboard LED
    is a GPIO of the WiFi chip: lighting it would start the chip and take GP29. The board never
    touches the LED there, holds GP25 (the chip's select) high and reads ADC3."""
    board = _board_named(pico_module, monkeypatch, "Raspberry Pi Pico W with RP2040")
    ids = [p.id for p in _RecordingPin.made]
    assert "LED" not in ids
    cs = [p for p in _RecordingPin.made if p.id == 25]
    assert cs and cs[0].mode == _Pin.OUT and cs[0].value() == 1
    assert abs(board.battery_v() - 26_000 / 65535 * 3.3 * 3) < 1e-9
    board.leds(((True, False, 100),), "logging")  # green shows on GP13 without the onboard LED
    assert [p.value() for p in _RecordingPin.made if p.id == 13] == [1]


def test_a_pico_shows_green_on_its_onboard_led_too(pico_module, monkeypatch):
    board = _board_named(pico_module, monkeypatch, "Raspberry Pi Pico with RP2040")
    assert "LED" in [p.id for p in _RecordingPin.made]
    assert 25 not in [p.id for p in _RecordingPin.made]
    assert abs(board.battery_v() - 26_000 / 65535 * 3.3 * 3) < 1e-9
    board.leds(((True, False, 100),), "logging")
    assert [p.value() for p in _RecordingPin.made if p.id in (13, "LED")] == [1, 1]


# --- test mode: the loopback pulse command (boards/mcu.py, shared by both boards) ---------------


class _EdgePin(_Pin):
    falling: dict = {}

    def value(self, v=None):
        if v == 0 and self._value == 1:
            _EdgePin.falling[self.id] = _EdgePin.falling.get(self.id, 0) + 1
        return super().value(v)


def test_pulse_out_is_capped_and_a_retry_does_not_pulse_again(pico_module, monkeypatch):
    """The host's link retries a request whose reply was lost: the board must answer the retry
    (same id) without sending the pulses again, or the loopback count comes out doubled. Counts
    above the cap are refused (a long bit-banged train would outlast the host's reply timeout)."""
    mcu = sys.modules["mcu"]
    _EdgePin.falling = {}
    monkeypatch.setattr(mcu, "Pin", _EdgePin)
    monkeypatch.setattr(mcu, "time", types.SimpleNamespace(sleep_us=lambda us: None))
    board = pico_module.Board()
    cap = board.diag("pulse_out", {"pulses": 0})["max"]
    assert cap == 2000
    first = board.diag("pulse_out", {"pulses": 7, "id": 41})
    retry = board.diag("pulse_out", {"pulses": 7, "id": 41})
    assert first == retry == {"sent": 7, "id": 41, "max": cap}
    assert _EdgePin.falling == {16: 7}  # GP16, the loopback pin: 7 pulses, not 14
    board.diag("pulse_out", {"pulses": 3, "id": 42})
    assert _EdgePin.falling == {16: 10}
    with pytest.raises(ValueError):
        board.diag("pulse_out", {"pulses": cap + 1, "id": 43})
    assert _EdgePin.falling == {16: 10}
