"""isolog.store: the store on its own (no board), on both back ends (SQLite and PostgreSQL: the
store_db fixture, tests/conftest.py): schema, records keyed (device, seq),
next_seq over gaps and lost ranges, segments, chunks, damage, sessions, audit, and transactions
that leave nothing behind when they fail."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys

import pytest

from isolog.db.schema import MIGRATIONS
from isolog.errors import UserError
from isolog.store import Store

DEV = "15010c0000000001"
OTHER = "15010c0000000002"
TABLES = {
    "schema_version",
    "devices",
    "shipments",
    "records",
    "segments",
    "chunks",
    "damage",
    "lost",
    "sync_sessions",
    "clock_anchors",
    "audit",
}


def rec(seq: int, boot: int = 1, **changes) -> dict:
    r = {
        "device": DEV,
        "seq": seq,
        "boot": boot,
        "time": f"2026-01-01T00:{seq % 60:02d}:00Z",
        "uptime_s": 60.0 * seq,
        "counts": 180 * seq,
        "interval_s": 60.0,
        "interval_counts": 180,
        "dose_rate_usv_h": 1.071019,
        "temperature_c": 4.25,
        "flags": ["time_valid"],
    }
    r.update(changes)
    return r


@pytest.fixture()
def store(store_db):
    st = Store(store_db)
    with st.transaction() as db:
        st.touch_device(db, DEV, "fake", "0.1.0", 0)
    yield st
    st.close()


def put(store: Store, recs: list[dict], device: str = DEV) -> tuple[int, list[str]]:
    with store.transaction() as db:
        return store.insert_records(db, device, recs, 0, 0, None)


def next_seq(store: Store, device: str = DEV) -> int:
    with store.transaction() as db:
        return store.advance_next_seq(db, device)


# --- schema ----------------------------------------------------------------------------------------


def test_a_new_store_gets_every_table_in_a_new_folder(tmp_path):
    path = tmp_path / "a" / "b" / "isolog.sqlite3"
    with Store(path):
        pass
    con = sqlite3.connect(path)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert TABLES <= names
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(MIGRATIONS[-1].number,)]
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_reopening_keeps_the_data_and_one_schema_row(store_db):
    path = store_db
    with Store(path) as st:
        with st.transaction() as db:
            st.touch_device(db, DEV, "fake", "0.1.0", 7)
    with Store(path) as st:
        assert st.device(DEV)["next_seq"] == 7
        assert st.db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1


def test_a_store_from_a_newer_isolog_is_refused(store_db):
    with Store(store_db) as st:
        st.db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(
        UserError, match=f"newer isolog \\(store version 99, this isolog knows {MIGRATIONS[-1].number}\\)"
    ):
        Store(store_db)


def test_a_store_at_version_1_gets_the_later_steps_and_keeps_its_data(tmp_path):
    """A store written before step 2 (sync_sessions without host): opening it applies step 2 and
    sets the version; its rows stay."""
    path = tmp_path / "old.sqlite3"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (1)")
    con.executescript(";\n".join(MIGRATIONS[0].statements("sqlite")) + ";")  # the store as step 1 made it
    con.execute("INSERT INTO devices (id, first_seen, last_seen, next_seq) VALUES (?, 'a', 'b', 17)", (DEV,))
    con.commit()
    con.close()
    with Store(path) as st:
        assert st.device(DEV)["next_seq"] == 17
        cols = {r[1] for r in st.db.execute("PRAGMA table_info(sync_sessions)")}
        assert "host" in cols
        # every later step applied: steps are numbered 1, 2, 3 ... (tests/db/test_schema.py)
        assert st.db.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS),)]
        assert st.shipment_events("none") == []  # step 3's table is there


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(UserError, match="not a usable isolog store"):
        Store(path)


# --- devices and records -------------------------------------------------------------------------


def test_a_device_is_registered_once_and_keeps_its_first_sequence_number(store):
    with store.transaction() as db:
        dev = store.touch_device(db, DEV, "pico", "0.2.0", 500)  # seen again: base_seq stays
    assert (dev["board"], dev["firmware"], dev["base_seq"], dev["next_seq"]) == ("pico", "0.2.0", 0, 0)
    with store.transaction() as db:
        store.touch_device(db, OTHER, "esp32s3", "0.1.0", 40)
    assert [d["id"] for d in store.devices()] == [DEV, OTHER]
    assert store.device(OTHER)["next_seq"] == 40


def test_records_round_trip_every_field(store):
    mine = [rec(0, flags=["boot", "time_valid"]), rec(1, temperature_c=None, time=None, dose_rate_usv_h=None, flags=[])]
    assert put(store, mine) == (2, [])
    assert list(store.records(DEV)) == mine
    assert store.count_records(DEV) == 2


def test_a_record_is_stored_once(store):
    assert put(store, [rec(0), rec(1)]) == (2, [])
    assert put(store, [rec(1), rec(2)]) == (1, [])  # the same record again adds nothing, says nothing
    added, problems = put(store, [rec(2, counts=999)])
    assert added == 0
    assert len(problems) == 1 and "record 2 came again with different data" in problems[0]
    assert [r["counts"] for r in store.records(DEV)] == [0, 180, 360]  # the stored copy is kept
    with pytest.raises(store.IntegrityError):
        store.db.execute(
            "INSERT INTO records (device, seq, boot, uptime_s, counts, interval_s, interval_counts, "
            "flags) VALUES (?, 1, 1, 0, 0, 60, 0, '[]')",
            (DEV,),
        )


def test_the_same_sequence_number_on_another_device_is_another_record(store):
    put(store, [rec(0)])
    assert put(store, [rec(0, device=OTHER)], device=OTHER) == (1, [])
    assert store.count_records(DEV) == store.count_records(OTHER) == 1


def test_records_are_read_in_sequence_order_within_bounds(store):
    put(store, [rec(s) for s in (5, 1, 3, 2, 4)])
    assert [r["seq"] for r in store.records(DEV)] == [1, 2, 3, 4, 5]
    assert [r["seq"] for r in store.records(DEV, 2, 4)] == [2, 3]


def test_next_seq_advances_over_contiguous_records_only(store):
    put(store, [rec(s) for s in (0, 1, 2, 3, 4, 6, 7, 8, 9)])
    assert next_seq(store) == 5
    assert store.device(DEV)["next_seq"] == 5
    put(store, [rec(5)])
    assert next_seq(store) == 10


def test_next_seq_never_moves_back_and_starts_at_the_first_record_seen(store):
    with store.transaction() as db:
        store.touch_device(db, OTHER, "pico", "0.1.0", 100)
    put(store, [rec(s, device=OTHER) for s in (100, 101, 102, 104)], device=OTHER)
    assert next_seq(store, OTHER) == 103
    assert next_seq(store, OTHER) == 103
    put(store, [rec(s, device=OTHER) for s in (0, 1, 2)], device=OTHER)  # before its start: no effect
    assert next_seq(store, OTHER) == 103


def test_next_seq_skips_ranges_known_lost(store):
    put(store, [rec(s) for s in (0, 1, 2, 20, 21)])
    with store.transaction() as db:
        store.add_lost(db, DEV, 3, 20, "reclaimed after another host acknowledged them", None)
    assert next_seq(store) == 22
    assert store.db.execute("SELECT first_seq, end_seq, reason FROM lost").fetchall() == [
        (3, 20, "reclaimed after another host acknowledged them")
    ]


# --- segments, chunks, damage ----------------------------------------------------------------------


def test_segment_offset_and_header_are_kept_and_updated(store):
    assert store.segment(DEV, 0) is None
    with store.transaction() as db:
        store.set_segment(db, DEV, 0, 120, b"\xa5H-header")
    assert store.segment(DEV, 0) == (120, b"\xa5H-header")
    with store.transaction() as db:
        store.set_segment(db, DEV, 0, 900, b"\xa5H-header")
        store.set_segment(db, DEV, 3000, 40, None)
    assert store.segment(DEV, 0) == (900, b"\xa5H-header")
    assert store.segment(DEV, 3000) == (40, None)
    assert store.segment(OTHER, 0) is None


def test_a_chunk_is_stored_once_and_the_first_copy_kept(store):
    with store.transaction() as db:
        store.add_chunk(db, DEV, 0, 0, b"first", 1)
        store.add_chunk(db, DEV, 0, 0, b"second", 2)
        store.add_chunk(db, DEV, 0, 5, b"next", 2)
    assert store.db.execute('SELECT "offset", data, session FROM chunks ORDER BY "offset"').fetchall() == [
        (0, b"first", 1),
        (5, b"next", 2),
    ]


def test_damage_is_kept_per_segment_and_offset(store):
    with store.transaction() as db:
        store.add_damage(db, DEV, 0, 300, 57, "CRC mismatch", 1)
        store.add_damage(db, DEV, 0, 300, 57, "CRC mismatch", 2)  # seen again by a later sync
        store.add_damage(db, DEV, 3000, 0, 8, "bad sync byte", 2)
    assert store.db.execute(
        'SELECT segment, "offset", length, reason, session FROM damage ORDER BY segment'
    ).fetchall() == [(0, 300, 57, "CRC mismatch", 2), (3000, 0, 8, "bad sync byte", 2)]


# --- sessions, clock anchors, audit -----------------------------------------------------------------


def test_sessions_record_who_when_and_what(store):
    sid = store.start_session("/dev/ttyACM0")
    (s,) = store.sessions()
    assert (s["id"], s["port"], s["status"], s["problems"]) == (sid, "/dev/ttyACM0", "running", [])
    assert s["host_user"] and s["started"].endswith("Z")
    with store.transaction() as db:
        store.update_session(
            db,
            sid,
            device=DEV,
            ended="2026-01-01T00:00:00Z",
            status="problems",
            records_added=12,
            bytes=345,
            acked_upto=10,
            problems=["records 10..11 are missing"],
        )
    (s,) = store.sessions(DEV)
    assert (s["status"], s["records_added"], s["bytes"], s["acked_upto"], s["problems"]) == (
        "problems",
        12,
        345,
        10,
        ["records 10..11 are missing"],
    )
    assert store.sessions(OTHER) == []


def test_a_session_left_running_by_a_dead_process_is_marked_abandoned(store):
    sid = store.start_session("COM3")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store.db.execute("UPDATE sync_sessions SET pid = ? WHERE id = ?", (int(dead.stdout), sid))
    store.start_session("COM3")
    assert [s["status"] for s in store.sessions()] == ["abandoned", "running"]


def test_a_session_of_a_live_process_stays_running_and_the_process_is_left_alone(store):
    """Another sync still running (another process): its session is not abandoned, and checking
    whether it is alive must not harm it (on Windows os.kill(pid, 0) terminates the process)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        sid = store.start_session("COM3")
        store.db.execute("UPDATE sync_sessions SET pid = ? WHERE id = ?", (child.pid, sid))
        store.start_session("COM4")
        assert [s["status"] for s in store.sessions()] == ["running", "running"]
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_clock_anchors_round_trip(store):
    with store.transaction() as db:
        store.add_clock_anchor(db, DEV, 3, 60_000, 1_767_225_660_000, None, 1)
        store.add_clock_anchor(db, DEV, 3, 120_000, 1_767_225_720_000, 1_767_225_719_000, 2)
    got = [
        (a["boot"], a["uptime_ms"], a["epoch_ms"], a["board_time_ms"], a["session"]) for a in store.clock_anchors(DEV)
    ]
    assert got == [(3, 60_000, 1_767_225_660_000, None, 1), (3, 120_000, 1_767_225_720_000, 1_767_225_719_000, 2)]


