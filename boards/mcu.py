"""What the real boards (esp32s3.py, pico.py) share: the USB link on stdin/stdout, the LED step
player on a one-shot timer chain, the watchdog, idling, identity, reset and the loopback pulse
output of test mode. Deployed next to board.py; the virtual board has its own (boards/sim.py).

A board module subclasses McuBoard, creates its pins, counter and bus, and passes the two LED pins,
its LED timer and its loopback pin; _show() may light more (the Pico's onboard LED). It names the
I2C bus and pins of its secure element in se_i2c (boards/atecc.py).
"""

import os
import select
import sys
import time

import machine
from machine import Pin, Timer
from micropython import const

# Pulses per pulse_out command: bit-banged at 25 us + 25 us plus the interpreter's time per
# Pin.value() call (tens of us on an RP2040), 2,000 pulses take a fraction of a second, well inside
# the host's 1 s reply timeout (hil_tests/hil_dut.py, SerialDut.open_link). Larger counts are sent
# as several commands.
MAX_LOOPBACK_PULSES = const(2000)
_DATA = "/data"  # the firmware's folder on the board's filesystem


def reset():
    """Hard reset without a Board object (main.py after a start-up exception)."""
    machine.reset()


class McuBoard:
    se_i2c = None  # (I2C bus id, SDA pin, SCL pin) of the secure element, set by the board module

    def __init__(self, green, red, led_timer, loopback_pin, wdt_min_ms, wdt_max_ms):
        self._green = green
        self._red = red
        self._led_timer = led_timer
        self._loopback_pin = loopback_pin
        self._wdt_min_ms = wdt_min_ms
        self._wdt_max_ms = wdt_max_ms
        self._wdt = None
        self._steps = ()
        self._step = 0
        self._led_next = self._led_step  # bound once: no allocation per LED step
        self._stdin = sys.stdin.buffer
        self._stdout = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._one = bytearray(1)
        self._pulse_last = None  # (id, reply) of the last pulse_out: a retry is answered, not pulsed

    # time
    def ticks_ms(self):
        return time.ticks_ms()

    def idle(self, ms):
        # A poll on the USB input, never lightsleep: that would stop the PCNT/PIO counter clocks
        # and drop USB. The counters keep counting while the CPU waits here.
        if ms > 0:
            self._input_pending(ms)

    def running(self):
        return True

    # outputs
    def _show(self, green, red):
        self._green.value(1 if green else 0)
        self._red.value(1 if red else 0)

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
            self._show(False, False)

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
        self._show(green, red)
        self._step = i + 1
        if n > 1:
            self._led_timer.init(mode=Timer.ONE_SHOT, period=ms, callback=self._led_next)

    # watchdog
    def wdt_start(self, timeout_ms):
        if self._wdt is None:
            self._wdt = machine.WDT(timeout=max(self._wdt_min_ms, min(timeout_ms, self._wdt_max_ms)))

    def wdt_feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    # USB serial link
    def _input_pending(self, ms):
        for _ in self._poll.ipoll(ms):
            return True
        return False

    def link_readinto(self, buf):
        # A stdin read waits for its whole length (and on rp2 may block with more than one byte
        # asked): read one byte at a time while poll says one is there.
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

    # test mode
    def diag(self, op, req):
        """Test mode (hil_tests/): "pulse_out" sends n falling edges, 50 us apart, on the
        loopback pin; wired to the pulse input, the hardware counter must count exactly n.

        Idempotent: the request carries an "id" chosen by the host; a request with the id of the
        last one (the host's retry after a lost reply) gets the same reply and sends nothing. n is
        capped at MAX_LOOPBACK_PULSES (the reply of n = 0 says the cap)."""
        if op != "pulse_out":
            raise ValueError("this board has no diagnostic operation %s" % op)
        n = req.get("pulses", 0)
        if not isinstance(n, int) or not 0 <= n <= MAX_LOOPBACK_PULSES:
            raise ValueError("pulses: 0..%d required" % MAX_LOOPBACK_PULSES)
        rid = req.get("id")
        last = self._pulse_last
        if rid is not None and last is not None and last[0] == rid:
            return last[1]
        out = Pin(self._loopback_pin, Pin.OUT, value=1)
        for i in range(n):
            out.value(0)
            time.sleep_us(25)
            out.value(1)
            time.sleep_us(25)
            if not i & 255:
                self.wdt_feed()
        out.init(Pin.IN)  # leave the line to the tube again
        reply = {"sent": n, "id": rid, "max": MAX_LOOPBACK_PULSES}
        self._pulse_last = (rid, reply)
        return reply

    # secure element
    def secure_element(self):
        """The ATECC608B on the board's I2C bus (self.se_i2c = (bus id, SDA pin, SCL pin), set by
        the board module), or None when no chip answers: detected at every boot. Without one the
        board keeps its key on the flash, and the host reports its log as not authenticated."""
        if self.se_i2c is None:
            return None
        try:
            import atecc
        except ImportError:
            return None
        return atecc.detect_on(self.se_i2c)

    # identity, reset
    def unique_id(self):
        # 6-byte base MAC on the ESP32-S3, 8-byte flash unique ID on the RP2040: 8 bytes either way.
        return (bytes(machine.unique_id()) + bytes(8))[:8]

    # storage
    def mount(self):
        # The root filesystem is littlefs already (MicroPython's default on both ports: the boot
        # code of ports/esp32 and ports/rp2 mounts it at /); the firmware keeps its files in /data.
        try:
            os.stat(_DATA)
        except OSError:
            os.mkdir(_DATA)
        return _DATA

    def reset(self):
        """Hard reset (the maintenance boot for a deploy follows)."""
        machine.reset()
