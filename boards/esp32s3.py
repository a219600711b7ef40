"""ESP32-S3 board (DevKitC-1 or any ESP32-S3 with native USB), MicroPython >= 1.26.

Deployed as board.py. Pins (all 3.3 V logic; see "Wiring" in boards/README.md):

    GPIO6   GM tube pulse in, through the transistor stage: idle high (10k pull-up to 3V3), each
            pulse pulls it low. Counted on falling edges by PCNT unit 0 (machine.Counter) with its
            glitch filter; no Python code per pulse.
    GPIO5   DS18B20 data (1-Wire), 4.7k pull-up to 3V3, sensor VDD on 3V3 (not parasite power).
    GPIO15  green LED (330 ohm to the anode, cathode to GND), active high.
    GPIO16  red LED (330 ohm), active high.
    GPIO4   battery sense, ADC1 channel 3: battery+ -- 100k -- GPIO4 -- 100k -- GND (1:2), with
            100 nF from GPIO4 to GND. ADC1 because ADC2 is unusable while WiFi runs.
    GPIO8   I2C0 SDA to the ATECC608B secure element (SDA, pin 5 of its SOIC-8), 4.7k pull-up to 3V3.
    GPIO9   I2C0 SCL to the ATECC608B (SCL, pin 6), 4.7k pull-up to 3V3. Chip VCC (pin 8) on 3V3,
            GND (pin 4). GPIO8/9 are MicroPython's I2C0 pins on ESP32-S3 boards (e.g. its
            badge23 and Tildagon board definitions: MICROPY_HW_I2C0_SDA 8, SCL 9) and no strapping
            pins. The chip's pinout and pull-ups: [R] ATECC608B datasheet (DS40002239), section 2.
    GPIO10  VBUS sense (RTC_GPIO10): USB VBUS -- 100k -- GPIO10 -- 100k -- GND, from the USB
            connector's VBUS (before any diode to the 5V rail), so it reads high only while a USB
            host powers the port (5 V / 2 = 2.5 V; nothing above 3.3 V reaches the pin). Also the
            ext0 wake source of deep sleep: plugging USB in wakes the board.
    USB     native USB (GPIO19/20) is the REPL and the binary sync link (sys.stdin/sys.stdout).

Avoided: strapping pins GPIO0/3/45/46, GPIO26-32 (flash), GPIO33-37 (octal PSRAM on R8 modules),
GPIO48 (onboard RGB LED on DevKitC-1 v1.0).

Low-power mode (issue 13): at power-on the board loads the ULP program of boards/esp32s3_ulp.S
(assembled into esp32s3_ulp.py, deployed beside this module) and starts it; it counts GPIO6 through
the RTC mux, in deep sleep, light sleep and awake alike, so counts() reads its two 16-bit words
(a sequence word, high, low, the sequence word again: _ulp_try) and the PCNT is not used. A deep-sleep wake
finds it running and the count going on; any other start loads it again (the count starts at 0,
as the PCNT's does). Without esp32.ULP or the module the board counts with the PCNT and
low_power is False. The ULP also plays the LED pattern (leds(): up to 4 steps of 10 ms ticks in
its table in RTC slow memory); deepsleep() hands GPIO15/16 to the RTC IO mux, so the pattern goes
on through the sleep from the step it was at, and a start hands them back to the digital GPIO
(the timer chain of mcu.py plays it awake). RTC memory: the board keeps a 24-byte header (the clock marker, then the RTC
time a deep sleep began) and gives the firmware the rest (rtc_memory()).

rtc_ms() keeps the host-set time through watchdog and soft resets (ESP32 RTC plus a marker in RTC
memory) and returns None after a power cut. idle() waits on a poll of stdin and never calls
lightsleep: light sleep stops the PCNT clock and drops the USB link.

Ctrl-C: a 0x03 byte in a binary frame raises KeyboardInterrupt unless the firmware calls
micropython.kbd_intr(-1) while the link is binary; this module leaves that to the firmware (it
decides how an engineer gets the REPL back, since mpremote needs Ctrl-C).

Sources of these facts: docs/references.md#micropython-ports.
"""

import time

import machine
import onewire
from machine import ADC, RTC, Counter, Pin, Timer
from mcu import McuBoard, reset  # noqa: F401  (reset: the module-level hard reset)
from micropython import const

