"""isolog.board.configure at the dispatch desk, on the in-process fake board (tests/fakes.py): a
shipment id names one trip, the start delay, and the shipment's life recorded by sync."""

from __future__ import annotations

import pytest

import fakes
from compliance_helpers import shipment_doc, to_toml
from fakes import FakeBoard, link_to, use_fake_ports
from isolog import cli
from isolog.board import provision
from isolog.board import sync as sync_mod
from isolog.store import Store

PORT = "FAKE0"
DEV = fakes.DEVICE_ID.hex()


def fakes_link(board: FakeBoard):
    link, _ = link_to(board)
    return link


def ship_file(tmp_path, ship_id: str):
    p = tmp_path / f"{ship_id}.toml"
    p.write_text(to_toml(shipment_doc(shipment__id=ship_id)))
    return p


@pytest.fixture()
def desk(monkeypatch, tmp_path):
    board = FakeBoard()
    ports = use_fake_ports(monkeypatch, board)
    db = tmp_path / "store.sqlite3"
    provision.provision(PORT, "crate-7", db)
    return board, ports, db


def test_a_reused_shipment_id_is_refused_on_the_same_board_and_on_another(desk, tmp_path, capsys):
    board, ports, db = desk
    first = ship_file(tmp_path, "LU-A")
    assert cli.main(["configure", PORT, str(first), "--db", str(db), "--no-clock"]) == 0
    out = capsys.readouterr().out
    assert "container crate-7 (board 15010c00000000f1) configured for shipment LU-A" in out
    assert "a record every 1min" in out and "the trip starts now" in out
    # before it leaves, a corrected file for the same trip is accepted
    assert cli.main(["configure", PORT, str(first), "--db", str(db), "--no-clock"]) == 0
    board.run_for(2 * 3600)
    sync_mod.sync(PORT, db, set_clock=False)
    with Store(db) as st:
        assert [e["state"] for e in st.shipment_events("LU-A")] == [
            "configured",
            "dispatched",
            "configured",
            "dispatched",
            "returned",
            "synced",
        ]
    capsys.readouterr()
    # the unedited template again, after the trip: refused in one line, exit 2, the board untouched
    assert cli.main(["configure", PORT, str(first), "--db", str(db), "--no-clock"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "refused for container crate-7 (board 15010c00000000f1)" in err and "trip that is over" in err
    assert board.app.cfg["id"] == "LU-A"

    # another board with the same id: refused, naming the container that carries it
    other = FakeBoard(device_id=bytes.fromhex("15010c00000000f2"))
    ports.board = other
    assert cli.main(["configure", PORT, str(first), "--db", str(db), "--no-clock"]) == 2
    err = capsys.readouterr().err
    assert "already used by container crate-7 (board 15010c00000000f1)" in err
    assert cli.main(["configure", PORT, str(ship_file(tmp_path, "LU-B")), "--db", str(db), "--no-clock"]) == 0


def test_the_start_delay_moves_the_dispatch(desk, tmp_path, capsys):
    board, ports, db = desk
    f = ship_file(tmp_path, "LU-D")
    assert cli.main(["configure", PORT, str(f), "--db", str(db), "--no-clock", "--start-delay", "2h"]) == 0
    assert "the trip starts in 2h 00min" in capsys.readouterr().out
    with Store(db) as st:
        conf, disp = st.shipment_events("LU-D")
    from isolog.units import parse_time

    assert parse_time(disp["happened_at"]) - parse_time(conf["happened_at"]) == pytest.approx(7200.0, abs=0.002)
    assert cli.main(["configure", PORT, str(f), "--db", str(db), "--start-delay", "9d"]) == 2
    assert "start delay must be between 0 and 7 days" in capsys.readouterr().err
    assert cli.main(["configure", PORT, str(f), "--db", str(db), "--start-delay", "soon"]) == 2
    assert "--start-delay" in capsys.readouterr().err


def test_every_command_takes_the_id_alone(desk, tmp_path, capsys):
    board, ports, db = desk
    assert cli.main(["configure", PORT, str(ship_file(tmp_path, "LU-E")), "--db", str(db), "--no-clock"]) == 0
    board.run_for(3 * 3600)
    assert cli.main(["sync", PORT, "--db", str(db), "--no-clock"]) == 0
    capsys.readouterr()
    out = tmp_path / "e.jsonl"
    assert cli.main(["check", "LU-E", "--db", str(db)]) in (0, 1)
    assert cli.main(["export", "--shipment", "LU-E", "--db", str(db), "-o", str(out)]) == 0
    assert cli.main(["report", "LU-E", "--db", str(db), "-o", str(tmp_path / "e.html")]) in (0, 1)
    capsys.readouterr()
    assert cli.main(["shipments", "LU-E", "--db", str(db)]) == 0
    life = capsys.readouterr().out
    assert "shipment LU-E in container crate-7 (board 15010c00000000f1): checked" in life
    assert [line.split()[0] for line in life.splitlines()[1:]] == [
        "configured",
        "dispatched",
        "returned",
        "synced",
        "checked",
    ]


def test_a_board_with_unsynced_records_or_a_latched_alarm_is_refused_until_synced_and_reviewed(desk, tmp_path, capsys):
    board, ports, db = desk
    assert cli.main(["configure", PORT, str(ship_file(tmp_path, "LU-F")), "--db", str(db), "--no-clock"]) == 0
    board.temp_c = -2.0  # below the "freeze" rule (0 °C, no time allowed): the alarm latches
    board.run_for(2 * 3600)
    with fakes_link(board) as link:
        log = link.identify()["log"]
        assert link.status()["alarms"] == ["temp_alarm"]
    unsynced = log["next"] - log["synced"]
    assert unsynced >= 100  # two hours at a record a minute, less at most the batch in RAM
    nxt = str(ship_file(tmp_path, "LU-G"))
    capsys.readouterr()
    assert cli.main(["configure", PORT, nxt, "--db", str(db), "--no-clock"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert f"it still holds {unsynced} records of shipment LU-F not synced yet (run `isolog sync {PORT}` first)" in err
    assert (
        f"a latched temperature alarm of shipment LU-F not acknowledged (review it, then `isolog ack-alarms {PORT}`)"
        in err
    )
    assert board.app.cfg["id"] == "LU-F"

    # synced: the alarm still blocks; acknowledged: configured, no force needed
    assert cli.main(["sync", PORT, "--db", str(db), "--no-clock"]) == 0
    capsys.readouterr()
    assert cli.main(["configure", PORT, nxt, "--db", str(db), "--no-clock"]) == 2
    err = capsys.readouterr().err
    assert "not synced" not in err and "latched temperature alarm" in err
    board.temp_c = 4.0
    assert cli.main(["ack-alarms", PORT, "--db", str(db)]) == 0
    assert cli.main(["configure", PORT, nxt, "--db", str(db), "--no-clock"]) == 0
    with Store(db) as st:
        assert not [a for a in st.audit_trail(DEV) if a["action"] == "configure_forced"]


def test_forcing_needs_a_reason_and_is_audited(desk, tmp_path, capsys):
    board, ports, db = desk
    assert cli.main(["configure", PORT, str(ship_file(tmp_path, "LU-H")), "--db", str(db), "--no-clock"]) == 0
    board.run_for(3600)
    with fakes_link(board) as link:
        log = link.identify()["log"]
    unsynced = log["next"] - log["synced"]
    nxt = str(ship_file(tmp_path, "LU-I"))
    assert cli.main(["configure", PORT, nxt, "--db", str(db), "--force"]) == 2
    assert "--force needs --reason" in capsys.readouterr().err
    assert cli.main(["configure", PORT, nxt, "--db", str(db), "--reason", "x"]) == 2
    assert "--reason goes with --force" in capsys.readouterr().err
    reason = "board needed at once for an urgent dose; its records are synced at the hospital"
    assert cli.main(["configure", PORT, nxt, "--db", str(db), "--no-clock", "--force", "--reason", reason]) == 0
    assert f"forced, recorded in the audit trail with the reason: {reason}" in capsys.readouterr().out
    with Store(db) as st:
        (entry,) = [a for a in st.audit_trail(DEV) if a["action"] == "configure_forced"]
    assert entry["details"] == {
        "shipment": "LU-I",
        "reason": reason,
        "unsynced_records": unsynced,
        "latched_alarms": [],
        "previous_shipment": "LU-H",
    }
    assert entry["host_user"] and entry["time"]


def test_the_unloading_seen_in_the_data_is_offered_then_confirmed(monkeypatch, tmp_path, capsys):
    """The product comes out after 5 h (the tube then counts background only) while the board goes
    on logging: check offers that moment, deliver --detected records it, the next check judges
    the trip up to it and shows the rest apart."""
    loaded_cps, background_cps = 60.0, 0.25  # ~23 µSv/h and ~0.1 µSv/h at 153.8 cpm per µSv/h
    out_ms = 5 * 3600 * 1000

    def counts_at(uptime_ms: int) -> int:
        if uptime_ms <= out_ms:
            return int(loaded_cps * uptime_ms / 1000)
        return int(loaded_cps * out_ms / 1000 + background_cps * (uptime_ms - out_ms) / 1000)

    board = FakeBoard(counts_at=counts_at)
    use_fake_ports(monkeypatch, board)
    db = tmp_path / "store.sqlite3"
    provision.provision(PORT, "crate-7", db)
    assert cli.main(["configure", PORT, str(ship_file(tmp_path, "LU-J")), "--db", str(db), "--no-clock"]) == 0
    assert cli.main(["deliver", "LU-J", "--detected", "--db", str(db)]) == 2  # nothing synced yet
    capsys.readouterr()
    board.run_for(8 * 3600)
    assert cli.main(["sync", PORT, "--db", str(db), "--no-clock"]) == 0
    at_sync = capsys.readouterr().out
    cli.main(["check", "LU-J", "--db", str(db)])
    captured = capsys.readouterr()
    assert "Trip window" not in captured.out
    with Store(db) as st:
        recs = list(st.records(DEV))
    # the last record with the product in: the record of the minute that ends at 5 h
    last_loaded = next(r for r in recs if r["uptime_s"] == pytest.approx(5 * 3600, abs=1))
    assert last_loaded["dose_rate_usv_h"] > 10 and all(
        r["dose_rate_usv_h"] < 0.3 for r in recs[recs.index(last_loaded) + 1 :]
    )
    offer = f"The dose rate fell to background after {last_loaded['time']}"
    assert offer in captured.err and "isolog deliver LU-J --detected" in captured.err
    assert f"shipment LU-J: the dose rate fell to background after {last_loaded['time']}" in at_sync
    assert cli.main(["deliver", "LU-J", "--detected", "--db", str(db)]) == 0
    assert f"delivered {last_loaded['time']} (seen in the data" in capsys.readouterr().out
    cli.main(["check", "LU-J", "--db", str(db)])
    captured = capsys.readouterr()
    assert f"Trip window: delivered {last_loaded['time']}" in captured.out
    n_after = len(recs) - recs.index(last_loaded) - 1
    assert f"shown apart, judged by no rule: after the delivery: {n_after} records" in captured.out
    assert "The dose rate fell" not in captured.err


def test_the_certificate_is_a_release_document(desk, tmp_path, capsys):
    """The container's name, the trip, the alarms and who acknowledged them, the excursion table,
    the QA decision and a signature block; times in the site's zone with their UTC offset; no
    folder of this computer."""
    board, ports, db = desk
    assert cli.main(["configure", PORT, str(ship_file(tmp_path, "LU-K")), "--db", str(db), "--no-clock"]) == 0
    board.run_for(3600)
    board.temp_c = 30.0  # 45 minutes above 25 °C: the "high" rule (30 min) breaks, the alarm latches
    board.run_for(45 * 60)
    board.temp_c = 4.25
    board.run_for(3600)
    assert cli.main(["sync", PORT, "--db", str(db), "--no-clock"]) == 0
    assert cli.main(["ack-alarms", PORT, "--db", str(db)]) == 0
    assert cli.main(["check", "LU-K", "--db", str(db)]) == 1
    assert cli.main(["decide", "LU-K", "reject", "--reason", "warm for 45 min", "--db", str(db)]) == 0
    out = tmp_path / "k.html"
    args = ["report", "LU-K", "--db", str(db), "-o", str(out), "--time-zone", "Europe/Zurich"]
    assert cli.main(args) == 0
    html = out.read_text()
    assert "crate-7 (board 15010c00000000f1)" in html
    assert "Acknowledged</th><td>temperature alarm: by " in html
    assert "QA decision</th><td>REJECTED by " in html and "warm for 45 min" in html
    assert "Signature: ____" in html and "(UTC+01:00)" in html
    assert str(tmp_path) not in html and "store.sqlite3" in html
    # the excursion: from the first record above 25 °C to the last, peak 30.0 °C
    with Store(db) as st:
        recs = [r for r in st.records(DEV) if r["temperature_c"] is not None and r["temperature_c"] > 25]
    assert 44 <= len(recs) <= 46
    assert "<td>high (breaks the rule)</td>" in html and "<td>30.0 °C</td>" in html
    assert cli.main(["report", "LU-K", "--db", str(db), "-o", str(out), "--time-zone", "Mars/Olympus"]) == 2
    assert "not a time zone name" in capsys.readouterr().err
