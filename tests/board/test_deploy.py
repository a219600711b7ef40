"""Flash, deploy and provision: a blank virtual board to a provisioned, logging one, and
clear errors for wrong files, wrong chips and boards not in boot mode."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from isolog import cli
from isolog.board import build, deploy
from isolog.board.link import Link
from isolog.errors import UserError
from isolog.sim.launcher import VirtualBoard
from isolog.store import Store
from sim_helpers import scenario


def test_deploy_and_provision_round_trip_on_the_virtual_board(tmp_path, capsys):
    sc = scenario(duration="30d")
    board = VirtualBoard(dict(sc, board_config=None), tmp_path / "flash.img", speed=60, firmware="none")
    board.start()
    db = tmp_path / "store.sqlite3"
    try:
        time.sleep(0.5)
        assert any(e.kind == "no_firmware" for e in board.events)  # MicroPython only, no isolog
        assert cli.main(["deploy", board.port, "--board", "sim", "--db", str(db)]) == 0
        out = capsys.readouterr().out
        # firmware/*.py but __init__.py, board.py, and sim's extras (build.BOARDS["sim"])
        firmware = [p for p in (Path(__file__).parents[2] / "firmware").glob("*.py") if p.name != "__init__.py"]
        n_files = len(firmware) + 1 + len(build.BOARDS["sim"])
        assert f"verified {n_files} files by SHA-256" in out and "answers on" in out
        assert cli.main(["provision", board.port, "--name", "box-1", "--db", str(db)]) == 0
        out = capsys.readouterr().out
        with Store(db) as store:
            key = store.current_key("15010c0000000001")
            assert key is not None and len(key) == 32
            assert key.hex() not in out  # the key is never shown
            assert [a["action"] for a in store.audit_trail()][-1] == "provision"
        with Link(board.port) as link:
            ident = link.identify()
            assert ident["name"] == "box-1" and ident["provisioned"]
        # A provisioned board is only stopped for a deploy with its key...
        with pytest.raises(UserError, match="needs its key"):
            deploy.deploy(board.port, "sim", key=None, say=lambda s: None)
        # ...and with it, the deploy goes through (test mode on this time).
        assert cli.main(["deploy", board.port, "--board", "sim", "--db", str(db), "--test-mode"]) == 0
        with Link(board.port) as link:
            assert link.identify()["test_mode"] is True
    finally:
        board.close()


def test_deploy_argument_errors(tmp_path, capsys):
    assert cli.main(["deploy", str(tmp_path / "ttyNONE"), "--board", "sim"]) == 2
    assert "no such port" in capsys.readouterr().err
    assert cli.main(["deploy", "/dev/null", "--board", "esp8266"]) == 2
    assert "unknown board" in capsys.readouterr().err


def _uf2(path: Path, family: int = deploy.RP2040_FAMILY) -> Path:
    block = bytearray(512)
    for i, v in enumerate((deploy.UF2_MAGIC0, deploy.UF2_MAGIC1, 0x2000, 0x10000000, 256, 0, 1, family)):
        block[i * 4 : i * 4 + 4] = v.to_bytes(4, "little")
    block[508:512] = deploy.UF2_MAGIC_END.to_bytes(4, "little")
    path.write_bytes(bytes(block))
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_flash_pico_copies_the_uf2_to_the_boot_drive(tmp_path, capsys):
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n")
    fw = _uf2(tmp_path / "RPI_PICO-v1.29.uf2")
    assert cli.main(["flash", str(drive), "--board", "pico", "--firmware", str(fw)]) == 0
    assert (drive / fw.name).read_bytes() == fw.read_bytes()


@pytest.mark.parametrize(
    "board,make,message",
    [
        ("pico", lambda p: _uf2(p / "x.uf2", family=0x1C5F21B0), "another chip family"),
        ("pico", lambda p: _write(p / "x.uf2", b"\0" * 512), "bad magic"),
        ("pico", lambda p: _write(p / "x.bin", b"\xe9" * 512), "not a UF2"),
        ("esp32s3", lambda p: _uf2(p / "x.uf2"), "not an ESP32 firmware image"),
        ("esp32s3", lambda p: _write(p / "x.bin", b"\xe9" + b"\0" * 31), "another ESP32 chip"),
        ("esp32s3", lambda p: p / "missing.bin", "not found"),
        ("sim", lambda p: p / "x.bin", "nothing to flash"),
    ],
)
def test_flash_refuses_wrong_files(tmp_path, capsys, board, make, message):
    fw = make(tmp_path)
    assert cli.main(["flash", str(tmp_path), "--board", board, "--firmware", str(fw)]) == 2
    assert message in capsys.readouterr().err


def test_flash_pico_not_in_boot_mode(tmp_path, capsys):
    fw = _uf2(tmp_path / "fw.uf2")
    empty = tmp_path / "not-a-boot-drive"
    empty.mkdir()
    assert cli.main(["flash", str(empty), "--board", "pico", "--firmware", str(fw)]) == 2
    assert "hold BOOTSEL" in capsys.readouterr().err


def test_flash_esp32_on_a_missing_port(tmp_path, capsys):
    fw = tmp_path / "ESP32_GENERIC_S3.bin"
    fw.write_bytes(b"\xe9\x03\x02\x20" + b"\0" * 8 + b"\x09" + b"\0" * 100)
    assert cli.main(["flash", str(tmp_path / "ttyUSB9"), "--board", "esp32s3", "--firmware", str(fw)]) == 2
    err = capsys.readouterr().err
    assert "cannot open" in err or "esptool failed" in err
    assert "Traceback" not in err
