"""One version number: FIRMWARE_VERSION in firmware/protocol.py (what a board reports on IDENTIFY)
is the host's `isolog.__version__`, what `isolog --version` prints, and the package's version in
pyproject.toml (setuptools `attr`). Runs without the MicroPython unix port."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import isolog
from isolog import cli

ROOT = Path(__file__).resolve().parents[1]


def _firmware_version() -> str:
    text = (ROOT / "firmware" / "protocol.py").read_text(encoding="utf-8")
    found = re.findall(r'^FIRMWARE_VERSION = "([^"]+)"$', text, re.MULTILINE)
    assert len(found) == 1, "firmware/protocol.py must define FIRMWARE_VERSION once, as a string literal"
    return found[0]


def test_host_version_is_the_firmware_version():
    assert isolog.__version__ == _firmware_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", isolog.__version__)


def test_cli_version(capsys):
    try:
        cli.main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert capsys.readouterr().out.strip() == f"isolog {_firmware_version()}"


def test_cli_version_as_a_command():
    out = subprocess.run([sys.executable, "-m", "isolog", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"isolog {_firmware_version()}"


def test_pyproject_takes_the_version_from_the_firmware():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"], "the version is written once, in firmware/protocol.py"
    assert "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "isolog_fw.protocol.FIRMWARE_VERSION"
