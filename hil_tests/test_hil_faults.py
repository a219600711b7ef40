"""Faults, each ending with no record lost or corrupted and the right LED state.

"No record lost" is checked against what the board had committed: records still in RAM at a power
cut (at most one batch, firmware/logstore.py) are lost by design; every committed record must read
back unchanged, with contiguous sequence numbers from 0 and no damaged chunk.

The loops are seeded (SEED); the number of injections is fixed, not a time budget. On the bench
the power-cut loops run ISOLOG_HIL_BENCH_CUTS cuts (default 3: a USB power cycle takes seconds).
"""

from __future__ import annotations

import os
import random

import pytest

from hil_dut import LogReader, assert_intact

SEED = 20261126
BENCH_CUTS = int(os.environ.get("ISOLOG_HIL_BENCH_CUTS", "3"))


def cuts(dut, sim: int) -> int:
    return sim if dut.target == "sim" else BENCH_CUTS


def grow_log(dut, records: int, timeout_s: float = 120.0) -> None:
    """Let the board log until `records` are committed (fast on the virtual board)."""
    dut.wait_for(f"{records} records", lambda d: d["next_seq"] >= records, timeout_s=timeout_s)


# --- power cuts ------------------------------------------------------------------------------------


def _cut_chain(dut, faults, n: int, seed: int) -> None:
    rng = random.Random(seed)
    previous = dut.records().records
    for i in range(n):
        before = dut.read()
        # Real delays from none (a cut right after a request, or during boot) to tens of ms (the
        # virtual board logs hours in that time; batches commit, segments fill).
        delay = rng.choice((0.0, 0.0, 0.001, 0.003, 0.01, 0.03)) if dut.target == "sim" else rng.uniform(5, 30)
        dut.power_cut(off_s=rng.choice((0.0, 60.0, 600.0)) if dut.target == "sim" else 2.0, delay_s=delay)
        after = dut.read()
        where = f"seed {seed}, cut {i} (delay {delay} s)"
        assert after["boot"] == before["boot"] + 1, where
        assert after["next_seq"] >= before["next_seq"], f"{where}: committed records lost"
        assert after["write_errors"] == 0, where
        log = dut.records()
        assert_intact(log, previous, start=0, where=where)
        previous = log.records
        faults.add("power_cut")


# Every power-up starts a new log segment, and the board keeps segments until a host syncs. A chain
# stays under MAX_SEGMENTS_BETWEEN_SYNCS boots: see test_many_power_cuts_between_syncs below.
CHAIN_CUTS = 35
CHAINS = 4


def test_power_cuts_while_logging(make_dut, faults):
    dut = make_dut()
    dut.require("can_power_cut")
    if dut.target == "sim":
        # One board at a time: a virtual board at full speed keeps a core busy, and the host
        # needs the other.
        for k in range(1, CHAINS):
            b = make_dut(seed=1 + k)
            _cut_chain(b, faults, CHAIN_CUTS, SEED + k)
            assert b.led() == "logging"
            b.heap(f"after {CHAIN_CUTS} power cuts")
            b.close()
        _cut_chain(dut, faults, CHAIN_CUTS, SEED)
    else:
        _cut_chain(dut, faults, BENCH_CUTS, SEED)
    grow_log(dut, dut.read()["next_seq"] + 1)
    assert dut.led() == "logging"
    assert dut.read()["alarms"] == []


@pytest.mark.sim_only(reason="needs quick power cuts")
def test_mac_chain_survives_power_cuts(make_dut, faults):
    dut = make_dut()
    rng = random.Random(SEED)
    for i in range(30):
        dut.power_cut(off_s=60.0, delay_s=rng.choice((0.0, 0.001, 0.003, 0.01)))
        assert_intact(dut.records(), start=0, where=f"cut {i}", mac=True)


MAX_SEGMENTS_BETWEEN_SYNCS = 60


