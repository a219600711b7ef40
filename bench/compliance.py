"""Bench: the compliance engine on 1,000,000 records, and NumPy Bateman decay against
radioactivedecay evaluated in a loop. Run: python -c "import bench.compliance as b; b.main()".

Goals: `isolog check` engine < 1 s on 10^6 records; decay of 10^6 time points side by
side with radioactivedecay, same results, ratio reported.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHIPMENT = ROOT / "scenarios" / "shipments" / "lu177-lutathera.toml"

N_RECORDS = 1_000_000
N_TIMES = 1_000_000
N_LOOP = 2_000  # radioactivedecay is timed on this many points and extrapolated to N_TIMES
N_LOAD = 100_000  # JSON-lines loading is timed on this many records and extrapolated


def _best(fn, repeat=3):
    best = math.inf
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def synthetic_records(n: int):
    """n records at 10 s of a Lu-177 package, with temperature excursions, gaps, faults."""
    from dataclasses import replace

    from isolog import shipment
    from isolog.compliance import synthetic
    from isolog.compliance.records import FLAG_BIT

    ship = shipment.load(SHIPMENT)
    ship = replace(ship, interval_s=10.0)
    rec = synthetic.generate(
        ship,
        n * 10.0,
        500.0,
        interval_s=10.0,
        seed=42,
        temperature_c=lambda t: 15 + 6 * np.sin(t / 86400 * 2 * np.pi) + 8 * (np.sin(t / 7e5) > 0.995),
    )
    rng = np.random.default_rng(1)
    faults = rng.choice(n, 200, replace=False)
    rec.temperature_c[faults] = np.nan
    rec.flags[faults] |= FLAG_BIT["temp_fault"]
    for start in rng.choice(n - 100, 20, replace=False):  # 20 power cuts of ~1 h
        rec.time_s[start:] += 3600.0
    return ship, rec


def bench_check() -> None:
    from isolog.compliance import check
    from isolog.compliance.records import loads, to_json_lines

    ship, rec = synthetic_records(N_RECORDS)
    t_check, result = _best(lambda: check(rec, ship))
    print(
        f"check engine, {N_RECORDS:,} records: {t_check * 1e3:8.1f} ms  (goal < 1000 ms)  "
        f"verdict {result.overall}, {len(result.rules)} rules"
    )
    _, small = synthetic_records(N_LOAD)
    text = to_json_lines(small).encode()
    t_load, _ = _best(lambda: loads(text, "<bench>"), repeat=2)
    print(
        f"records loading (JSON lines), {N_LOAD:,} records: {t_load * 1e3:8.1f} ms  "
        f"-> ~{t_load * N_RECORDS / N_LOAD:.1f} s for {N_RECORDS:,} (extrapolated; not part of the engine)"
    )


def bench_decay() -> None:
    from isolog import decay

    parent = "Mo-99"
    t_h = np.linspace(0.0, 500.0, N_TIMES)
    t_np, ours = _best(lambda: decay.decay(parent, 1e9, t_h * 3600.0))
    print(
        f"decay {parent} chain, {N_TIMES:,} time points, NumPy closed form: {t_np * 1e3:8.1f} ms "
        f"({t_np / N_TIMES * 1e9:.1f} ns per point)"
    )
    try:
        import radioactivedecay as rd
    except ImportError:
        print(
            "radioactivedecay is not installed (test-only dependency: pip install -r requirements/dev.txt): "
            "comparison skipped"
        )
        return
    sub = t_h[:: N_TIMES // N_LOOP][:N_LOOP]

    def loop():
        inv = rd.Inventory({parent: 1e9}, "Bq")
        out = np.empty((len(sub), 2))
        for i, th in enumerate(sub):
            acts = inv.decay(float(th), "h").activities("Bq")
            out[i] = acts["Mo-99"], acts["Tc-99m"]
        return out

    t_rd, theirs = _best(loop, repeat=1)
    t_rd_full = t_rd / len(sub) * N_TIMES
    # Same results: the closed form with radioactivedecay's own (ICRP-107) constants.
    names = ["Mo-99", "Tc-99m"]
    lam = [math.log(2) / rd.Nuclide(n).half_life("s") for n in names]
    bf = dict(zip(rd.Nuclide("Mo-99").progeny(), rd.Nuclide("Mo-99").branching_fractions()))["Tc-99m"]
    ch = decay.chain_from_constants(names, lam, {(0, 1): bf})
    same = ch.activities_bq(np.array([1e9, 0.0]), sub * 3600.0)
    mask = theirs > 1e-300
    rel_same = float(np.max(np.abs(same[mask] / theirs[mask] - 1)))
    table = np.stack([ours["Mo-99"][:: N_TIMES // N_LOOP][:N_LOOP], ours["Tc-99m"][:: N_TIMES // N_LOOP][:N_LOOP]], 1)
    early = (sub <= 72.0) & (theirs > 0).all(axis=1)
    rel_table = float(np.max(np.abs(table[early] / theirs[early] - 1)))
    print(
        f"decay {parent} chain, radioactivedecay {rd.__version__} in a loop: {t_rd * 1e3:8.1f} ms for "
        f"{len(sub):,} points ({t_rd / len(sub) * 1e6:.0f} us per point) -> ~{t_rd_full:.0f} s for "
        f"{N_TIMES:,} (extrapolated)"
    )
    print(
        f"  same results: max relative difference {rel_same:.1e} with the same (ICRP-107) constants; "
        f"{rel_table:.1e} over 0-72 h with isolog's ENSDF half-lives"
    )
    print(f"  ratio radioactivedecay / NumPy: {t_rd_full / t_np:,.0f}x")


def main() -> None:
    print("== compliance bench ==")
    bench_check()
    bench_decay()


if __name__ == "__main__":
    main()
