"""boards/profiles.py: the per-board table the virtual board and the host share (flash geometry,
stdout path), and the constants defined there once (flash block size, the virtual board's exit
codes)."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from isolog.log import image as flash_image
from isolog_boards import profiles
from mp_helpers import ROOT, clean_env

# Files that used to carry their own copy of the block size or of the virtual board's exit codes.
USERS = [
    "firmware/logstore.py",
    "boards/sim.py",
    "boards/sim_flash.py",
    "boards/sim_boot.py",
    "host/isolog/sim/launcher.py",
    "host/isolog/log/image.py",
]
DUPLICATES = {4096: "flash block size", 75: "POWER_LOSS_EXIT", 76: "RESET_EXIT", 77: "REPL_EXIT"}


def _literal_copies(path: Path) -> list[str]:
    """Assignments of one of those numbers to a name or attribute, and exits with a literal code."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        value = None
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            value = node.value
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("exit", "SystemExit") and node.args:
                value = node.args[0]
        if isinstance(value, ast.Constant) and value.value in DUPLICATES and type(value.value) is int:
            found.append(f"{path.name}:{node.lineno}: {value.value} ({DUPLICATES[value.value]})")
    return found


def test_block_size_and_exit_codes_are_defined_once():
    copies = [c for rel in USERS for c in _literal_copies(Path(ROOT) / rel)]
    assert copies == [], copies


def test_the_host_and_the_virtual_board_use_the_same_table():
    from isolog.sim import launcher

    assert flash_image.BLOCK_SIZE == launcher.BLOCK_SIZE == profiles.BLOCK_SIZE
    assert (launcher.POWER_LOSS_EXIT, launcher.RESET_EXIT, launcher.REPL_EXIT) == (
        profiles.POWER_LOSS_EXIT,
        profiles.RESET_EXIT,
        profiles.REPL_EXIT,
    )
    assert len({launcher.POWER_LOSS_EXIT, launcher.RESET_EXIT, launcher.REPL_EXIT, 0, 1}) == 5


@pytest.mark.parametrize("board", sorted(profiles.PROFILES))
def test_host_littlefs_takes_the_board_geometry(board):
    """littlefs-python configured as MicroPython's VfsLfs2 is on that board: MicroPython sets the
    cache to 4 x max(read, prog), at most a block, and 100 block cycles (extmod/vfs_lfsx.c)."""
    block, read, prog, lookahead, _ = profiles.profile(board)
    fs = flash_image.littlefs_over(bytearray(b"\xff" * (16 * block)), board)
    cfg = fs.cfg
    assert (cfg.block_size, cfg.read_size, cfg.prog_size, cfg.lookahead_size) == (block, read, prog, lookahead)
    assert cfg.cache_size == min(block, 4 * max(read, prog))


_BOARD_WRITES = """
import sys, vfs
import sim_flash
flash = sim_flash.SimFlash(sys.argv[1], 0, prog_size=int(sys.argv[2]))
fs = vfs.VfsLfs2(flash, progsize=int(sys.argv[3]))
vfs.mount(fs, "/f")
for i in range(20):
    with open("/f/data/log.bin", "ab") as f:
        f.write(bytes([i]) * 37)
        f.flush()
with open("/f/data/config.json", "w") as f:
    f.write("board")
vfs.umount("/f")
print("misaligned", flash.misaligned)
"""


def _board_writes(micropython: str, tmp_path: Path, img: Path, chip_prog: int, mount_prog: int):
    """Mount the image in the unix port over the virtual flash (programs aligned to chip_prog
    required) with VfsLfs2(progsize=mount_prog), append to a file, write another."""
    script = tmp_path / "board_writes.py"
    script.write_text(_BOARD_WRITES)
    env = clean_env(tmp_path, str(Path(ROOT) / "boards"))
    env["ISOLOG_SIM_EXITS"] = f"{profiles.POWER_LOSS_EXIT},{profiles.RESET_EXIT},{profiles.REPL_EXIT}"
    env["ISOLOG_SIM_GEOMETRY"] = ",".join(str(v) for v in profiles.flash_geometry("pico"))
    return subprocess.run(
        [micropython, str(script), str(img), str(chip_prog), str(mount_prog)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_pico_image_the_host_wrote_takes_the_boards_256_byte_programs(micropython, tmp_path):
    """The host formats a Pico image and stores the configuration (as `isolog configure` and the
    virtual board's launcher do); the board then mounts it with progsize=256 (rp2 _boot.py) and
    appends to it: every program it makes is 256-byte aligned, and the host reads the result."""
    prog = profiles.flash_geometry("pico")[2]
    assert prog == 256  # ports/rp2/modules/_boot.py: VfsLfs2(bdev, progsize=256)
    img = tmp_path / "pico.img"
    img.write_bytes(b"\xff" * (64 * profiles.BLOCK_SIZE))
    from isolog.sim import launcher

    launcher.put_files(img, {"/data/config.json": b"host", "/data/testmode": b"1"}, "pico")
    proc = _board_writes(micropython, tmp_path, img, prog, prog)
    assert proc.returncode == 0 and "misaligned 0" in proc.stdout, proc.stdout + proc.stderr
    fs = flash_image.littlefs_over(bytearray(img.read_bytes()), "pico")
    fs.mount()
    with fs.open("/data/log.bin", "rb") as f:
        assert f.read() == b"".join(bytes([i]) * 37 for i in range(20))
    with fs.open("/data/config.json", "rb") as f:
        assert f.read() == b"board"


def test_the_virtual_flash_refuses_programs_off_the_pico_page_grid(micropython, tmp_path):
    """The model itself: littlefs mounted with MicroPython's default program size (32) on a flash
    that programs whole 256-byte pages (the Pico's) makes programs off the page grid, and the
    virtual flash reports them instead of taking them."""
    img = tmp_path / "pico.img"
    img.write_bytes(b"\xff" * (64 * profiles.BLOCK_SIZE))
    from isolog.sim import launcher

    launcher.put_files(img, {"/data/config.json": b"host"}, "pico")
    proc = _board_writes(micropython, tmp_path, img, 256, 32)
    assert "flash_fault misaligned_program" in proc.stderr, proc.stdout + proc.stderr
