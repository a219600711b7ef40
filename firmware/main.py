# Entry point on every board: starts logging by itself after power-up.
# `board` is the board module chosen at deploy time (boards/NAME.py installed as board.py).
#
# First thing: the USB link is binary from now on. Until kbd_intr(-1) a 0x03 byte from a host
# that polls the port raises KeyboardInterrupt (the ports' USB stacks act on it as it arrives),
# which no `except Exception` catches: the board would sit in the REPL with no watchdog running
# and the LEDs dark. And whatever still goes wrong while starting up resets the board instead
# of leaving it in the REPL (where nothing logs): engineers get the REPL through the maintenance
# request (`isolog deploy`), never by interrupting the firmware.
import micropython

micropython.kbd_intr(-1)

import sys  # noqa: E402


def _fatal(exc):
    # Never let a traceback reach stdout: it is the binary link.
    try:
        sys.print_exception(exc, sys.stderr)  # pyright: ignore
    except BaseException:  # noqa: B036 - reset whatever happens
        pass
    import board

    board.reset()


def main():
    import gc

    import logger
    import protocol
    import record

    import board

    buffers = protocol.allocate()  # first, before start-up's temporary buffers fragment the heap
    log_buf = bytearray(2 * record.MAX_CHUNK)  # the log store's batch and recovery window, early too
    b = board.Board()
    if logger.maintenance_requested(b):
        return  # `isolog deploy` asked for the REPL: no logging, no watchdog until the next reset
    app = logger.Logger(b, log_buf)
    protocol.Server(app, board.NAME, buffers)
    gc.collect()
    app.run()


try:
    main()
except SystemExit:
    raise  # the virtual board's own exits (power loss, reset, end of the scenario)
except BaseException as exc:  # noqa: B036 - KeyboardInterrupt and MemoryError too
    _fatal(exc)
