"""Fixtures for the host tests: shipment files built from a base configuration."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from compliance_helpers import shipment_doc, to_toml  # noqa: E402


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
