"""The trip window (compliance/window.py): the rules judge the trip, from dispatch to delivery;
packing before and the return trip after are shown apart; data integrity judges every record;
the unloading is found in the data."""

from __future__ import annotations

import numpy as np
import pytest

from compliance_helpers import shipment_doc
from isolog import shipment
from isolog.compliance import Verification, check, synthetic, timebase
from isolog.compliance import window as trip_window
from isolog.compliance.model import KEY_DEVICE
from isolog.units import format_time

H = 3600.0


def _ship():
    return shipment.from_dict(shipment_doc())


def _ver(n: int) -> Verification:
    return Verification(method="mac_chain", verified=n, key=KEY_DEVICE, expected_first_seq=0, expected_end_seq=n)


def _trip(temp, hours: float = 30.0, unload_h: float | None = None, seed: int = 3):
    """Synthetic records from the reference time, a record a minute; temp(t_rel_s) in °C; the
    product taken out at unload_h (readings net of background from then on)."""
    ship = _ship()
    rec = synthetic.generate(ship, hours * H, 60.0, temperature_c=temp, seed=seed)
    if unload_h is not None:
        empty = synthetic.generate(ship, hours * H, 0.0, temperature_c=temp, seed=seed + 1)
        cut = int(unload_h * 60)
        rec.dose_rate_usv_h[cut:] = empty.dose_rate_usv_h[cut:]
        rec.interval_counts[cut:] = empty.interval_counts[cut:]
    return ship, rec


def _warm(start_h: float, end_h: float):
    return lambda t: np.where((t >= start_h * H) & (t < end_h * H), 30.0, 5.0)


def test_packing_before_the_start_delay_is_shown_apart_and_judged_by_no_rule():
    ship, rec = _trip(_warm(0.0, 1.0))  # an hour at 30 °C on the packing table ("high": > 25 °C for 30 min)
    n = len(rec)
    assert check(rec, ship, _ver(n)).rule("temperature.high").verdict == "fail"
    tb = timebase.build(rec, ship.interval_s)
    win = trip_window.make(tb, rec, 2 * H, None)
    assert win.start_s == ship.reference_time + 2 * H  # configured when the first record's interval began
    res = check(rec, ship, _ver(n), win)
    assert res.rule("temperature.high").verdict == "pass"
    assert res.overall == "pass"
    before = res.summary["outside_window"]["before"]
    assert before["records"] == 120 and before["first_seq"] == 0 and before["last_seq"] == 119
    assert before["temperature_max_c"] == 30.0 and before["temperature_min_c"] == 5.0
    assert res.summary["outside_window"]["after"] is None
    assert res.summary["trip_window"]["records"] == n - 120
    assert res.summary["temperature_max_c"] == 5.0
    (line,) = trip_window.describe_outside(res.summary["outside_window"])
    assert line.startswith("before the trip (packing): 120 records, ") and "5.0..30.0 °C" in line


def test_the_return_trip_after_delivery_is_shown_apart_and_arrival_is_the_delivery():
    ship, rec = _trip(_warm(26.0, 30.0))  # the empty container waits 4 h in the sun after delivery
    n = len(rec)
    delivered = ship.reference_time + 24 * H
    tb = timebase.build(rec, ship.interval_s)
    res = check(rec, ship, _ver(n), trip_window.make(tb, rec, 0.0, delivered, "delivery note"))
    assert res.rule("temperature.high").verdict == "pass"
    assert res.summary["arrival_time"] == format_time(delivered) and res.summary["arrival_from"] == "delivery"
    after = res.summary["outside_window"]["after"]
    assert after["records"] == n - 24 * 60 and after["first_seq"] == 24 * 60
    assert res.summary["trip_window"]["how"] == f"delivered {format_time(delivered)} (delivery note)"
    without = check(rec, ship, _ver(n))
    assert without.rule("temperature.high").verdict == "fail"
    assert without.summary["arrival_time"] == format_time(float(rec.time_s[-1]))


def test_integrity_judges_every_record_even_outside_the_window():
    ship, rec = _trip(lambda t: np.full_like(t, 5.0))
    n = len(rec)
    tb = timebase.build(rec, ship.interval_s)
    win = trip_window.make(tb, rec, 0.0, ship.reference_time + 10 * H)
    # records outside the window that did not verify: not compliant
    res = check(rec, ship, Verification(**{**_ver(n).__dict__, "verified": n - 5, "failed": 5}), win)
    assert res.rule("data_verification").verdict != "pass" and res.exit_code == 1
    # records missing after the window: not compliant either
    res = check(rec, ship, Verification(**{**_ver(n).__dict__, "expected_end_seq": n + 100}), win)
    assert res.exit_code == 1
    # an unverified records file stays unknown whatever the window
    assert check(rec, ship, None, win).exit_code == 1


def test_an_empty_or_inverted_window_is_unknown():
    ship, rec = _trip(lambda t: np.full_like(t, 5.0), hours=3.0)
    n = len(rec)
    late = trip_window.TripWindow(ship.reference_time + 10 * H, None, "dispatched late")
    res = check(rec, ship, _ver(n), late)
    assert res.rule("trip_window").verdict == "unknown" and res.exit_code == 1
    inverted = trip_window.TripWindow(ship.reference_time + 2 * H, ship.reference_time + H, "x")
    res = check(rec, ship, _ver(n), inverted)
    assert res.rule("trip_window").verdict == "unknown" and "not after the dispatch" in res.rule("trip_window").detail


def test_the_unloading_is_found_where_the_dose_rate_falls_to_background():
    ship, rec = _trip(lambda t: np.full_like(t, 5.0), hours=30.0, unload_h=26.0)
    tb = timebase.build(rec, ship.interval_s)
    found = trip_window.detect_unloading(rec, tb, ship.sensor.background_usv_h)
    # the last record with the product in: the 1560th (26 h at a record a minute)
    assert found == pytest.approx(ship.reference_time + 26 * H)
    # no drop, a drop too short (20 min before the end), no product at all: nothing found
    ship, rec = _trip(lambda t: np.full_like(t, 5.0), hours=30.0)
    assert trip_window.detect_unloading(rec, timebase.build(rec, 60.0), 0.1) is None
    ship, rec = _trip(lambda t: np.full_like(t, 5.0), hours=30.0, unload_h=30.0 - 20 / 60)
    assert trip_window.detect_unloading(rec, timebase.build(rec, 60.0), 0.1) is None
    empty = synthetic.generate(ship, 5 * H, 0.0, seed=9)
    assert trip_window.detect_unloading(empty, timebase.build(empty, 60.0), 0.1) is None


def test_the_certificate_shows_the_window_and_what_lies_outside(tmp_path):
    from isolog.compliance import report

    ship, rec = _trip(_warm(0.0, 1.0), hours=6.0)
    tb = timebase.build(rec, ship.interval_s)
    delivered = ship.reference_time + 5 * H
    res = check(rec, ship, _ver(len(rec)), trip_window.make(tb, rec, 2 * H, delivered, "delivery note"))
    rows = dict(report.summary_rows(res))
    start = format_time(ship.reference_time + 2 * H)
    assert rows["Trip window"] == (
        f"dispatched {start} (2h 00min after configuration); delivered {format_time(delivered)} "
        f"(delivery note): {3 * 60} records judged"
    )
    assert rows["Not judged: before the trip (packing)"].startswith("120 records, ")
    assert rows["Not judged: after the delivery"].startswith("60 records, ")
    out = tmp_path / "c.html"
    report.write_html(res, out)
    html = out.read_text()
    assert "Not judged: before the trip (packing)" in html and "uSv/h" not in html and "µSv/h" in html
