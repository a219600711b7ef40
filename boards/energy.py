"""The energy model of each board, defined once: the current of every state the firmware puts a
board in, and the arithmetic that turns the time a board spent in each state (what the virtual
board measures, boards/sim.py: "@sim energy" lines) into an average current and a battery life.

Host-only (CPython): the virtual board reports raw times and counts, the host applies this table,
so the table costs the firmware no heap.

Where a figure comes from (docs/references.md#energy; "[R: ...]" marks what was not read in the
source for this project, only recalled or estimated; check those on the bench first):

- ESP32-S3: "ESP32-S3 Series Datasheet", table "Current consumption in Modem-sleep mode", read as
  a transcription in mW at 3.3 V (Typ1: all peripheral clocks disabled): 160 MHz WAITI (both cores
  idle) 91.08 mW = 27.6 mA; 160 MHz one core running, the other idle, 107.64 mW = 32.6 mA; the
  same rows at 80 MHz 43.56 / 53.46 mW and 40 MHz 19.56 / 25.04 mW. Light-sleep 240 uA and
  Deep-sleep (RTC timer + RTC memory) 7 uA: the datasheet figures as quoted by Espressif's
  low-power introduction and by lucidar.me's DevKitM-1 measurement (8 uA measured) [R: the
  datasheet's own low-power table not read]. MicroPython's esp32 port runs the CPU at 160 MHz
  (CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_160) [R: recalled].
- ULP co-processor running in Deep-sleep: 220 uA, the ESP32-S2 datasheet's figure ("ULP
  co-processor is powered on", ESP32-S2-WROOM datasheet table 8, read) [R: the S3's own figure not
  read]. The chosen design draws it all the time the CPU sleeps: the ULP program
  (boards/esp32s3_ulp.S, header) polls GPIO6 continuously, every 26 ULP cycles (1.5 us), because a
  ULP woken by its timer (in proportion to its duty: 7 uA at 1 % on the S2) misses 10 us pulses
  unless a pulse stretcher merges pulses closer than its period (92 % lost at the tube's maximum
  rate with a 1 ms period). At 220 uA the ULP alone is over issue 13's 150 uA goal: the S3's own
  figure is the first thing to measure on a board. Its LED player runs inside the same polling
  loop (a tick every 10 ms): the same current; the LEDs it lights are priced as LEDs.
- RP2040 on the Pico (currents from the 5 V input, the board's buck-boost included): the firmware
  idles in a poll of stdin (WFE) with every clock running: ~20 mA at 125 MHz (reported in
  rp-rs/rp-hal#659, read); ~5.5 mA underclocked near 15 MHz without sleeping
  (nhasbun/pico_power_saving, read). The current at another clock is interpolated linearly between
  those two reports [R: an interpolation, not a datasheet figure]. lightsleep(ms) 1.5 mA and
  dormant 0.9 mA, measured by MicroPython's maintainer from the Pico's USB port (micropython
  commit "rp2/modmachine: Implement lightsleep()", read). Running Python costs more than WFE
  [R: +5 mA at 125 MHz estimated, scaled with the clock].
- W25Q16JV flash (the Pico's; the S3 module's quad-SPI flash taken as alike): page program and
  sector erase ICC 20 mA typ, standby 10 uA typ [R: recalled; the Winbond datasheet is in the
  library but its DC table was not read]. Busy times in boards/sim_flash.py (tPP, tSE).
- DS18B20 (Maxim datasheet, AC table read): tCONV 750 ms at 12 bits; reset 480 us low + 480 us high
  (tRSTL, tRSTH); a time slot 60 us + 1 us recovery (tSLOT min, tREC). Active current (conversion)
  1 mA typ, standby 750 nA typ [R: recalled; the notes to the DC table were read, the table not].
  1-Wire is bit-banged (MicroPython's onewire module): the CPU runs for the whole reset and slots.
- LEDs (boards/README.md, wiring): (3.3 V - Vf) / 330 ohm; Vf 2.0 V red, 2.1 V green [R: typical
  indicator LEDs]: 3.94 and 3.64 mA. The Pico also lights its onboard LED (GP25, 470 ohm [R: Pico
  schematic recalled]): 2.55 mA more while green is on.
- Battery divider: ESP32-S3 100 k + 100 k from the cell (boards/README.md): 3.7 V / 200 kohm =
  18.5 uA; Pico: VSYS divider 200 k + 100 k on the board [R: Pico schematic recalled]: 12.3 uA.
- USB attached (a host reads the board): [R: an estimate, 3 mA on the S3, 1 mA on the Pico; the
  datasheets give no figure for the USB block alone].
- The start-up at each wake from deep sleep, before MicroPython runs (ROM, the 2nd-stage
  bootloader loading the app, ESP-IDF's start): 45 ms on the ESP32 with image validation skipped on
  a deep-sleep wake, 361 ms without it (toitware/esp-idf pull request 14, "reduces bootloader time
  from 361ms to 45ms on ESP32", read) [R: the ESP32's figure for a large app; the S3's not
  measured]. isolog's ESP32-S3 build skips the validation on a deep-sleep wake
  (boards/micropython/ISOLOG_ESP32S3/sdkconfig.board; a power-on still validates); the generic
  download does not, and would pay the slower start at every wake. Drawn at about 20 mA (an
  ESP32-S3's wake traced in espressif/esp-idf issue 15921, "~20mA", read) [R: one board's trace].
  The virtual board cannot measure this part: it counts the wakes, the model prices them.
- The documented battery (boards/README.md#battery): one 18650 Li-ion cell of 2,600 mAh, 3.7 V
  nominal, on each board [R: nominal figures of the cell class]. The model counts every current as
  drawn from the cell one to one (as through a linear regulator): the Pico's buck-boost and the
  DevKit's LDO quiescent currents are not modelled apart (the Pico figures above include its own).

The CPU's time: the virtual board measures the unix port's CPU time and scales it by how much
slower a board runs the same bytecode (sim.py, _CPU_SLOWDOWN: 45 at the RP2040's 125 MHz; other
clocks scale by the clock ratio). It includes the virtual board's own models (an overestimate).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --- cell and sensors shared by both boards ----------------------------------------------------------

BATTERY_MAH = 2600  # one 18650 Li-ion cell (boards/README.md#battery)
BATTERY_NAME = "one 18650 Li-ion cell, 2,600 mAh"
CELL_NOMINAL_V = 3.7  # [R: Li-ion nominal]
FLASH_BUSY_MA = 20.0  # W25Q16JV ICC page program / sector erase, typ [R]
FLASH_STANDBY_UA = 10.0  # W25Q16JV ICC1 standby, typ [R]
SENSOR_ACTIVE_MA = 1.0  # DS18B20 IDD during a conversion, typ [R]
SENSOR_STANDBY_UA = 0.75  # DS18B20 IDDS, typ [R]
CONVERSION_MS = 750  # DS18B20 tCONV at 12 bits (firmware/temperature.py uses the same)
ONEWIRE_RESET_US = 960  # tRSTL 480 + tRSTH 480 (presence detect inside tRSTH)
ONEWIRE_BIT_US = 61  # tSLOT 60 + tREC 1, per bit; 8 bits a byte
LED_RED_MA = (3.3 - 2.0) / 330 * 1000  # 3.94 mA
LED_GREEN_MA = (3.3 - 2.1) / 330 * 1000  # 3.64 mA
PICO_ONBOARD_LED_MA = (3.3 - 2.1) / 470 * 1000  # 2.55 mA, lit with green
RP2040_SLOWDOWN_AT_125MHZ = 45.0  # boards/sim.py, _CPU_SLOWDOWN

# The start-up before MicroPython at a wake from deep sleep, with the image validation skipped
# (isolog's build), and its current [R: both; see the header]
WAKE_BOOT_MS = 45.0
WAKE_BOOT_MA = 20.0

# ESP32-S3 modem-sleep rows (MHz: (WAITI mA, one core running mA)), datasheet mW / 3.3 V, Typ1.
ESP32S3_MODEM_SLEEP_MA = {
    40: (19.56 / 3.3, 25.04 / 3.3),
    80: (43.56 / 3.3, 53.46 / 3.3),
    160: (91.08 / 3.3, 107.64 / 3.3),
}

# RP2040 on a Pico, idling in WFE with every clock running: (MHz, mA) of the two reports above.
_PICO_IDLE_LOW = (15.0, 5.5)
_PICO_IDLE_125 = (125.0, 20.0)
_PICO_PYTHON_EXTRA_MA_AT_125 = 5.0  # [R: estimate]


def pico_idle_ma(mhz: float) -> float:
    """The Pico's current idling at a system clock of `mhz` (linear between the two reports)."""
    (f0, i0), (f1, i1) = _PICO_IDLE_LOW, _PICO_IDLE_125
    return i0 + (i1 - i0) * (mhz - f0) / (f1 - f0)