try:  # the ULP program and the port's ULP driver (esp32.ULP: ESP32, S2, S3 builds)
    import esp32  # noqa: F401  (imported again where used: pyright sees them bound there)
    import esp32s3_ulp  # noqa: F401

    _HAVE_ULP = True
except ImportError:
    _HAVE_ULP = False

NAME = "esp32s3"

_PIN_GM = const(6)
_PIN_ONEWIRE = const(5)
_PIN_LED_GREEN = const(15)
_PIN_LED_RED = const(16)
_PIN_BATTERY = const(4)
_I2C_SE = const(0)  # I2C controller 0 for the secure element (boards/atecc.py)
_PIN_SE_SDA = const(8)
_PIN_SE_SCL = const(9)

_PCNT_UNIT = const(0)
# The PCNT filter ignores pulses (low or high) shorter than this; the hardware maximum is 1023 APB
# cycles (12.8 us). The Pico's PIO program filters with the same 10 us window (boards/README.md,
# "Pulse-width window"). GM tube pulses after the transistor stage last tens of microseconds or more.
_FILTER_NS = const(10000)
_LED_TIMER = const(0)  # hardware timer 0 of 0..3 (ESP32 Timer ids are hardware timers)
_BATTERY_DIVIDER = 2.0
_WDT_MIN_MS = const(1000)  # ESP32 minimum watchdog timeout
_MASK30 = const(0x3FFFFFFF)
_PIN_LOOPBACK = const(7)  # test mode only: a wire from here to the GM pulse input (GPIO7)
_RTC_MARKER = b"isolog-rtc-set"
_PIN_VBUS = const(10)  # RTC_GPIO10: VBUS divider, ext0 wake
# RTC memory (machine.RTC().memory(), at most 2048 bytes on esp32): the board's header, then the
# firmware's bytes. Header: the clock marker (16 bytes, zero-padded; zeros when no host set the
# clock), the RTC time in ms when the last deep sleep began (8 bytes, little-endian).
_RTC_MEMORY_MAX = const(2048)
_RTC_HEADER = const(24)
# Word addresses of the ULP's count_lo, count_hi, seq (esp32s3_ulp.COUNT_LO, COUNT_HI, SEQ; a test
# checks they agree) in RTC slow memory, the program loaded at 0.
_ULP_LO = const(0)
_ULP_HI = const(1)
_ULP_SEQ = const(2)
_RTC_SLOW_MEM = const(0x50000000)  # RTC slow memory seen by the CPU (ESP-IDF soc.h, S3: SOC_RTC_DATA_LOW)
# The ULP's LED table (esp32s3_ulp.LED_LEFT, LED_PTR, LED_TABLE; a test checks they agree): ticks
# left in the step, the word address of the step, then _ULP_LED_STEPS steps of ticks | green << 14
# | red << 15 (0 ends the table). A tick is 10 ms at the nominal 17.5 MHz (boards/esp32s3_ulp.S).
_ULP_LED_LEFT = const(3)
_ULP_LED_PTR = const(4)
_ULP_LED_TABLE = const(5)
_ULP_LED_STEPS = const(4)
_ULP_TICK_MS = const(10)
_ULP_TICKS_MAX = const(0x3FFF)  # 14 bits: 163.83 s a step
# The LED pads in deep sleep: GPIO15 and GPIO16 are RTC_GPIO15 and 16, the XTAL_32K_P and _N pads
# (ESP32-S3 TRM, RTC IO MUX pin list; ESP-IDF soc/esp32s3/include/soc/rtc_io_reg.h, read in a copy:
# docs/references.md#esp32-s3-ulp). MUX_SEL (bit 19 of the pad's register) 1: the RTC GPIO drives
# the pad, 0: the digital GPIO. The RTC GPIO's output enable: bit 10 + n of RTC_GPIO_ENABLE, set by
# its W1TS register, cleared by its W1TC register. The 32 kHz crystal is not used (the RTC slow
# clock is the internal RC on MicroPython's build), so the pads are free.
# DR_REG_RTCIO_BASE = 0x60008400, plus the offsets of rtc_io_reg.h:
_RTCIO_ENABLE_W1TS = const(0x60008410)
_RTCIO_ENABLE_W1TC = const(0x60008414)
_RTCIO_PAD_X32P = const(0x600084C0)  # RTC_IO_XTAL_32P_PAD_REG: GPIO15
_RTCIO_PAD_X32N = const(0x600084C4)  # RTC_IO_XTAL_32N_PAD_REG: GPIO16
_RTCIO_MUX_SEL = const(1 << 19)
_RTCIO_LED_BITS = const(3 << 25)  # 10 + 15 and 10 + 16


