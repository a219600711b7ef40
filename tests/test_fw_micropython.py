"""Runs every firmware logic test module in tests/fw under the real MicroPython unix port."""

import glob
import os
import subprocess

import pytest

from mp_helpers import ROOT, clean_env

FW_TESTS = sorted(
    os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ROOT, "tests", "fw", "test_*.py"))
)


@pytest.mark.parametrize("module", FW_TESTS)
def test_module_passes_under_micropython(module, micropython, tmp_path):
    path = ":".join([os.path.join(ROOT, "tests", "fw"), os.path.join(ROOT, "firmware")])
    proc = subprocess.run(
        [micropython, "-X", "heapsize=8M", os.path.join(ROOT, "tests", "fw", "mprun.py"), module],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(tmp_path, path),
    )
    out = proc.stdout + proc.stderr
    summary = [line for line in out.splitlines() if line.startswith("SUMMARY")]
    assert proc.returncode == 0 and summary, out
    passed, failed = (int(x) for x in summary[-1].split()[1:3])
    assert failed == 0, out
    assert passed > 0, "no test ran under MicroPython:\n" + out
