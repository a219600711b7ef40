"""`isolog station --once`: a virtual board plugged in while the station runs is synced, checked
and certified without a keystroke; the screen shows the result large and plain (not a TTY: the
progress in plain lines). Needs the virtual board (MicroPython unix port)."""

from __future__ import annotations

import tempfile
import threading
import time

import pytest

from isolog import cli

pytestmark = pytest.mark.sim_only

SHIP_ID = "LU-2026-11-0042"  # the built-in shipment (scenarios/shipments/lu177-lutathera.toml)


def test_station_once_shows_the_verdict_of_the_board_plugged_in(tmp_path, monkeypatch, capsys):
    from isolog.sim.launcher import VirtualBoard
    from sim_helpers import SHIPMENT, read_log, scenario

    # the station's own registry of virtual boards (not other runs' on this machine)
    reg = tmp_path / "tmp"
    reg.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(reg))
    db = tmp_path / "s.sqlite3"
    out = tmp_path / "certs"
    # The container sits at 30 °C: the shipment's 25 °C limit fails (as tests/web/conftest.py).
    sc = scenario(duration="12h", temperature={"points": [["0h", 30.0]], "noise_c": 0.1})
    sc["board_config"] = None
    # Provisioned and configured at the dispatch desk; its 12 h logged (15,000 times real time); unplugged.
    b = VirtualBoard(sc, tmp_path / "flash.img", speed=15_000, hold_at_end=True)
    b.start()
    try:
        assert cli.main(["provision", b.port, "--name", "container-17", "--db", str(db)]) == 0
        seen = len(b.events)
        assert cli.main(["configure", b.port, str(SHIPMENT), "--db", str(db), "--no-clock"]) == 0
        deadline = time.monotonic() + 20
        while not any(e.kind == "end" for e in b.events[seen:]) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        b.close()
    capsys.readouterr()
    codes: list[int] = []
    station = threading.Thread(
        target=lambda: codes.append(
            cli.main(
                ["station", "--db", str(db), "--out", str(out), "--once", "--no-dispatch", "--sim-dir", str(tmp_path)]
            )
        )
    )
    station.start()
    time.sleep(0.6)  # the station watches; then the board is plugged in at the return desk
    log = read_log(tmp_path / "flash.img")  # what the board logged (read from its image, not over the link)
    b = VirtualBoard(sc, tmp_path / "flash.img", speed=0, hold_at_end=True, firmware="keep")
    b.t0_s = 12 * 3600.0  # its clock at the end of the scenario: the board holds, logging no more
    try:
        b.start()
        station.join(40)
        assert not station.is_alive()
    finally:
        b.close()
    assert codes == [0]
    text = capsys.readouterr().out
    screen = text[text.index(f"{b.port}: board plugged in") :]
    lines = [ln.strip() for ln in screen.splitlines()]
    assert "CONTAINER  container-17" in lines
    assert f"SHIPMENT   {SHIP_ID}" in lines
    assert "VERDICT    FAIL" in lines
    assert "NEXT       QA review needed: a rule fails (review it in the dashboard)" in lines
    # not a TTY: the progress in plain lines, the percent rising to 100
    pcts = [int(ln.split()[1].rstrip("%:")) for ln in lines if ln.startswith("sync ") and "%:" in ln]
    assert pcts and pcts == sorted(pcts) and pcts[-1] == 100
    # every record on the board's flash (read from the image) is new to this store
    n = len(log.records)
    assert any(ln.startswith(f"{n} new records in ") for ln in lines), lines
    assert f"certificate: {out / (SHIP_ID + '.pdf')}" in lines
    assert (out / f"{SHIP_ID}.pdf").read_bytes()[:5] == b"%PDF-"


def test_station_refuses_an_out_that_is_not_a_folder_in_one_line(tmp_path, capsys):
    not_dir = tmp_path / "certs"
    not_dir.write_text("a file")
    assert cli.main(["station", "--db", str(tmp_path / "s.sqlite3"), "--out", str(not_dir)]) == 2
    err = capsys.readouterr().err
    assert err == f"isolog: error: --out {not_dir}: not a folder (the certificates go into a folder)\n"


def test_station_dispatches_a_board_without_a_shipment_from_the_answers_on_stdin(tmp_path, monkeypatch, capsys):
    import io
    from datetime import date, timedelta
    from pathlib import Path

    from isolog.board.link import Link
    from isolog.sim.launcher import VirtualBoard
    from sim_helpers import scenario

    reg = tmp_path / "tmp"
    reg.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(reg))
    products = Path(__file__).resolve().parents[2] / "products"
    db = tmp_path / "s.sqlite3"
    sc = scenario(duration="1h")
    sc["board_config"] = None
    b = VirtualBoard(sc, tmp_path / "flash.img", speed=0, hold_at_end=True)
    b.start()
    try:
        today = date.today()
        assert cli.main(["provision", b.port, "--name", "container-18", "--db", str(db)]) == 0
        assert (
            cli.main(
                ["container", "set", b.port, "--db", str(db), "--sensor-model", "LND 7317"]
                + ["--calibration-cpm-per-usv-h", "153.8", "--dead-time-us", "190"]
                + ["--calibrated-on", (today - timedelta(days=1)).isoformat()]
                + ["--calibration-due", (today + timedelta(days=100)).isoformat()]
            )
            == 0
        )
        answers = ["y", "lutathera", "LU-2026-12-0001", "", "7.4GBq", "2026-12-01T08:00:00Z", "II-YELLOW"]
        answers += ["", "", "", "y"]  # surface, a record a minute, leaving now; confirmed
        monkeypatch.setattr("sys.stdin", io.StringIO("".join(a + "\n" for a in answers)))
        capsys.readouterr()
        args = ["station", "--db", str(db), "--out", str(tmp_path / "certs"), "--once", "--sim-dir", str(tmp_path)]
        args += ["--products", str(products), "--shipments", str(tmp_path / "shipments")]
        assert cli.main(args) == 0
        with Link(b.port) as link:
            config_id = link.identify()["config_id"]
    finally:
        b.close()
    text = capsys.readouterr().out
    lines = [ln.strip() for ln in text.splitlines()]
    assert "NEXT       no shipment of this board is known in this store: configure it at the dispatch desk" in lines
    assert "CONFIGURED container container-18 (board 15010c0000000001)" in lines
    assert "SHIPMENT   LU-2026-12-0001 (lutathera, Lu-177)" in lines
    assert "NEXT       unplug the board and pack it: the trip starts now" in lines
    assert f"shipment file: {tmp_path / 'shipments' / 'LU-2026-12-0001.toml'}" in lines
    assert config_id == "LU-2026-12-0001"


def test_station_without_product_templates_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no products/ here or in a parent
    assert cli.main(["station", "--db", str(tmp_path / "s.sqlite3"), "--once"]) == 2
    err = capsys.readouterr().err
    assert err == "isolog: error: no products/ folder here or in a parent: give --products DIR (or --no-dispatch)\n"
