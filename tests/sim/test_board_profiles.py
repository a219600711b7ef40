"""The virtual board in each board's littlefs geometry (boards/profiles.py). On the Pico profile
the flash refuses programs off the 256-byte page grid, so a run proves that every program the
firmware's littlefs makes is page aligned; the Pico's 1 KiB littlefs caches also cost heap."""

from __future__ import annotations

from pathlib import Path

from isolog.sim.launcher import VirtualBoard
from sim_helpers import assert_intact, read_log, scenario


def _one_power_up(tmp_path: Path, heap_kib: int, profile: str) -> tuple[int, list[str], str]:
    """Run a 2-hour scenario in one power-up (no restart after a reset): exit code, events and
    what the board wrote on stderr."""
    b = VirtualBoard(
        scenario(duration="2h"), tmp_path / "flash.img", speed=0, until_end=True, heap_kib=heap_kib, profile=profile
    )
    try:
        proc = b.power_up()
        b._read_events(proc)
        code = proc.wait(timeout=120)
    finally:
        b.close()
    return code, [e.kind for e in b.events], "\n".join(b.stderr_tail)


def test_the_firmware_logs_in_the_picos_geometry_in_the_64_kib_design_heap(micropython, tmp_path):
    code, kinds, _ = _one_power_up(tmp_path, 64, "pico")
    assert code == 0 and "end" in kinds, kinds
    assert "flash_fault" not in kinds
    log = read_log(tmp_path / "flash.img")
    assert_intact(log)
    assert len(log.records) == 120


def test_the_heap_budget_is_enforced(micropython, tmp_path):
    """The virtual board's models do not count against the firmware, but the budget holds: at
    40 KiB the firmware cannot start (a real board with that heap would not either)."""
    code, kinds, stderr = _one_power_up(tmp_path, 40, "pico")
    assert code != 0 and "end" not in kinds, kinds
    assert "MemoryError" in stderr
