# What `micropython` means to pyright when the host is checked (pyrightconfig.host.json). The firmware
# modules shared with the host (record, frame, mac, counting) take `const` from it; on CPython it is an
# identity. Same signature as in micropython-stdlib-stubs, so `X = const(32)` is an int on both sides.
from typing import TypeVar

_T = TypeVar("_T")

def const(expr: _T, /) -> _T: ...
