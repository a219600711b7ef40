"""A synthetic sync store for the command benches: one board, one shipment, n records, written
directly in the store's schema (executemany), not through the virtual board.

The records are those of bench/compliance.py (a Lu-177 package logged every 10 s, with temperature
excursions, sensor faults and power cuts), shaped as the sync stores them: times as UTC ISO 8601
text (milliseconds only when there are some), dose rates rounded to 6 decimals as log/decode.py
does, temperatures in centi-degrees, flags as the JSON list text. No chunks are stored (the MAC
chain is not part of what these benches measure).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHIPMENT_TOML = ROOT / "scenarios" / "shipments" / "lu177-lutathera.toml"
DEVICE = "15010c0000000001"
SHIP_ID = "LU-2026-11-0042"
INTERVAL_S = 10


def shipment_toml() -> str:
    text = SHIPMENT_TOML.read_text(encoding="utf-8")
    return text.replace("interval_s = 60", f"interval_s = {INTERVAL_S}")


def _iso(epoch_s: np.ndarray) -> list[str]:
    """Epoch seconds as the sync writes them (log/decode.py iso_utc): milliseconds only when non-zero."""
    ms = np.round(epoch_s * 1000.0).astype(np.int64)
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms").tolist()
    return [t[:19] + "Z" if w else t + "Z" for t, w in zip(text, (ms % 1000 == 0).tolist())]


def build(path: Path | str, n: int, seed: int = 42) -> None:
    """Write a store at path (a new file, or the URL of a new PostgreSQL database) with one
    shipment of n records."""
    from dataclasses import replace

    from isolog import shipment
    from isolog.compliance import synthetic
    from isolog.compliance.records import FLAG_BIT, FLAGS
    from isolog.store import Store

    ship = replace(shipment.loads(shipment_toml(), "<bench>"), interval_s=float(INTERVAL_S))
    rec = synthetic.generate(
        ship,
        n * float(INTERVAL_S),
        500.0,
        interval_s=float(INTERVAL_S),
        seed=seed,
        temperature_c=lambda t: 15 + 6 * np.sin(t / 86400 * 2 * np.pi) + 8 * (np.sin(t / 7e5) > 0.995),
        device=DEVICE,
    )
    assert len(rec) == n
    rng = np.random.default_rng(seed + 1)
    faults = rng.choice(n, min(n, 200), replace=False)
    rec.temperature_c[faults] = np.nan
    rec.flags[faults] |= FLAG_BIT["temp_fault"]
    for start in rng.choice(max(1, n - 100), min(20, max(1, n - 100)), replace=False):  # power cuts of 1 h
        rec.time_s[start:] += 3600.0

    flag_text = {}
    for mask in np.unique(rec.flags):
        flag_text[int(mask)] = json.dumps([name for name in FLAGS if int(mask) & FLAG_BIT[name]])
    times = _iso(rec.time_s)
    dose = np.round(rec.dose_rate_usv_h, 6)
    rows = zip(
        [DEVICE] * n,
        rec.seq.tolist(),
        rec.boot.tolist(),
        times,
        np.round(rec.uptime_s, 3).tolist(),
        rec.counts.tolist(),
        rec.interval_s.tolist(),
        rec.interval_counts.tolist(),
        [None if x != x else x for x in dose.tolist()],
        [None if x != x else x for x in rec.temperature_c.tolist()],
        [flag_text[m] for m in rec.flags.tolist()],
        [None] * n,
        [None] * n,
        [None] * n,
    )
    with Store(path) as st:
        with st.transaction() as db:
            st.touch_device(db, DEVICE, "bench", "0", 0)
            db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            db.execute("UPDATE devices SET next_seq = ? WHERE id = ?", (n, DEVICE))
            db.execute(
                "INSERT INTO shipments (id, device, toml, board_config, configured_at, first_seq, first_seq_max, "
                "host_user) VALUES (?, ?, ?, ?, ?, 0, 0, 'bench')",
                (
                    SHIP_ID,
                    DEVICE,
                    shipment_toml(),
                    json.dumps(ship.to_board_dict(), sort_keys=True),
                    "2026-11-26T07:59:00.000Z",
                ),
            )
    if isinstance(path, Path):
        con = sqlite3.connect(str(path))
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
