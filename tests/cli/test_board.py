"""`isolog sync` and the board commands against the virtual board: the store equals the board's log,
incremental, idempotent, resumable, acknowledged only after storing; configure, clock, export,
check from the store, devices."""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from pathlib import Path

import pytest

from isolog import cli, shipment
from isolog.board import sync as sync_mod
from isolog.board.link import Link, LinkError
from isolog.board.sync import sync
from isolog.db.schema import SCHEMA_VERSION
from isolog.errors import UserError
from isolog.log import decode
from isolog.log import image as flash_image
from isolog.sim.launcher import VirtualBoard
from isolog.store import Store
from sim_helpers import SHIPMENT, read_log, scenario

pytestmark = pytest.mark.sim_only


def held_board(flash: Path, duration: str = "1d", **kw) -> VirtualBoard:
    """A board that logs the scenario at full speed, then stops its clock and waits for a sync."""
    sc = kw.pop("sc", None) or scenario(duration=duration)
    b = VirtualBoard(sc, flash, speed=0, hold_at_end=True, **kw)
    b.start()
    deadline = time.monotonic() + 60
    while not any(e.kind == "end" for e in b.events):
        assert time.monotonic() < deadline, "the virtual board did not reach the end of its scenario"
        assert b.exit_code is None, f"the virtual board stopped ({b.exit_code})"
        time.sleep(0.02)
    return b


def board_log(b: VirtualBoard) -> decode.Log:
    b.close()
    return read_log(b.flash)


def stored(db: Path, device: str = "15010c0000000001") -> list[dict]:
    with Store(db) as st:
        return list(st.records(device))


def identify(port: str) -> dict:
    with Link(port) as link:
        return link.identify()


@pytest.fixture(scope="module")
def synced_day(tmp_path_factory):
    """One day logged (1440 records), synced twice; the board closed afterwards."""
    tmp = tmp_path_factory.mktemp("day")
    db = tmp / "store.sqlite3"
    b = held_board(tmp / "flash.img", "1d")
    seen = []
    first = sync(b.port, db, progress=seen.append, set_clock=False)
    second = sync(b.port, db, set_clock=False)
    ident = identify(b.port)
    log = board_log(b)
    return {"db": db, "first": first, "second": second, "ident": ident, "log": log, "progress": seen, "flash": b.flash}


def test_full_sync_equals_the_boards_log(synced_day):
    r, log = synced_day["first"], synced_day["log"]
    assert not log.problems and len(log.records) == 1440
    assert r.problems == [] and r.records_added == 1440 and r.device == "15010c0000000001"
    assert stored(synced_day["db"]) == log.records
    assert r.bytes_read > 1440 * 6 and r.duration_s > 0
    p = synced_day["progress"]
    assert p and p[-1].records == 1440 and p[-1].bytes == p[-1].total_bytes == r.bytes_read


def test_second_sync_adds_nothing(synced_day):
    r = synced_day["second"]
    assert r.records_added == 0 and r.bytes_read == 0 and r.problems == []
    assert stored(synced_day["db"]) == synced_day["log"].records


def test_ack_follows_the_store(synced_day):
    with Store(synced_day["db"]) as st:
        dev = st.device("15010c0000000001")
        sessions = st.sessions()
        acks = [a for a in st.audit_trail() if a["action"] == "ack_records"]
    assert dev["next_seq"] == 1440
    assert synced_day["first"].acked_upto == 1440 and synced_day["ident"]["log"]["synced"] == 1440
    assert [s["status"] for s in sessions] == ["ok", "ok"] and sessions[0]["records_added"] == 1440
    assert len(acks) == 1 and acks[0]["details"]["upto"] == 1440  # the second sync had nothing to add


def test_store_keeps_chunks_and_refuses_duplicates(synced_day):
    db = sqlite3.connect(synced_day["db"])
    try:
        (chunks,) = db.execute("SELECT COUNT(*) FROM chunks").fetchone()
        assert chunks >= 1440 // 32
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO records (device, seq, boot, uptime_s, counts, interval_s, interval_counts, flags) "
                "VALUES ('15010c0000000001', 5, 1, 0, 0, 60, 0, '[]')"
            )
        (version,) = db.execute("SELECT version FROM schema_version").fetchone()
        assert version == SCHEMA_VERSION  # the last of isolog.db.schema's steps
    finally:
        db.close()


