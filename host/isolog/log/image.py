"""The board's flash on the host: a littlefs image (the virtual board's flash file, or a dump of a
real board's filesystem partition), read with littlefs-python in the geometry MicroPython's VfsLfs2
uses, and the log on it decoded and checked (log.decode, log.chain)."""

from __future__ import annotations

from pathlib import Path

from isolog.errors import UserError
from isolog.log.chain import BROKEN_LINK, Problem
from isolog.log.decode import Log, check_sequence, decode_segment
from isolog_boards import profiles

BLOCK_SIZE = profiles.BLOCK_SIZE  # boards/profiles.py: both boards' flash block
LOG_DIR = "/data/log"


def segment_name(first: int) -> str:
    """The path of the log segment whose first record is first (firmware/logstore.py)."""
    return f"{LOG_DIR}/{first:08x}.seg"


def littlefs_over(data: bytearray, board: str = profiles.DEFAULT, block_size: int | None = None):
    """littlefs-python over an image in memory, unmounted, in the geometry MicroPython's VfsLfs2
    uses on that board (boards/profiles.py: the Pico programs 256 bytes at a time, the ESP32-S3
    32): what the board, or the virtual board standing for it, writes and mounts. block_size
    overrides the board's (reading a dump made with another block size)."""
    from littlefs import LittleFS, UserContext

    cfg = profiles.littlefs_config(board)
    if block_size is not None and block_size != cfg["block_size"]:
        cfg["block_size"] = block_size
        cfg["cache_size"] = min(block_size, cfg["cache_size"])
    return LittleFS(
        context=UserContext(buffer=data),
        block_size=cfg["block_size"],
        block_count=len(data) // cfg["block_size"],
        read_size=cfg["read_size"],
        prog_size=cfg["prog_size"],
        lookahead_size=cfg["lookahead_size"],
        cache_size=cfg["cache_size"],
        block_cycles=cfg["block_cycles"],
        mount=False,
    )


def open_image(path: Path, block_size: int = BLOCK_SIZE):
    """Mount a littlefs image read from a file (a virtual board's flash, or a dump of a real
    board's filesystem partition)."""
    from littlefs.errors import LittleFSError

    try:
        data = bytearray(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"flash image not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read flash image {path}: {exc.strerror}") from None
    if not data or len(data) % block_size:
        raise UserError(f"{path}: {len(data)} bytes is not a whole number of {block_size}-byte blocks")
    fs = littlefs_over(data, block_size=block_size)
    try:
        fs.mount()
    except LittleFSError as exc:
        raise UserError(f"{path}: not a mountable littlefs image ({exc})") from None
    return fs


def read_image(path: Path, block_size: int = BLOCK_SIZE, key: bytes | None = b"") -> Log:
    """Every record on a flash image, checked: CRC of every chunk, MAC chain with key (b"": an
    unprovisioned board; None: not checked), sequence numbers contiguous."""
    fs = open_image(path, block_size)
    log = Log()
    try:
        names = sorted(n for n in fs.listdir(LOG_DIR) if n.endswith(".seg"))
    except Exception:  # littlefs raises its own error types for a missing folder
        raise UserError(f"{path}: no log folder {LOG_DIR} on this image") from None
    previous: bytes | None = None
    for name in names:
        where = f"{LOG_DIR}/{name}"
        try:
            with fs.open(where, "rb") as f:
                data = f.read()
        except Exception as exc:  # a broken file must not hide the others
            log.problems.append(Problem(where, f"unreadable: {exc}"))
            previous = None
            continue
        first_problem = len(log.problems)
        dec = decode_segment(where, data, log, key)
        # The chain links segments too: a segment's chain_in is the mac its predecessor ended on.
        if key is not None and previous is not None and dec.chain_in is not None:
            if dec.chain_in != previous:
                log.problems.insert(first_problem, Problem(where, BROKEN_LINK))
                log.failed += 1
        previous = dec.chain
    check_sequence(log)
    return log