@dataclass(frozen=True)
class BoardEnergy:
    """The currents of one board's states, in mA unless the name says uA."""

    name: str
    cpu_mhz: int
    cpu_active_ma: float  # the CPU runs the interpreter
    cpu_idle_ma: float  # the firmware waits in idle() (poll: WAITI / WFE), the counter counting
    light_sleep_ua: float
    deep_sleep_ua: float
    coprocessor_ua: float | None  # counting while the CPU sleeps (ULP); None: the board cannot
    usb_ma: float  # more while a host is attached and talking
    led_green_ma: float
    led_red_ma: float
    divider_ua: float
    cpu_slowdown: float  # board CPU time per unix-port CPU time
    wake_boot_ms: float = 0.0  # start-up before MicroPython at each wake from deep sleep
    wake_boot_ma: float = 0.0
    battery_mah: int = BATTERY_MAH
    battery: str = BATTERY_NAME
    flash_busy_ma: float = FLASH_BUSY_MA
    flash_standby_ua: float = FLASH_STANDBY_UA
    sensor_active_ma: float = SENSOR_ACTIVE_MA
    sensor_standby_ua: float = SENSOR_STANDBY_UA


def _esp32s3(mhz: int = 160) -> BoardEnergy:
    idle, active = ESP32S3_MODEM_SLEEP_MA[mhz]
    return BoardEnergy(
        name="esp32s3",
        cpu_mhz=mhz,
        cpu_active_ma=active,
        cpu_idle_ma=idle,
        light_sleep_ua=240.0,
        deep_sleep_ua=7.0,
        coprocessor_ua=220.0,  # the ULP polling continuously (boards/esp32s3_ulp.S) [R: the S2's figure]
        usb_ma=3.0,
        led_green_ma=LED_GREEN_MA,
        led_red_ma=LED_RED_MA,
        divider_ua=CELL_NOMINAL_V / 200e3 * 1e6,
        # the RP2040's estimate scaled by the clock only (the LX7 does more per cycle: an overestimate)
        cpu_slowdown=RP2040_SLOWDOWN_AT_125MHZ * 125 / mhz,
        wake_boot_ms=WAKE_BOOT_MS,
        wake_boot_ma=WAKE_BOOT_MA,
    )


