"""End to end: configure a Lu-177 shipment, let it travel, sync, check compliance, and watch the LEDs
through every phase a courier sees: armed, logging, alarm latched, syncing, acknowledged."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from hil_dut import assert_intact
from hil_scenarios import BENCH_INTERVAL_S, SHIPMENT_TOML, board_config, make_scenario
from isolog import cli
from isolog import shipment as shipment_mod
from isolog.compliance import FAIL, PASS, WARN, check
from isolog.compliance import records as records_mod

DAY = 86400.0
LU177_HALF_LIFE_H = 6.6443 * 24


def sync_records(dut, tmp_path: Path) -> list[dict]:
    """The product's sync (isolog.sync) into a fresh store: the board's log as the host keeps it.
    The board's clock is left alone (the scenario's clock is the shipment's)."""
    from isolog.board.sync import sync
    from isolog.store import Store

    db = tmp_path / "store.sqlite3"
    port = dut.link.port
    dut.link.close()  # the port is opened exclusively: sync opens its own
    try:
        result = sync(port, db=db, set_clock=False)
    finally:
        dut.link = dut.open_link()
    assert not result.problems, result.problems
    with Store(db) as store:
        return list(store.records(result.device))


def run_check(recs: list[dict], tmp_path: Path) -> dict:
    """`isolog check --records FILE.jsonl --shipment S.toml --json`, as an engineer runs it."""
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["check", "--records", str(path), "--shipment", str(SHIPMENT_TOML), "--json"])
    result = json.loads(out.getvalue())
    assert code == result["exit_code"]
    return result


def verdicts(result: dict) -> dict[str, str]:
    return {r["name"]: r["verdict"] for r in result["rules"]}


