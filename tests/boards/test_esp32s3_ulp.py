"""The ESP32-S3's ULP counting program (boards/esp32s3_ulp.S), run as assembled on an interpreter of
the ULP-FSM instructions (tests/ulp_s3_model.py), driven by the GM input's waveform.

Expected counts come from the waveforms the tests make: every pulse they generate within the
window of boards/README.md ("Pulse-width window": a low of 12 us or more after a high of 12 us or
more is a pulse, a low under 10 us is noise) is one count; the carry and wrap expectations are
arithmetic on the words the test preset. Times in seconds.
"""

from __future__ import annotations

import importlib.util
import itertools
import random
import sys
import types
from pathlib import Path

import pytest

import ulp_s3_model as model

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("ulp_build", ROOT / "tools" / "ulp" / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)  # tools/ulp/build.py, under a name no other module has

US = 1e-6
DEAD_TIME_US = 190  # SBM-20 (boards/README.md; tests/boards/test_pico_pio.py): the tube's fastest train
RTC_GPIO_GM = 6  # GPIO6 is RTC_GPIO6 on the S3 (boards/esp32s3.py)
COUNT_LO, COUNT_HI, SEQ, LED_LEFT, LED_PTR, LED_TABLE, ENTRY = 0, 1, 2, 3, 4, 5, 10


def _words():
    text = (ROOT / "boards" / "esp32s3_ulp.py").read_text()
    ns: dict = {}
    micropython = types.ModuleType("micropython")
    micropython.const = lambda v: v  # type: ignore[attr-defined]
    saved = sys.modules.get("micropython")
    sys.modules["micropython"] = micropython
    try:
        exec(compile(text, "esp32s3_ulp.py", "exec"), ns)
    finally:
        if saved is None:
            del sys.modules["micropython"]
        else:
            sys.modules["micropython"] = saved
    return ns


ULP_MODULE = _words()


def _ulp(lows_us, preset=None):
    """A ULP running the board's binary from its entry, the line following `lows_us`."""
    wave = model.Waveform([(a * US, b * US) for a, b in lows_us])
    ulp = model.Ulp(ULP_MODULE["BINARY"], RTC_GPIO_GM, wave)
    for word, value in (preset or {}).items():
        ulp.mem[word] = value
    ulp.pc = ULP_MODULE["ENTRY"]
    return ulp


def _total(ulp):
    return (ulp.mem[COUNT_HI] & 0xFFFF) << 16 | (ulp.mem[COUNT_LO] & 0xFFFF)


def _train(pulses, start_us=100.0):
    """[(gap_before_us, low_us)] -> [(start_us, end_us)] lows; the end time of the train."""
    lows, t = [], start_us
    for gap, low in pulses:
        t += gap
        lows.append((t, t + low))
        t += low
    return lows, t + 100


# --- the assembled program ---------------------------------------------------------------------


def test_the_board_module_holds_what_the_source_assembles_to():
    """boards/esp32s3_ulp.py is tools/ulp/build.py's output for the current boards/esp32s3_ulp.S
    (make test installs the assembler first: make .ulp/.installed)."""
    binary, symbols = build.assemble()
    assert build.committed() == (binary, symbols)
    assert symbols == {
        "count_lo": COUNT_LO, "count_hi": COUNT_HI, "seq": SEQ, "led_left": LED_LEFT, "led_ptr": LED_PTR,
        "led_table": LED_TABLE, "entry": ENTRY,
    }  # fmt: skip