def test_audit_trail_in_order_with_details(store):
    store.audit(None, DEV, "clock_set", {"host_ms": 5, "board_before_ms": None})
    with store.transaction() as db:
        store.audit(db, OTHER, "ack_records", {"upto": 40})
    trail = store.audit_trail()
    assert [(a["device"], a["action"], a["details"]) for a in trail] == [
        (DEV, "clock_set", {"host_ms": 5, "board_before_ms": None}),
        (OTHER, "ack_records", {"upto": 40}),
    ]
    assert trail[0]["id"] < trail[1]["id"] and trail[0]["host_user"]
    assert [a["action"] for a in store.audit_trail(OTHER)] == ["ack_records"]


# --- transactions ----------------------------------------------------------------------------------


def test_a_failed_transaction_leaves_nothing(store):
    before = store.db.execute(
        "SELECT (SELECT COUNT(*) FROM records), (SELECT COUNT(*) FROM chunks), "
        "(SELECT COUNT(*) FROM audit), (SELECT next_seq FROM devices)"
    ).fetchone()
    with pytest.raises(RuntimeError):
        with store.transaction() as db:
            store.insert_records(db, DEV, [rec(0), rec(1)], 0, 0, None)
            store.add_chunk(db, DEV, 0, 0, b"chunk", None)
            store.set_segment(db, DEV, 0, 99, None)
            store.audit(db, DEV, "ack_records", {"upto": 2})
            store.advance_next_seq(db, DEV)
            raise RuntimeError("the link failed midway")
    after = store.db.execute(
        "SELECT (SELECT COUNT(*) FROM records), (SELECT COUNT(*) FROM chunks), "
        "(SELECT COUNT(*) FROM audit), (SELECT next_seq FROM devices)"
    ).fetchone()
    assert after == before == (0, 0, 0, 0)
    assert store.segment(DEV, 0) is None
    put(store, [rec(0)])  # the store is usable afterwards
    assert store.count_records(DEV) == 1