def _pico(mhz: int = 125) -> BoardEnergy:
    idle = pico_idle_ma(mhz)
    return BoardEnergy(
        name="pico",
        cpu_mhz=mhz,
        cpu_active_ma=idle + _PICO_PYTHON_EXTRA_MA_AT_125 * mhz / 125,
        cpu_idle_ma=idle,
        light_sleep_ua=1500.0,
        deep_sleep_ua=900.0,  # dormant
        coprocessor_ua=None,  # PIO runs on clk_sys: it stops in lightsleep and dormant
        usb_ma=1.0,
        led_green_ma=LED_GREEN_MA + PICO_ONBOARD_LED_MA,
        led_red_ma=LED_RED_MA,
        divider_ua=CELL_NOMINAL_V / 300e3 * 1e6,
        cpu_slowdown=RP2040_SLOWDOWN_AT_125MHZ * 125 / mhz,
    )


# The Pico runs at 48 MHz (boards/pico.py, _SYS_HZ: the lowest clock that keeps USB and the PIO
# window exact); the ESP32-S3 at MicroPython's 160 MHz.
BOARDS = {"esp32s3": _esp32s3(), "pico": _pico(48)}
DEFAULT = "esp32s3"


def board(name: str) -> BoardEnergy:
    """The energy row of a board (a profile name such as "esp32s3-generic" maps to its chip)."""
    key = "esp32s3" if name.startswith("esp32s3") else name
    try:
        return BOARDS[key]
    except KeyError:
        raise ValueError(f"no energy model for board {name!r}: one of {', '.join(sorted(BOARDS))}") from None


