"""Counting accuracy: the corrected count rate against the true rate, from background to near
saturation (virtual board: Poisson pulse trains with the tube's dead time), and a loopback of N
pulses counted as exactly N (bench: an output pin wired to the counter input)."""

from __future__ import annotations

import math

import pytest

from isolog_fw import counting

CPM_PER_USV_H = 153.8
DEAD_TIME_US = 190.0
RECORDS = 20  # full one-minute intervals per level
# Dose rates at the tube (uSv/h): background to just under the over-range threshold (dead-time loss
# m*tau = 0.5, ~2,050 uSv/h for this tube), and above it.
BELOW = (0.1, 1.0, 10.0, 100.0, 500.0, 1000.0, 1500.0, 1900.0)
ABOVE = (2500.0, 1e4, 1e5)


def _level(dut, usv_h: float, n: int = RECORDS) -> list[dict]:
    """Set the simulated dose rate and return n full intervals logged at it."""
    dut.set_sensor(dose_usv_h=usv_h)
    d = dut.read()
    first = d["next_seq"] + d["in_ram"] + 1  # the interval running now started at the old rate
    dut.next_record(first + n - 1)
    recs = [r for r in dut.records().records if first <= r["seq"] < first + n]
    assert len(recs) == n
    return recs


def _corrected(recs: list[dict]) -> tuple[float, float, bool]:
    """(dead-time corrected rate in cps, its 1-sigma from counting statistics, over range)."""
    counts = sum(r["interval_counts"] for r in recs)
    t = sum(r["interval_s"] for r in recs)
    tau = DEAD_TIME_US * 1e-6
    n, over = counting.true_rate_cps(counts, t, tau)
    m = counts / t
    sigma = math.sqrt(max(counts, 1)) / t / (1.0 - m * tau) ** 2  # Poisson on m, propagated through n(m)
    return n, sigma, over


@pytest.mark.sim_only(
    reason="drives the simulated GM tube's dose rate (diag sensor); on the bench use the "
    "loopback test and a calibrated source"
)
def test_dead_time_corrected_rate_within_3_sigma(make_dut, faults):
    dut = make_dut(
        tube={"cpm_per_usv_h": CPM_PER_USV_H, "dead_time_us": DEAD_TIME_US, "background_usv_h": 0.0},
        dose={"initial_usv_h": 0.0},
        temperature={"points": [["0h", 5.0]], "noise_c": 0.0},
    )
    dut.next_record(1)
    report = []
    for usv_h in BELOW:
        true_cps = usv_h * CPM_PER_USV_H / 60.0
        n, sigma, over = _corrected(_level(dut, usv_h))
        z = (n - true_cps) / sigma
        if abs(z) > 3:
            # A correct counter lands outside 3 sigma 0.27 % of the time: measure again, fail only if
            # the repeat is outside too (0.0007 %), which a biased dead-time correction always is.
            n, sigma, over = _corrected(_level(dut, usv_h))
            z = (n - true_cps) / sigma
        report.append(f"{usv_h:g} uSv/h: true {true_cps:.2f} cps, corrected {n:.2f} +- {sigma:.2f} (z {z:+.2f})")
        assert not over, report[-1]
        assert abs(z) <= 3, report
    for usv_h in ABOVE:
        recs = _level(dut, usv_h, 5)
        assert all("over_range" in r["flags"] and r["dose_rate_usv_h"] is None for r in recs), (usv_h, recs)
        assert all("dose_alarm" in r["flags"] for r in recs)
        assert _corrected(recs)[2]
        st = dut.status()
        assert st["over_range"] and st["dose_rate_usv_h"] is not None  # a lower bound, never a low reading
        report.append(f"{usv_h:g} uSv/h: over range, flagged")
    dut.set_sensor(dose_usv_h=None)
    print("\n".join(report))


def test_loopback_n_pulses_counted(make_dut, faults):
    """N pulses into the counter, N counted. Virtual board: diag inject with the simulated tube
    silenced. Bench: diag pulse_out drives the loopback wire (boards/README.md) with the tube
    disconnected, in commands within the board's cap (boards/mcu.py MAX_LOOPBACK_PULSES), each
    with its own id so a retried command is not pulsed twice."""
    dut = make_dut()
    if dut.target == "sim":
        dut.set_sensor(dose_usv_h=0.0)
        send = lambda n: dut.diag("inject", pulses=n)  # noqa: E731
        sizes = (1, 10, 1000, 65_537, 1_000_000)
    else:
        dut.require("can_pulse_out")
        send = dut.pulse_out
        cap = dut.pulse_max
        sizes = (1, 10, 1000, cap, 3 * cap + 1)  # the last one in four commands
    for n in sizes:
        before = dut.read()["counts"]
        send(n)
        after = dut.wait_for(f"{n} pulses", lambda d: d["counts"] != before, timeout_s=30)["counts"]
        assert (after - before) & 0x3FFFFFFF == n, (n, before, after)
    if dut.target == "sim":
        dut.set_sensor(dose_usv_h=None)
