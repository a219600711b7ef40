"""`isolog flash`, `isolog deploy`: from a blank board to a logging one.

flash:  installs MicroPython itself from the firmware file the user downloaded (esptool for the
        ESP32-S3; the UF2 file copied to the Pico's boot drive).
deploy: compiles firmware/ and the board module with mpy-cross (board/build.py), asks a running
        firmware to reset into the REPL (an authenticated MAINTENANCE request), copies the files
        with mpremote, verifies them by reading back their SHA-256, restarts the board with a hard
        reset (`mpremote reset`: a soft reset from the raw REPL does not run main.py on the rp2 and
        esp32 ports) and checks that the firmware answers. Works on the virtual board too (its REPL
        runs in the unix port).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from isolog.board import build
from isolog.errors import UserError
from isolog_fw import frame

MPREMOTE_TIMEOUT_S = 60
UF2_MAGIC0, UF2_MAGIC1, UF2_MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
RP2040_FAMILY = 0xE48BFF56
ESP_IMAGE_MAGIC = 0xE9


# --- flash: MicroPython itself ------------------------------------------------------------------


def check_esp32_image(path: Path) -> None:
    data = _read_start(path, 32)
    if path.suffix.lower() != ".bin" or not data or data[0] != ESP_IMAGE_MAGIC:
        raise UserError(
            f"{path} is not an ESP32 firmware image (.bin starting with 0xE9): download the "
            "ESP32_GENERIC_S3 .bin from micropython.org/download"
        )
    # Byte 12 of the image header is the chip id: ESP32-S3 is 9.
    if len(data) > 13 and data[12] != 9:
        raise UserError(f"{path} is built for another ESP32 chip (chip id {data[12]}), not the ESP32-S3")


def check_uf2(path: Path) -> None:
    data = _read_start(path, 512)
    if path.suffix.lower() != ".uf2" or len(data) < 512:
        raise UserError(f"{path} is not a UF2 file: download the RPI_PICO .uf2 from micropython.org/download")
    m0, m1, flags, _addr, _size, _block, _count, family = (
        int.from_bytes(data[i : i + 4], "little") for i in range(0, 32, 4)
    )
    end = int.from_bytes(data[508:512], "little")
    if (m0, m1, end) != (UF2_MAGIC0, UF2_MAGIC1, UF2_MAGIC_END):
        raise UserError(f"{path} is not a valid UF2 file (bad magic numbers)")
    if flags & 0x2000 and family != RP2040_FAMILY:
        raise UserError(f"{path} is a UF2 for another chip family (0x{family:08x}), not the RP2040 (Pico)")


def _read_start(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except FileNotFoundError:
        raise UserError(f"firmware file not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None


def find_pico_boot_drive(hint: str | None = None) -> Path:
    """The mounted boot drive of a Pico held in BOOTSEL mode (it holds INFO_UF2.TXT)."""
    candidates: list[Path] = []
    if hint and hint != "auto":
        candidates.append(Path(hint))
    else:
        user = os.environ.get("USER", "")
        for root in (Path("/media") / user, Path("/run/media") / user, Path("/media"), Path("/Volumes")):
            if root.is_dir():
                candidates += [p for p in root.iterdir() if p.is_dir()]
        candidates += [Path(f"{d}:/") for d in "DEFGHIJKLMNOPQRSTUVWXYZ"] if sys.platform == "win32" else []
    for c in candidates:
        info = c / "INFO_UF2.TXT"
        try:
            if info.is_file() and "RPI-RP2" in info.read_text(errors="replace"):
                return c
        except OSError:
            continue
    raise UserError(
        "no Pico in boot mode found: hold BOOTSEL while plugging it in, wait for the RPI-RP2 "
        "drive to appear, then run this again (or give the drive's path as PORT)"
    )


def flash(port: str, board: str, firmware: Path) -> str:
    if board == "sim":
        raise UserError(
            "the virtual board runs the MicroPython unix port: there is nothing to flash; "
            "use `isolog deploy` to install isolog on it"
        )
    if board == "esp32s3":
        check_esp32_image(firmware)
        cmd = [sys.executable, "-m", "esptool", "--chip", "esp32s3", "--port", port, "write-flash", "0", str(firmware)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        out = proc.stdout + proc.stderr
        if proc.returncode != 0:
            if "Wrong --chip" in out or "This chip is" in out:
                chip = re.search(r"This chip is (\S+)", out)
                raise UserError(
                    f"wrong chip on {port}: {chip.group(1) if chip else 'not an ESP32-S3'}, "
                    "this firmware is for the ESP32-S3"
                )
            if "could not open port" in out or "No such file" in out:
                raise UserError(f"cannot open {port}: is the board plugged in? (`isolog devices` lists boards)")
            if "Failed to connect" in out or "No serial data received" in out:
                raise UserError(
                    f"the board on {port} is not in download mode: hold BOOT, press RESET, "
                    "release BOOT, then run this again"
                )
            raise UserError("esptool failed: " + (out.strip().splitlines() or ["(no output)"])[-1])
        return f"MicroPython written to the ESP32-S3 on {port}"
    if board == "pico":
        check_uf2(firmware)
        drive = find_pico_boot_drive(port)
        shutil.copyfile(firmware, drive / firmware.name)
        return f"{firmware.name} copied to the Pico's boot drive {drive}: it restarts into MicroPython"
    raise UserError(f"unknown board {board!r}: choose one of {', '.join(sorted(build.BOARDS))}")


# --- deploy: isolog onto a board running MicroPython ---------------------------------------------


def _mpremote(port: str, *args: str, timeout: float = MPREMOTE_TIMEOUT_S) -> str:
    cmd = [sys.executable, "-m", "mpremote", "connect", port, "resume", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(
            f"mpremote got no answer from {port} within {timeout:.0f} s: is MicroPython's REPL "
            "running there? (a board running isolog is put into maintenance first)"
        ) from None
    if proc.returncode != 0:
        msg = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise UserError(f"mpremote failed on {port}: {msg[-1] if msg else 'no output'}")
    return proc.stdout


def _wait_repl(port: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    last: UserError | None = None
    while time.monotonic() < deadline:
        try:
            if "repl-ok" in _mpremote(port, "exec", "print('repl-ok')", timeout=5):
                return
        except UserError as exc:
            last = exc
        time.sleep(0.5)
    raise UserError(f"the board on {port} did not come up in the REPL: {last}")


def stop_firmware(port: str, key: bytes | None, db: Path | str | None = None) -> dict | None:
    """If isolog answers on the port, ask it for a maintenance reset. Returns its identity."""
    from isolog.board.link import Link, LinkError

    try:
        link = Link(port, timeout_s=0.5, retries=2)
    except UserError:
        raise
    try:
        try:
            ident = link.identify()
        except LinkError:
            return None  # no isolog firmware answering: MicroPython's REPL, or a fresh board
        if ident.get("provisioned"):
            if key is None:
                raise UserError(
                    f"the board on {port} ({ident.get('name') or ident['device']}) is provisioned: "
                    "deploying needs its key from the store that provisioned it (--db)"
                )
            from isolog.board.provision import authorize
            from isolog.store import Store

            with Store(db) as store:
                if store.provisioning(ident["device"]) is not None:
                    authorize(link, store, ident)  # the store's counter, the board's proof
                    link.call(frame.CMD_MAINTENANCE)
                    return ident
            link.use_key(key)
        link.call(frame.CMD_MAINTENANCE)
        return ident
    finally:
        link.close()


def deploy(
    port: str, board: str, key: bytes | None = None, test_mode: bool = False, say=print, db: Path | str | None = None
) -> dict:
    with tempfile.TemporaryDirectory(prefix="isolog-deploy-") as tmp:
        files = build.build(board, Path(tmp))
        say(f"built {len(files)} files for {board} with mpy-cross ({sum(f.stat().st_size for f in files)} bytes)")
        ident = stop_firmware(port, key, db)
        if ident is not None:
            say(f"isolog {ident.get('firmware')} was running on {port}: reset into maintenance")
        _wait_repl(port)
        args: list[str] = []
        for f in files:
            args += ["fs", "cp", str(f), f":{f.name}", "+"]
        setup = "import os\ntry:\n os.mkdir('data')\nexcept OSError:\n pass\n"
        if test_mode:
            setup += "open('data/testmode','w').write('1')\n"
        args += ["exec", setup]
        _mpremote(port, *args, timeout=MPREMOTE_TIMEOUT_S * 2)
        say(f"copied {len(files)} files with mpremote")
        out = _mpremote(port, "fs", "sha256sum", *[f":{f.name}" for f in files])
        remote = dict(_parse_sha256sum(out))
        bad = [f.name for f in files if remote.get(f.name) != hashlib.sha256(f.read_bytes()).hexdigest()]
        if bad:
            raise UserError(
                f"verification failed: {', '.join(bad)} on the board differ from the build; "
                "nothing was restarted, run deploy again"
            )
        say(f"verified {len(files)} files by SHA-256 read back from the board")
        # A hard reset (machine.reset() via `mpremote reset`): after a soft reset from the raw REPL,
        # which is how mpremote performs `soft-reset`, the rp2 and esp32 ports do not run main.py
        # (ports/rp2/main.c, ports/esp32/main.c), and the board would stay in the REPL.
        try:
            _mpremote(port, "reset", timeout=10)
        except UserError:
            pass  # the board drops the connection as it resets; confirm() says whether it came back
    return confirm(port)


def _parse_sha256sum(out: str):
    """mpremote prints "sha256sum :name" then the hash on the next line, per file."""
    name = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("sha256sum "):
            name = line.split(":", 1)[-1].lstrip("/").split("/")[-1]
        elif name and re.fullmatch(r"[0-9a-f]{64}", line):
            yield name, line
            name = None


def confirm(port: str, timeout_s: float = 30.0) -> dict:
    """Wait until the firmware answers IDENTIFY after the restart."""
    from isolog.board.link import Link, LinkError

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with Link(port, timeout_s=0.5, retries=1) as link:
                return link.identify()
        except (LinkError, UserError):
            time.sleep(0.5)
    raise UserError(
        f"the firmware does not answer on {port} after the restart: check the board's serial output "
        "with `mpremote connect PORT repl`"
    )


def deploy_port(port: str, board: str, db: Path | str | None = None, test_mode: bool = False) -> dict:
    """`isolog deploy`: check the arguments, take the board's key from the store (if it answers and
    was provisioned from it), deploy, and return the restarted firmware's IDENTIFY reply."""
    if board not in build.BOARDS:
        raise UserError(f"unknown board {board!r}: choose one of {', '.join(sorted(build.BOARDS))}")
    if not os.path.exists(port):
        raise UserError(f"no such port: {port} (`isolog devices` lists boards)")
    from isolog.board.provision import key_for_port

    return deploy(port, board, key=key_for_port(db, port), test_mode=test_mode, db=db)