@dataclass
class Measured:
    """What the virtual board saw, summed over its power-ups ("@sim energy" fields)."""

    elapsed_ms: float = 0.0  # virtual time the board was powered
    cpu_us: float = 0.0  # unix-port CPU time (scaled by the board's cpu_slowdown)
    flash_busy_us: float = 0.0  # flash erasing or programming (sim_flash.py)
    conversions: int = 0  # DS18B20 Convert T commands
    ow_resets: int = 0  # 1-Wire reset pulses
    ow_bytes: int = 0  # 1-Wire bytes written or read
    green_ms: float = 0.0  # LED lit time
    red_ms: float = 0.0
    usb_ms: float = 0.0  # a host attached and talking
    deep_sleep_ms: float = 0.0  # the CPU off, the ULP counting (boards/sim.py deepsleep)
    light_sleep_ms: float = 0.0  # the CPU paused, the ULP counting (boards/sim.py lightsleep)
    wakes: int = 0  # starts after a deep sleep (each pays the board's wake_boot_ms)

    FIELDS = {
        "up_ms": "elapsed_ms",
        "cpu_us": "cpu_us",
        "flash_us": "flash_busy_us",
        "conv": "conversions",
        "ow_resets": "ow_resets",
        "ow_bytes": "ow_bytes",
        "green_ms": "green_ms",
        "red_ms": "red_ms",
        "usb_ms": "usb_ms",
        "sleep_ms": "deep_sleep_ms",
        "light_ms": "light_sleep_ms",
        "wakes": "wakes",
    }

    @classmethod
    def from_fields(cls, rows: list[dict[str, str]]) -> "Measured":
        """Sum the last "@sim energy" fields of each power-up."""
        m = cls()
        for row in rows:
            m.add_fields(row)
        return m

    def add_fields(self, row: dict[str, str]) -> None:
        """Add one start's last "@sim energy" fields to this sum."""
        for key, attr in self.FIELDS.items():
            if key in row:
                setattr(self, attr, getattr(self, attr) + type(getattr(self, attr))(float(row[key])))


@dataclass
class Estimate:
    board: BoardEnergy
    average_ua: float
    charge_mas: dict[str, float] = field(default_factory=dict)  # state -> charge, mA*s
    elapsed_s: float = 0.0

    def days_on(self, battery_mah: float) -> float:
        return battery_mah / (self.average_ua / 1000) / 24 if self.average_ua > 0 else float("inf")

    def shares(self) -> dict[str, float]:
        total = sum(self.charge_mas.values())
        return {k: v / total for k, v in self.charge_mas.items()} if total else {}

    def line(self, battery_mah: float | None = None) -> str:
        """The one line `isolog sim` ends with."""
        c = self.board.battery_mah if battery_mah is None else battery_mah
        return (
            f"energy: average current {self.average_ua:.0f} uA, {self.days_on(c):.1f} days on {c:g} mAh "
            f"(board {self.board.name})"
        )


