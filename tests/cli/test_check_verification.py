"""`isolog check SHIPMENT_ID` gives the engine the store's verification state:
records edited in the store fail the MAC check and the shipment is not compliant; records missing
at the shipment's start make the data rule fail. Needs the virtual board (MicroPython unix port)."""

from __future__ import annotations

import io
import json
import sqlite3
import struct
import time

import pytest

from isolog import cli  # noqa: E402
from isolog_fw import record  # noqa: E402

pytestmark = pytest.mark.sim_only


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    from isolog.sim.launcher import VirtualBoard
    from sim_helpers import SHIPMENT, scenario

    tmp = tmp_path_factory.mktemp("verif")
    db = tmp / "s.sqlite3"
    sc = scenario(duration="1h")
    sc["board_config"] = None
    b = VirtualBoard(sc, tmp / "flash.img", speed=0)
    b.start()
    try:
        assert cli.main(["configure", b.port, str(SHIPMENT), "--db", str(db), "--no-clock"]) == 0
        time.sleep(1.0)
        assert cli.main(["sync", b.port, "--db", str(db), "--no-clock"]) == 0
    finally:
        b.close()
    return db


def _check(db, capsys) -> tuple[int, dict]:
    capsys.readouterr()
    code = cli.main(["check", "LU-2026-11-0042", "--db", str(db), "--json"])
    return code, json.loads(capsys.readouterr().out)


def _rule(result, name):
    return next(r for r in result["rules"] if r["name"] == name)


def test_an_edited_batch_fails_the_mac_check(synced, tmp_path, capsys):
    db = tmp_path / "edited.sqlite3"
    db.write_bytes(synced.read_bytes())
    code, before = _check(db, capsys)
    assert _rule(before, "data_verification")["verdict"] != "fail"
    # Change one byte of the first batch chunk's payload and repair its CRC, as a forger would:
    # only the MAC can tell.
    con = sqlite3.connect(db)
    for seg, off, data in con.execute("SELECT segment, offset, data FROM chunks ORDER BY segment, offset"):
        data = bytearray(data)
        reader = record.ChunkReader(io.BytesIO(bytes(data)))
        done = False
        pos = 0
        while (got := reader.next()) is not None:
            kind, start, length = got
            if kind == record.KIND_BATCH:
                at = data.find(bytes(reader.buf[start - 4 : start + length + 4]), pos)
                data[at + 4 + 8] ^= 0x01
                crc = record.crc32(memoryview(data)[at + 1 : at + 4 + length]) & 0xFFFFFFFF
                struct.pack_into("<I", data, at + 4 + length, crc)
                done = True
                break
        if done:
            con.execute("UPDATE chunks SET data = ? WHERE segment = ? AND offset = ?", (bytes(data), seg, off))
            con.commit()
            break
    con.close()
    assert done
    code, after = _check(db, capsys)
    r = _rule(after, "data_verification")
    assert r["verdict"] == "fail" and "fail the MAC check" in r["detail"]
    assert after["verdict"] == "fail" and code == 1
    assert after["summary"]["data_verification"].startswith("NOT VERIFIED")


def test_records_missing_at_the_start_fail(synced, tmp_path, capsys):
    db = tmp_path / "cut.sqlite3"
    db.write_bytes(synced.read_bytes())
    con = sqlite3.connect(db)
    (first,) = con.execute("SELECT first_seq FROM shipments").fetchone()
    con.execute("DELETE FROM records WHERE seq < ?", (first + 5,))
    con.commit()
    con.close()
    code, result = _check(db, capsys)
    r = _rule(result, "data_integrity")
    assert r["verdict"] == "fail" and f"records {first}..{first + 4} missing at the start" in r["detail"]
    assert code == 1 and result["verdict"] == "fail"
