"""isolog: host tools for radioisotope shipment loggers.

One version number for the whole repository: FIRMWARE_VERSION in firmware/protocol.py, the number a
board reports on IDENTIFY (a board has no host package to ask, so the number lives on its side).
The host reads it from that file without importing it (protocol.py needs MicroPython), and
pyproject.toml takes the package's version from the same line (setuptools `attr`, read statically).
"""

import re
from importlib.resources import files


def _version() -> str:
    try:
        text = files("isolog_fw").joinpath("protocol.py").read_text(encoding="utf-8")
    except (OSError, ModuleNotFoundError):  # an install without the firmware sources
        from importlib.metadata import version

        return version("isolog")
    m = re.search(r'^FIRMWARE_VERSION = "([^"]+)"$', text, re.MULTILINE)
    if m is None:
        raise ImportError('firmware/protocol.py has no line FIRMWARE_VERSION = "..."')
    return m.group(1)


__version__ = _version()