def estimate(m: Measured, b: BoardEnergy) -> Estimate:
    """Average current of board b over what the virtual board measured.

    The time splits into CPU running (the scaled CPU time and the bit-banged 1-Wire time), flash
    busy (the CPU waits, at its idle current, while the flash draws its own), and idle (the rest).
    On top: the sensor converting, the LEDs lit, USB attached, and what always draws (divider,
    flash and sensor standby)."""
    t_ms = m.elapsed_ms
    # The start-up at each wake happens at the end of the sleep the board measured (the virtual
    # board cannot run it): taken from the deep sleep, priced at its own current.
    boot_ms = min(m.deep_sleep_ms, m.wakes * b.wake_boot_ms)
    sleep_ms = m.deep_sleep_ms - boot_ms
    if t_ms + sleep_ms <= 0:
        return Estimate(b, 0.0)
    onewire_ms = (m.ow_resets * ONEWIRE_RESET_US + m.ow_bytes * 8 * ONEWIRE_BIT_US) / 1000
    cpu_ms = min(t_ms, m.cpu_us * b.cpu_slowdown / 1000 + onewire_ms)
    flash_ms = min(t_ms - cpu_ms, m.flash_busy_us / 1000)
    light_ms = min(t_ms - cpu_ms - flash_ms, m.light_sleep_ms)
    idle_ms = t_ms - cpu_ms - flash_ms - light_ms
    conv_ms = min(t_ms, m.conversions * CONVERSION_MS)
    charge = {  # mA * ms
        "cpu active": b.cpu_active_ma * cpu_ms,
        "cpu idle (counter running)": b.cpu_idle_ma * (idle_ms + flash_ms),
        "flash erase/program": b.flash_busy_ma * flash_ms,
        "1-Wire conversion": b.sensor_active_ma * conv_ms,
        "LEDs": b.led_green_ma * m.green_ms + b.led_red_ma * m.red_ms,
        "USB attached": b.usb_ma * min(t_ms, m.usb_ms),
        "battery divider": b.divider_ua / 1000 * t_ms,
        "standby (flash, sensor)": (b.flash_standby_ua * t_ms + b.sensor_standby_ua * (t_ms - conv_ms)) / 1000,
    }
    if light_ms:
        # light sleep: the CPU paused, the ULP counting (it replaces idle, not the sensors and LEDs)
        charge["light sleep + ULP counting"] = (b.light_sleep_ua + (b.coprocessor_ua or 0)) / 1000 * light_ms
    if boot_ms:
        # the ROM, bootloader and ESP-IDF start at each wake (the ULP counts on; divider, standby)
        charge["wake start-up (ROM, bootloader)"] = (
            b.wake_boot_ma + ((b.coprocessor_ua or 0) + b.divider_ua + b.flash_standby_ua + b.sensor_standby_ua) / 1000
        ) * boot_ms
    if sleep_ms:
        # deep sleep: the chip's RTC domain and the ULP counting; divider and standby go on
        sleeping_ua = (
            b.deep_sleep_ua + (b.coprocessor_ua or 0) + b.divider_ua + b.flash_standby_ua + b.sensor_standby_ua
        )
        charge["deep sleep + ULP counting"] = sleeping_ua / 1000 * sleep_ms
    total_ms = t_ms + sleep_ms + boot_ms
    average_ma = sum(charge.values()) / total_ms
    return Estimate(b, average_ma * 1000, {k: v / 1000 for k, v in charge.items()}, total_ms / 1000)


# --- what a board draws while logging, and the battery it runs on (issue 13 item 5) -----------------

# Per sample at 1-minute logging, as the virtual board measured it over the 7-day trip
# (`make bench BENCH=energy`, bench/energy.py, prints them): unix-port CPU time and flash busy time
# per record. A test (tests/sim/test_launcher.py) holds logging_average_ua() within 2 % of a run.
CPU_US_PER_SAMPLE = 800
FLASH_US_PER_SAMPLE = 4000
# LED patterns while logging (firmware/leds.py "logging"): green 100 ms every 10 s.
LOGGING_GREEN_PER_S = 0.010


# In the low-power mode (firmware/sleep.py; the ESP32-S3 with its ULP) a sample is a wake: the
# program starts again, imports, takes the sample and sleeps. Unix-port CPU time per wake as the
# virtual board measured it over the 7-day trip (`make bench BENCH=energy`, "esp32s3 low power: CPU
# per wake" at b4cbc56: 4,389 us over 10,071 wakes; 10.4 ms before firmware/main.py bound the
# built-ins, a wake stopped counting the free blocks and a timer wake stopped loading the link);
# tests/sim/test_low_power.py holds it to a run.
CPU_US_PER_WAKE = 4_400


