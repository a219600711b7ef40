# Host-side view of the firmware sources (package isolog_fw). Not deployed to boards: on a board the
# firmware modules are top-level (`import record`).
#
# The modules shared with the host (record layout, counting physics) import MicroPython's
# `micropython.const`; under CPython a stand-in module provides it (and the few other names the
# firmware uses), so the very same files run on both sides.
import sys
import types

if "micropython" not in sys.modules:
    try:
        import micropython  # noqa: F401  (a real one, if some environment provides it)
    except ImportError:
        _shim = types.ModuleType("micropython", "CPython stand-in for MicroPython's micropython module")
        _shim.const = lambda value: value  # type: ignore[attr-defined]
        _shim.kbd_intr = lambda chr_: None  # type: ignore[attr-defined]
        _shim.heap_lock = lambda: 0  # type: ignore[attr-defined]
        _shim.heap_unlock = lambda: 0  # type: ignore[attr-defined]
        sys.modules["micropython"] = _shim

# Shared modules import each other by their flat names, as on a board (record.py: `import mac`).
# Register those leaf modules under the flat names too, so the host imports the very same files.
from isolog_fw import mac as _mac  # noqa: E402

sys.modules.setdefault("mac", _mac)
