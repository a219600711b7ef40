"""Raspberry Pi Pico / Pico W (RP2040) board, MicroPython >= 1.22.

Deployed as board.py. Pins (3.3 V logic; see "Wiring" in boards/README.md), physical pin in ():

    GP15 (20)  GM tube pulse in, through the transistor stage: idle high (10k pull-up to 3V3), each
               pulse pulls it low. Counted by PIO0 state machine 0, which decrements X per pulse
               that stays low for the pulse-width window (10 us, like the ESP32-S3's PCNT filter);
               no Python code per pulse.
    GP22 (29)  DS18B20 data (1-Wire), 4.7k pull-up to 3V3(OUT) (36), sensor VDD on 3V3.
    GP13 (17)  external green LED (330 ohm), active high; on the Pico the onboard LED (GP25) shows
               the same. The Pico W's onboard LED is a GPIO of its WiFi chip: lighting it powers the
               chip up and gives GP29 to its SPI clock, so the W shows green on GP13 only.
    GP14 (19)  external red LED (330 ohm), active high.
    GP29       VSYS/3 on ADC3, onboard divider: no wiring. On the Pico W GP29 is also the WiFi
               chip's SPI clock and GP25 its chip select: isolog never starts the WiFi chip, holds
               GP25 high (chip deselected) and reads ADC3 then (the method Raspberry Pi documents
               for the Pico W, docs/references.md#pico-w); battery_v() returns None if that fails.
    GP4 (6)    I2C0 SDA to the ATECC608B secure element (SDA, pin 5 of its SOIC-8), 4.7k pull-up to 3V3.
    GP5 (7)    I2C0 SCL to the ATECC608B (SCL, pin 6), 4.7k pull-up to 3V3; chip VCC (pin 8) on 3V3(OUT),
               GND (pin 4). GP4/GP5 are the Pico's default I2C0 pins (pico-sdk boards/pico.h
               PICO_DEFAULT_I2C_SDA_PIN 4, SCL 5 [R], which MicroPython's rp2 machine_i2c.c takes as
               I2C0's defaults, read). The chip's pinout and pull-ups: [R] ATECC608B datasheet.
    USB        the REPL and the binary sync link (sys.stdin/sys.stdout).

The PIO counter is PIO0 state machine 0 (the Pico W WiFi driver is reported to use PIO1). The RP2040
watchdog allows at most 8388 ms; longer requests are clamped. The RP2040 has no battery-backed RTC.
idle() waits on a poll of stdin (WFE inside); it never calls lightsleep, which stops the PIO clock.
Ctrl-C: a 0x03 byte in a binary frame raises KeyboardInterrupt unless the firmware calls
micropython.kbd_intr(-1) while the link is binary; this module leaves that to the firmware (it
decides how an engineer gets the REPL back, since mpremote needs Ctrl-C).

Sources of these facts: docs/references.md#pico-sdk and #micropython-ports.
"""

import os

import onewire
import rp2
from machine import ADC, Pin, Timer, freq
from mcu import McuBoard, reset  # noqa: F401  (reset: the module-level hard reset)
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
_PIN_W_WL_CS = const(25)  # Pico W: the WiFi chip's SPI chip select (high: deselected)
_I2C_SE = const(0)  # I2C0 for the secure element (boards/atecc.py)
_PIN_SE_SDA = const(4)
_PIN_SE_SCL = const(5)

_SM_COUNTER = const(0)  # PIO0, state machine 0
_PIO_FREQ = const(2_000_000)  # 0.5 us per PIO cycle (the window below is counted in cycles)
# The system clock, at its lowest that keeps everything isolog needs (issue 13 item 4): USB runs from
# clk_usb, fed by PLL_USB at 48 MHz whatever clk_sys is (pico-sdk hardware_clocks, clocks_init), so
# the link works at any system clock; the PIO counter needs clk_sys / _PIO_FREQ to be a whole
# number (24: no fractional-divider jitter in the 10 us window). pico-sdk's set_sys_clock_khz reaches
# down to about 16 MHz (VCO >= 750 MHz, post dividers <= 49) [R: docs/references.md#energy], but
# below 48 MHz the interpreter's work (1-Wire bit-banging, littlefs, a sync) takes 2.6x longer than
# at 125 MHz already, and the idle current saved below 48 MHz is ~4 mA at most (boards/energy.py).
# Set before the state machine is created: its clock divider is computed from clk_sys then.
_SYS_HZ = const(48_000_000)
_WDT_MAX_MS = const(8388)
_MASK30 = const(0x3FFFFFFF)
_PIN_LOOPBACK = const(16)  # test mode only: a wire from here to the GM pulse input (GP16)
_VSYS_PER_U16 = 3 * 3.3 / 65535