@pytest.mark.sim_only(reason="needs 60 quick power cuts")
def test_many_power_cuts_between_syncs(make_dut, faults):
    """Every power-up commits a batch before its cut, so each leaves a segment on flash; LIST
    still answers (in pages) and the host reads every record."""
    dut = make_dut()
    for i in range(MAX_SEGMENTS_BETWEEN_SYNCS):
        committed = dut.read()["next_seq"]
        dut.power_cut(off_s=60.0, delay_s=0.003)
        # a record of this power-up (RAM was lost at the cut; next_seq counts every boot's records)
        dut.wait_for("a record", lambda d: d["in_ram"] > 0 or d["next_seq"] > committed)
        dut.diag("commit")
    log = dut.records()
    assert_intact(log, start=0)
    # Far more segments than one LIST page (16) holds: the host pages through them all.
    assert dut.read()["segments"] >= 32


class _Cut(Exception):
    pass


def test_power_cuts_during_sync(make_dut, faults):
    """The power goes while a host reads the log (between two READs, or with a READ in flight);
    the host reads on after the board is back and gets every committed record."""
    dut = make_dut()
    dut.require("can_power_cut")
    grow_log(dut, 3000 if dut.target == "sim" else 30, timeout_s=600)
    if dut.target == "sim":
        dut.restart(speed=60.0)  # from now on a record a second: every round reads about the same log
    rng = random.Random(SEED)
    previous = dut.records().records
    for i in range(cuts(dut, 30)):  # + the first segment: under the LIST limit (see below)
        reader = LogReader()  # a host that reads everything from the start
        at = rng.randrange(1, 10)
        count = [0]

        def on_read():
            count[0] += 1
            if count[0] == at:
                dut.power_cut(off_s=60.0, delay_s=rng.choice((0.0, 0.002)))

        log = reader.read(lambda: dut.link, on_read)
        where = f"seed {SEED}, sync {i}, cut after READ {at}"
        assert_intact(log, previous, start=0, where=where)
        full = dut.records()  # everything, after the cut
        assert_intact(full, log.records, start=0, where=where)
        previous = full.records
        faults.add("power_cut")
    d = dut.read()
    logged = d["next_seq"] + d["in_ram"]
    dut.wait_for("a sample after the last power-up", lambda d: d["next_seq"] + d["in_ram"] > logged)
    assert dut.led() == "logging"


# --- link cuts and line noise ------------------------------------------------------------------------


def test_link_cuts_during_sync(make_dut, faults):
    """The cable is pulled in the middle of a request, in the middle of a reply, or between two
    requests, and plugged back; garbage on the line in between. The host reads everything."""
    dut = make_dut()
    grow_log(dut, 3000 if dut.target == "sim" else 30, timeout_s=600)
    if dut.target == "sim":
        dut.restart(speed=60.0)  # from now on a record a second: every round reads the same ~25 KB
    boot = dut.read()["boot"]
    rng = random.Random(SEED)
    ref = dut.records().records
    n = 280 if dut.target == "sim" else 20
    for i in range(n):
        reader = LogReader()
        plan = sorted(rng.sample(range(1, 12), 3))
        count = [0]

        def on_read():
            count[0] += 1
            if count[0] in plan:
                kind = rng.choice(("torn_request", "cut_reply", "reconnect", "noise"))
                if kind == "torn_request":
                    dut.torn_request(rng)
                elif kind == "cut_reply":
                    dut.cut_reply(rng, ref[0]["seq"] if ref else 0)
                elif kind == "reconnect":
                    dut.reconnect()
                else:  # line noise: random bytes that never form a frame with a good CRC
                    dut.link.ser.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
                    dut.link.ser.flush()
                faults.add("line_noise" if kind == "noise" else "link_cut")

        log = reader.read(lambda: dut.link, on_read)
        assert_intact(log, ref, start=0, where=f"seed {SEED}, round {i}, cuts after READs {plan}")
        ref = log.records
    d = dut.read()
    assert d["boot"] == boot, "link cuts must not restart the board"
    assert dut.led() == "logging"


def test_torn_sync_pair_does_not_stall_the_link(dut, faults):
    dut.torn_request(random.Random(SEED), keep=2)
    dut.link.retries = 2
    dut.link.status()


# --- flash full --------------------------------------------------------------------------------------


