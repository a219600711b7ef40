"""The virtual board is as strict as the ports at boot and reset (issue 12):

- a 0x03 byte on the link raises KeyboardInterrupt while the interrupt character is enabled (the
  launcher's relay models the board's USB stack), and main.py ending with an uncaught exception
  leaves the board in the REPL, as on rp2/esp32;
- a soft reset from the raw REPL does not run main.py (rp2 and esp32 main.c); `mpremote reset`
  (machine.reset) does.
"""

from __future__ import annotations

import os
import threading
import time

from isolog.board import deploy
from isolog.errors import UserError
from isolog.sim.launcher import VirtualBoard
from sim_helpers import scenario


def _identify(port: str, timeout_s: float) -> dict | None:
    """The firmware's IDENTIFY reply within timeout_s (`isolog deploy`'s own wait), else None."""
    try:
        return deploy.confirm(port, timeout_s)
    except UserError:
        return None


def _kinds(board: VirtualBoard) -> list[str]:
    return [e.kind for e in board.events]


def test_ctrl_c_from_a_polling_host_during_start_up_is_data(micropython, tmp_path):
    """A host polling the port sends 0x03 bytes while the firmware starts up: while board.Board()
    initialises the hardware (made to take 1 s, as a real board's start-up may), i.e. before the
    logger and the protocol server exist. The firmware must have made 0x03 data already: it
    starts and answers, never stops in the REPL."""
    stop = threading.Event()
    started = threading.Event()

    def on_event(ev):
        if ev.kind == "boot":
            started.set()

    board = VirtualBoard(
        scenario(duration="30d"), tmp_path / "flash.img", speed=60, on_event=on_event, start_delay_ms=1000
    )
    fd = os.open(board.port, os.O_RDWR | os.O_NOCTTY)

    def spam():
        started.wait(10)
        end = time.monotonic() + 0.5  # within the start-up delay
        while time.monotonic() < end and not stop.is_set():
            os.write(fd, b"\x03")
            time.sleep(0.001)

    spammer = threading.Thread(target=spam, daemon=True)
    spammer.start()
    board.start()
    try:
        spammer.join(15)
        ident = _identify(board.port, 10)
        assert "uncaught" not in _kinds(board), board.stderr_tail
        assert ident is not None, "the board does not answer after 0x03 bytes during start-up: %s" % list(
            board.stderr_tail
        )
        assert board.boots == 1
    finally:
        stop.set()
        os.close(fd)
        board.close()


def test_the_relay_turns_ctrl_c_into_keyboard_interrupt_while_it_is_enabled(micropython, tmp_path):
    """The model itself: in the REPL (an empty board) executing a long loop, a 0x03 interrupts it,
    as on a board; at the prompt it is a character for the line editor."""
    board = VirtualBoard(dict(scenario(), board_config=None), tmp_path / "flash.img", firmware="none")
    board.start()
    try:
        deadline = time.monotonic() + 5
        while "no_firmware" not in _kinds(board) and time.monotonic() < deadline:
            time.sleep(0.05)
        out = deploy._mpremote(board.port, "exec", "print('repl-ok')", timeout=15)
        assert "repl-ok" in out
        assert board.interrupts == 0  # mpremote's own 0x03s reached the idle prompt as characters
        fd = os.open(board.port, os.O_RDWR | os.O_NOCTTY)
        try:
            # Start a long loop in the friendly REPL, then interrupt it.
            os.write(fd, b"\x02\r")  # Ctrl-B: the friendly REPL
            time.sleep(0.3)
            os.write(fd, b"import time\rwhile True: time.sleep_ms(1)\r\r")
            time.sleep(0.5)
            os.write(fd, b"\x03")
            time.sleep(0.5)
            os.set_blocking(fd, False)
            try:
                seen = os.read(fd, 65536)
            except BlockingIOError:
                seen = b""
        finally:
            os.close(fd)
        assert board.interrupts == 1
        assert b"KeyboardInterrupt" in seen
    finally:
        board.close()


def test_a_start_up_exception_resets_the_board(micropython, tmp_path):
    """The board module fails on the first power-up (before the watchdog runs): the firmware must
    reset the board rather than leave it in the REPL, and the next boot logs."""
    board = VirtualBoard(scenario(duration="30d"), tmp_path / "flash.img", speed=60, start_faults=1)
    board.start()
    try:
        ident = _identify(board.port, 15)
        kinds = _kinds(board)
        assert "uncaught" not in kinds, list(board.stderr_tail)
        assert ident is not None
        assert kinds.count("boot") == 2 and "reset" in kinds
    finally:
        board.close()


def test_soft_reset_from_the_raw_repl_does_not_run_main_py(micropython, tmp_path):
    """As on rp2 and esp32: after `mpremote soft-reset` the board stays in the REPL; `mpremote
    reset` (machine.reset) starts the firmware."""
    board = VirtualBoard(scenario(duration="30d"), tmp_path / "flash.img", speed=60)
    board.start()
    try:
        assert _identify(board.port, 10) is not None
        assert deploy.stop_firmware(board.port, None) is not None  # maintenance reset: the REPL
        deploy._wait_repl(board.port)
        try:
            deploy._mpremote(board.port, "soft-reset", timeout=10)
        except UserError:
            pass  # the board may drop the connection as it restarts
        time.sleep(1.0)
        assert _identify(board.port, 3) is None, "main.py ran after a soft reset from the raw REPL"
        deploy._wait_repl(board.port)  # the REPL answers
        try:
            deploy._mpremote(board.port, "reset", timeout=10)
        except UserError:
            pass
        assert _identify(board.port, 15) is not None
    finally:
        board.close()


def test_deploy_restarts_with_a_hard_reset(micropython, tmp_path):
    """`isolog deploy` ends with `mpremote reset` and confirms the firmware answers."""
    board = VirtualBoard(
        dict(scenario(duration="30d"), board_config=None), tmp_path / "flash.img", speed=60, firmware="none"
    )
    board.start()
    try:
        said: list[str] = []
        ident = deploy.deploy(board.port, "sim", say=said.append)
        assert ident["board"] == "sim"
        assert any(e.kind == "reset" and "repl" in e.words for e in board.events)
    finally:
        board.close()
