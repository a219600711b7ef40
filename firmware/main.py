# Entry point on every board: starts logging by itself after power-up.
# `board` is the board module chosen at deploy time (boards/NAME.py installed as board.py).
import gc
import sys

import logger
import protocol

import board


def main():
    try:
        buffers = protocol.allocate()  # first, before start-up's temporary buffers fragment the heap
        b = board.Board()
        if logger.maintenance_requested(b):
            return  # `isolog deploy` asked for the REPL: no logging, no watchdog until the next reset
        app = logger.Logger(b)
        protocol.Server(app, board.NAME, buffers)
        gc.collect()
        app.run()
    except Exception as exc:
        # Never let a traceback reach stdout: it is the binary link. The watchdog resets the
        # board if this was fatal; logging resumes after the reset.
        sys.print_exception(exc, sys.stderr)  # pyright: ignore
        raise


main()
