"""Raspberry Pi Pico / Pico W (RP2040) board, MicroPython >= 1.22.

Deployed as board.py. Pins (3.3 V logic; see "Wiring" in boards/README.md), physical pin in ():

    GP15 (20)  GM tube pulse in, through the transistor stage: idle high (10k pull-up to 3V3), each
               pulse pulls it low. Counted on falling edges by PIO0 state machine 0, which
               decrements X per edge; no Python code per pulse.
    GP22 (29)  DS18B20 data (1-Wire), 4.7k pull-up to 3V3(OUT) (36), sensor VDD on 3V3.
    GP13 (17)  external green LED (330 ohm), active high; the onboard LED ("LED": GP25 on the Pico,
               the WiFi chip's GPIO on the Pico W) shows the same.
    GP14 (19)  external red LED (330 ohm), active high.
    GP29       VSYS/3 on ADC3, onboard divider: no wiring. On the Pico W GP29 is also the WiFi
               chip's SPI clock, so battery_v() returns None there.
    USB        the REPL and the binary sync link (sys.stdin/sys.stdout).

The PIO counter is PIO0 state machine 0 (the Pico W WiFi driver is reported to use PIO1). The RP2040
watchdog allows at most 8388 ms; longer requests are clamped. The RP2040 has no battery-backed RTC.
idle() waits on a poll of stdin (WFE inside); it never calls lightsleep, which stops the PIO clock.
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
import rp2
from machine import ADC, WDT, Pin, Timer
from micropython import const

NAME = "pico"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rp2.asm_pio import *  # noqa: F403 - the PIO assembler's names, for the type checker only

_PIN_GM = const(15)
_PIN_ONEWIRE = const(22)
_PIN_LED_GREEN = const(13)
_PIN_LED_RED = const(14)
_ADC_VSYS = const(29)

_SM_COUNTER = const(0)  # PIO0, state machine 0
_PIO_FREQ = const(1_000_000)  # 1 us per PIO cycle: pulses >= 2 us are seen
_WDT_MAX_MS = const(8388)
_MASK30 = const(0x3FFFFFFF)
_PIN_LOOPBACK = const(16)  # test mode only: a wire from here to the GM pulse input (GP16)
_MAX_LOOPBACK_PULSES = const(100_000)
_VSYS_PER_U16 = 3 * 3.3 / 65535
_DATA = "/data"


@rp2.asm_pio(in_shiftdir=rp2.PIO.SHIFT_LEFT)
def _count_falling_edges():
    # X counts down by one per falling edge on the `in_base` pin; the CPU reads it with exec'd
    # instructions (see Board.counts), so nothing is pushed per pulse.
    wrap_target()
    wait(1, pin, 0)
    wait(0, pin, 0)
    # jmp(x_dec) decrements X whether or not it jumps; both paths continue at "counted". The 10-cycle
    # delay (10 us) ignores ringing on the edge, like the ESP32's PCNT glitch filter.
    jmp(x_dec, "counted")[9]
    label("counted")
    wrap()


class Board:
    def __init__(self):
        gm = Pin(_PIN_GM, Pin.IN, Pin.PULL_UP)
        self._sm = rp2.StateMachine(_SM_COUNTER, _count_falling_edges, freq=_PIO_FREQ, in_base=gm)
        # Instructions the CPU forces into the running state machine, encoded once: clear the ISR,
        # shift in the low 30 bits of X, push them. 30 bits keep the value a small int (no heap).
        self._i_clear_isr = rp2.asm_pio_encode("mov(isr, null)", 0)
        self._i_x_to_isr = rp2.asm_pio_encode("in_(x, 30)", 0)
        self._i_push = rp2.asm_pio_encode("push()", 0)
        self._sm.exec(rp2.asm_pio_encode("set(x, 0)", 0))
        self._sm.active(1)

        self._ow = onewire.OneWire(Pin(_PIN_ONEWIRE))

        self._pico_w = "Pico W" in os.uname().machine
        self._vsys = None if self._pico_w else ADC(_ADC_VSYS)

        self._led_onboard = Pin("LED", Pin.OUT, value=0)
        self._green = Pin(_PIN_LED_GREEN, Pin.OUT, value=0)
        self._red = Pin(_PIN_LED_RED, Pin.OUT, value=0)
        self._led_timer = Timer(-1)  # rp2 has virtual timers only
        self._led_next = self._led_step  # bound once: no allocation per LED step
        self._steps = ()
        self._step = 0

        self._wdt = None

        self._stdin = sys.stdin.buffer
        self._stdout = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._one = bytearray(1)

    # storage
    def mount(self):
        # The root filesystem is littlefs already (MicroPython's default on rp2).
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
        sm = self._sm
        while sm.rx_fifo():  # nothing else pushes, but never read a stale word
            sm.get()
        sm.exec(self._i_clear_isr)
        sm.exec(self._i_x_to_isr)
        sm.exec(self._i_push)
        x_low = sm.get()
        # X started at 0 and counts down: the count is -X, modulo 2**30.
        return (-x_low) & _MASK30

    def temp_bus(self):
        return self._ow

    def battery_v(self):
        if self._vsys is None:
            return None
        return self._vsys.read_u16() * _VSYS_PER_U16

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
            self._show(False, False)

    def _show(self, green, red):
        g = 1 if green else 0
        self._green.value(g)
        self._led_onboard.value(g)
        self._red.value(1 if red else 0)

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

    # The RP2040 RTC is not backed up and MicroPython resets it at boot: no trusted clock here, the
    # firmware keeps uptime and waits for a host to set the time.
    def rtc_ms(self):
        return None

    def rtc_set_ms(self, epoch_ms):
        pass

    # watchdog
    def wdt_start(self, timeout_ms):
        if self._wdt is None:
            self._wdt = WDT(timeout=min(timeout_ms, _WDT_MAX_MS))

    def wdt_feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    # USB serial link
    def _input_pending(self, ms):
        for _ in self._poll.ipoll(ms):
            return True
        return False

    def link_readinto(self, buf):
        # On rp2 a stdin read of more than one byte may block: read one byte at a time while poll
        # says one is there.
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
        uid = machine.unique_id()  # the 8-byte flash unique ID on RP2040
        return (bytes(uid) + bytes(8))[:8]
