"""isolog.cli.main on bad input: every case answers with one line naming the file and what is wrong
and a documented exit status (2 bad input, 3 a bug in isolog with the details in a crash file), never
a traceback. Each case here crashed before (issue 11, bad input)."""

from __future__ import annotations

import json
import sqlite3

import pytest

import fakes
from compliance_helpers import make_records, shipment_doc, to_toml, write_records
from isolog import cli
from isolog.store import Store


def one_line_error(capsys, code: int, expect_code: int = 2) -> str:
    err = capsys.readouterr().err
    assert code == expect_code, err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture()
def files(tmp_path):
    recs = tmp_path / "r.jsonl"
    write_records(recs, make_records(30))
    ship = tmp_path / "ship.toml"
    ship.write_text(to_toml(shipment_doc()))
    return recs, ship


def _with_record(path, index: int, **changes) -> None:
    lines = path.read_text().splitlines()
    obj = json.loads(lines[index])
    obj.update(changes)
    lines[index] = json.dumps(obj)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"seq": 10**30}, "line 6: field 'seq' must be an integer in 0..9007199254740991, not 10000"),
        (
            {"counts": 2**63},
            "line 6: field 'counts' must be an integer in 0..9007199254740991, not 9223372036854775808",
        ),
        ({"interval_counts": 2**63}, "line 6: field 'interval_counts' must be an integer in 0.."),
        ({"device": ["abc"]}, "line 6: field 'device' must be a string or null, not ['abc']"),
        ({"flags": [{"boot": 1}]}, "line 6: field 'flags' must hold strings, not {'boot': 1}"),
        ({"flags": [["boot"]]}, "line 6: field 'flags' must hold strings, not ['boot']"),
        ({"time": "0001-01-01T00:00:00Z"}, "line 6: field 'time' is out of range (1970..2199)"),
        ({"time": "9999-12-31T23:59:59Z"}, "line 6: field 'time' is out of range (1970..2199)"),
    ],
)
def test_a_bad_record_is_one_line_naming_file_and_line(files, capsys, changes, message):
    recs, ship = files
    _with_record(recs, 5, **changes)
    line = one_line_error(capsys, cli.main(["check", "--records", str(recs), "--shipment", str(ship)]))
    assert line.startswith(f"isolog: error: {recs} ") and message in line


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00"])
def test_a_reference_time_in_year_1_or_9999_is_refused(files, capsys, when):
    recs, ship = files
    ship.write_text(to_toml(shipment_doc(shipment__reference_time=when)))
    line = one_line_error(capsys, cli.main(["check", "--records", str(recs), "--shipment", str(ship)]))
    assert f"{ship}: [shipment] reference_time: time '{when}' is out of range" in line


def test_deeply_nested_toml_arrays_are_refused(files, capsys):
    recs, ship = files
    ship.write_text(
        to_toml(shipment_doc()).replace("exclusive_use = false", "exclusive_use = " + "[" * 5000 + "]" * 5000)
    )
    line = one_line_error(capsys, cli.main(["check", "--records", str(recs), "--shipment", str(ship)]))
    assert f"{ship}: not a shipment file: arrays or tables nested too deeply" in line


def test_a_latin1_byte_in_a_comment_is_refused_by_check_and_configure_alike(files, capsys, tmp_path):
    recs, ship = files
    ship.write_bytes(b"# Exp\xe9dition\n" + ship.read_bytes())
    want = f"{ship} line 1: byte 0xe9 is not UTF-8 text"
    assert want in one_line_error(capsys, cli.main(["check", "--records", str(recs), "--shipment", str(ship)]))
    db = tmp_path / "s.sqlite3"
    assert want in one_line_error(capsys, cli.main(["configure", "NO-SUCH-PORT", str(ship), "--db", str(db)]))