def test_a_database_error_inside_a_transaction_rolls_back_what_came_before(store):
    put(store, [rec(0)])
    with pytest.raises(store.IntegrityError):
        with store.transaction() as db:
            store.insert_records(db, DEV, [rec(1)], 0, 0, None)
            db.execute(
                "INSERT INTO records (device, seq, boot, uptime_s, counts, interval_s, interval_counts, flags) "
                "VALUES (?, 0, 1, 0, 0, 60, 0, '[]')",
                (DEV,),
            )
    assert [r["seq"] for r in store.records(DEV)] == [0]


def test_a_commit_is_visible_to_another_connection_at_once(store, store_db):
    put(store, [rec(0), rec(1)])
    with Store(store_db) as other:  # another desk on the same store
        assert other.db.execute("SELECT seq FROM records ORDER BY seq").fetchall() == [(0,), (1,)]
        assert json.loads(other.db.execute("SELECT flags FROM records WHERE seq = 0").fetchone()[0]) == ["time_valid"]


# --- records as JSON lines and columns, streaming (check, report, export) --------------------------------


def _json_line(device: str, row: tuple) -> str:
    """The definition, written out independently: json.dumps of the record dict of that row."""
    fields = ("seq", "boot", "time", "uptime_s", "counts", "interval_s", "interval_counts")
    fields += ("dose_rate_usv_h", "temperature_c")
    obj = {"device": device, **dict(zip(fields, row[:-1])), "flags": json.loads(row[-1])}
    return json.dumps(obj) + "\n"


