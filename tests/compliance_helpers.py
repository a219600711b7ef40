"""Shipment documents and TOML for the host tests (imported by conftest and tests)."""

from __future__ import annotations

import copy
import json

BASE = {
    "shipment": {
        "id": "LU-TEST-0001",
        "nuclide": "Lu-177",
        "activity": "10.1193GBq",
        "reference_time": "2026-11-26T08:00:00Z",
        "prescribed_activity": "7.4GBq",
        "administration_time": "2026-11-29T08:00:00Z",
        "expiry_time": "2026-11-29T08:00:00Z",
        "declared_category": "II-YELLOW",
        "exclusive_use": False,
    },
    "sensor": {
        "position": "surface",
        "surface_factor": 1.0,
        "one_metre_factor": 0.04,
        "calibration_cpm_per_usv_h": 153.8,
        "calibration_nuclide": "Cs-137",
        "dead_time_us": 190.0,
        "background_usv_h": 0.1,
    },
    "logging": {"interval_s": 60},
    "dose_rate": {"warn_usv_h": 1500.0, "alarm_usv_h": 2000.0},
    "temperature": {
        "rules": [
            {"name": "high", "threshold_c": 25.0, "direction": "above", "allowed": "30min", "type": "single"},
            {"name": "freeze", "threshold_c": 0.0, "direction": "below", "allowed": 0, "type": "single"},
        ]
    },
}


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def to_toml(doc: dict) -> str:
    """Enough TOML for the shipment format: tables of scalars and [[temperature.rules]]."""
    out = []
    for table, body in doc.items():
        if table == "temperature":
            for rule in body.get("rules", []):
                out.append("[[temperature.rules]]")
                out += [f"{k} = {_value(v)}" for k, v in rule.items()]
                out.append("")
            continue
        out.append(f"[{table}]")
        out += [f"{k} = {_value(v)}" for k, v in body.items()]
        out.append("")
    return "\n".join(out)


def shipment_doc(**changes) -> dict:
    """BASE with changes: table__field=value sets a field, value None removes it."""
    doc = copy.deepcopy(BASE)
    for key, value in changes.items():
        table, field = key.split("__", 1)
        if value is None:
            doc[table].pop(field, None)
        else:
            doc[table][field] = value
    return doc


def template_config(template_path, ship_id: str, interval_s: int, allowed_s: dict) -> dict:
    """The board configuration a shipment made from a product template must carry (the fields a
    test compares): the template's limits, the container's sensor record of the dispatch tests
    (153.8 cpm per uSv/h, 190 us, no background), allowed_s the seconds of each rule's "allowed"."""
    import tomllib
    from pathlib import Path

    template = tomllib.loads(Path(template_path).read_text())
    return {
        "id": ship_id,
        "interval_s": interval_s,
        "cal_cpm_per_usv_h": 153.8,
        "dead_time_us": 190.0,
        "background_usv_h": 0.0,
        "dose_warn_usv_h": template["dose_rate"]["warn_usv_h"],
        "dose_alarm_usv_h": template["dose_rate"]["alarm_usv_h"],
        "temp_rules": [
            [r["name"], r["threshold_c"], r["direction"], allowed_s[r["allowed"]], r["type"]]
            for r in template["temperature"]["rules"]
        ],
    }


def write_records(path, recs) -> None:
    from isolog.compliance.records import to_json_lines

    path.write_text(to_json_lines(recs))


def make_records(n=None, *, dose=None, temp=None, interval_s=60.0, t0=None, counts=None, flags=None):
    """Records of one boot with given readings (arrays or scalars), one every interval_s from t0
    (default: the BASE reference time)."""
    import numpy as np

    from isolog.compliance.records import FLAG_BIT, Records
    from isolog.units import parse_time

    if n is None:
        n = len(dose) if dose is not None and np.ndim(dose) else len(temp)
    t0 = parse_time(BASE["shipment"]["reference_time"]) if t0 is None else t0
    interval = np.broadcast_to(np.asarray(interval_s, dtype=np.float64), (n,)).copy()
    uptime = np.cumsum(interval)
    d = np.broadcast_to(np.asarray(5.0 if dose is None else dose, dtype=np.float64), (n,)).copy()
    c = (
        np.full(n, 10_000, dtype=np.int64)
        if counts is None
        else np.broadcast_to(np.asarray(counts, dtype=np.int64), (n,)).copy()
    )
    fl = np.full(n, FLAG_BIT["time_valid"], dtype=np.uint32)
    fl[0] |= FLAG_BIT["boot"]
    if flags:
        for name, mask in flags.items():
            fl[np.asarray(mask)] |= FLAG_BIT[name]
    return Records(
        device="abc",
        seq=np.arange(n, dtype=np.int64),
        boot=np.ones(n, dtype=np.int64),
        time_s=t0 + uptime,
        uptime_s=uptime,
        counts=np.cumsum(c),
        interval_s=interval,
        interval_counts=c,
        dose_rate_usv_h=d,
        temperature_c=np.broadcast_to(np.asarray(5.0 if temp is None else temp, dtype=np.float64), (n,)).copy(),
        flags=fl,
    )