@pytest.mark.sim_only(reason="fills a small flash image quickly with the accelerated clock")
def test_flash_full_keeps_every_record(make_dut, faults):
    """A 192 KiB flash (a third of it firmware) fills up: logging goes on in RAM (one accumulating record), the LEDs
    show the fault, nothing committed is overwritten. The accumulated record lands with
    data_dropped as soon as a commit finds the reserve free again: after a sync's ACK frees space,
    or earlier when littlefs's count of free blocks moves back over the reserve (a file's last
    block rewritten elsewhere and freed: which happens depends on the image's layout). Logging
    resumes, and once acknowledged the LEDs show storage_low (sync soon) instead of the fault."""
    dut = make_dut(flash_kib=192)
    first_full = dut.wait_for("flash full", lambda d: d["storage_full"], timeout_s=120)["next_seq"]
    dut.advance(3600)  # an hour more in RAM
    assert dut.led() == "fault"
    st = dut.status()
    assert st["storage_full"] and "storage" in st["alarms"]
    log = dut.records()
    assert_intact(log, start=0)
    full_at = log.records[-1]["seq"]
    # sync and acknowledge everything: the oldest segments may go
    dut.link.acknowledge(full_at + 1)
    dut.wait_for("logging again", lambda d: not d["storage_full"] and d["next_seq"] > full_at + 1)
    faults.add("flash_full")
    after = dut.records()
    assert not after.problems
    seqs = [r["seq"] for r in after.records]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    kept = {r["seq"]: r for r in after.records}
    assert all(kept[r["seq"]] == r for r in log.records if r["seq"] in kept), "a kept record changed"
    assert seqs[0] <= full_at + 1, "records not yet acknowledged were reclaimed"
    assert any("data_dropped" in r["flags"] for r in after.records if r["seq"] >= first_full)
    dut.link.acknowledge_alarms()
    # Acknowledged segments are reclaimed only as space is needed: the flash may stay nearly
    # full, and then the LEDs ask for the next sync (two green flashes); no fault any more.
    st = dut.status()
    assert st["alarms"] == [] and not st["storage_full"]
    assert dut.led() in ("storage_low", "logging")


# --- clock loss --------------------------------------------------------------------------------------


def test_clock_loss_and_set_clock(make_dut, faults):
    """A power cut without a backed-up clock: the records after it have no time (time_valid
    unset) until a host sets the clock; from then on they are placed again."""
    dut = make_dut(rtc_backup=False)
    dut.require("can_power_cut")
    if dut.target == "serial":
        dut.link.set_clock(int(__import__("time").time() * 1000))
    assert dut.link.get_clock()["valid"]
    grow_log(dut, dut.read()["next_seq"] + 3)
    dut.diag("commit")
    before = dut.records().records
    assert before and all(r["time"] is not None for r in before)
    dut.power_cut(off_s=600.0)
    clock = dut.link.get_clock()
    assert not clock["valid"] and clock["time_ms"] is None
    start = dut.read()["next_seq"]
    dut.next_record(start + 3, timeout_s=120)
    lost = [r for r in dut.records().records if r["seq"] >= start]
    assert lost and all(r["time"] is None and "time_valid" not in r["flags"] for r in lost)
    # a host sets the clock (as isolog sync does): records are placed again
    host_ms = 1_796_000_000_000  # 2026-11-30
    got = dut.link.set_clock(host_ms)
    assert got["valid"] and got["time_ms"] >= host_ms
    mark = dut.next_unlogged()
    dut.next_record(mark + 3, timeout_s=120)
    log = dut.records()
    assert_intact(log, before, start=0)
    placed = [r for r in log.records if r["seq"] >= mark]
    assert placed and all(r["time"] is not None and "time_valid" in r["flags"] for r in placed)
    assert placed[0]["time"] >= "2026-11-30"
    faults.add("clock_loss")
    assert dut.led() == "logging"


# --- sensors -----------------------------------------------------------------------------------------