def _row_strategy():
    from hypothesis import strategies as st

    finite = st.floats(allow_nan=False, allow_infinity=False)
    reading = st.one_of(st.none(), finite, st.sampled_from([0.0, 1e-5, 1e15, 1e16, 123.456789, -4.25]))
    time = st.one_of(
        st.none(),
        st.datetimes().map(lambda d: d.isoformat(timespec="seconds") + "Z"),
        st.text(max_size=8),  # not a time: export writes what the store holds
    )
    flags = st.lists(st.one_of(st.sampled_from(["time_valid", "boot", "over_range"]), st.text(max_size=6)))
    flags_text = st.one_of(flags.map(json.dumps), flags.map(lambda f: json.dumps(f, separators=(",", ":"))))
    return st.tuples(
        st.integers(0, 2**63 - 1),
        st.integers(0, 2**40),
        time,
        st.one_of(finite, st.just(math.inf)),
        st.integers(0, 2**63 - 1),
        finite,
        st.integers(0, 2**31),
        reading,
        reading,
        flags_text,
    )


def test_json_lines_are_exactly_json_dumps_of_every_row():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from isolog.store import JsonLines

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=20), st.lists(_row_strategy(), max_size=20))
    def check(device, rows):
        want = "".join(_json_line(device, r) for r in rows)
        assert JsonLines(device).text(rows) == want

    check()