def test_sync_after_more_logging_adds_exactly_the_new_records(tmp_path):
    db = tmp_path / "s.sqlite3"
    b = held_board(tmp_path / "flash.img", "6h")
    assert sync(b.port, db, set_clock=False).records_added == 360
    before = board_log(b).records
    b = held_board(tmp_path / "flash.img", "3h")  # the board restarts on the same flash and logs on
    r = sync(b.port, db, set_clock=False)
    log = board_log(b)
    assert len(log.records) > len(before)
    assert r.records_added == len(log.records) - len(before) and r.problems == []
    assert stored(db) == log.records


class Stop(Exception):
    pass


def test_interrupted_sync_resumes_without_gap_or_duplicate(tmp_path):
    db = tmp_path / "s.sqlite3"
    b = held_board(tmp_path / "flash.img", "2d")  # ~27 KB: 14 READ pieces

    def stop_after(n):
        def progress(p):
            if p.pieces >= n:
                raise Stop()

        return progress

    with pytest.raises(Stop):
        sync(b.port, db, progress=stop_after(5), set_clock=False)
    partial = stored(db)
    assert 0 < len(partial) < 2880
    assert [r["seq"] for r in partial] == list(range(len(partial)))
    assert identify(b.port)["log"]["synced"] == 0  # nothing acknowledged before the sync completed
    with Store(db) as st:
        assert st.sessions()[0]["status"].startswith("interrupted")

    # Again, cut at another place, now as a failing link.
    class Flaky(Link):
        writes = 0

        def _write(self, data):
            Flaky.writes += 1
            if Flaky.writes > 9:  # IDENTIFY, STATUS, COMMIT, LIST, READs: cut during the READs
                raise LinkError("the link failed: cable pulled")
            super()._write(data)

    orig = sync_mod.Link
    sync_mod.Link = Flaky
    try:
        with pytest.raises(UserError, match="cable pulled"):
            sync(b.port, db, set_clock=False)
    finally:
        sync_mod.Link = orig
    middle = stored(db)
    assert len(partial) < len(middle) < 2880
    assert [r["seq"] for r in middle] == list(range(len(middle)))

    r = sync(b.port, db, set_clock=False)
    assert r.problems == [] and r.acked_upto == 2880
    log = board_log(b)
    assert stored(db) == log.records
    assert r.records_added == 2880 - len(middle)


def test_damaged_chunk_is_reported_and_ack_stops_there(tmp_path):
    flash = tmp_path / "flash.img"
    db = tmp_path / "s.sqlite3"
    b = VirtualBoard(scenario(duration="1d"), flash, speed=0, until_end=True)
    b.run()
    b.close()
    fs = flash_image.open_image(flash)
    with fs.open(f"{flash_image.LOG_DIR}/00000000.seg", "rb") as f:
        seg = f.read()
    image = bytearray(flash.read_bytes())
    at = image.find(seg[4000:4080])
    assert at > 0
    image[at + 10] ^= 0x01  # one bit flipped in a batch
    flash.write_bytes(bytes(image))
    b = held_board(flash, "2h")
    r = sync(b.port, db, set_clock=False)
    assert r.problems and any("damaged" in p and "CRC mismatch" in p for p in r.problems)
    assert any("missing" in p for p in r.problems)
    ident = identify(b.port)
    log = board_log(b)
    got = stored(db)
    assert [x for x in got] == [x for x in log.records]  # everything intact was stored
    gap = next(i for i, rec in enumerate(got) if rec["seq"] != i)
    assert r.acked_upto == gap == ident["log"]["synced"]