def _committed_after(dut, seq: int, n: int = 4) -> list[dict]:
    """The records from seq on, once n of them are committed (the first record after a change
    covers part of the interval before it, and its temperature conversion may have started
    before the change: it may still show the state before)."""
    dut.next_record(seq + n - 1)
    return [r for r in dut.records().records if r["seq"] >= seq]


@pytest.mark.sim_only(reason="sets the simulated temperature sensor's fault (diag sensor)")
@pytest.mark.parametrize("mode", ["unplugged", "crc", "power_on"])
def test_temperature_sensor_faults(make_dut, faults, mode):
    """The DS18B20 is unplugged, answers with a bad CRC, or returns its 85 C power-on value:
    records carry temp_fault with no temperature (never 85 C), the LEDs show the fault until
    acknowledged, and the readings come back when the sensor does."""
    dut = make_dut()
    grow_log(dut, 2)
    for cycle in range(8):
        # the mark after the change: at full speed the board logs many records while a request
        # travels, so a mark taken before could leave every checked record before the fault
        dut.set_sensor(fault=mode)
        seq = dut.next_unlogged()
        bad = _committed_after(dut, seq + 1)
        assert any("temp_fault" in r["flags"] for r in bad), (mode, cycle)
        assert all(r["temperature_c"] is None for r in bad if "temp_fault" in r["flags"])
        assert all(r["temperature_c"] != 85.0 for r in bad)
        assert dut.led() == "fault"
        dut.set_sensor(fault=None)
        seq = dut.next_unlogged()
        good = _committed_after(dut, seq + 1)
        assert good[-1]["temperature_c"] is not None and "temp_fault" not in good[-1]["flags"]
        dut.link.acknowledge_alarms()
        assert dut.led() == "logging"
        faults.add("sensor_fault")
    assert_intact(dut.records(), start=0)


@pytest.mark.sim_only(reason="silences the simulated GM tube (diag sensor dose_usv_h=0)")
def test_gm_tube_silent_is_a_fault(make_dut, faults):
    dut = make_dut()
    grow_log(dut, 2)
    for cycle in range(3):
        seq = dut.next_unlogged()
        dut.set_sensor(dose_usv_h=0.0)
        dut.wait_for("gm fault", lambda d: "gm_fault" in d["alarms"])
        assert dut.led() == "fault"
        recs = _committed_after(dut, seq + 11)
        silent = [r for r in recs if "gm_silent" in r["flags"]]
        # flagged once 10 minutes passed without a pulse, never reported as a low dose rate
        assert silent and all(r["dose_rate_usv_h"] is None for r in silent)
        dut.set_sensor(dose_usv_h=None)
        seq = dut.next_unlogged()
        back = _committed_after(dut, seq + 1)
        assert "gm_silent" not in back[-1]["flags"] and back[-1]["dose_rate_usv_h"] > 1.0
        dut.link.acknowledge_alarms()
        assert dut.led() == "logging"
        faults.add("sensor_fault")
    assert_intact(dut.records(), start=0)


@pytest.mark.sim_only(reason="saturates the simulated GM tube (diag sensor dose_usv_h)")
def test_saturated_tube_is_over_range_and_alarms(make_dut, faults):
    dut = make_dut()
    grow_log(dut, 2)
    for cycle in range(3):
        dut.set_sensor(dose_usv_h=1e6)
        seq = dut.next_unlogged()  # after the change (see test_temperature_sensor_faults)
        recs = _committed_after(dut, seq + 2)
        over = [r for r in recs[1:] if "over_range" in r["flags"]]
        assert over, (cycle, recs)
        assert all(r["dose_rate_usv_h"] is None and "dose_alarm" in r["flags"] for r in over)
        assert dut.led() == "alarm"
        st = dut.status()
        assert st["over_range"] and "dose_alarm" in st["alarms"]
        dut.set_sensor(dose_usv_h=None)
        seq = dut.next_unlogged()
        back = _committed_after(dut, seq + 1)
        assert "over_range" not in back[-1]["flags"]
        dut.link.acknowledge_alarms()
        assert dut.led() == "logging"
        faults.add("sensor_fault")
    assert_intact(dut.records(), start=0)
