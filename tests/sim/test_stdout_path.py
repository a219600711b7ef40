"""The ESP32-S3's stdout path: the generic MicroPython build writes every stdout byte to its UART
REPL at 115200 baud, blocking, before native USB (boards/profiles.py names the sources). The
virtual board models it for the "esp32s3-generic" profile; isolog's own build
(boards/micropython/ISOLOG_ESP32S3, the "esp32s3" profile) turns the UART REPL off. A sync of the
same log from each shows what a real S3 would do with each build."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from isolog.board.sync import sync
from isolog.sim.launcher import VirtualBoard
from isolog_boards import profiles
from mp_helpers import ROOT
from sim_helpers import scenario

# 115200 baud, 8N1: 10 bits a byte on the wire (the UART's own ceiling, before any tick waits).
UART_BYTES_PER_S = 115200 / 10
BUILD = Path(ROOT) / "boards" / "micropython" / "ISOLOG_ESP32S3" / "mpconfigboard.h"


@pytest.fixture(scope="module")
def four_day_log(tmp_path_factory) -> Path:
    image = tmp_path_factory.mktemp("s3") / "log.img"
    with VirtualBoard(scenario(duration="4d"), image, speed=0, until_end=True, profile="esp32s3") as b:
        assert b.run() == 0
    return image


def _sync_rate(image: Path, tmp: Path, profile: str) -> tuple[float, int, list[str]]:
    """(segment bytes per second while the log is read, from the first READ reply to the last;
    bytes read; the board's @sim event kinds). The set-up before (IDENTIFY, clock, LIST) and the
    ACK after are left out, as in bench/sync.py."""
    flash = tmp / f"{profile}.img"
    shutil.copyfile(image, flash)
    board = VirtualBoard(scenario(duration="60d"), flash, speed=1, profile=profile, firmware="keep")
    marks: list[tuple[float, int]] = []
    with board:
        board.start()
        r = sync(board.port, tmp / f"{profile}.sqlite3", progress=lambda p: marks.append((time.monotonic(), p.bytes)))
        board.stop()
    assert not r.problems, r.problems
    assert len(marks) >= 3
    rate = (marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0])
    return rate, r.bytes_read, [e.kind for e in board.events]


def test_the_generic_s3_build_paces_a_sync_at_the_uart_repl(four_day_log, tmp_path):
    """Measured: the generic build's sync moves at most the UART's 11,520 B/s."""
    rate, moved, kinds = _sync_rate(four_day_log, tmp_path, "esp32s3-generic")
    print(f"\nesp32s3-generic: {moved} segment bytes at {rate:,.0f} B/s")
    assert moved > 40_000
    assert rate <= UART_BYTES_PER_S
    assert "watchdog_reset" not in kinds


def test_isologs_s3_build_has_no_uart_repl_and_syncs_at_usb_speed(four_day_log, tmp_path):
    """The build isolog flashes on the ESP32-S3 (the "esp32s3" profile) has the UART REPL off in
    its board definition, and its sync is not held to the UART's rate."""
    text = BUILD.read_text()
    assert re.search(r"#define\s+MICROPY_HW_ENABLE_UART_REPL\s+\(0\)", text), BUILD
    assert profiles.profile("esp32s3")[4] == 0
    assert profiles.profile("esp32s3-generic")[4] == 115200  # ports/esp32/uart.h
    rate, moved, _ = _sync_rate(four_day_log, tmp_path, "esp32s3")
    print(f"\nesp32s3 (ISOLOG_ESP32S3 build): {moved} segment bytes at {rate:,.0f} B/s")
    # Unpaced relay: the host machine's speed decides (186 KB/s idle, 106 KB/s with the 2 cores
    # loaded by make test); well clear of the UART either way.
    assert rate > 4 * UART_BYTES_PER_S
