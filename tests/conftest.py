import pytest

from compliance_helpers import shipment_doc, to_toml
from mp_helpers import micropython_binary


@pytest.fixture(scope="session")
def micropython():
    exe = micropython_binary()
    if exe is None:
        pytest.skip("the MicroPython unix port is not installed (Linux x86-64 only)")
    return exe


@pytest.fixture
def shipment_file(tmp_path):
    """shipment_file(**changes) -> path of a TOML file made from BASE with the changes."""
    counter = iter(range(1000))

    def make(doc: dict | None = None, **changes):
        path = tmp_path / f"shipment{next(counter)}.toml"
        path.write_text(to_toml(doc if doc is not None else shipment_doc(**changes)))
        return path

    return make


@pytest.fixture
def ship():
    from isolog import shipment

    return shipment.from_dict(shipment_doc(), "<test>")
