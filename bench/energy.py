"""Bench: battery life of the 7-day Lu-177 trip at 1-minute logging, on each board's energy model.

The built-in scenario (host/isolog/scenarios/, the `isolog sim` default: 7 days, a power cut, a
temperature excursion that latches an alarm) runs on the virtual board at full speed in each board's
geometry; the time it spent in each state (boards/sim.py, "@sim energy") is priced with the board's
currents (boards/energy.py). Printed per board: average current and the goal, days on the
documented cell, energy per record committed (charge x the cell's 3.7 V nominal / records in the
log), and the share of each state. Excludes the GM tube's high-voltage supply.

Three runs: the ESP32-S3 awake (polling between samples), the ESP32-S3 in its low-power mode
(deep sleep between samples, the ULP counting, light sleep through each temperature conversion:
firmware/sleep.py, `isolog sim --low-power`; the program restarts at every wake, in the same process)
and the Pico at 48 MHz (awake: its PIO stops in any sleep).

Goals (issue 13): ESP32-S3 <= 150 uA; Pico: the lowest the RP2040 allows while counting, no figure
set.

Then the 14-day trip as a user runs it (the built-in scenario made 14 days long, `isolog sim
--low-power --speed max --until-end`, process start to exit, with its peak RSS), beside the same
command without --low-power (its peer: the same trip on a board that never restarts). Goal (issue 13
item 3): "well under a minute".
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.commands import measure
from bench.table import print_table, row
from isolog.log import image
from isolog.sim import scenario as scenario_mod
from isolog.sim.launcher import VirtualBoard
from isolog_boards import energy

GOAL_UA = {"esp32s3": 150.0, "pico": None}
LONG_TRIP_GOAL_S = 60.0


def run_trip(board: str, low_power: bool = False) -> tuple[energy.Measured, int, float]:
    """(what the virtual board measured, records committed, wall seconds) of the 7-day trip on a
    board."""
    sc = scenario_mod.load(None)
    with tempfile.TemporaryDirectory(prefix="isolog-bench-energy-") as d:
        flash = Path(d) / "flash.img"
        t0 = time.monotonic()
        vb = VirtualBoard(
            sc, flash, heap_kib=64, speed=0, until_end=True, profile=board, low_power=low_power, keep_events=False
        )
        try:
            code = vb.run()
        finally:
            vb.close()
        wall = time.monotonic() - t0
        if code != 0:
            raise SystemExit(f"bench energy: the virtual board ({board}) stopped with exit code {code}")
        records = len(image.read_image(flash).records)
        return vb.energy(), records, wall


def fourteen_day_scenario(folder: Path) -> Path:
    """The built-in 7-day scenario made 14 days long (its last temperature and battery points
    carried to day 14), with the shipment file it installs, in folder."""
    text = scenario_mod.default_path().read_text(encoding="utf-8")
    for old, new in (
        ('duration = "7d"', 'duration = "14d"'),
        ('["7d", 7.0]]', '["7d", 7.0], ["14d", 7.0]]'),
        ('["7d", 3.70]]', '["14d", 3.70]]'),
    ):
        if old not in text:
            raise SystemExit(f"bench energy: the built-in scenario no longer has {old!r}: update fourteen_day_scenario")
        text = text.replace(old, new)
    path = folder / "lu177-14d.toml"
    path.write_text(text, encoding="utf-8")
    shutil.copy(scenario_mod.shipment_path(), folder / scenario_mod.shipment_path().name)
    return path


def long_trip() -> None:
    print()
    print("the 14-day trip at full speed, process start to exit (isolog sim --speed max --until-end)")
    rows: list = []
    with tempfile.TemporaryDirectory(prefix="isolog-bench-14d-") as d:
        sc = fourteen_day_scenario(Path(d))
        isolog = [sys.executable, "-m", "isolog", "sim", "--speed", "max", "--until-end", "--quiet"]
        for label, extra, goal in (
            ("--low-power (a restart at every wake)", ["--low-power"], LONG_TRIP_GOAL_S),
            ("awake (the peer: no restarts)", [], None),
        ):
            rc, wall, rss, _ = measure([*isolog, *extra, str(sc)])
            if rc != 0:
                raise SystemExit(f"bench energy: isolog sim {' '.join(extra)} exited {rc}")
            row(
                rows,
                f"14 days, {label}",
                f"{wall:.1f} s, {rss:.0f} MB",
                f"< {goal:.0f} s" if goal else "",
                wall < goal if goal else None,
            )
    print_table(rows)


def main() -> None:
    print("energy: the 7-day Lu-177 trip at 1-minute logging, per board (boards/energy.py; HV supply excluded)")
    rows: list = []
    for name, board, low_power in (
        ("esp32s3", "esp32s3", False),
        ("esp32s3 low power", "esp32s3", True),
        ("pico", "pico", False),
    ):
        measured, records, wall = run_trip(board, low_power)
        est = energy.estimate(measured, energy.board(board))
        b = est.board
        goal = GOAL_UA[board]
        row(
            rows,
            f"{name}: average current ({b.cpu_mhz} MHz)",
            f"{est.average_ua:,.0f} uA",
            f"<= {goal:.0f} uA" if goal else "lowest while counting",
            est.average_ua <= goal if goal else None,
        )
        row(rows, f"{name}: days on {b.battery}", f"{est.days_on(b.battery_mah):.1f}", "", None)
        charge_mas = sum(est.charge_mas.values())
        row(
            rows,
            f"{name}: energy per record committed",
            f"{charge_mas * energy.CELL_NOMINAL_V / records:,.0f} mJ ({records:,} records)",
            "",
            None,
        )
        for state, share in sorted(est.shares().items(), key=lambda kv: -kv[1]):
            row(rows, f"{name}:   share {state}", f"{share * 100:.2f} %", "", None)
        wakes = measured.wakes
        if wakes:
            # what boards/energy.py CPU_US_PER_WAKE holds: the unix port's CPU time a wake took
            # (start to sleep), and what the model makes of it at the board's clock
            cpu_us = measured.cpu_us / wakes
            row(
                rows,
                f"{name}: CPU per wake",
                f"{cpu_us:,.0f} us unix port = {cpu_us * b.cpu_slowdown / 1000:,.0f} ms at {b.cpu_mhz} MHz "
                f"({wakes:,} wakes)",
                "",
                None,
            )
        row(rows, f"{name}: simulated in", f"{wall:.1f} s wall", "", None)
    print_table(rows)
    print()
    print(
        "esp32s3 deep-sleep mode, what would reach the goal: the model only, boards/energy.py "
        f"deep_sleep_average_ua; wake-to-sleep {energy.WAKE_MS} ms [R: estimate, measure on a board]"
    )
    plan: list = []
    for label, kw in (
        ("1-min samples, ULP polling all the time (220 uA [R])", {}),
        ("1-min samples, ULP at 20 uA (polling 10 % of the time)", {"ulp_ua": 20.0}),
        ("1-min samples, ULP at 20 uA, 100 ms wake", {"ulp_ua": 20.0, "wake_ms": 100}),
        ("a wake every 5 min, ULP at 20 uA, 100 ms wake", {"ulp_ua": 20.0, "wake_ms": 100, "interval_s": 300}),
    ):
        ua = energy.deep_sleep_average_ua(**kw)
        row(plan, label, f"{ua:,.0f} uA", "<= 150 uA", ua <= 150)
    print_table(plan)
    long_trip()


if __name__ == "__main__":
    main()