# The pulse-width window, the same as the ESP32-S3's PCNT glitch filter (filter_ns=10000): the
# line must stay low for a whole window for a pulse to count, and high for a whole window before
# the next one can. At 2 MHz (0.5 us per PIO cycle) the level is checked every 2 cycles (1 us),
# 11 times from the first low sample to 20 cycles (10 us) later: lows under 10 us never count,
# lows of 10.5 us always do. Counting one pulse takes 23 cycles from its first low sample and
# re-arming 22 from the first high one, so lows and highs of 12 us alternate without falling
# behind (boards/README.md states 12 us for both boards; tests/test_pio_counter.py checks it).
# The window is `set(y, 9)` below: (20 cycles - 2 before the loop) / 2 cycles per check; the Y loop
# runs 9 + 1 times (JMP Y-- jumps while Y was non-zero: RP2040 datasheet 3.4.2). A literal, not a
# named constant: asm_pio runs the function with only the assembler's names in its globals
# (MicroPython ports/rp2/modules/rp2.py).


@rp2.asm_pio(in_shiftdir=rp2.PIO.SHIFT_LEFT)
def _count_falling_edges():
    # X counts down by one per pulse; the CPU reads it with exec'd instructions (Board.counts), so
    # nothing is pushed per pulse. `pin` is GP15 both as in_base (WAIT) and as jmp_pin (JMP PIN).
    # Every label is at an instruction: pico-sdk adds the load offset to JMP targets, so a label
    # after the last instruction would point outside the program (tests/test_pio_counter.py).
    wrap_target()
    label("armed")  # the line has been high for a window
    wait(0, pin, 0)
    set(y, 9)  # the window, see above
    label("low")
    jmp(pin, "armed")  # high again within the window: a glitch, not counted
    jmp(y_dec, "low")
    jmp(x_dec, "counted")  # low for the whole window: one pulse (X-- whether or not it jumps)
    label("counted")
    wait(1, pin, 0)  # the end of the pulse
    set(y, 9)
    label("high")
    jmp(pin, "still_high")
    jmp("counted")  # low again within the window: ringing on the rising edge, the same pulse
    label("still_high")
    jmp(y_dec, "high")
    wrap()  # high for the whole window: armed for the next pulse


def is_pico_w(machine):
    """True on a board with the CYW43 WiFi chip: os.uname().machine is MICROPY_HW_BOARD_NAME
    " with " MICROPY_HW_MCU_NAME, "Raspberry Pi Pico W with RP2040" (ports/rp2/boards/RPI_PICO_W/
    mpconfigboard.h; "Raspberry Pi Pico 2 W" for the RP2350 board)."""
    return " W with " in machine


class Board(McuBoard):
    # The cell voltage below which "low battery" shows: TRIP_RESERVE_DAYS of logging left on the
    # documented cell at this board's modelled current (boards/energy.py, low_battery_v; a test
    # keeps the two equal).
    low_battery_v = 3.72

    def __init__(self):
        freq(_SYS_HZ)  # first: the PIO divider below is computed from this clock
        gm = Pin(_PIN_GM, Pin.IN, Pin.PULL_UP)
        self._sm = rp2.StateMachine(_SM_COUNTER, _count_falling_edges, freq=_PIO_FREQ, in_base=gm, jmp_pin=gm)
        # Instructions the CPU forces into the running state machine, encoded once: clear the ISR,
        # shift in the low 30 bits of X, push them. 30 bits keep the value a small int (no heap).
        self._i_clear_isr = rp2.asm_pio_encode("mov(isr, null)", 0)
        self._i_x_to_isr = rp2.asm_pio_encode("in_(x, 30)", 0)
        self._i_push = rp2.asm_pio_encode("push()", 0)
        self._sm.exec(rp2.asm_pio_encode("set(x, 0)", 0))
        self._sm.active(1)

        self._ow = onewire.OneWire(Pin(_PIN_ONEWIRE))
        self.se_i2c = (_I2C_SE, _PIN_SE_SDA, _PIN_SE_SCL)

        self.wireless = is_pico_w(os.uname().machine)
        self._vsys = None
        try:
            if self.wireless:
                self._wl_cs = Pin(_PIN_W_WL_CS, Pin.OUT, value=1)  # WiFi chip deselected: GP29 is ours
            self._vsys = ADC(_ADC_VSYS)
        except (OSError, ValueError):
            self._vsys = None  # battery unknown

        # The Pico's onboard LED is GP25; the Pico W's is on its WiFi chip (not used, see above).
        self._led_onboard = None if self.wireless else Pin("LED", Pin.OUT, value=0)
        super().__init__(
            Pin(_PIN_LED_GREEN, Pin.OUT, value=0),
            Pin(_PIN_LED_RED, Pin.OUT, value=0),
            Timer(-1),
            _PIN_LOOPBACK,
            1,
            _WDT_MAX_MS,  # rp2 has virtual timers only
        )

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
        if self.wireless:
            self._wl_cs.value(1)  # deselected while ADC3 samples GP29
        return self._vsys.read_u16() * _VSYS_PER_U16

    # outputs
    def _show(self, green, red):
        g = 1 if green else 0
        self._green.value(g)
        if self._led_onboard is not None:
            self._led_onboard.value(g)
        self._red.value(1 if red else 0)

    # The RP2040 RTC is not backed up and MicroPython resets it at boot: no trusted clock here, the
    # firmware keeps uptime and waits for a host to set the time.
    def rtc_ms(self):
        return None

    def rtc_set_ms(self, epoch_ms):
        pass