# Words of the ESP32-S2/S3 encoding (the S3's ULP-FSM is the S2's), from micropython-esp32-ulp's
# test fixture tests/fixtures/all_opcodes.esp32s2.lst (master, 2023; its esp32s2 encoder, checked by
# that project against Espressif's binutils) [V, read]: an encoder independent of tools/ulp/.
REFERENCE_WORDS = {
    "ADD r2, r1, r0": 0x70000006,
    "SUB r2, r1, r0": 0x70200006,
    "MOVE r2, r1": 0x70800016,
    "ADD r2, r1, 0": 0x74000006,
    "SUB r2, r1, 0": 0x74200006,
    "MOVE r1, 0": 0x74800001,
    "JUMP r0": 0x84200000,
    "JUMP r1, EQ": 0x84600001,
    "JUMP r2, OV": 0x84A00002,
    "JUMP 0": 0x84000000,
    "JUMP 0, EQ": 0x84400000,
    "JUMPR 0, 1, LT": 0x80000001,
    "JUMPR 4, 5, GT": 0x80050005,
    "JUMPR 8, 7, EQ": 0x800A0007,
    "LD r2, r1, 0": 0xD0000006,
    "LD r1, r2, 0x20": 0xD0002009,
    "ST r3, r2, 0": 0x6800018B,
}


def test_the_s3_encoder_agrees_with_the_reference_words(tmp_path):
    src = tmp_path / "ref.S"
    src.write_text("".join(f"  {line}\n" for line in REFERENCE_WORDS))
    binary, _ = build.assemble(src)
    words = [int.from_bytes(binary[12 + 4 * i : 16 + 4 * i], "little") for i in range(len(REFERENCE_WORDS))]
    assert dict(zip(REFERENCE_WORDS, words)) == REFERENCE_WORDS


def test_every_sample_takes_the_same_time_and_the_window_follows():
    """A steady line: samples are SAMPLE_CYCLES apart on both the high and the low path, which is
    what the source's window figures assume (26 cycles: 1.486 us at 17.5 MHz)."""
    for level_low in (False, True):
        ulp = _ulp([(0, 1e6)] if level_low else [])
        times, seen = [], [0]

        def sampled(u, times=times, seen=seen):
            if u.reads != seen[0]:
                seen[0] = u.reads
                times.append(u.cycles)

        ulp.run(2000 * US, sampled)
        gaps = {b - a for a, b in zip(times[10:], times[11:])}
        assert gaps == {26}


# --- pulse trains ------------------------------------------------------------------------------


def test_a_train_at_the_tubes_maximum_rate_is_counted_whole():
    """12 us lows every 190 us (the dead time), the shortest pulse the window promises to count."""
    n = 150
    lows, end = _train([(DEAD_TIME_US - 12, 12)] * n)
    ulp = _ulp(lows)
    ulp.run(end * US)
    assert _total(ulp) == n


@pytest.mark.parametrize("low_us", [3, 8, 9.9, 10.0])
def test_lows_shorter_than_the_window_are_never_counted(low_us):
    lows, end = _train([(DEAD_TIME_US - low_us, low_us)] * 60)
    ulp = _ulp(lows)
    ulp.run(end * US)
    assert _total(ulp) == 0


def test_the_shortest_counted_low_lies_inside_the_window():
    """Sweep the low's width in 0.1 us steps, at every phase against the sampling: below 10 us
    nothing counts, from 12 us everything does (what is measured is printed for the report)."""
    counted_at = {}
    for tenth in range(95, 125):
        low = tenth / 10
        lows, end = _train([(DEAD_TIME_US - low + phase / 7, low) for phase in range(7)] * 4)
        ulp = _ulp(lows)
        ulp.run(end * US)
        counted_at[low] = _total(ulp)
    never = max(w for w, c in counted_at.items() if c == 0)
    always = min(w for w, c in counted_at.items() if c == 28 and all(counted_at[v] == 28 for v in counted_at if v >= w))
    print(f"ULP window: lows up to {never} us never counted, from {always} us always")
    assert all(c == 0 for w, c in counted_at.items() if w < 10)
    assert all(c == 28 for w, c in counted_at.items() if w >= 12)


def test_random_poisson_trains_with_noise_count_every_pulse():
    """Exponential gaps over the dead time at about 2 kHz, lows of 12-80 us, and a noise glitch
    under 10 us in some gaps, at least 12 us from either pulse: the count is the pulses made."""
    rng = random.Random(13)
    lows, t, pulses = [], 100.0, 0
    for _ in range(300):
        gap = DEAD_TIME_US + rng.expovariate(1 / 300)
        low = rng.uniform(12, 80)
        if gap > 60 and rng.random() < 0.3:
            g_at = t + rng.uniform(14, gap - 30)
            lows.append((g_at, g_at + rng.uniform(0.5, 9.5)))
        t += gap
        lows.append((t, t + low))
        pulses += 1
        t += low
    ulp = _ulp(lows)
    ulp.run((t + 100) * US)
    assert _total(ulp) == pulses


