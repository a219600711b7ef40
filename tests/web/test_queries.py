"""The dashboard's paged reads (isolog.web.queries) on a store written directly in its schema:
pages of PAGE rows, newest shipments first, the device filter, and the containers' figures (name,
last finished sync, records held back, alarms of the last record, latest shipment)."""

from __future__ import annotations

import json

import pytest

from isolog.store import Store
from isolog.web import queries
from web_helpers import LIVES, TODAY
from web_helpers import expected_life as _expected

DEVICES = ["d0", "d1", "d2"]
PER_DEVICE = 40  # shipments a device: 120 in all, 3 pages of 50


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.sqlite3") as st:
        with st.transaction() as db:
            for i, dev in enumerate(DEVICES):
                st.touch_device(db, dev, "pico", "1", 0)
                db.execute("UPDATE devices SET next_seq = ? WHERE id = ?", (100 + i, dev))
                # its last record (seq next_seq - 1) carries d1's latched temperature alarm
                flags = ["time_valid", "temp_alarm", "low_battery"] if dev == "d1" else ["time_valid"]
                db.execute(
                    "INSERT INTO records (device, seq, boot, time, uptime_s, counts, interval_s, interval_counts, "
                    "flags) VALUES (?, ?, 0, NULL, 0, 0, 60, 0, ?)",
                    (dev, 99 + i, json.dumps(flags)),
                )
            for k in range(PER_DEVICE):
                for dev in DEVICES:
                    db.execute(
                        "INSERT INTO shipments (id, device, toml, board_config, configured_at, first_seq, "
                        "first_seq_max) VALUES (?, ?, '', '{}', '2026-11-29T08:00:00Z', 0, 0)",
                        (f"S-{dev}-{k:02d}", dev),
                    )
            db.execute("INSERT INTO device_keys VALUES ('d0', 'k', x'00', 'container-0', 'now', 1)")
            db.execute("INSERT INTO device_keys VALUES ('d0', 'k-old', x'00', 'old name', 'before', 0)")
            # d0: two finished syncs (the later acknowledged up to 90) and one still running
            for sid, status, acked in ((1, "ok", 50), (2, "problems", 90), (3, "running", None)):
                db.execute(
                    "INSERT INTO sync_sessions (id, device, started, ended, status, acked_upto) "
                    "VALUES (?, 'd0', 's', ?, ?, ?)",
                    (sid, f"end-{sid}", status, acked),
                )
        yield st


def test_shipments_are_paged_newest_first(store):
    all_ids = [f"S-{dev}-{k:02d}" for k in range(PER_DEVICE) for dev in DEVICES]  # in insertion order
    newest_first = all_ids[::-1]
    pages = [queries.shipments(store, n) for n in (1, 2, 3)]
    assert [p.total for p in pages] == [120] * 3 and [p.pages for p in pages] == [3] * 3
    assert [r["id"] for p in pages for r in p.rows] == newest_first
    assert [len(p.rows) for p in pages] == [50, 50, 20]
    assert queries.shipments(store, 99).page == 3 and queries.shipments(store, -4).page == 1  # clamped


def test_shipments_of_one_device(store):
    page = queries.shipments(store, 1, "d1")
    assert page.total == PER_DEVICE and page.pages == 1
    assert [r["id"] for r in page.rows] == [f"S-d1-{k:02d}" for k in reversed(range(PER_DEVICE))]


def test_a_verdict_is_stale_once_the_device_synced_again(store):
    row = queries.shipments(store, 1).rows[0]
    assert row["verdict"] is None and not row["stale"]
    queries.remember_verdict(store, row["row"], "fail", 10, "ab" * 32, row["next_seq"])
    again = queries.shipments(store, 1).rows[0]
    assert (again["verdict"], again["records"], again["stale"]) == ("fail", 10, False)
    assert queries.next_unchecked(store) == queries.shipment_row(store, row["row"] - 1)  # the next newest
    with store.transaction() as db:
        db.execute("UPDATE devices SET next_seq = next_seq + 5 WHERE id = ?", (row["device"],))
    assert queries.shipments(store, 1).rows[0]["stale"] is True
    assert queries.next_unchecked(store) == queries.shipment_row(store, row["row"])  # checked again
    # A verdict on records that ended within what was stored stays current.
    queries.remember_verdict(store, row["row"], "pass", 10, "cd" * 32, row["next_seq"], final=True)
    assert queries.shipments(store, 1).rows[0]["stale"] is False


def test_containers(store):
    page = queries.containers(store, 1)
    assert page.total == 3 and [c["device"] for c in page.rows] == DEVICES
    d0, d1, d2 = page.rows
    assert d0["name"] == "container-0" and d1["name"] == ""
    # the last finished sync of d0 is session 2 (3 is running): held = next_seq 100 - acked 90
    assert (d0["last_sync"], d0["sync_status"], d0["held"]) == ("end-2", "problems", 10)
    assert d1["last_sync"] is None and d1["held"] is None
    assert d1["alarms"] == ["temp_alarm"] and d0["alarms"] == [] and d2["alarms"] == []
    assert [c["shipment"] for c in page.rows] == [f"S-{dev}-{PER_DEVICE - 1:02d}" for dev in DEVICES]
    assert d2["records"] == 102


