"""The virtual board in each board's littlefs geometry (boards/profiles.py). On the Pico profile
the flash refuses programs off the 256-byte page grid, so a run proves that every program the
firmware's littlefs makes is page aligned; the Pico's 1 KiB littlefs caches also cost heap."""

from __future__ import annotations

from pathlib import Path

import pytest

from isolog.sim.launcher import VirtualBoard
from sim_helpers import assert_intact, read_log, scenario


def _one_power_up(tmp_path: Path, heap_kib: int, profile: str) -> tuple[int, list[str]]:
    """Run a 2-hour scenario in one power-up (no restart after a reset): exit code and events."""
    b = VirtualBoard(
        scenario(duration="2h"), tmp_path / "flash.img", speed=0, until_end=True, heap_kib=heap_kib, profile=profile
    )
    try:
        proc = b.power_up()
        b._read_events(proc)
        code = proc.wait(timeout=120)
    finally:
        b.close()
    return code, [e.kind for e in b.events]


def test_the_firmware_logs_in_the_picos_geometry(micropython, tmp_path):
    code, kinds = _one_power_up(tmp_path, 68, "pico")
    assert code == 0 and "end" in kinds, kinds
    assert "flash_fault" not in kinds
    log = read_log(tmp_path / "flash.img")
    assert_intact(log)
    assert len(log.records) == 120


@pytest.mark.xfail(
    strict=True,
    reason="finding: with the Pico's littlefs (progsize 256, 1 KiB caches) the firmware does not start "
    "in the 64 KiB design heap (MemoryError at start-up, then a reset loop); it needs 68 since the security "
    "work (66 before). The RP2040 has 264 KB of SRAM, most of it heap [R: not measured].",
)
def test_the_firmware_starts_in_the_64_kib_design_heap_in_the_picos_geometry(micropython, tmp_path):
    code, kinds = _one_power_up(tmp_path, 64, "pico")
    assert code == 0 and "end" in kinds, kinds
