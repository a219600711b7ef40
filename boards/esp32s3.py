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
    USB     native USB (GPIO19/20) is the REPL and the binary sync link (sys.stdin/sys.stdout).

Avoided: strapping pins GPIO0/3/45/46, GPIO26-32 (flash), GPIO33-37 (octal PSRAM on R8 modules),
GPIO48 (onboard RGB LED on DevKitC-1 v1.0).

rtc_ms() keeps the host-set time through watchdog and soft resets (ESP32 RTC plus a marker in RTC
memory) and returns None after a power cut. idle() waits on a poll of stdin and never calls
lightsleep: light sleep stops the PCNT clock and drops the USB link.

Ctrl-C: a 0x03 byte in a binary frame raises KeyboardInterrupt unless the firmware calls
micropython.kbd_intr(-1) while the link is binary; this module leaves that to the firmware (it
decides how an engineer gets the REPL back, since mpremote needs Ctrl-C).
"""

import os
import select
import sys
import time

import machine
import onewire
from machine import ADC, RTC, WDT, Counter, Pin, Timer
from micropython import const

NAME = "esp32s3"

_PIN_GM = const(6)
_PIN_ONEWIRE = const(5)
_PIN_LED_GREEN = const(15)
_PIN_LED_RED = const(16)
_PIN_BATTERY = const(4)

_PCNT_UNIT = const(0)
# The PCNT filter ignores pulses shorter than this; the hardware maximum is 1023 APB cycles
# (12.8 us). GM tube pulses after the transistor stage last tens of microseconds or more.
_FILTER_NS = const(10000)
_LED_TIMER = const(0)  # hardware timer 0 of 0..3 (ESP32 Timer ids are hardware timers)
_BATTERY_DIVIDER = 2.0
_WDT_MIN_MS = const(1000)  # ESP32 minimum watchdog timeout
_MASK30 = const(0x3FFFFFFF)
_PIN_LOOPBACK = const(7)  # test mode only: a wire from here to the GM pulse input (GPIO7)
_MAX_LOOPBACK_PULSES = const(100_000)
_DATA = "/data"
_RTC_MARKER = b"isolog-rtc-set"


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


class Board:
    def __init__(self):
        # Counter.value(0) reads and clears the PCNT count atomically; the running total lives in
        # a small int, so reading it never allocates (the docs recommend value(0) for this).
        self._counter = Counter(
            _PCNT_UNIT, Pin(_PIN_GM, Pin.IN, Pin.PULL_UP), edge=Counter.FALLING, filter_ns=_FILTER_NS
        )
        self._counter.value(0)
        self._total = 0

        self._ow = onewire.OneWire(Pin(_PIN_ONEWIRE))
        self._battery = ADC(Pin(_PIN_BATTERY), atten=ADC.ATTN_11DB)

        self._green = Pin(_PIN_LED_GREEN, Pin.OUT, value=0)
        self._red = Pin(_PIN_LED_RED, Pin.OUT, value=0)
        self._led_timer = Timer(_LED_TIMER)
        self._led_next = self._led_step  # bound once: no allocation per LED step
        self._steps = ()
        self._step = 0

        self._wdt = None
        self._rtc = RTC()

        self._stdin = sys.stdin.buffer
        self._stdout = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._one = bytearray(1)

    # storage
    def mount(self):
        # The root filesystem is littlefs already (MicroPython's default on ESP32).
        try:
            os.stat(_DATA)
        except OSError:
            os.mkdir(_DATA)
        return _DATA

    # time
    def ticks_ms(self):
        return time.ticks_ms()

    def idle(self, ms):
        if ms > 0:
            self._input_pending(ms)

    def running(self):
        return True

    # sensors
    def counts(self):
        self._total = (self._total + self._counter.value(0)) & _MASK30
        return self._total

    def temp_bus(self):
        return self._ow

    def battery_v(self):
        return self._battery.read_uv() * _BATTERY_DIVIDER / 1_000_000

    # outputs
    def leds(self, steps, name=None):
        """Play (green, red, ms) steps cyclically on a one-shot timer chain; `name` is not shown."""
        for step in steps:
            if step[2] <= 0:
                raise ValueError("LED step needs ms > 0")
        self._led_timer.deinit()
        self._steps = steps
        self._step = 0
        if steps:
            self._led_step(self._led_timer)
        else:
            self._green.value(0)
            self._red.value(0)

    def _led_step(self, _timer):
        # Timer callback (scheduled, soft): set the LEDs for one step and arm the next one.
        steps = self._steps
        n = len(steps)
        if n == 0:
            return
        i = self._step
        if i >= n:
            i = 0
        green, red, ms = steps[i]
        self._green.value(1 if green else 0)
        self._red.value(1 if red else 0)
        self._step = i + 1
        if n > 1:
            self._led_timer.init(mode=Timer.ONE_SHOT, period=ms, callback=self._led_next)

    # The ESP32 RTC keeps counting through resets (watchdog, soft reset, deep sleep) but not through
    # a loss of power. RTC slow memory has the same lifetime, so a marker written there when a host
    # sets the clock says whether the RTC still holds that time: after a power cut it is gone.
    def rtc_ms(self):
        if self._rtc.memory() != _RTC_MARKER:
            return None
        y, mo, d, _weekday, h, mi, s, us = self._rtc.datetime()[:8]
        return (_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000 + us // 1000

    def rtc_set_ms(self, epoch_ms):
        secs, ms = divmod(epoch_ms, 1000)
        days, secs = divmod(secs, 86400)
        y, mo, d = _civil_from_days(days)
        weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; MicroPython counts Monday as 0
        self._rtc.datetime((y, mo, d, weekday, secs // 3600, secs // 60 % 60, secs % 60, ms * 1000))
        self._rtc.memory(_RTC_MARKER)

    # watchdog
    def wdt_start(self, timeout_ms):
        if self._wdt is None:
            self._wdt = WDT(timeout=max(timeout_ms, _WDT_MIN_MS))

    def wdt_feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    # USB serial link
    def _input_pending(self, ms):
        for _ in self._poll.ipoll(ms):
            return True
        return False

    def link_readinto(self, buf):
        # stdin reads block until their whole length has arrived, so read one byte at a time while
        # poll says one is there.
        n = 0
        cap = len(buf)
        one = self._one
        while n < cap and self._input_pending(0):
            if not self._stdin.readinto(one):
                break
            buf[n] = one[0]
            n += 1
        return n

    def link_write(self, data):
        self._stdout.write(data)

    # identity
    def diag(self, op, req):
        """Test mode (hil_tests/): "pulse_out" sends n falling edges, 50 us apart, on the
        loopback pin; wired to the pulse input, the hardware counter must count exactly n."""
        if op != "pulse_out":
            raise ValueError("this board has no diagnostic operation %s" % op)
        n = req.get("pulses", 0)
        if not isinstance(n, int) or not 0 <= n <= _MAX_LOOPBACK_PULSES:
            raise ValueError("pulses: 0..%d required" % _MAX_LOOPBACK_PULSES)
        out = Pin(_PIN_LOOPBACK, Pin.OUT, value=1)
        for i in range(n):
            out.value(0)
            time.sleep_us(25)
            out.value(1)
            time.sleep_us(25)
            if not i & 1023:
                self.wdt_feed()
        out.init(Pin.IN)  # leave the line to the tube again
        return {"sent": n}

    def reset(self):
        """Hard reset (the maintenance boot for a deploy follows)."""
        machine.reset()

    def unique_id(self):
        uid = machine.unique_id()  # the 6-byte base MAC on ESP32
        return (bytes(uid) + bytes(8))[:8]