def test_containers_show_battery_storage_and_calibration_where_stored(store):
    """d0: a status from its last sync and a calibration due yesterday (overdue); d1: an older
    board's status (no storage percent) and a calibration due today (not overdue yet); d2: nothing
    stored: every figure None, never made up."""
    from datetime import date

    store.set_device_status(
        "d0",
        {
            "battery_v": 3.71,
            "battery_percent": 48.0,
            "battery_days_left": 6.5,
            "storage_used_percent": 81,
            "storage_low": True,
            "storage_full": False,
        },
        3,
    )
    store.set_device_status("d1", {"battery_v": 3.9, "storage_low": False, "storage_full": False})
    values = {
        "sensor_model": "SBM-20",
        "cal_cpm_per_usv_h": 153.8,
        "dead_time_us": 190.0,
        "one_metre_factor": None,
        "surface_factor": None,
        "calibrated_on": "2025-11-28",
    }
    store.set_container("d0", dict(values, calibration_due="2026-11-28"))
    store.set_container("d1", dict(values, calibration_due="2026-11-29"))
    d0, d1, d2 = queries.containers(store, 1, today=date(2026, 11, 29)).rows
    assert (d0["battery_percent"], d0["battery_days_left"], d0["storage_used_percent"]) == (48.0, 6.5, 81.0)
    assert (d0["storage_low"], d0["storage_full"]) == (True, False)
    assert (d0["calibration_due"], d0["calibration_overdue"]) == ("2026-11-28", True)
    assert (d1["battery_v"], d1["battery_percent"], d1["storage_used_percent"], d1["storage_low"]) == (
        3.9,
        None,
        None,
        False,
    )
    assert (d1["calibration_due"], d1["calibration_overdue"]) == ("2026-11-29", False)
    assert [
        d2[k] for k in ("battery_v", "battery_percent", "storage_used_percent", "storage_low", "calibration_due")
    ] == [None] * 5
    assert d2["calibration_overdue"] is False


def test_the_audit_trail_newest_first(store):
    for n in range(3):
        store.audit(None, "d1" if n % 2 else None, "note", {"n": n})
    page, devices = queries.audit_page(store, None)
    assert [r["details"] for r in page.rows[:3]] == [{"n": 2}, {"n": 1}, {"n": 0}]
    only, _ = queries.audit_page(store, "d1")
    assert [r["details"] for r in only.rows] == [{"n": 1}]
    assert "d1" in devices


# --- the shipment list's life columns, certificate and overdue returns (issue 15 item 3) -----------


def test_the_shipment_list_shows_each_shipments_life_and_overdue_return(lives):
    st, rows, _ = lives
    got = {r["id"]: r for r in queries.shipments(st, 1, today=TODAY).rows}
    assert set(got) == set(LIVES)
    for ship_id in LIVES:
        want = _expected(ship_id)
        assert {k: got[ship_id][k] for k in want} == want, ship_id
    # spelled out, what _expected computes: 19 days since the delivery; 15 since the dispatch
    assert (got["LU-LATE"]["overdue"], got["LU-LATE"]["out_days"]) == (True, 19)
    assert (got["LU-EDGE-OVER"]["overdue"], got["LU-EDGE-IN"]["overdue"]) == (True, False)
    assert got["LU-DELIVERED-LATELY"]["overdue"] is False  # dispatched 60 days ago, delivered 5 days ago
    # out 90 days by its events, but its board was configured again since (LU-NEW-TRIP): it came back
    assert (got["LU-OLD-TRIP"]["overdue"], got["LU-OLD-TRIP"]["out_days"]) == (False, None)
    assert got["LU-BACK"]["out_days"] is None and got["LU-NO-EVENTS"]["out_days"] is None


def test_the_overdue_filter_lists_only_overdue_returns(lives):
    st, rows, _ = lives
    want = sorted((s for s in LIVES if _expected(s)["overdue"]), key=lambda s: -rows[s])  # newest first
    page = queries.shipments(st, 1, overdue_only=True, today=TODAY)
    assert [r["id"] for r in page.rows] == want and page.total == len(want) == 2
    # a longer window (a site's own policy) leaves only what is out longer
    longer = queries.shipments(st, 1, overdue_only=True, today=TODAY, return_days=17)
    assert [r["id"] for r in longer.rows] == [s for s in want if _expected(s, days=17)["overdue"]] == ["LU-LATE"]
    # with the device filter: one board's overdue shipment, and none on a board that is back
    assert [r["id"] for r in queries.shipments(st, 1, "dev1", True, TODAY).rows] == ["LU-LATE"]
    assert queries.shipments(st, 1, "dev0", True, TODAY).total == 0


def test_the_shipment_list_shows_the_last_certificate_and_who_issued_it(lives):
    st, rows, last = lives
    got = {r["id"]: r for r in queries.shipments(st, 1, today=TODAY).rows}
    assert got["LU-BACK"]["certificate"] == {
        "id": last["id"],
        "issued_at": last["issued_at"],
        "issued_by": "quinn",
        "full_name": "Quinn Quality",
    }
    assert all(got[s]["certificate"] is None for s in LIVES if s != "LU-BACK")