def test_json_output_of_values_that_overflow_is_null_not_a_crash(files, capsys):
    recs, ship = files
    lines = recs.read_text().splitlines()
    recs.write_text("".join(json.dumps(dict(json.loads(x), temperature_c=1e308)) + "\n" for x in lines))
    code = cli.main(["check", "--records", str(recs), "--shipment", str(ship), "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and code in (0, 1)
    result = json.loads(out)  # strict JSON: no NaN or Infinity
    assert result["summary"]["temperature_mean_c"] is None  # 1e308 x 30 overflows: not a number, null
    assert result["summary"]["temperature_max_c"] == 1e308


def test_decay_beyond_the_year_9999_is_said_not_crashed(capsys):
    assert cli.main(["decay", "Lu-177", "1GBq", "--from", "9999-12-31T00:00:00Z", "--to", "3d"]) == 0
    assert "outside the years 1..9999" in capsys.readouterr().out
    assert cli.main(["decay", "Lu-177", "1GBq", "--from", "2026-01-01T00:00:00Z", "--to", "1e300d", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["members"][0]["activity_bq"] == 0.0


def test_log_dump_block_size_0_is_refused_by_the_argument_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["log", "dump", "--flash", str(tmp_path / "x.img"), "--block-size", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--block-size: a power of two of at least 128 bytes" in err and "Traceback" not in err


# --- the store -----------------------------------------------------------------------------------


def test_another_applications_sqlite_file_is_refused_and_left_untouched(tmp_path, capsys):
    other = tmp_path / "places.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
    con.execute("INSERT INTO moz_places VALUES (1, 'https://example.org')")
    con.commit()
    con.close()
    before = other.read_bytes()
    for argv in (["export", "--list"], ["check", "X"], ["sync", "NO-SUCH-PORT"], ["ack-alarms", "P"]):
        line = one_line_error(capsys, cli.main([*argv, "--db", str(other)]))
        assert f"{other} is an SQLite database of another application (tables: moz_places)" in line
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["places.sqlite"]  # no -wal, no -shm left


def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"my notes " * 500)
    line = one_line_error(capsys, cli.main(["export", "--list", "--db", str(notes)]))
    assert f"{notes} is not a usable isolog store: not an SQLite database" in line
    assert notes.read_bytes() == b"my notes " * 500


def _store_with_records(path, n=3000):
    recs = make_records(n)
    jsonl = path.parent / "in.jsonl"
    write_records(jsonl, recs)
    rows = [json.loads(x) for x in jsonl.read_text().splitlines()]
    with Store(path) as st:
        st.add_shipment("abc", "LU-TEST-0001", to_toml(shipment_doc()), {}, 0, 0)
        with st.transaction() as tx:
            st.insert_records(tx, "abc", rows, None, None, None)
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def test_a_store_with_damaged_pages_is_one_line(tmp_path, capsys):
    db = tmp_path / "s.sqlite3"
    _store_with_records(db)
    size = db.stat().st_size
    with open(db, "r+b") as f:  # overwrite pages in the middle of the records' b-tree
        f.seek(size // 2 // 4096 * 4096)
        f.write(b"\xa5" * 4096 * 3)
    for argv in (
        ["check", "LU-TEST-0001"],
        ["report", "LU-TEST-0001", "-o", str(tmp_path / "c.html")],
        ["export", "--shipment", "LU-TEST-0001", "-o", str(tmp_path / "r.csv")],
    ):
        line = one_line_error(capsys, cli.main([*argv, "--db", str(db)]))
        assert f"the store {db} is damaged (database disk image is malformed)" in line
    assert not (tmp_path / "r.csv").exists()  # no partial export left looking complete


def test_a_full_disk_during_sync_is_one_line_exit_2_and_nothing_unstored_acknowledged(monkeypatch, tmp_path, capsys):
    board = fakes.FakeBoard()
    board.configure()
    board.run_for(12 * 3600)
    fakes.use_fake_ports(monkeypatch, board)
    real_init = Store.__init__

    def small_disk(self, path=None):  # SQLite's own "disk full" (SQLITE_FULL) a few pages on
        real_init(self, path)
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        self.db.execute(f"PRAGMA max_page_count = {pages + 4}")

    monkeypatch.setattr(Store, "__init__", small_disk)
    db = tmp_path / "s.sqlite3"
    line = one_line_error(capsys, cli.main(["sync", "FAKE0", "--db", str(db), "--no-clock"]))
    assert f"the store {db}: the disk is full" in line and "run the command again" in line
    monkeypatch.setattr(Store, "__init__", real_init)
    with Store(db) as st:
        stored = st.count_records(fakes.DEVICE_ID.hex())
    assert stored < 720 and board.synced() <= stored  # the board is never told of records not stored


def test_export_to_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path, capsys):
    db = tmp_path / "s.sqlite3"
    _store_with_records(db, 100)
    out = tmp_path / "r.jsonl"
    out.symlink_to("/dev/full")
    line = one_line_error(capsys, cli.main(["export", "--shipment", "LU-TEST-0001", "-o", str(out), "--db", str(db)]))
    assert f"cannot write {out}: No space left on device" in line


# --- the last resort -------------------------------------------------------------------------------


def test_an_unexpected_exception_is_one_line_exit_3_and_a_crash_file(monkeypatch, tmp_path, capsys):
    from dataclasses import replace

    from isolog.cli import compliance

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "crash_dir", lambda: tmp_path / "crashes")
    monkeypatch.setitem(compliance.COMMANDS, "decay", replace(compliance.COMMANDS["decay"], run=broken))
    line = one_line_error(capsys, cli.main(["decay", "Lu-177", "1GBq", "--to", "1d"]), expect_code=3)
    assert line.startswith("isolog: internal error in `isolog decay` (ZeroDivisionError)")
    (crash,) = (tmp_path / "crashes").iterdir()
    assert str(crash) in line
    text = crash.read_text()
    assert "Traceback" in text and "ZeroDivisionError: a bug" in text and "isolog decay Lu-177 1GBq" in text


# --- a shared store in PostgreSQL (docs/store.md) --------------------------------------------------------


def test_an_unreachable_postgresql_server_is_one_line_without_the_password(capsys):
    url = "postgresql://desk:s3cret@127.0.0.1:1/isolog"  # port 1: nothing listens
    line = one_line_error(capsys, cli.main(["export", "--list", "--db", url]))
    assert line.startswith("isolog: error: cannot connect to the store postgresql://desk:***@127.0.0.1:1/isolog: ")
    assert "s3cret" not in line


def test_a_malformed_postgresql_url_is_one_line(capsys):
    line = one_line_error(capsys, cli.main(["check", "X", "--db", "postgresql://desk:pw@[::1/isolog"]))
    assert "not a usable PostgreSQL URL" in line and "pw" not in line.split("URL", 1)[0]


def test_a_postgresql_store_written_by_a_newer_isolog_is_refused(pg_server, capsys):
    from isolog.db.schema import SCHEMA_VERSION
    from isolog.store import Store

    url = pg_server.new_database()
    with Store(url) as st:
        st.db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    line = one_line_error(capsys, cli.main(["export", "--list", "--db", url]))
    assert (
        f"was written by a newer isolog (store version {SCHEMA_VERSION + 1}, this isolog knows {SCHEMA_VERSION})"
        in line
    )


def test_isolog_db_in_the_environment_chooses_the_store(pg_server, monkeypatch, capsys):
    from isolog.store import Store

    url = pg_server.new_database()
    with Store(url) as st:
        with st.transaction() as db:
            st.touch_device(db, "15010c00000000e1", "pico", "0.1.0", 0)
    monkeypatch.setenv("ISOLOG_DB", url)
    assert cli.main(["export", "--list"]) == 0
    out = capsys.readouterr().out
    assert "board 15010c00000000e1, a pico: 0 records" in out
    assert out.startswith("store: postgresql://postgres:***@/isolog_test_")
