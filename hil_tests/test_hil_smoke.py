"""The device under test answers the protocol and the diagnostics, and logs."""

from __future__ import annotations


def test_board_answers_and_logs(dut):
    ident = dut.link.identify()
    assert ident["protocol"] == 1 and ident["config_id"] == "LU-2026-11-0042"
    d = dut.read()
    for key in (
        "counts",
        "total_counts",
        "led",
        "led_steps",
        "alarms",
        "uptime_ms",
        "mem_free",
        "mem_alloc",
        "next_seq",
        "in_ram",
        "segments",
        "write_errors",
        "storage_full",
        "boot",
        "requests",
        "errors",
    ):
        assert key in d, key
    dut.next_record(3)
    assert dut.led() == "logging"
    # STATUS: the share of the log filesystem's blocks in use (littlefs holds at least its two
    # superblocks and the log folder, and never more than all of it)
    status = dut.link.status()
    assert isinstance(status["storage_used_percent"], int) and 0 < status["storage_used_percent"] <= 100
    log = dut.records()
    assert len(log.records) >= 3 and not log.problems
    dut.heap("smoke")
