"""Hardware-in-the-loop suite: one set of tests for the virtual board and for a real board.

    pytest hil_tests                                  # the virtual board (default, what `make test` runs)
    pytest hil_tests --target serial:/dev/ttyACM0     # a real board on the bench (hil_tests/README.md)

Fixtures:
    dut        the device under test, configured with the Lu-177 shipment and logging
    make_dut   a factory for tests that need another scenario, flash size or speed (sim), or an
               unconfigured board
    faults     the session's fault-injection counter, printed at the end of the run
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import pytest

from hil_dut import HEAP_REPORTS, MAC_PROBLEMS, Dut, FaultCounter, SerialDut, SimDut
from hil_scenarios import BENCH_INTERVAL_S, board_config, make_scenario

_FAULTS = FaultCounter()
_STARTED = [time.monotonic()]  # this conftest loads at the start of the session
_HIL_S = [0.0]  # time spent in hil_tests/ items (setup, call, teardown)
_HERE = Path(__file__).parent


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("isolog hardware-in-the-loop")
    group.addoption(
        "--target",
        default="sim",
        metavar="sim|serial:PORT",
        help="device under test for hil_tests/: sim (virtual board, default) or serial:/dev/ttyACM0",
    )


def _target(config: pytest.Config) -> tuple[str, str]:
    value = config.getoption("--target") or "sim"
    if value == "sim":
        return "sim", ""
    if value.startswith("serial:") and len(value) > len("serial:"):
        return "serial", value[len("serial:") :]
    raise pytest.UsageError(f"--target {value}: sim or serial:PORT (e.g. serial:/dev/ttyACM0)")


def pytest_configure(config: pytest.Config) -> None:
    _target(config)  # a bad --target stops the run at once


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if Path(report.fspath).resolve().parent == _HERE.resolve() or str(report.nodeid).startswith("hil_tests/"):
        _HIL_S[0] += report.duration


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kind, _ = _target(config)
    for item in items:
        if _HERE not in Path(str(item.fspath)).parents:
            continue
        if kind == "sim" and item.get_closest_marker("bench_only"):
            item.add_marker(pytest.mark.skip(reason="needs a real board on the bench (--target serial:PORT)"))
        if kind == "serial" and item.get_closest_marker("sim_only"):
            marker = item.get_closest_marker("sim_only")
            why = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "needs the virtual board")
            item.add_marker(pytest.mark.skip(reason=f"sim only: {why}"))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _FAULTS.total and not HEAP_REPORTS:
        return  # hil_tests did not run
    kind, port = _target(config)
    tr = terminalreporter
    tr.section("isolog hardware-in-the-loop")
    tr.write_line(f"target: {kind}{' ' + port if port else ''}")
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(_FAULTS.kinds.items()))
    tr.write_line(f"fault injections survived: {_FAULTS.total} (goal >= 1000){': ' + kinds if kinds else ''}")
    if MAC_PROBLEMS:
        tr.write_line(
            f"known firmware bug: {len(MAC_PROBLEMS)} MAC-chain breaks after power cuts "
            f"(records intact; see test_mac_chain_survives_power_cuts), e.g. {MAC_PROBLEMS[0]}"
        )
    if HEAP_REPORTS:
        low = min(HEAP_REPORTS, key=lambda r: r.mem_free)
        tr.write_line(
            f"free heap after gc: {len(HEAP_REPORTS)} scenarios, lowest {low.mem_free} bytes of "
            f"{low.total} ({low.label}), margin {low.margin}"
        )
        if config.getoption("verbose") > 0:
            for r in HEAP_REPORTS:
                tr.write_line(f"  {r.mem_free:>7} free / {r.total} ({r.label})")
    tr.write_line(
        f"wall time: {_HIL_S[0]:.1f} s in hil_tests/ (goal < 300 s on 2 cores), "
        f"{time.monotonic() - _STARTED[0]:.1f} s the whole run"
    )


@pytest.fixture(scope="session")
def faults() -> FaultCounter:
    return _FAULTS


@pytest.fixture(scope="session")
def target(pytestconfig) -> tuple[str, str]:
    kind, port = _target(pytestconfig)
    if kind == "sim":
        from isolog.errors import UserError
        from isolog.sim.launcher import find_micropython

        try:
            find_micropython()
        except UserError as exc:
            pytest.skip(str(exc))
    return kind, port


@pytest.fixture(scope="session")
def _serial_dut(target):
    kind, port = target
    if kind != "serial":
        yield None
        return
    d = SerialDut(port, _FAULTS)
    yield d
    d.close()


@pytest.fixture
def make_dut(target, _serial_dut, tmp_path, request):
    """make_dut(configured=True, flash_kib=1024, speed=0, seed=1, scenario=None, **scenario_overrides).

    sim: a fresh virtual board in test mode on a new flash image (scenario keys as in
    scenarios/README.md, e.g. events=[...], rtc_backup=False). serial: the bench board,
    configured with the Lu-177 shipment at a 10 s interval (scenario arguments are ignored:
    tests that need them are sim_only)."""
    made: list[Dut] = []

    def factory(
        configured: bool = True,
        flash_kib: int = 1024,
        speed: float = 0.0,
        seed: int = 1,
        scenario: dict | None = None,
        **overrides,
    ) -> Dut:
        kind, _ = target
        if kind == "serial":
            d = _serial_dut
            if configured:
                d.link.set_config(board_config(BENCH_INTERVAL_S))
            return d
        sc = copy.deepcopy(scenario) if scenario is not None else make_scenario(configured, **overrides)
        d = SimDut(sc, tmp_path / f"flash{len(made)}.img", _FAULTS, speed=speed, flash_size_kib=flash_kib, seed=seed)
        made.append(d)
        return d

    yield factory
    # Memory after every scenario: free heap after gc on each board still running (a failed test
    # may have left its board dead: nothing to measure then).
    try:
        boards = made if target[0] == "sim" else [_serial_dut]
        for d in boards:
            if d is None or getattr(getattr(d, "vb", None), "_stopping", False):
                continue
            try:
                d.link.retries = 1
                d.read()
            except Exception:
                continue
            d.heap(request.node.name)
    finally:
        for d in made:
            d.close()


@pytest.fixture
def dut(make_dut) -> Dut:
    return make_dut()


def pytest_report_header(config: pytest.Config) -> str | None:
    if any(Path(str(a)).name == "hil_tests" for a in config.args) or os.environ.get("ISOLOG_HIL_VERBOSE"):
        kind, port = _target(config)
        return f"isolog HIL target: {kind}{' ' + port if port else ''}"
    return None
