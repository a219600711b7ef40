"""Scenarios for the virtual board: TOML on the host, normalised to JSON for the board.

The format is documented in scenarios/README.md. Everything is validated here, with messages
that name the field, so the board side (boards/sim.py) can trust what it reads.
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from isolog import shipment as shipment_mod
from isolog.errors import UserError
from isolog.units import parse_duration_s, parse_time

DEFAULT_SCENARIO = "lu177-7d.toml"
EVENT_KINDS = ("power_loss", "temp_fault", "gm_silent", "saturate")
TEMP_FAULT_MODES = ("unplugged", "crc", "power_on")


def default_path() -> Path:
    return Path(str(resources.files("isolog") / "scenarios" / DEFAULT_SCENARIO))


def shipment_path() -> Path:
    """The built-in Lu-177 shipment file the built-in scenarios install."""
    return default_path().parent / "lu177-shipment.toml"


def steady(name: str = "steady", duration: str = "2d", configured: bool = True, **overrides: Any) -> dict[str, Any]:
    """A normalised base scenario for tests and benchmarks: Lu-177 decaying from 30 uSv/h at the
    sensor, 5 C steady, the backed-up clock set at dispatch, the built-in shipment installed (or
    none: configured=False); overrides replace whole top-level tables or fields."""
    doc: dict[str, Any] = {
        "name": name,
        "duration": duration,
        "start": "2026-11-26T08:00:00Z",
        "rtc_backup": True,
        "tube": {"cpm_per_usv_h": 153.8, "dead_time_us": 190.0, "background_usv_h": 0.1},
        "dose": {"initial_usv_h": 30.0, "half_life": "6.6443d"},
        "temperature": {"points": [["0h", 5.0]], "noise_c": 0.1},
    }
    if configured:
        doc["shipment"] = {"file": str(shipment_path())}
    doc.update(overrides)
    return normalise(doc, shipment_path().parent)


def load(path: str | Path | None) -> dict[str, Any]:
    """Read and validate a scenario file; returns the normalised dict for the board."""
    path = Path(path) if path else default_path()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"scenario file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read scenario {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    try:
        return normalise(doc, path.parent, str(path))
    except UserError as exc:
        msg = str(exc)
        raise UserError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


def _num(
    table: dict, key: str, where: str, default: float | None = None, lo: float = -math.inf, hi: float = math.inf
) -> float:
    value = table.get(key, default)
    if value is None:
        raise UserError(f"{where}.{key}: required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{where}.{key}: a number is required, not {value!r}")
    if not lo <= value <= hi:
        raise UserError(f"{where}.{key}: {value} is outside {lo}..{hi}")
    return float(value)


def _dur(table: dict, key: str, where: str, default: Any = None) -> float:
    value = table.get(key, default)
    if value is None:
        raise UserError(f"{where}.{key}: required")
    try:
        return parse_duration_s(value)
    except UserError as exc:
        raise UserError(f"{where}.{key}: {exc}") from None


def _profile(points: Any, where: str, lo: float, hi: float) -> list[list[float]]:
    if not isinstance(points, list) or not points:
        raise UserError(f"{where}: a list of [time, value] pairs is required")
    out: list[list[float]] = []
    for i, p in enumerate(points):
        if not isinstance(p, list) or len(p) != 2:
            raise UserError(f"{where}[{i}]: [time, value] required, not {p!r}")
        t = _dur({"t": p[0]}, "t", f"{where}[{i}]")
        v = _num({"v": p[1]}, "v", f"{where}[{i}]", lo=lo, hi=hi)
        if out and t < out[-1][0]:
            raise UserError(f"{where}[{i}]: times must not go backwards")
        out.append([t, v])
    return out


def normalise(doc: dict[str, Any], base: Path, source: str = "<scenario>") -> dict[str, Any]:
    known = {
        "name",
        "duration",
        "start",
        "rtc_backup",
        "seed",
        "shipment",
        "tube",
        "dose",
        "temperature",
        "battery",
        "events",
        "ticks_wrap_after",
    }
    unknown = sorted(set(doc) - known)
    if unknown:
        raise UserError(f"unknown key(s): {', '.join(unknown)}")
    sc: dict[str, Any] = {"name": str(doc.get("name", source))}
    sc["duration_s"] = _dur(doc, "duration", "scenario")
    if sc["duration_s"] <= 0:
        raise UserError("scenario.duration: must be positive")
    sc["start_epoch_s"] = parse_time(doc["start"]) if "start" in doc else None
    sc["rtc_backup"] = bool(doc.get("rtc_backup", False))
    sc["seed"] = int(doc.get("seed", 1))
    # The board's millisecond ticks wrap this long after the first power-up (a board's ticks_ms()
    # wraps every 2**30 ms, 12.4 days: once in a long trip). None: they start at 0.
    sc["ticks_wrap_after_s"] = _dur(doc, "ticks_wrap_after", "scenario") if "ticks_wrap_after" in doc else None

    ship = doc.get("shipment")
    sc["board_config"] = None
    if ship is not None:
        if not isinstance(ship, dict) or "file" not in ship:
            raise UserError('[shipment]: file = "path/to/shipment.toml" required')
        ship_path = (base / ship["file"]).resolve()
        sc["shipment_file"] = str(ship_path)
        sc["board_config"] = shipment_mod.load(ship_path).to_board_dict()

    tube = doc.get("tube", {})
    sc["tube"] = {
        "cpm_per_usv_h": _num(tube, "cpm_per_usv_h", "tube", 153.8, 0.1, 1e6),
        "dead_time_us": _num(tube, "dead_time_us", "tube", 190.0, 0.0, 1e4),
        "background_usv_h": _num(tube, "background_usv_h", "tube", 0.1, 0.0, 1e3),
    }
    dose = doc.get("dose", {})
    steps = []
    for i, st in enumerate(dose.get("steps", [])):
        if not isinstance(st, list) or len(st) != 2:
            raise UserError(f"dose.steps[{i}]: [time, factor] required")
        steps.append([_dur({"t": st[0]}, "t", f"dose.steps[{i}]"), _num({"f": st[1]}, "f", f"dose.steps[{i}]", lo=0.0)])
    sc["dose"] = {
        "initial_usv_h": _num(dose, "initial_usv_h", "dose", 0.0, 0.0, 1e8),
        "half_life_s": _dur(dose, "half_life", "dose", 0),
        "steps": steps,
    }
    temp = doc.get("temperature", {"points": [[0, 20.0]]})
    sc["temperature"] = {
        "points": _profile(temp.get("points"), "temperature.points", -80.0, 150.0),
        "noise_c": _num(temp, "noise_c", "temperature", 0.0, 0.0, 10.0),
    }
    if "battery" in doc:
        sc["battery"] = {"points": _profile(doc["battery"].get("points"), "battery.points", 0.0, 6.0)}

    events = []
    for i, ev in enumerate(doc.get("events", [])):
        where = f"events[{i}]"
        kind = ev.get("kind")
        if kind not in EVENT_KINDS:
            raise UserError(f"{where}.kind: one of {', '.join(EVENT_KINDS)} required, not {kind!r}")
        out = {"kind": kind, "at_s": _dur(ev, "at", where)}
        if out["at_s"] <= 0:
            raise UserError(f"{where}.at: must be after the start")
        if kind == "power_loss":
            out["off_s"] = _dur(ev, "off", where, 0)
        else:
            out["duration_s"] = _dur(ev, "duration", where)
        if kind == "temp_fault":
            out["mode"] = ev.get("mode", "unplugged")
            if out["mode"] not in TEMP_FAULT_MODES:
                raise UserError(f"{where}.mode: one of {', '.join(TEMP_FAULT_MODES)} required")
        if kind == "saturate":
            out["usv_h"] = _num(ev, "usv_h", where, lo=0.0)
        events.append(out)
    sc["events"] = sorted(events, key=lambda e: e["at_s"])
    return sc