def logging_average_ua(b: BoardEnergy, interval_s: float = 60, low_power: bool = False) -> float:
    """The average current of board b logging every interval_s, no host attached: one sample
    (conversion, 1-Wire reset + skip + convert, reset + skip + read 9 bytes) per interval. With
    low_power (a board whose co-processor counts, b.coprocessor_ua), deep sleep between samples and
    light sleep through the conversion, as firmware/sleep.py does."""
    t_ms = interval_s * 1000
    asleep = low_power and b.coprocessor_ua is not None
    m = Measured(
        elapsed_ms=CONVERSION_MS if asleep else t_ms,
        cpu_us=CPU_US_PER_WAKE if asleep else CPU_US_PER_SAMPLE,
        flash_busy_us=FLASH_US_PER_SAMPLE,
        conversions=1,
        ow_resets=2,
        ow_bytes=13,
        green_ms=LOGGING_GREEN_PER_S * t_ms,
        deep_sleep_ms=t_ms - CONVERSION_MS if asleep else 0.0,
        light_sleep_ms=CONVERSION_MS if asleep else 0.0,
        wakes=1 if asleep else 0,
    )
    return estimate(m, b).average_ua


# Open-circuit voltage of a Li-ion cell against its state of charge (fraction), at rest, room
# temperature [R: a typical LiCoO2/NMC curve; docs/references.md#energy]. Under the board's few mA
# the voltage read is within a few tens of mV of it.
LI_ION_OCV = (
    (3.00, 0.00),
    (3.30, 0.02),
    (3.45, 0.05),
    (3.60, 0.12),
    (3.68, 0.20),
    (3.73, 0.30),
    (3.77, 0.40),
    (3.81, 0.50),
    (3.86, 0.60),
    (3.92, 0.70),
    (3.99, 0.80),
    (4.08, 0.90),
    (4.20, 1.00),
)
# The low-battery LED must leave enough to finish a trip: a Lu-177 delivery leg takes up to about
# three days [R: typical transit of Lu-177 radiopharmaceuticals from the producer to the clinic].
TRIP_RESERVE_DAYS = 3
# Never later than this: a Li-ion cell near its cut-off (the firmware's level before issue 13).
LOW_BATTERY_FLOOR_V = 3.4


def state_of_charge(volts: float) -> float:
    """Fraction of the cell's capacity left at this voltage (piecewise linear in LI_ION_OCV)."""
    pts = LI_ION_OCV
    if volts <= pts[0][0]:
        return 0.0
    for (v0, s0), (v1, s1) in zip(pts, pts[1:]):
        if volts <= v1:
            return s0 + (s1 - s0) * (volts - v0) / (v1 - v0)
    return 1.0


def voltage_at(soc: float) -> float:
    """The inverse of state_of_charge: the cell voltage at a fraction of capacity left."""
    pts = LI_ION_OCV
    if soc <= 0:
        return pts[0][0]
    for (v0, s0), (v1, s1) in zip(pts, pts[1:]):
        if soc <= s1:
            return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)
    return pts[-1][0]


def days_left(volts: float, b: BoardEnergy, interval_s: float = 60, low_power: bool = False) -> float:
    """Days the cell at this voltage keeps board b logging every interval_s."""
    return state_of_charge(volts) * b.battery_mah / (logging_average_ua(b, interval_s, low_power) / 1000) / 24


def low_battery_v(b: BoardEnergy, interval_s: float = 60, low_power: bool = False) -> float:
    """The voltage below which board b shows "low battery": TRIP_RESERVE_DAYS of logging left
    (4.2 V, always low, when a full cell does not last that long), never below the floor."""
    soc = TRIP_RESERVE_DAYS * 24 * logging_average_ua(b, interval_s, low_power) / 1000 / b.battery_mah
    if soc >= 1:
        return LI_ION_OCV[-1][0]
    return round(max(LOW_BATTERY_FLOOR_V, voltage_at(soc)), 2)


