"""The energy model (boards/energy.py) against cases computed by hand from the datasheet figures
its header cites (not from the model's own output)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from isolog_boards import energy


def test_esp32s3_idle_hour_is_the_waiti_current_plus_what_always_draws():
    m = energy.Measured(elapsed_ms=3_600_000)
    est = energy.estimate(m, energy.board("esp32s3"))
    # 160 MHz WAITI 91.08 mW at 3.3 V = 27.6 mA; divider 3.7 V / 200 kohm = 18.5 uA;
    # flash standby 10 uA; DS18B20 standby 0.75 uA
    assert est.average_ua == pytest.approx(27_600 + 18.5 + 10 + 0.75)


def test_pico_minute_with_a_sample_a_commit_and_a_flash():
    m = energy.Measured(
        elapsed_ms=60_000,
        cpu_us=1000,  # 45 ms on an RP2040 at 125 MHz, 117.2 ms at the Pico's 48 MHz
        flash_busy_us=45_000 + 400,  # one sector erase, one page program
        conversions=1,
        ow_resets=2,
        ow_bytes=13,  # skip + convert; skip + read scratchpad + 9 bytes
        green_ms=100,
    )
    est = energy.estimate(m, energy.board("pico"))
    cpu_ms = 45 * 125 / 48 + (2 * 960 + 13 * 8 * 61) / 1000  # interpreter + bit-banged 1-Wire
    flash_ms = 45.4
    idle_ms = 60_000 - cpu_ms - flash_ms
    idle_ma = 5.5 + (20 - 5.5) * (48 - 15) / (125 - 15)  # 9.85 mA: WFE, between the two reports
    green_ma = (3.3 - 2.1) / 330 * 1000 + (3.3 - 2.1) / 470 * 1000  # external + onboard LED
    charge_ma_ms = (
        (idle_ma + 5 * 48 / 125) * cpu_ms  # running Python: 5 mA more at 125 MHz, scaled to 48
        + idle_ma * (idle_ms + flash_ms)  # WFE (the CPU waits while the flash is busy)
        + 20.0 * flash_ms  # W25Q16JV program / erase
        + 1.0 * 750  # one DS18B20 conversion
        + green_ma * 100
        + 3.7 / 300e3 * 1000 * 60_000  # VSYS divider, in mA
        + (10 * 60_000 + 0.75 * (60_000 - 750)) / 1000  # flash and sensor standby
    )
    assert est.average_ua == pytest.approx(charge_ma_ms / 60_000 * 1000)
    assert sum(est.shares().values()) == pytest.approx(1.0)
    assert est.charge_mas["1-Wire conversion"] == pytest.approx(0.75)  # 1 mA for 0.75 s


def test_days_on_a_battery_and_the_line():
    est = energy.Estimate(energy.board("esp32s3"), 100.0)
    assert est.days_on(2600) == pytest.approx(2600 / 0.1 / 24)  # 1,083.3 days
    assert est.line() == "energy: average current 100 uA, 1083.3 days on 2600 mAh (board esp32s3)"
    assert est.line(1000).endswith("416.7 days on 1000 mAh (board esp32s3)")


def test_the_pico_clock_interpolates_between_the_two_reports():
    assert energy.pico_idle_ma(125) == pytest.approx(20.0)
    assert energy.pico_idle_ma(15) == pytest.approx(5.5)
    assert energy.pico_idle_ma(48) == pytest.approx(5.5 + 14.5 * 33 / 110)


def test_fields_of_each_power_up_add_up():
    rows = [{"up_ms": "1000", "conv": "2", "green_ms": "10"}, {}, {"up_ms": "500", "conv": "1"}]
    m = energy.Measured.from_fields(rows)
    assert (m.elapsed_ms, m.conversions, m.green_ms) == (1500, 3, 10)


def test_unknown_board():
    with pytest.raises(ValueError, match="no energy model"):
        energy.board("arduino")
    assert energy.board("esp32s3-generic").name == "esp32s3"


def _flat(ma: float) -> energy.BoardEnergy:
    """A board drawing exactly `ma` whatever it does (every other current zero)."""
    return dataclasses.replace(
        energy.board("esp32s3"),
        cpu_active_ma=ma,
        cpu_idle_ma=ma,
        flash_busy_ma=0,
        led_green_ma=0,
        led_red_ma=0,
        divider_ua=0,
        flash_standby_ua=0,
        sensor_active_ma=0,
        sensor_standby_ua=0,
    )


def test_state_of_charge_of_a_li_ion_cell():
    assert energy.state_of_charge(4.25) == 1.0 and energy.state_of_charge(2.9) == 0.0
    assert energy.state_of_charge(3.81) == pytest.approx(0.50)
    assert energy.state_of_charge(3.835) == pytest.approx(0.55)  # halfway from 3.81 (50 %) to 3.86 (60 %)
    for v in (3.1, 3.5, 3.7, 3.95, 4.1):
        assert energy.voltage_at(energy.state_of_charge(v)) == pytest.approx(v)


def test_days_left_and_the_low_battery_level():
    b = _flat(10.0)
    assert energy.logging_average_ua(b) == pytest.approx(10_000)
    assert energy.days_left(3.81, b) == pytest.approx(0.5 * 2600 / 10 / 24)  # 5.42 days
    # three days at 10 mA = 720 mAh = 27.7 % of 2,600 mAh: between 3.68 V (20 %) and 3.73 V (30 %)
    assert energy.low_battery_v(b) == round(3.68 + 0.05 * (0.72 / 2.6 - 0.2) / 0.1, 2) == 3.72
    # a full cell lasts less than three days at 40 mA: always low
    assert energy.low_battery_v(dataclasses.replace(b, cpu_idle_ma=40.0, cpu_active_ma=40.0)) == 4.2
    # at 1 mA three days are 2.8 % (3.32 V): the floor, 3.4 V, is later
    assert energy.low_battery_v(dataclasses.replace(b, cpu_idle_ma=1.0, cpu_active_ma=1.0)) == 3.4


@pytest.mark.parametrize("name", ["esp32s3", "pico"])
def test_board_modules_carry_their_models_level(name):
    text = (Path(energy.__file__).parent / f"{name}.py").read_text()
    level = float(re.search(r"^    low_battery_v = ([\d.]+)$", text, re.M).group(1))
    assert level == energy.low_battery_v(energy.board(name))


def test_the_planned_deep_sleep_mode_by_hand():
    """Issue 13 item 2 (not built): a 100 ms wake a minute, a commit every 16 samples, a ULP at 20 uA."""
    est = energy.deep_sleep_average_ua(60, 100, 16, 20.0)
    awake_ms = 100 + 60 / 16  # the wake, and a 60 ms commit shared by 16 samples
    charge = (
        107.64 / 3.3 * awake_ms  # one core running at 160 MHz
        + (7 + 20) / 1000 * (60_000 - awake_ms)  # deep sleep + the ULP
        + 20 * 4000 / 1000  # flash busy 4 ms a record at 20 mA
        + 1.0 * 750  # the DS18B20 converting
        + (3.3 - 2.1) / 330 * 1000 * 0.010 * 60_000  # green LED, 1 % of the time
        + (3.7 / 200e3 * 1e6 + 10 + 0.75) / 1000 * 60_000  # divider, flash and sensor standby
    )
    assert est == pytest.approx(charge / 60_000 * 1000)
    assert 150 < est < 170  # 163 uA: over the goal even with a 20 uA ULP


def test_the_low_power_logging_current_by_hand():
    """A sample in the low-power mode (firmware/sleep.py): the start-up before MicroPython (ROM,
    bootloader), the wake's CPU (the measured unix-port time at the S3's slowdown, plus the
    bit-banged 1-Wire), light sleep through the rest of the 750 ms conversion, deep sleep with the
    ULP for the other 59.25 s; LEDs, divider and standby."""
    b = energy.board("esp32s3")
    slowdown = 45 * 125 / 160
    onewire_ms = (2 * 960 + 13 * 8 * 61) / 1000
    cpu_ms = 4_400 * slowdown / 1000 + onewire_ms
    flash_ms = 4.0
    light_ms = 750 - cpu_ms - flash_ms
    active_ma = 107.64 / 3.3  # datasheet, 160 MHz, one core running
    idle_ma = 91.08 / 3.3
    charge = (  # mA x ms over one minute
        active_ma * cpu_ms
        + idle_ma * flash_ms
        + 20.0 * flash_ms  # the flash programming
        + 1.0 * 750  # the DS18B20 converting
        + (3.3 - 2.1) / 330 * 1000 * 600  # the green LED: 100 ms every 10 s
        + 3.7 / 200e3 * 1000 * 750  # the divider while awake
        + 10.0 / 1000 * 750  # flash standby while awake (the sensor converts all the time awake)
        + (240 + 220) / 1000 * light_ms  # light sleep, the ULP counting
        # the ROM and bootloader at the wake (45 ms at 20 mA), the ULP, divider and standby going on
        + (20.0 + (220 + 3.7 / 200e3 * 1e6 + 10 + 0.75) / 1000) * 45
        + (7 + 220 + 3.7 / 200e3 * 1e6 + 10 + 0.75) / 1000 * (59_250 - 45)  # deep sleep, the ULP counting
    )
    assert energy.logging_average_ua(b, low_power=True) == pytest.approx(charge / 60_000 * 1000, rel=1e-9)
    # three days at this current are under 2 % of the cell: the low-battery level is the floor
    assert energy.low_battery_v(b, low_power=True) == 3.4
    # and the board module carries it for when its ULP is loaded
    text = (Path(energy.__file__).parent / "esp32s3.py").read_text()
    level = float(re.search(r"^    low_battery_v_low_power = ([\d.]+)$", text, re.M).group(1))
    assert level == energy.low_battery_v(b, low_power=True)


def test_a_low_power_board_reports_its_days_at_its_own_current():
    b = energy.board("esp32s3")
    awake = energy.battery_fields({"battery_v": 3.9}, "esp32s3")
    asleep = energy.battery_fields({"battery_v": 3.9, "low_power": True}, "esp32s3")
    soc = energy.state_of_charge(3.9)
    assert awake["battery_days_left"] == round(soc * 2600 / (energy.logging_average_ua(b) / 1000) / 24, 2)
    assert asleep["battery_days_left"] == round(
        soc * 2600 / (energy.logging_average_ua(b, low_power=True) / 1000) / 24, 2
    )
    assert asleep["battery_days_left"] > 40 * awake["battery_days_left"]
