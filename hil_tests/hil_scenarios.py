"""Shipments and scenarios of the HIL suite (shared by conftest.py and the tests)."""

from __future__ import annotations

from pathlib import Path

from isolog import shipment as shipment_mod
from isolog.sim import scenario as scenario_mod

SHIPMENT_TOML = Path(scenario_mod.default_path()).parent / "lu177-shipment.toml"
BENCH_INTERVAL_S = 10  # the shortest interval the board takes: real time runs at 1x on the bench


def board_config(interval_s: int | None = None, **changes) -> dict:
    """The built-in Lu-177 shipment as the board stores it (isolog.shipment.to_board_dict())."""
    cfg = shipment_mod.load(SHIPMENT_TOML).to_board_dict()
    if interval_s is not None:
        cfg["interval_s"] = interval_s
    cfg.update(changes)
    return cfg


def make_scenario(configured: bool = True, **overrides) -> dict:
    """A normalised scenario for the virtual board: Lu-177 at the built-in shipment's 1-minute
    interval, 5 C steady, the backed-up clock set at dispatch."""
    doc = {
        "name": "hil",
        "duration": "400d",  # the board runs until the test stops it
        "start": "2026-11-26T08:00:00Z",
        "rtc_backup": True,
        "tube": {"cpm_per_usv_h": 153.8, "dead_time_us": 190.0, "background_usv_h": 0.1},
        "dose": {"initial_usv_h": 30.0, "half_life": "6.6443d"},
        "temperature": {"points": [["0h", 5.0]], "noise_c": 0.1},
    }
    if configured:
        doc["shipment"] = {"file": str(SHIPMENT_TOML)}
    doc.update(overrides)
    return scenario_mod.normalise(doc, SHIPMENT_TOML.parent)


