import pytest

from mp_helpers import micropython_binary


@pytest.fixture(scope="session")
def micropython():
    exe = micropython_binary()
    if exe is None:
        pytest.skip("the MicroPython unix port is not installed (Linux x86-64 only)")
    return exe