# --- the carry and the wrap -------------------------------------------------------------------


def test_the_low_word_carries_into_the_high_word():
    start = 0x0003_FFFB
    lows, end = _train([(100, 20)] * 12)
    ulp = _ulp(lows, {COUNT_LO: start & 0xFFFF, COUNT_HI: start >> 16})
    ulp.run(end * US)
    assert _total(ulp) == start + 12
    assert ulp.mem[SEQ] & 0xFFFF == 2  # one carry: odd while writing, even after


def test_the_count_wraps_at_2_32_and_the_30_bit_total_continues():
    start = 2**32 - 3
    lows, end = _train([(100, 20)] * 7)
    ulp = _ulp(lows, {COUNT_LO: start & 0xFFFF, COUNT_HI: start >> 16})
    ulp.run(end * US)
    assert _total(ulp) == (start + 7) % 2**32 == 4
    mask30 = 2**30 - 1
    assert (_total(ulp) - (start & mask30)) & mask30 == 7  # the board's 30-bit total moved by 7


# --- the CPU's read of the two words (boards/esp32s3.py) ------------------------------------------


@pytest.fixture
def esp32s3_module(monkeypatch):
    """boards/esp32s3.py loaded with stand-ins for the port's modules (only its functions are used)."""
    for name in ("machine", "onewire", "esp32", "mcu"):
        mod = types.ModuleType(name)
        mod.__getattr__ = lambda attr: type(attr, (), {})  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, name, mod)
    micropython = types.ModuleType("micropython")
    micropython.const = lambda v: v  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "micropython", micropython)
    spec = importlib.util.spec_from_file_location("esp32s3_under_test", ROOT / "boards" / "esp32s3.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_cpus_read_is_never_torn_at_any_interleaving(esp32s3_module):
    """The ULP takes the carry path one instruction at a time; the CPU's four reads (seq, high,
    low, seq) land after any steps, in order. Every read the board accepts is a count the words
    held while it read: the value before the pulse or after it."""
    start = 0x0001_FFFF
    lows, end = _train([(100, 20)])
    ulp = _ulp(lows, {COUNT_LO: 0xFFFF, COUNT_HI: 0x0001})
    snapshots = [list(ulp.mem[:3])]
    ulp.run(end * US, lambda u: snapshots.append(list(u.mem[:3])))
    assert _total(ulp) == start + 1
    changed = [i for i in range(1, len(snapshots)) if snapshots[i] != snapshots[i - 1]]
    first, last = changed[0] - 1, changed[-1] + 1
    states = snapshots[first : last + 1]
    assert (esp32s3_module._ULP_LO, esp32s3_module._ULP_HI, esp32s3_module._ULP_SEQ) == (
        ULP_MODULE["COUNT_LO"],
        ULP_MODULE["COUNT_HI"],
        ULP_MODULE["SEQ"],
    )
    accepted = 0
    for picks in itertools.combinations_with_replacement(range(len(states)), 4):
        reads = iter(zip((SEQ, COUNT_HI, COUNT_LO, SEQ), picks))

        def read(word, _reads=reads):
            expected, at = next(_reads)
            assert word == expected
            return states[at][word]

        value = esp32s3_module._ulp_try(read)
        if value is not None:
            accepted += 1
            assert value in ((start) & (2**30 - 1), (start + 1) & (2**30 - 1))
    assert accepted > 0


def test_a_short_high_inside_a_pulse_never_splits_it():
    """A high under 10 us inside a long low (ringing on the line) does not re-arm the counter,
    wherever it falls against the sampling: each such pulse counts once."""
    pulses = []
    for phase in range(13):
        for high_us in (2, 6, 9.9):
            shift = phase / 13 * 1.5
            pulses.append((DEAD_TIME_US, 30 + shift))  # low, then the glitch, then low again
            pulses.append((high_us, 30))
    lows, end = _train(pulses)
    ulp = _ulp(lows)
    ulp.run(end * US)
    assert _total(ulp) == len(pulses) // 2


def _rearm_threshold(low_us, carry=False):
    """The shortest high after a counted low of low_us that re-arms the counter at every phase,
    in 0.1 us steps (the next 30-us low is counted)."""
    for tenth in range(100, 300):
        high = tenth / 10
        ok = True
        for phase in range(9):
            lows, end = _train([(DEAD_TIME_US, low_us + phase / 9 * 1.5), (high, 30)])
            preset = {COUNT_LO: 0xFFFF} if carry else None
            ulp = _ulp(lows, preset)
            ulp.run(end * US)
            if _total(ulp) != (0x10001 if carry else 2):
                ok = False
                break
        if ok:
            return high
    return None


def test_after_a_count_the_counter_re_arms_within_the_measured_high():
    """The count takes longer than a sample (36 cycles in place of 26), so right after a counted
    pulse the first high sample comes later: the high that surely re-arms is longer than 11.9 us,
    and longer still after a carry (every 65,536 counts). Both are far below a tube's dead time
    (190 us), the shortest high a tube makes; the figures go in the source's header."""
    after_count = _rearm_threshold(12)
    after_carry = _rearm_threshold(12, carry=True)
    print(f"ULP re-arm: a high of {after_count} us after a count, {after_carry} us after a carry")
    assert after_count is not None and after_count <= 14
    assert after_carry is not None and after_carry <= 20


# --- the LED table ------------------------------------------------------------------------------

RTC_GPIO_OUT = (model.RTCIO, 0)  # RTC_GPIO_OUT_REG (DR_REG_RTCIO_BASE + 0): periph_sel 1, word 0
GREEN_BIT, RED_BIT = 10 + 15, 10 + 16  # RTC_GPIO_OUT_DATA from bit 10: RTC_GPIO15 and RTC_GPIO16
TICK_S = 0.010  # the program's LED tick: the CPU writes durations in these (boards/esp32s3.py)


def _step(green, red, ms):
    return round(ms / 1000 / TICK_S) | green << 14 | red << 15


class _Writes(dict):
    """The ULP's peripheral registers, logging every REG_WR to RTC_GPIO_OUT with its time."""

    def __init__(self, ulp):
        super().__init__()
        self.ulp = ulp
        self.log: list[tuple[float, int]] = []
        self.other: set = set()

    def __setitem__(self, key, value):
        if key == RTC_GPIO_OUT:
            self.log.append((self.ulp.time(), value))
        elif key not in self:
            self.other.add(key)
        super().__setitem__(key, value)


def _leds_ulp(lows_us, steps):
    ulp = _ulp(lows_us, {LED_TABLE + i: _step(*s) for i, s in enumerate(steps)})
    ulp.periph = writes = _Writes(ulp)
    return ulp, writes


def _changes(writes):
    """[(time, green, red)] where the LEDs change, from the logged writes."""
    out: list[tuple[float, int, int]] = []
    for t, value in writes.log:
        state = (value >> GREEN_BIT & 1, value >> RED_BIT & 1)
        if not out or out[-1][1:] != state:
            out.append((t, *state))
    return out


def test_the_logging_pattern_plays_in_real_time_on_the_led_pins():
    """100 ms green, 9,900 ms dark (firmware/leds.py "logging"), a steady line: the steps last
    what they say within 0.5 % at the nominal clock, on RTC_GPIO15 only; the first step starts at
    the first tick; nothing but the output register (and the start-up's pad setup) is written."""
    ulp, writes = _leds_ulp([], [(1, 0, 100), (0, 0, 9900)])
    ulp.run(10.25)
    changes = _changes(writes)
    assert [c[1:] for c in changes] == [(1, 0), (0, 0), (1, 0), (0, 0)]
    assert changes[0][0] <= TICK_S * 1.01
    on, off = changes[1][0] - changes[0][0], changes[2][0] - changes[1][0]
    print(f"ULP LEDs: {on * 1000:.2f} ms on, {off * 1000:.1f} ms off (100 / 9,900 asked)")
    assert on == pytest.approx(0.100, rel=0.005) and off == pytest.approx(9.900, rel=0.005)
    assert all(value & ~(3 << GREEN_BIT) == 0 for _t, value in writes.log)
    assert writes.other == {(model.RTCIO, 0x9C // 4), (2, 0x104 // 4)}  # the pad of GPIO6, the clock gate


def test_led_steps_keep_time_and_no_pulse_is_lost_at_the_tubes_maximum_rate():
    """12 us lows every 190 us through steps of 100 ms green and 200 ms red: every pulse counted
    (a tick or a step change lands inside many of them) and the steps within 2 %."""
    n = 3500
    lows, end = _train([(DEAD_TIME_US - 12, 12)] * n)
    ulp, writes = _leds_ulp(lows, [(1, 0, 100), (0, 1, 200)])
    ulp.run(end * US)
    assert _total(ulp) == n
    changes = _changes(writes)
    durations = [b[0] - a[0] for a, b in zip(changes, changes[1:])]
    assert [c[1:] for c in changes[:4]] == [(1, 0), (0, 1), (1, 0), (0, 1)]
    print(f"ULP LEDs at the maximum rate: steps of {[round(d * 1000, 1) for d in durations]} ms")
    for (_t, green, _red), d in zip(changes, durations):
        assert d == pytest.approx(0.100 if green else 0.200, rel=0.02)


def _tick_gap(step_change):
    """(time of the last sample before an LED tick, its gap in s): a tick 50 samples after the
    start, a plain one (led_left > 0) or one that changes the step."""
    ulp, _ = _leds_ulp([], [(1, 0, 1000)])
    ulp.mem[LED_LEFT] = 0 if step_change else 5
    ulp.mem[LED_PTR] = LED_TABLE
    while ulp.pc != ULP_MODULE["ENTRY"] + 5:  # past the entry's setup (3 REG_WR, 2 MOVE)
        ulp.step()
    ulp.regs[1] = 50
    times, seen = [], [0]

    def sampled(u):
        if u.reads != seen[0]:
            seen[0] = u.reads
            times.append(u.time())

    ulp.run(200 * US, sampled)
    gaps = [(b - a, a) for a, b in zip(times, times[1:])]
    gap, at = max(gaps)
    return at, gap, ulp.mem[LED_PTR] == LED_TABLE


@pytest.mark.parametrize("step_change", [False, True])
def test_the_window_at_an_led_tick(step_change):
    """The samples around a tick are further apart (the tick's work): a low that starts there is
    seen later. Sweep lows of 10 to 25 us starting at every phase around the tick: noise under
    10 us is still never counted; the low always counted there is measured and printed (it is
    in the source's header)."""
    at, gap, _ = _tick_gap(step_change)
    sample = 26 / model.CLOCK_HZ
    counted_at = {}
    for tenth in range(100, 251, 5):
        low = tenth / 10 * US
        hits = 0
        phases = [at - sample + k * (gap + sample) / 20 for k in range(20)]
        for start in phases:
            ulp, _ = _leds_ulp([(start / US, (start + low) / US)], [(1, 0, 1000)])
            ulp.mem[LED_LEFT] = 0 if step_change else 5
            ulp.mem[LED_PTR] = LED_TABLE
            while ulp.pc != ULP_MODULE["ENTRY"] + 5:
                ulp.step()
            ulp.regs[1] = 50
            ulp.run(start + low + 100 * US)
            hits += _total(ulp)
        counted_at[tenth / 10] = hits == len(phases)
    always = min(w for w, ok in counted_at.items() if ok and all(counted_at[v] for v in counted_at if v >= w))
    kind = "a step change" if step_change else "a tick"
    print(
        f"ULP window at {kind}: samples {gap * 1e6:.2f} us apart (1.49 elsewhere); lows from {always} us always counted"
    )
    assert gap > sample
    assert always <= 12 + (gap - sample) / US + 0.5
