"""isolog.board.container and `isolog container`: the container's sensor and calibration kept with
the container, used by `isolog configure`; product templates (products/*.toml) in shipment files.
On the in-process fake board (tests/fakes.py)."""

from __future__ import annotations

import shutil
import tomllib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

import fakes
from compliance_helpers import shipment_doc, to_toml
from fakes import FakeBoard, use_fake_ports
from isolog import cli, shipment
from isolog.store import Store, load_for_check
from isolog_fw import record as fw_record

PORT = "FAKE0"
DEV = fakes.DEVICE_ID.hex()
REPO = Path(__file__).resolve().parents[2]
TODAY = datetime.now(timezone.utc).date()


@pytest.fixture()
def desk(monkeypatch, tmp_path):
    from isolog.board import provision

    board = FakeBoard()
    use_fake_ports(monkeypatch, board)
    db = tmp_path / "store.sqlite3"
    provision.provision(PORT, "crate-7", db)
    return board, db


def set_args(db, target=PORT, cal="160", dead="200", on=None, due=None, extra=()):
    on = on or (TODAY - timedelta(days=30)).isoformat()
    due = due or (TODAY + timedelta(days=335)).isoformat()
    return [
        "container",
        "set",
        target,
        "--sensor-model",
        "LND 7317",
        "--calibration-cpm-per-usv-h",
        cal,
        "--dead-time-us",
        dead,
        "--calibrated-on",
        on,
        "--calibration-due",
        due,
        "--db",
        str(db),
        *extra,
    ]


def bare_file(tmp_path, ship_id, **changes):
    """A shipment file without the container's constants."""
    doc = shipment_doc(
        shipment__id=ship_id,
        sensor__calibration_cpm_per_usv_h=None,
        sensor__dead_time_us=None,
        sensor__one_metre_factor=None,
        sensor__surface_factor=None,
        **changes,
    )
    p = tmp_path / f"{ship_id}.toml"
    p.write_text(to_toml(doc))
    return p


