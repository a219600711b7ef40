"""Scenarios and checks shared by the virtual-board tests."""

from __future__ import annotations

from pathlib import Path

from isolog.log import decode
from isolog.log import image as flash_image
from isolog.sim import scenario as scenario_mod

SHIPMENT = scenario_mod.shipment_path()


def scenario(**overrides) -> dict:
    """A normalised scenario: Lu-177 at 1-minute logging, the built-in shipment installed."""
    return scenario_mod.steady("test", **overrides)


def read_log(image: Path) -> decode.Log:
    return flash_image.read_image(image)


def assert_intact(log: decode.Log, previous: list[dict] | None = None) -> None:
    """The image mounted, no record is damaged, sequence numbers are contiguous, and every record
    of an earlier snapshot is still there, unchanged."""
    assert not log.problems, [str(p) for p in log.problems]
    seqs = [r["seq"] for r in log.records]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True
    if previous:
        by_seq = {r["seq"]: r for r in log.records}
        for r in previous:
            assert by_seq.get(r["seq"]) == r, f"record {r['seq']} changed or lost"