@pytest.mark.sim_only(
    reason="five days of a shipment need the virtual board's accelerated clock and a temperature profile"
)
def test_five_day_lu177_shipment(make_dut, faults, tmp_path):
    # 5 C, a warm tarmac stop at 27 C from 30 h to 32 h (the shipment's "high" rule allows 30 min
    # above 25 C), and a 10-minute power cut at 60 h; the clock is backed up (rtc_backup).
    sc = make_scenario(
        configured=False,
        temperature={
            "points": [["0h", 5.0], ["29.5h", 5.0], ["30h", 27.0], ["32h", 27.0], ["32.5h", 5.0]],
            "noise_c": 0.1,
        },
        events=[{"kind": "power_loss", "at": "60h", "off": "10min"}],
    )
    dut = make_dut(scenario=sc)

    # armed: powered, no shipment yet
    assert dut.link.get_config() is None
    assert dut.led() == "armed"
    assert dut.board_s() < 29 * 3600, "the board ran too far before it was configured"

    # configure the shipment, as `isolog configure` does; logging starts
    dut.link.set_config(board_config())
    dut.wait_for("logging", lambda d: d["next_seq"] + d["in_ram"] > 0)
    assert dut.led() == "logging"
    assert dut.board_s() < 29 * 3600

    # the excursion latches the temperature alarm
    dut.wait_for("the excursion", lambda d: dut.board_s(d) > 33 * 3600)
    assert dut.led() == "alarm"
    assert "temp_alarm" in dut.read()["alarms"]

    # the power cut at 60 h (the scenario's), and the rest of the five days
    dut.wait_for("five days", lambda d: dut.board_s(d) >= 5 * DAY and dut.vb.boots == 2, timeout_s=120)
    faults.add("power_cut")
    assert dut.led() == "alarm", "the latched alarm must survive the power cut"

    # sync: the LEDs flicker while a host talks to the board
    mark = dut.led_mark()
    recs = sync_records(dut, tmp_path)
    assert dut.led_shown("syncing", mark)
    log = dut.records()
    assert_intact(log, start=0)
    assert recs == log.records[: len(recs)], "the store holds exactly what the board logged"

    # acknowledged: the courier's alarm is cleared, the board goes back to logging
    st = dut.link.acknowledge_alarms()
    assert st["alarms"] == []
    assert dut.led() == "logging"
    dut.next_record(log.records[-1]["seq"] + 2)
    after = dut.records().records
    assert any("alarm_ack" in r["flags"] for r in after[len(log.records) :])

    # what the virtual board showed, in order (every change it reported; the polls of this test
    # flash "syncing" in between)
    seen = [s for s, _ in dut.leds_seen()]
    for phase in ("armed", "logging", "alarm", "syncing"):
        assert phase in seen, (phase, seen)
    assert seen.index("armed") < seen.index("logging") < seen.index("alarm")
    # the board ends where a courier sees it once the host is gone: logging (the polls' "syncing"
    # may come last, since the board shows it before it answers)
    assert [s for s in seen if s != "syncing"][-1] == "logging"
    assert "warning" in seen  # the excursion warned before it alarmed
    alarm_at = next(t for s, t in dut.leds_seen() if s == "alarm")
    assert 30 * 3600 <= alarm_at <= 31 * 3600, alarm_at  # 30 min after 25 C was crossed (~29.9 h)

    # the records: five days, one power cut, every record with a time
    boots = sorted({r["boot"] for r in recs})
    assert len(boots) == 2
    assert all(r["time"] is not None for r in recs)
    assert len(recs) >= 5 * 24 * 60 - 29 * 60 - 60  # at most the first 29 h before configuring, a lost batch

    # the compliance check
    result = run_check(recs, tmp_path)
    v = verdicts(result)
    assert v["temperature.high"] == FAIL, v
    assert result["verdict"] == FAIL
    high = next(r for r in result["rules"] if r["name"] == "temperature.high")
    assert "1 excursion" in high["detail"], high  # the tarmac stop, reported with its length
    assert v["temperature.freeze"] != FAIL and v["temperature.warm-total"] != FAIL, v  # 2.5 h of 4 h allowed
    assert v["transport.category"] in (PASS, WARN), v
    assert result["summary"]["required_category"] == "II-YELLOW"  # as declared
    assert v["decay_consistency"] == PASS, v  # the dose rate falls with Lu-177's half-life
    hl = result["summary"]["effective_half_life_h"]
    assert abs(hl / LU177_HALF_LIFE_H - 1) < 0.02, hl
    assert (
        v["data_integrity"] in (WARN, FAIL)
        and "reboot" in result["rules"][[r["name"] for r in result["rules"]].index("data_integrity")]["detail"]
    ), v  # the power cut shows

    dut.heap("five-day shipment")


def test_short_shipment_and_leds(make_dut, tmp_path):
    """The same phases at the bench's pace: a few intervals of logging, a dose alarm from the
    diagnostics where the sensors can be set, sync, acknowledge. Runs on both targets."""
    dut = make_dut(configured=False)
    if dut.target == "serial":
        dut.link.set_config(board_config(BENCH_INTERVAL_S))
        assert dut.led() in ("armed", "logging")
    else:
        assert dut.led() == "armed"
        dut.link.set_config(board_config())
    start = dut.read()["next_seq"]
    dut.next_record(start + 2, timeout_s=120)
    assert dut.led() == "logging"
    if dut.can_set_sensors:
        dut.set_sensor(dose_usv_h=2500.0)  # above the shipment's alarm level (2000 uSv/h)
        dut.wait_for("dose alarm", lambda d: "dose_alarm" in d["alarms"])
        dut.set_sensor(dose_usv_h=None)
        assert dut.led() == "alarm"
    mark = dut.led_mark()
    log = dut.records()
    assert_intact(log)
    assert dut.led_shown("syncing", mark)
    st = dut.link.acknowledge_alarms()
    assert st["alarms"] == []
    assert dut.led() == "logging"
    ship = shipment_mod.load(SHIPMENT_TOML)
    recs = [r for r in log.records if r["seq"] >= start]
    res = check(records_mod.from_objects(recs), ship)
    assert res.rule("data_integrity").verdict in (PASS, WARN), res.rule("data_integrity").detail
