"""Install the pinned ULP assembler (requirements/ulp.txt) into .ulp/ from PyPI, with pip.

micropython-esp32-ulp 1.2.0 is published as an sdist without setup.py or pyproject.toml, so
`pip download` fetches it, checks its sha256 against requirements/ulp.txt (--require-hashes: a
mismatch stops pip before it unpacks anything), unpacks it and then fails ("does not appear to be a
Python project"). With --no-clean and TMPDIR inside .ulp/, the unpacked tree stays there; this
script accepts only that failure, checks the unpacked version, and copies its esp32_ulp package to
.ulp/esp32_ulp. Run by the Makefile: python tools/ulp/fetch.py [DEST] (default .ulp).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements" / "ulp.txt"
EXPECTED_FAILURE = "does not appear to be a Python project"


def pinned_version() -> str:
    m = re.search(r"^micropython-esp32-ulp==(\S+)\s", REQUIREMENTS.read_text(), re.M)
    if not m:
        raise SystemExit(f"fetch: no micropython-esp32-ulp pin in {REQUIREMENTS}")
    return m.group(1)


def fetch(dest: Path) -> Path:
    version = pinned_version()
    tmp = dest / "tmp"
    shutil.rmtree(dest, ignore_errors=True)
    tmp.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "--no-binary",
         ":all:", "--no-clean", "--require-hashes", "-r", str(REQUIREMENTS), "-d", str(tmp / "dl")],
        env=dict(os.environ, TMPDIR=str(tmp)),
        capture_output=True,
        text=True,
    )  # fmt: skip
    if proc.returncode != 0 and EXPECTED_FAILURE not in proc.stderr:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit("fetch: pip could not download micropython-esp32-ulp (see above)")
    trees = [p for p in tmp.glob("pip-*/*") if (p / "esp32_ulp" / "assemble.py").exists()]
    if len(trees) != 1:
        raise SystemExit(f"fetch: expected one unpacked micropython-esp32-ulp under {tmp}, found {len(trees)}")
    pkg_info = next(trees[0].glob("*.egg-info/PKG-INFO"), None) or trees[0] / "PKG-INFO"
    found = re.search(r"^Version: (\S+)", pkg_info.read_text(), re.M)
    if not found or found.group(1) != version:
        raise SystemExit(f"fetch: unpacked version {found and found.group(1)}, pinned {version}")
    shutil.copytree(trees[0] / "esp32_ulp", dest / "esp32_ulp")
    shutil.rmtree(tmp)
    (dest / ".installed").write_text(f"micropython-esp32-ulp {version}\n")
    return dest / "esp32_ulp"


if __name__ == "__main__":
    print(fetch(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".ulp"))