def _stored_shipment(db, n=500):
    """A store (path or URL) with one shipment of n records (with nulls), and the shipment file."""
    from compliance_helpers import BASE, to_toml

    toml = to_toml(BASE)
    with Store(db) as st:
        st.add_shipment(DEV, BASE["shipment"]["id"], toml, {}, 0, 0)
        recs = [
            rec(
                i,
                time=f"2026-11-26T{8 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z" if i % 97 else None,
                temperature_c=None if i % 50 == 7 else 4.25 + i / 100,
                dose_rate_usv_h=None if i % 61 == 3 else 1.0 / (i + 1),
                flags=["time_valid", "boot"] if i == 0 else ["time_valid"],
            )
            for i in range(n)
        ]
        with st.transaction() as tx:
            st.insert_records(tx, DEV, recs, None, None, None)
    return db, recs


def test_the_certificate_hash_is_the_sha256_of_the_export_file(tmp_path, store_db, capsys):
    import hashlib

    from isolog import cli
    from isolog.compliance.records import sha256_file

    db, recs = _stored_shipment(store_db)
    out = tmp_path / "r.jsonl"
    ship_id = "LU-TEST-0001"
    assert cli.main(["export", "--db", str(db), "--shipment", ship_id, "--format", "jsonl", "-o", str(out)]) == 0
    assert out.read_text() == "".join(json.dumps(r) + "\n" for r in recs)
    cli.main(["check", ship_id, "--db", str(db), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["records"]["sha256"] == sha256_file(out) == hashlib.sha256(out.read_bytes()).hexdigest()
    assert result["summary"]["records"] == len(recs)
    pdf = tmp_path / "c.html"
    assert cli.main(["report", ship_id, "--db", str(db), "-o", str(pdf)]) == 0
    assert sha256_file(out) in pdf.read_text()


def test_columns_from_the_store_are_those_of_the_export_file(tmp_path, store_db):
    import numpy as np

    from isolog.compliance import records
    from isolog.store import Store, load_for_check, write_rows

    db, _ = _stored_shipment(store_db, 2000)
    with Store(db) as st:
        ship, rows = st.shipment_rows("LU-TEST-0001")
        out = tmp_path / "r.jsonl"
        n, digest = write_rows(DEV, rows, "jsonl", out)
    from_file = records.load(out)
    from_store, _ = load_for_check(db, "LU-TEST-0001")
    assert n == 2000 and from_store.sha256 == from_file.sha256 == digest
    for name in ("seq", "boot", "time_s", "uptime_s", "counts", "interval_s", "interval_counts"):
        np.testing.assert_array_equal(getattr(from_store, name), getattr(from_file, name), err_msg=name)
    for name in ("dose_rate_usv_h", "temperature_c", "flags"):
        np.testing.assert_array_equal(getattr(from_store, name), getattr(from_file, name), err_msg=name)


def test_a_store_row_of_the_wrong_type_is_named_by_its_seq(tmp_path, capsys):
    from isolog import cli

    db, _ = _stored_shipment(tmp_path / "s.sqlite3", 50)  # SQLite only: PostgreSQL's types refuse the text
    con = sqlite3.connect(db)
    con.execute("UPDATE records SET counts = 'many' WHERE seq = 17")
    con.commit()
    con.close()
    assert cli.main(["check", "LU-TEST-0001", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "record seq 17: field 'counts' must be an integer, not 'many'" in err and err.count("\n") == 1


def test_rows_read_a_fetch_at_a_time_and_a_reader_that_stops_leaves_the_store_usable(store):
    put(store, [rec(s) for s in range(10)])
    chunks = store.record_rows(DEV, 2, 9, size=3)
    assert [[r[0] for r in rows] for rows in chunks] == [[2, 3, 4], [5, 6, 7], [8]]
    partial = store.record_rows(DEV, size=4)
    assert [r[0] for r in next(partial)] == [0, 1, 2, 3]
    partial.close()  # the reader stops half way (PostgreSQL: its read-only transaction ends)
    assert put(store, [rec(10)]) == (1, [])
    assert next_seq(store) == 11


def test_two_desks_signing_for_one_board_at_once_never_use_a_counter_twice(store, store_db):
    """The signing counter is a read-modify-write (Store.next_counter): two desks (two Store
    objects, two threads) taking 40 counters each at once get 80 different ones, 1..80."""
    import threading

    with store.transaction() as db:
        store.set_provisioned(db, DEV, "k1", 0, None)
    got: list[int] = []
    errors: list[BaseException] = []

    def desk() -> None:
        try:
            with Store(store_db) as mine:
                for _ in range(40):
                    got.append(mine.next_counter(DEV, "k1", 10_000))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=desk) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(got) == list(range(1, 81))
    assert store.provisioning(DEV)["counter"] == 80


# --- a shipment's life (issue 14) -------------------------------------------------------------------


def _configure(st: Store, ship_id: str, device: str = DEV, first: int = 0, delay: float = 0.0) -> None:
    st.add_shipment(
        device, ship_id, f'[shipment]\nid = "{ship_id}"\n', {"id": ship_id}, first, first, start_delay_s=delay
    )


def test_configure_records_configured_then_dispatched_after_the_start_delay(store):
    from datetime import datetime, timezone

    before = datetime.now(timezone.utc).timestamp()
    _configure(store, "A-1", delay=7200.0)
    after = datetime.now(timezone.utc).timestamp()
    events = store.shipment_events("A-1")
    assert [e["state"] for e in events] == ["configured", "dispatched"]
    from isolog.units import parse_time

    configured, dispatched = (parse_time(e["happened_at"]) for e in events)
    assert before - 0.001 <= configured <= after + 0.001
    assert dispatched - configured == pytest.approx(7200.0, abs=0.002)
    assert events[1]["details"] == {"start_delay_s": 7200.0}
    assert store.shipment_state("A-1") == "dispatched"


def test_a_shipment_id_names_one_trip(store):
    _configure(store, "A-1")
    # the board's current shipment, not yet back: a corrected file may be configured again
    assert store.reused_id("A-1", DEV) is None
    # another board may not carry it
    why = store.reused_id("A-1", OTHER)
    assert why is not None and "already used by board 15010c0000000001" in why
    # once back (synced), the same board may not carry it again
    store.add_event(None, "A-1", DEV, "returned")
    why = store.reused_id("A-1", DEV)
    assert why is not None and "trip that is over" in why
    # nor after another trip of the same board
    _configure(store, "A-2", first=10)
    why = store.reused_id("A-1", DEV)
    assert why is not None and "earlier trip of this container" in why
    assert store.reused_id("A-3", DEV) is None


def test_shipments_of_one_id_and_of_one_device_in_the_order_configured(store):
    with store.transaction() as db:
        store.touch_device(db, OTHER, "fake", "0.1.0", 0)
    for ship_id, device, first in (("T", DEV, 0), ("U", OTHER, 0), ("T", OTHER, 9), ("V", DEV, 20)):
        _configure(store, ship_id, device=device, first=first)
    assert [(s["id"], s["device"]) for s in store.shipments(ship_id="T")] == [("T", DEV), ("T", OTHER)]
    assert [s["id"] for s in store.shipments(DEV)] == ["T", "V"]
    assert [s["first_seq"] for s in store.shipments(OTHER, "T")] == [9]
    assert store.shipments(DEV, "U") == []


def test_the_container_is_named_by_its_provisioned_name(store):
    assert store.container_name(DEV) == "board 15010c0000000001"
    with store.transaction() as tx:
        store.add_key(tx, DEV, "k1", b"x" * 32, "container-17")
    assert store.container_name(DEV) == "container container-17 (board 15010c0000000001)"


def test_an_id_stored_twice_by_an_older_isolog_names_its_latest_trip(store):
    """Stores written before ids were unique: the id names its latest trip, no option needed."""
    _configure(store, "T", first=0)
    _configure(store, "U", first=100)
    _configure(store, "T", first=200)
    ship, lo, hi = store.shipment_range("T")
    assert (lo, hi) == (200, None) and ship["first_seq"] == 200
    with store.transaction() as db:
        store.touch_device(db, OTHER, "fake", "0.1.0", 0)
    _configure(store, "U", device=OTHER, first=5)
    ship, lo, hi = store.shipment_range("U")
    assert (ship["device"], lo, hi) == (OTHER, 5, None)
    ship, lo, hi = store.shipment_range("U", DEV)  # one device asked: its run of U
    assert (lo, hi) == (100, 200)
