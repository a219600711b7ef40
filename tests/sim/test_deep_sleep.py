"""The virtual board's deep sleep (boards/sim.py deepsleep, the launcher's wake): the program
starts again on every wake, RTC memory and the flash survive, the ULP's count goes on through the
sleep, and the sleep is priced in the energy model. A probe program stands in for the firmware
(whose own low-power mode tests/sim/test_low_power.py runs)."""

from __future__ import annotations

import math

import pytest

from isolog.log.image import littlefs_over
from isolog.sim import launcher
from isolog.sim.launcher import VirtualBoard
from isolog_boards import energy
from sim_helpers import scenario

PROBE = b"""\
import sys
import board
b = board.Board()
n = int(b.rtc_memory() or b"0") + 1
b.rtc_memory(b"%d" % n)
with open("/flash/wakes.txt", "a") as f:  # the flash survives deep sleep
    f.write("%d\\n" % n)
sys.stderr.write("@sim probe wake=%d reason=%s counts=%d t=%d\\n" % (n, b.wake_reason(), b.counts(), b.now_s()))
if n < 4:
    b.deepsleep(600000)
"""


def _run(tmp_path, duration="2h", **kw):
    sc = scenario(duration=duration)
    sc["dose"] = {"initial_usv_h": 10.0}  # constant: the expected count is a number
    b = VirtualBoard(sc, tmp_path / "flash.img", speed=0, until_end=True, firmware="none", **kw)
    launcher.put_files(b.flash, {"/main.py": PROBE})
    try:
        code = b.run()
    finally:
        b.close()
    return b, code, [e.fields for e in b.events if e.kind == "probe"]


def test_wakes_restart_the_program_and_keep_rtc_memory_flash_and_the_count(tmp_path):
    b, code, probes = _run(tmp_path)
    assert code == 0
    assert [p["wake"] for p in probes] == ["1", "2", "3", "4"]  # RTC memory counted the wakes
    assert [p["reason"] for p in probes] == ["power_on", "deepsleep", "deepsleep", "deepsleep"]
    assert [int(p["t"]) for p in probes] == [0, 600, 1200, 1800]
    # The ULP counted through the sleeps: 1,800 s at the scenario's rate (Poisson, with dead time)
    tube = scenario()["tube"]
    n = (10.0 + tube["background_usv_h"]) * tube["cpm_per_usv_h"] / 60
    mean = n / (1 + n * tube["dead_time_us"] * 1e-6) * 1800
    counts = [int(p["counts"]) for p in probes]
    assert counts == sorted(counts)
    assert abs(counts[-1] - mean) < 5 * math.sqrt(mean), (counts, mean)
    fs = littlefs_over(bytearray(b.flash.read_bytes()), "esp32s3")
    fs.mount()
    with fs.open("/wakes.txt", "r") as f:
        assert f.read() == "1\n2\n3\n4\n"


def test_deep_sleep_is_priced(tmp_path):
    b, code, probes = _run(tmp_path)
    m = b.energy()
    assert m.deep_sleep_ms == 3 * 600_000
    # The probe slept three times and woke after each; its last start stops without the report a
    # sleep or the scenario's end makes (the firmware's always ends in one), so two are counted.
    assert m.wakes == 2
    est = energy.estimate(m, energy.board("esp32s3"))
    sleeping_ua = 7 + 220 + 3.7 / 200e3 * 1e6 + 10 + 0.75  # RTC + ULP + divider + standby
    # the last 45 ms of a sleep are the wake's ROM and bootloader, at 20 mA [R] (boards/energy.py)
    assert est.charge_mas["deep sleep + ULP counting"] == pytest.approx(sleeping_ua / 1000 * (1800 - 2 * 0.045))
    boot_ma = 20.0 + (220 + 3.7 / 200e3 * 1e6 + 10 + 0.75) / 1000  # the ULP, divider and standby go on
    assert est.charge_mas["wake start-up (ROM, bootloader)"] == pytest.approx(boot_ma * 2 * 0.045)


def test_sleeping_past_the_end_ends_the_run(tmp_path):
    """The board wakes for the scenario's end (so the firmware stops as an awake board does, its
    batch committed); asleep again, the run is over."""
    b, code, probes = _run(tmp_path, duration="15min")
    assert code == 0 and [p["wake"] for p in probes] == ["1", "2", "3"]
    assert [int(p["t"]) for p in probes] == [0, 600, 900]
    assert b.energy().deep_sleep_ms == 600_000 + 300_000  # the second sleep cut at the end


def test_a_power_loss_clears_rtc_memory(tmp_path):
    """RTC memory survives deep sleep (above) but not a loss of power."""
    probe = b"""\
import sys
import board
b = board.Board()
m = b.rtc_memory()
sys.stderr.write("@sim probe rtc=%s\\n" % (m.decode() or "-"))
b.rtc_memory(b"set")
while b.running():
    b.idle(1000)
"""
    sc = scenario(duration="3min", events=[{"kind": "power_loss", "at": "1min", "off": "10s"}])
    b = VirtualBoard(sc, tmp_path / "flash.img", speed=0, until_end=True, firmware="none")
    launcher.put_files(b.flash, {"/main.py": probe})
    try:
        assert b.run() == 0
    finally:
        b.close()
    assert [e.fields["rtc"] for e in b.events if e.kind == "probe"] == ["-", "-"]
    assert b.boots == 2