def test_set_and_show_are_audited_with_old_and_new_values(desk, capsys):
    board, db = desk
    assert cli.main(set_args(db, extra=("--one-metre-factor", "0.04"))) == 0
    out = capsys.readouterr().out
    assert "container crate-7 (board 15010c00000000f1): recorded" in out
    # by board id and by name, no board needed
    assert cli.main(set_args(db, target=DEV, cal="170", extra=("--one-metre-factor", "0.04"))) == 0
    assert "updated: cal_cpm_per_usv_h" in capsys.readouterr().out
    assert cli.main(["container", "show", "crate-7", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "sensor model: LND 7317" in out and "170 cpm per µSv/h" in out and "one-metre factor 0.04" in out
    with Store(db) as st:
        entries = [a for a in st.audit_trail(DEV) if a["action"] == "container_set"]
    assert len(entries) == 2
    assert entries[0]["details"]["old"] is None
    assert entries[1]["details"]["old"]["cal_cpm_per_usv_h"] == 160.0
    assert entries[1]["details"]["new"]["cal_cpm_per_usv_h"] == 170.0
    assert entries[1]["host_user"]


@pytest.mark.parametrize(
    "change, words",
    [
        ({"cal": "0.05"}, "--calibration-cpm-per-usv-h must be within 0.1..100000"),  # firmware/config.py
        ({"dead": "20000"}, "--dead-time-us must be within 0..10000"),
        ({"on": "2026-05-01", "due": "2026-04-01"}, "--calibration-due 2026-04-01 must be after"),
        ({"due": "soon"}, "--calibration-due must be a date YYYY-MM-DD"),
    ],
)
def test_values_outside_the_boards_limits_or_dates_out_of_order_are_refused(desk, capsys, change, words):
    _, db = desk
    if "on" in change and date.fromisoformat(change["on"]) > TODAY:
        pytest.skip("the machine's date is before the test's calibration date")
    assert cli.main(set_args(db, **change)) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_configure_takes_the_constants_from_the_container(desk, tmp_path, capsys):
    board, db = desk
    assert cli.main(set_args(db, cal="160", dead="200", extra=("--one-metre-factor", "0.05"))) == 0
    f = bare_file(tmp_path, "LU-C1")
    assert cli.main(["configure", PORT, str(f), "--db", str(db), "--no-clock"]) == 0
    with Store(db) as st:
        s = st.shipments(DEV)[-1]
    assert s["board_config"]["cal_cpm_per_usv_h"] == 160.0
    assert s["board_config"]["dead_time_us"] == 200.0
    assert s["container"]["sensor_model"] == "LND 7317"
    # what check reads: the stored file with the record kept at configure, not today's record
    assert cli.main(set_args(db, cal="999")) == 0
    board.run_for(1800)
    from isolog.board import sync as sync_mod

    sync_mod.sync(PORT, db, set_clock=False)
    _, ship = load_for_check(db, "LU-C1")
    assert ship.sensor.calibration_cpm_per_usv_h == 160.0
    # the calibration the board used is in its MAC'd "C" chunk and agrees with the stored one
    with Store(db) as st:
        segments = [seg for seg in st.unchecked_segments(DEV)] + [c["segment"] for c in st.segment_checks(DEV)]
        assert segments
        for seg in segments:
            assert st.config_differences(DEV, seg) == []
        chunks = [c for seg in segments for c in st._segment_chunks(DEV, seg, fw_record.KIND_CONFIG)]
    assert chunks and all(b'"cal_cpm_per_usv_h": 160.0' in bytes(c) for c in chunks)
    assert ship.sensor.one_metre_factor == 0.05


def test_a_file_value_that_differs_from_the_container_is_refused_naming_the_field(desk, tmp_path, capsys):
    _, db = desk
    assert cli.main(set_args(db, cal="160")) == 0
    capsys.readouterr()
    f = tmp_path / "full.toml"
    f.write_text(to_toml(shipment_doc(shipment__id="LU-C2")))  # gives 153.8 and 190.0
    assert cli.main(["configure", PORT, str(f), "--db", str(db), "--no-clock"]) == 2
    err = capsys.readouterr().err
    assert "[sensor] calibration_cpm_per_usv_h: 153.8 differs from the container crate-7" in err
    assert err.count("\n") == 1
    with Store(db) as st:
        assert st.shipments() == []
    # the same values as the record: accepted
    assert cli.main(set_args(db, cal="153.8", dead="190")) == 0
    assert cli.main(["configure", PORT, str(f), "--db", str(db), "--no-clock"]) == 0


def test_an_overdue_calibration_is_refused_unless_forced_with_a_reason(desk, tmp_path, capsys):
    _, db = desk
    due = (TODAY - timedelta(days=1)).isoformat()
    assert cli.main(set_args(db, on=(TODAY - timedelta(days=400)).isoformat(), due=due)) == 0
    capsys.readouterr()
    f = bare_file(tmp_path, "LU-C3")
    assert cli.main(["configure", PORT, str(f), "--db", str(db), "--no-clock"]) == 2
    err = capsys.readouterr().err
    assert f"its calibration was due {due}" in err and "isolog container set" in err and err.count("\n") == 1
    # due today, leaving in two days: overdue at dispatch
    assert cli.main(set_args(db, on=(TODAY - timedelta(days=400)).isoformat(), due=TODAY.isoformat())) == 0
    args = ["configure", PORT, str(f), "--db", str(db), "--no-clock"]
    assert cli.main([*args, "--start-delay", "2d"]) == 2
    assert cli.main(args) == 0  # leaving today: still valid
    assert cli.main(set_args(db, on=(TODAY - timedelta(days=400)).isoformat(), due=due)) == 0
    assert cli.main([*args, "--force", "--reason", "spare tube checked against the reference"]) == 0
    with Store(db) as st:
        forced = [a for a in st.audit_trail(DEV) if a["action"] == "configure_forced"]
    assert forced[-1]["details"]["calibration_due"] == due
    assert forced[-1]["details"]["reason"] == "spare tube checked against the reference"


def test_without_a_container_record_the_file_must_give_the_constants(tmp_path, capsys):
    f = bare_file(tmp_path, "LU-C4")
    assert cli.main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert "[sensor] calibration_cpm_per_usv_h: missing (required)" in err
    assert "[sensor] dead_time_us: missing (required)" in err


# --- product templates -----------------------------------------------------------------------------


def product_dir(tmp_path):
    shutil.copytree(REPO / "products", tmp_path / "products")


def test_the_shipped_templates_give_the_scenario_files_rules(tmp_path):
    product_dir(tmp_path)
    for scenario, name in (("lu177-lutathera", "lutathera"), ("mo99-generator", "mo99-generator")):
        full = tomllib.loads((REPO / "scenarios" / "shipments" / f"{scenario}.toml").read_text())
        slim = {k: v for k, v in full.items() if k not in ("dose_rate", "temperature")}
        slim["shipment"] = {**full["shipment"], "product": name}
        p = tmp_path / f"{scenario}.toml"
        p.write_text(to_toml(slim))
        ship = shipment.load(p)
        want = shipment.from_dict(full).to_board_dict()
        got = ship.to_board_dict()
        assert got["temp_rules"] == want["temp_rules"]
        assert got["dose_warn_usv_h"] == full["dose_rate"]["warn_usv_h"]
        assert got["dose_alarm_usv_h"] == full["dose_rate"]["alarm_usv_h"]
        assert ship.product == name


def test_a_section_given_by_both_file_and_template_is_refused_naming_it(tmp_path, capsys):
    product_dir(tmp_path)
    p = tmp_path / "both.toml"
    p.write_text(to_toml(shipment_doc(shipment__product="lutathera")))  # gives [dose_rate] and rules
    assert cli.main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert "[dose_rate]: given both in the file and by product template lutathera" in err
    p.write_text(to_toml(shipment_doc(shipment__product="no-such")))
    assert cli.main(["validate", str(p)]) == 2
    assert "no product template 'no-such'" in capsys.readouterr().err


def test_a_templated_shipment_is_configured_and_checked_with_the_stored_template(desk, tmp_path, capsys):
    board, db = desk
    product_dir(tmp_path)
    doc = shipment_doc(shipment__id="LU-P1", shipment__product="lutathera")
    del doc["dose_rate"], doc["temperature"]
    p = tmp_path / "templated.toml"
    p.write_text(to_toml(doc))
    assert cli.main(["validate", str(p)]) == 0
    assert cli.main(["configure", PORT, str(p), "--db", str(db), "--no-clock"]) == 0
    # the template changes afterwards: the stored shipment keeps the one it was configured with
    (tmp_path / "products" / "lutathera.toml").write_text("[dose_rate]\nwarn_usv_h = 1.0\nalarm_usv_h = 2.0\n")
    board.run_for(1800)
    from isolog.board import sync as sync_mod

    sync_mod.sync(PORT, db, set_clock=False)
    _, ship = load_for_check(db, "LU-P1")
    assert ship.dose_alarm_usv_h == 2000.0
    assert [r.name for r in ship.temperature_rules] == ["high", "warm", "freeze"]


def test_the_certificate_shows_the_sensor_and_its_calibration_dates(desk, tmp_path, capsys):
    board, db = desk
    on = (TODAY - timedelta(days=30)).isoformat()
    due = (TODAY + timedelta(days=335)).isoformat()
    assert cli.main(set_args(db, cal="160", dead="200", on=on, due=due)) == 0
    f = bare_file(tmp_path, "LU-R1")
    assert cli.main(["configure", PORT, str(f), "--db", str(db), "--no-clock"]) == 0
    board.run_for(3600)
    assert cli.main(["sync", PORT, "--db", str(db), "--no-clock"]) == 0
    out = tmp_path / "r.html"
    assert cli.main(["report", "LU-R1", "--db", str(db), "-o", str(out)]) == 0
    html = out.read_text()
    assert (
        f"Sensor</th><td>LND 7317, 160 cpm per µSv/h, dead time 200 µs; calibrated on {on}, calibration due {due}"
        in html
    )


def test_status_says_when_the_calibration_is_due(desk, tmp_path, capsys):
    _, db = desk
    assert cli.main(["status", PORT, "--once", "--db", str(db)]) == 0
    assert "calibration" not in capsys.readouterr().out  # no record yet: nothing said
    due = (TODAY + timedelta(days=335)).isoformat()
    assert cli.main(set_args(db, due=due)) == 0
    capsys.readouterr()
    assert cli.main(["status", PORT, "--once", "--db", str(db)]) == 0
    assert f"container crate-7 (board {DEV}), no shipment configured, calibration due {due}" in capsys.readouterr().out
    past = (TODAY - timedelta(days=1)).isoformat()
    assert cli.main(set_args(db, on=(TODAY - timedelta(days=400)).isoformat(), due=past)) == 0
    capsys.readouterr()
    assert cli.main(["status", PORT, "--once", "--db", str(db)]) == 0
    assert f"calibration OVERDUE since {past}" in capsys.readouterr().out
    # no store at the path given: none is created
    missing = tmp_path / "none.sqlite3"
    assert cli.main(["status", PORT, "--once", "--db", str(missing)]) == 0
    assert not missing.exists()
