"""Shipments and scenarios of the HIL suite (shared by conftest.py and the tests)."""

from __future__ import annotations

from isolog import shipment as shipment_mod
from isolog.sim import scenario as scenario_mod

SHIPMENT_TOML = scenario_mod.shipment_path()
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
    interval, 5 C steady, the backed-up clock set at dispatch; it runs until the test stops it."""
    return scenario_mod.steady("hil", **{"duration": "400d", "configured": configured, **overrides})