def test_sync_command_line_exit_codes(tmp_path, capsys):
    db = tmp_path / "s.sqlite3"
    b = held_board(tmp_path / "flash.img", "2h")
    try:
        assert cli.main(["sync", b.port, "--db", str(db)]) == 0
        out = capsys.readouterr().out
        assert "120 new records" in out and "records/s" in out and str(db) in out
        assert cli.main(["sync", b.port, "--db", str(db)]) == 0
        assert "0 new records" in capsys.readouterr().out
    finally:
        b.close()
    assert cli.main(["sync", str(tmp_path / "no-such-port"), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "cannot open" in err and "Traceback" not in err


def test_clock_is_set_and_audited(tmp_path):
    db = tmp_path / "s.sqlite3"
    b = held_board(tmp_path / "flash.img", "1h")  # its clock says 2026-11-26 (the scenario's)
    try:
        r = sync(b.port, db)
        with Link(b.port) as link:
            clock = link.get_clock()
        assert clock["valid"] and abs(clock["time_ms"] - time.time() * 1000) < 5000
        # the scenario's clock (2026-11-26T09:00Z at its end) is off this computer's: said in words
        off = (clock["time_ms"] - time.time() * 1000) / 1000  # ~0 now; before the sync it was:
        before = time.time() - 1795683600.0  # 2026-11-26T09:00:00Z
        side = "behind" if before > 0 else "ahead of"
        assert off < 5 and any(
            n.startswith("the board's clock was ") and f"{side} this computer's (UTC): corrected" in n for n in r.notes
        ), r.notes
        with Store(db) as st:
            sets = [a for a in st.audit_trail() if a["action"] == "clock_set"]
            anchors = st.clock_anchors("15010c0000000001")
        assert len(sets) == 1
        d = sets[0]["details"]
        assert d["board_before_ms"] is not None and abs(d["host_ms"] - time.time() * 1000) < 60_000
        assert d["offset_ms"] == d["board_before_ms"] - d["host_ms"] and sets[0]["host_user"]
        assert anchors and anchors[0]["boot"] == 1 and anchors[0]["uptime_ms"] >= 3600_000
    finally:
        b.close()


def unconfigured(duration: str = "1h") -> dict:
    sc = scenario(duration=duration)
    sc["board_config"] = None
    return sc


def test_configure_round_trip_and_errors(tmp_path, capsys):
    db = tmp_path / "s.sqlite3"
    b = held_board(tmp_path / "flash.img", sc=unconfigured())
    try:
        assert cli.main(["configure", b.port, str(SHIPMENT), "--db", str(db)]) == 0
        assert "LU-2026-11-0042" in capsys.readouterr().out
        with Link(b.port) as link:
            assert link.get_config() == shipment.load(SHIPMENT).to_board_dict()
        with Store(db) as st:
            (ship,) = st.shipments()
            audit = [a["action"] for a in st.audit_trail()]
        assert ship["id"] == "LU-2026-11-0042" and ship["toml"] == SHIPMENT.read_text()
        assert ship["board_config"] == shipment.load(SHIPMENT).to_board_dict() and ship["first_seq"] == 0
        assert audit == ["clock_set", "configure"]

        # Beyond the board's limits (it allows -80 C at the lowest): the host refuses it with the
        # board's own limits, naming the field, and the board keeps its configuration.
        cold = tmp_path / "cold.toml"
        cold.write_text(SHIPMENT.read_text().replace("threshold_c = 0.0", "threshold_c = -90.0"))
        assert cli.main(["configure", b.port, str(cold), "--db", str(db)]) == 2
        err = capsys.readouterr().err
        assert "threshold_c" in err and "-80" in err and "Traceback" not in err
        with Link(b.port) as link:
            assert link.get_config() == shipment.load(SHIPMENT).to_board_dict()
        # Refused by the host: the board is not asked.
        bad = tmp_path / "bad.toml"
        bad.write_text(SHIPMENT.read_text().replace("interval_s = 60", "interval_s = 5"))
        assert cli.main(["configure", b.port, str(bad), "--db", str(db)]) == 2
        assert "[logging] interval_s" in capsys.readouterr().err
        with Link(b.port) as link:
            assert link.get_config()["temp_rules"][2][1] == 0.0  # unchanged
        with Store(db) as st:
            assert len(st.shipments()) == 1
    finally:
        b.close()


def test_export_matches_log_dump(synced_day, tmp_path, capsys):
    db = synced_day["db"]
    out = tmp_path / "r.jsonl"
    assert (
        cli.main(["export", "--db", str(db), "--device", "15010c0000000001", "--format", "jsonl", "-o", str(out)]) == 0
    )
    capsys.readouterr()
    assert cli.main(["log", "dump", "--flash", str(synced_day["flash"]), "--json"]) == 0
    dump = capsys.readouterr().out
    assert out.read_text() == dump

    csv_path = tmp_path / "r.csv"
    assert cli.main(["export", "--db", str(db), "--device", "15010c0000000001", "-o", str(csv_path)]) == 0
    rows = list(csv.reader(csv_path.open()))
    assert rows[0] == [
        "device",
        "seq",
        "boot",
        "time",
        "uptime_s",
        "counts",
        "interval_s",
        "interval_counts",
        "dose_rate_usv_h",
        "temperature_c",
        "flags",
    ]
    assert len(rows) == 1441
    first = json.loads(dump.splitlines()[0])
    assert rows[1][1] == "0" and rows[1][10] == ";".join(first["flags"]) and ";" in rows[1][10]
    assert cli.main(["export", "--db", str(db), "--device", "ffff000000000000", "-o", str(csv_path)]) == 2
    assert "no device" in capsys.readouterr().err


def test_check_a_stored_shipment(tmp_path, capsys):
    """configure -> the board logs -> sync -> `isolog check SHIPMENT_ID` reads the store, and says
    the same as `isolog check` on the exported records and the shipment file."""
    db = tmp_path / "s.sqlite3"
    b = VirtualBoard(unconfigured("30d"), tmp_path / "flash.img", speed=0)  # logs at full speed once configured
    b.start()
    try:
        assert cli.main(["configure", b.port, str(SHIPMENT), "--db", str(db), "--no-clock"]) == 0
        time.sleep(1.0)
        assert cli.main(["sync", b.port, "--db", str(db), "--no-clock"]) == 0
    finally:
        b.close()
    capsys.readouterr()
    code = cli.main(["check", "LU-2026-11-0042", "--db", str(db), "--json"])
    from_store = json.loads(capsys.readouterr().out)
    recs = tmp_path / "r.jsonl"
    assert cli.main(["export", "--db", str(db), "--shipment", "LU-2026-11-0042", "-o", str(recs)]) == 0
    capsys.readouterr()
    assert cli.main(["check", "--records", str(recs), "--shipment", str(SHIPMENT), "--json"]) == code
    from_files = json.loads(capsys.readouterr().out)
    assert from_store["records"]["sha256"] == from_files["records"]["sha256"]
    assert "shipment LU-2026-11-0042" in from_store["records"]["source"]
    # The stored shipment's records verified by their MAC chain; a records file carries no MACs.
    # This board was never provisioned: its chain (empty key) shows the records intact, not who
    # wrote them, so neither source makes the data rule better than unknown.
    assert from_store["summary"].pop("data_verification").startswith("NOT AUTHENTICATED: board never provisioned")
    assert from_files["summary"].pop("data_verification").startswith("NOT VERIFIED: a records file")
    assert from_store["verification"]["key"] == "empty_key" and from_store["verification"]["failed"] == 0
    assert from_files["verification"]["method"] == "none"
    for result in (from_store, from_files):
        result.pop("records")
        result.pop("verification")
        result["shipment"].pop("source", None)
        ver_rule = next(r for r in result["rules"] if r["name"] == "data_verification")
        assert ver_rule["verdict"] == "unknown"
        result["rules"].remove(ver_rule)
    assert from_store == from_files
    assert code in (0, 1) and len(recs.read_text().splitlines()) > 100
    assert cli.main(["check", "NO-SUCH", "--db", str(db)]) == 2
    assert "no shipment 'NO-SUCH'" in capsys.readouterr().err


def test_devices_status_and_ack_alarms(tmp_path, capsys):
    db = tmp_path / "s.sqlite3"
    b = held_board(tmp_path / "flash.img", "1h")
    try:
        assert cli.main(["devices", "--json"]) == 0
        found = json.loads(capsys.readouterr().out)
        mine = [d for d in found if d["port"] == b.port]
        assert mine and mine[0]["kind"] == "virtual" and mine[0]["flash"] == str(b.flash)
        assert cli.main(["devices", "--identify"]) == 0
        assert "board 15010c0000000001" in capsys.readouterr().out

        assert cli.main(["status", b.port, "--once", "--json"]) == 0
        s = json.loads(capsys.readouterr().out)
        for key in ("dose_rate_usv_h", "temperature_c", "led", "alarms", "next_seq"):
            assert key in s
        assert cli.main(["status", b.port, "--once"]) == 0
        assert "µSv/h" in capsys.readouterr().out

        assert cli.main(["ack-alarms", b.port, "--db", str(db)]) == 0
        capsys.readouterr()
        with Store(db) as st:
            assert [a["action"] for a in st.audit_trail()] == ["ack_alarms"]
    finally:
        b.close()
    assert cli.main(["devices", "--json"]) == 0
    assert b.port not in [d["port"] for d in json.loads(capsys.readouterr().out)]


def test_status_shows_battery_percent_and_days_left():
    from isolog.cli.board import format_status
    from isolog_boards import energy

    s = {"battery_v": 3.81, "led": "logging", "next_seq": 5}
    for name, model in (("pico", "pico"), ("esp32s3", "esp32s3"), ("sim", "esp32s3")):
        full = energy.battery_fields(s, name)
        # 3.81 V is half the cell (boards/energy.py, LI_ION_OCV); days at the board's logging current
        days = 0.5 * 2600 / (energy.logging_average_ua(energy.board(model)) / 1000) / 24
        assert full["battery_percent"] == 50.0
        assert full["battery_days_left"] == pytest.approx(days, abs=0.01)
        assert f"battery 3.81 V (50 %, {days:.1f} days left)" in format_status(full)
    assert energy.battery_fields({"battery_v": None}, "pico") == {"battery_v": None}
    assert "battery" not in format_status({"battery_v": None, "led": "armed"})


def test_same_board_with_an_erased_log_is_refused(tmp_path, capsys):
    """A board whose log restarted (flash erased or replaced, same device id) must not mix its new
    records with the stored ones under the same sequence numbers."""
    db = tmp_path / "s.sqlite3"
    b = held_board(tmp_path / "a.img", "2h")
    try:
        assert sync(b.port, db, set_clock=False).records_added == 120
    finally:
        b.close()
    b = held_board(tmp_path / "b.img", "1h")  # a fresh flash, the same device id
    try:
        assert cli.main(["sync", b.port, "--db", str(db), "--no-clock"]) == 1
        err = capsys.readouterr().err
        assert "log restarted" in err and "Traceback" not in err
        assert identify(b.port)["log"]["synced"] == 0
    finally:
        b.close()
    assert len(stored(db)) == 120


def test_a_record_that_comes_again_with_other_data_is_reported(tmp_path):
    rec = {
        "device": "ab",
        "seq": 7,
        "boot": 1,
        "time": None,
        "uptime_s": 60.0,
        "counts": 10,
        "interval_s": 60.0,
        "interval_counts": 10,
        "dose_rate_usv_h": 1.5,
        "temperature_c": 5.0,
        "flags": ["boot"],
    }
    with Store(tmp_path / "s.sqlite3") as st:
        with st.transaction() as db:
            st.touch_device(db, "ab", "sim", "0", 7)
            assert st.insert_records(db, "ab", [rec], 0, 0, None) == (1, [])
            assert st.insert_records(db, "ab", [dict(rec)], 0, 0, None) == (0, [])  # the same: skipped
            added, problems = st.insert_records(db, "ab", [dict(rec, counts=11)], 0, 0, None)
            assert added == 0 and "record 7 came again with different data" in problems[0]
            assert st.advance_next_seq(db, "ab") == 8
        assert list(st.records("ab")) == [rec]