def _wake_kind():
    """ "deepsleep" (timer), "usb" (VBUS appeared: ext0) or "power_on" (any other start)."""
    if machine.reset_cause() != machine.DEEPSLEEP_RESET:
        return "power_on"
    return "usb" if machine.wake_reason() == machine.EXT0_WAKE else "deepsleep"


def quiet_wake():
    """True at a timer wake from deep sleep with no USB host (VBUS low): the firmware then only
    takes its sample and sleeps again, without loading its link (firmware/main.py). Asked before
    Board() is made."""
    return _wake_kind() == "deepsleep" and Pin(_PIN_VBUS, Pin.IN).value() == 0


def _ulp_try(read):
    """One read of the ULP's count (boards/esp32s3_ulp.S): seq, high, low, seq again. Returns the
    count masked to 30 bits, or None when the ULP was carrying meanwhile (read again). read(word)
    returns a word of the ULP's memory; its low 16 bits are the ULP's."""
    seq = read(_ULP_SEQ) & 0xFFFF
    hi = read(_ULP_HI) & 0xFFFF
    lo = read(_ULP_LO) & 0xFFFF
    if seq & 1 or read(_ULP_SEQ) & 0xFFFF != seq:
        return None
    return (hi & 0x3FFF) << 16 | lo  # 30 bits: a small int, no allocation


def _led_pads(rtc):
    """The LED pads to the RTC GPIO (rtc: the ULP drives them in deep sleep) or to the digital
    GPIO (awake: the timer chain of mcu.py). Read-modify-write of the pads' registers."""
    mem = machine.mem32
    for pad in (_RTCIO_PAD_X32P, _RTCIO_PAD_X32N):
        mem[pad] = (mem[pad] | _RTCIO_MUX_SEL) if rtc else (mem[pad] & ~_RTCIO_MUX_SEL)
    mem[_RTCIO_ENABLE_W1TS if rtc else _RTCIO_ENABLE_W1TC] = _RTCIO_LED_BITS


def _led_word(step):
    """One step of the ULP's LED table; refuses what the table cannot hold (never cut short)."""
    green, red, ms = step
    ticks = ms // _ULP_TICK_MS
    if ms % _ULP_TICK_MS or not 0 < ticks <= _ULP_TICKS_MAX:
        raise ValueError("LED step: 10 ms units up to 163830 ms")
    return ticks | (0x4000 if green else 0) | (0x8000 if red else 0)


# Proleptic Gregorian calendar <-> days since 1970-01-01 (H. Hinnant's algorithms), so the board does
# not depend on which epoch its port's time functions use.
def _days_from_civil(y, m, d):
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z):
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