def battery_state(
    volts: float, board_name: str, interval_s: float = 60, low_power: bool = False
) -> tuple[float, float]:
    """(percent, days left logging every interval_s) of the documented cell at this voltage on a
    board named as in IDENTIFY ("esp32s3", "pico"; the virtual board, "sim", is priced as the
    default board); low_power: the board sleeps between samples (its STATUS says so)."""
    b = board(board_name if board_name in BOARDS else DEFAULT)
    return state_of_charge(volts) * 100, days_left(volts, b, interval_s, low_power)


def battery_fields(status: dict, board_name: str) -> dict:
    """A STATUS reply with battery_percent and battery_days_left (logging every minute) added
    where it carries a battery voltage (`isolog status`)."""
    volts = status.get("battery_v")
    if not isinstance(volts, (int, float)):
        return status
    percent, days = battery_state(volts, board_name, low_power=status.get("low_power") is True)
    return dict(status, battery_percent=round(percent, 1), battery_days_left=round(days, 2))


# --- the deep-sleep mode of issue 13 item 2: what would reach the goal --------------------------------
#
# The mode is built (firmware/sleep.py) and measured on the virtual board (bench/energy.py, `isolog
# sim --low-power`); this is the design aid that prices its parameters with the same table, to show
# what a board would need to reach 150 uA: between samples the ESP32-S3 is in deep sleep (7 uA)
# while the ULP co-processor counts pulses; at every sample the CPU boots (MicroPython restarts on
# each wake), reads the temperature (a 750 ms conversion it can sleep through, then the read),
# appends the record to the batch in RTC memory, and every `commit_every` samples writes the batch
# to flash. Figures not measured on this bench: the wake-to-sleep time of MicroPython on the S3
# (ROM and bootloader, interpreter start, imports of the .mpy modules, the sample) is [R: an
# estimate of a few hundred ms, WAKE_MS below; measure it first on a board]; the ULP's current
# while it polls the tube's line continuously is the ESP32-S2's 220 uA [R]. The ULP program
# (boards/esp32s3_ulp.S) polls continuously: a ULP that polls only part of the time draws in
# proportion [R: ULP "sensor-monitored pattern" 7 uA at 1 % duty, ESP32-S2] but needs a pulse
# stretcher in front of it and loses most pulses at the tube's maximum rate (its header says how
# many). With these figures the mode averages about 470 uA at 1-minute logging (about 250 uA
# without the ULP: the 300 ms wakes weigh most).
WAKE_MS = 300  # [R: estimate] deep-sleep wake, sample and back to sleep, at 160 MHz
COMMIT_MS = 60  # [R: estimate] one littlefs write + flush of a batch (flash busy ~4 ms a record, sim)


def deep_sleep_average_ua(
    interval_s: float = 60,
    wake_ms: float = WAKE_MS,
    commit_every: int = 16,
    ulp_ua: float | None = None,
    b: BoardEnergy | None = None,
) -> float:
    """Average current of the planned deep-sleep mode (issue 13 item 2) on the ESP32-S3: a wake
    of wake_ms per sample at the CPU's active current, a commit every commit_every samples, the
    sensor converting 750 ms per sample, the ULP counting (ulp_ua, default continuously polling),
    LEDs at the logging pattern, the divider; deep sleep the rest of the time."""
    b = b or BOARDS["esp32s3"]
    ulp = b.coprocessor_ua if ulp_ua is None else ulp_ua
    assert ulp is not None, "this board has no co-processor that counts while it sleeps"
    t_ms = interval_s * 1000
    awake_ms = wake_ms + COMMIT_MS / commit_every
    charge = (  # mA * ms over one interval
        b.cpu_active_ma * awake_ms
        + (b.deep_sleep_ua + ulp) / 1000 * (t_ms - awake_ms)
        + b.flash_busy_ma * FLASH_US_PER_SAMPLE / 1000
        + b.sensor_active_ma * CONVERSION_MS
        + b.led_green_ma * LOGGING_GREEN_PER_S * t_ms
        + (b.divider_ua + b.flash_standby_ua + b.sensor_standby_ua) / 1000 * t_ms
    )
    return charge / t_ms * 1000