class Board(McuBoard):
    # The cell voltage below which "low battery" shows: TRIP_RESERVE_DAYS of logging left on the
    # documented cell at this board's modelled current (boards/energy.py, low_battery_v; a test
    # keeps the two equal).
    low_battery_v = 3.97
    # The same in the low-power mode (boards/energy.py, low_battery_v(low_power=True)): three days
    # at its current are under 2 % of the cell, so the floor (a test keeps the two equal).
    low_battery_v_low_power = 3.4

    low_power = False  # True once the ULP counts (the firmware may then sleep between samples)

    def __init__(self):
        self._total = 0
        self._counter = None
        self._wake = _wake_kind()
        woke = self._wake != "power_on"
        if _HAVE_ULP:
            import esp32
            import esp32s3_ulp

            _led_pads(False)  # the LED pads back to the digital GPIO (the ULP had them asleep)
            if not woke:  # after a deep sleep the ULP is still running, its count going on
                ulp = esp32.ULP()
                ulp.load_binary(0, esp32s3_ulp.BINARY)  # the binary's count words are zero
                ulp.run(esp32s3_ulp.ENTRY * 4)  # run() takes bytes
            self.low_power = True
            self.low_battery_v = self.low_battery_v_low_power
            self._ulp_word = self._read_ulp_word  # bound once: counts() allocates nothing
        else:
            # Counter.value(0) reads and clears the PCNT count atomically; the running total lives
            # in a small int, so reading it never allocates (the docs recommend value(0) for this).
            self._counter = Counter(
                _PCNT_UNIT, Pin(_PIN_GM, Pin.IN, Pin.PULL_UP), edge=Counter.FALLING, filter_ns=_FILTER_NS
            )
            self._counter.value(0)
        self._vbus = Pin(_PIN_VBUS, Pin.IN)

        self._ow = onewire.OneWire(Pin(_PIN_ONEWIRE))
        self._battery = ADC(Pin(_PIN_BATTERY), atten=ADC.ATTN_11DB)
        self._rtc = RTC()
        mem = self._rtc.memory()
        self._clock_set = mem[: len(_RTC_MARKER)] == _RTC_MARKER
        self._sleep_began = None  # RTC ms at the deepsleep() call this start woke from
        if woke and len(mem) >= _RTC_HEADER:
            self._sleep_began = int.from_bytes(mem[16:_RTC_HEADER], "little")
        self.se_i2c = (_I2C_SE, _PIN_SE_SDA, _PIN_SE_SCL)
        super().__init__(
            Pin(_PIN_LED_GREEN, Pin.OUT, value=0),
            Pin(_PIN_LED_RED, Pin.OUT, value=0),
            Timer(_LED_TIMER),
            _PIN_LOOPBACK,
            _WDT_MIN_MS,
            3_600_000,  # no practical maximum on ESP32
        )

    # sensors
    def counts(self):
        if self._counter is None:
            while True:
                total = _ulp_try(self._ulp_word)
                if total is not None:
                    return total
        self._total = (self._total + self._counter.value(0)) & _MASK30
        return self._total

    def _read_ulp_word(self, word):
        return machine.mem32[_RTC_SLOW_MEM + 4 * word]

    def leds(self, steps, name=None):
        """Play (green, red, ms) steps: awake on the timer chain (mcu.py), and with the ULP also
        in its LED table, which it plays on while the CPU deep-sleeps. A pattern the table cannot
        hold (more than 4 steps, a step not a multiple of 10 ms or over 163.83 s) is refused on
        every build, so no pattern works awake and fails asleep. A new pattern starts both players
        at its first step; the same pattern again (as after every wake) leaves the ULP where it is
        and starts the timer chain at the ULP's step."""
        if len(steps) > _ULP_LED_STEPS:
            raise ValueError("LED pattern: more than 4 steps")
        for step in steps:
            _led_word(step)
        if self._counter is not None:  # no ULP: the timer chain alone
            super().leds(steps, name)
            return
        mem = machine.mem32
        same = True
        for i in range(_ULP_LED_STEPS):
            word = _led_word(steps[i]) if i < len(steps) else 0
            if mem[_RTC_SLOW_MEM + 4 * (_ULP_LED_TABLE + i)] & 0xFFFF != word:
                same = False
                mem[_RTC_SLOW_MEM + 4 * (_ULP_LED_TABLE + i)] = word
        at = (mem[_RTC_SLOW_MEM + 4 * _ULP_LED_PTR] & 0xFFFF) - _ULP_LED_TABLE
        if not same or not 0 <= at < len(steps):
            # From the first step at the ULP's next tick (<= 10 ms). A tick that read the old
            # pointer meanwhile may store it back: the ULP then plays the new table from another
            # of its steps (a 0 word ends the table wherever it reads).
            mem[_RTC_SLOW_MEM + 4 * _ULP_LED_LEFT] = 0
            mem[_RTC_SLOW_MEM + 4 * _ULP_LED_PTR] = _ULP_LED_TABLE - 1
            at = 0
        super().leds(steps, name)
        if at and len(steps) > 1:  # the timer chain from the ULP's step
            self._led_timer.deinit()
            self._step = at
            self._led_step(self._led_timer)

    # low power (issue 13): optional attributes the firmware uses when low_power is True
    def wake_reason(self):
        """ "deepsleep" (timer), "usb" (VBUS appeared: ext0) or "power_on" (any other start)."""
        return self._wake

    def usb_present(self):
        return self._vbus.value() == 1

    def slept_ms(self):
        """Time since the deepsleep() call this start woke from: the sleep and this wake's start-up
        so far (RTC time, which runs on in deep sleep; the firmware's uptime goes on from it); 0
        after any start that is not a deep-sleep wake."""
        if self._sleep_began is None:
            return 0
        return max(0, self._clock_ms() - self._sleep_began)

    def rtc_memory(self, data=None):
        """The firmware's part of RTC memory (as machine.RTC().memory(): survives deep sleep and
        resets, not a power loss), at most 2048 - 24 bytes; with data, replace it."""
        if data is None:
            return self._rtc.memory()[_RTC_HEADER:]
        if len(data) > _RTC_MEMORY_MAX - _RTC_HEADER:
            raise ValueError("rtc_memory: at most %d bytes" % (_RTC_MEMORY_MAX - _RTC_HEADER))
        self._rtc.memory(self._header(0) + bytes(data))

    def _header(self, sleep_began_ms):
        marker = _RTC_MARKER if self._clock_set else b""
        return marker + bytes(16 - len(marker)) + sleep_began_ms.to_bytes(8, "little")

    def _clock_ms(self):
        return time.time_ns() // 1_000_000  # the RTC's time (gettimeofday): runs in deep sleep

    def lightsleep(self, ms):
        """The CPU pauses ms, or until USB is plugged in; the ULP counts on. Without the ULP the
        PCNT would stop: wait awake."""
        if not self.low_power:
            self.idle(ms)
            return
        import esp32

        esp32.wake_on_ext0(self._vbus, esp32.WAKEUP_ANY_HIGH)
        # The LEDs to the ULP while the CPU pauses: mcu.py's timer chain, which plays them awake,
        # stops too, and a flash lit at the sleep would stay lit through it.
        _led_pads(True)
        try:
            machine.lightsleep(ms)
        finally:
            _led_pads(False)

    def deepsleep(self, ms):
        """Never returns: main.py starts again after ms, or when USB is plugged in; the ULP counts
        on and counts() continues the same total."""
        if not self.low_power:
            raise RuntimeError("deepsleep: no ULP on this build, the counter would stop")
        import esp32

        self._rtc.memory(self._header(self._clock_ms()) + self._rtc.memory()[_RTC_HEADER:])
        esp32.wake_on_ext0(self._vbus, esp32.WAKEUP_ANY_HIGH)
        # A ULP wake source keeps the RTC peripherals and slow memory powered in deep sleep; the
        # program never executes WAKE, so it never wakes the CPU [R: ESP-IDF's automatic power-down
        # of RTC domains, to confirm on a board with the current meter].
        esp32.wake_on_ulp(True)
        # The LEDs to the ULP: its RTC_GPIO_OUT bits hold the step it plays (it writes them at
        # every step, awake too, where the digital GPIO drives the pads and they show nothing).
        _led_pads(True)
        machine.deepsleep(ms)

    def temp_bus(self):
        return self._ow

    def battery_v(self):
        return self._battery.read_uv() * _BATTERY_DIVIDER / 1_000_000

    # The ESP32 RTC keeps counting through resets (watchdog, soft reset, deep sleep) but not through
    # a loss of power. RTC slow memory has the same lifetime, so a marker written there when a host
    # sets the clock says whether the RTC still holds that time: after a power cut it is gone.
    def rtc_ms(self):
        if not self._clock_set:
            return None
        y, mo, d, _weekday, h, mi, s, us = self._rtc.datetime()[:8]
        return (_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000 + us // 1000

    def rtc_set_ms(self, epoch_ms):
        secs, ms = divmod(epoch_ms, 1000)
        days, secs = divmod(secs, 86400)
        y, mo, d = _civil_from_days(days)
        weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; MicroPython counts Monday as 0
        self._rtc.datetime((y, mo, d, weekday, secs // 3600, secs // 60 % 60, secs % 60, ms * 1000))
        self._clock_set = True
        self._rtc.memory(self._header(0) + self._rtc.memory()[_RTC_HEADER:])
