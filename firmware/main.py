# Entry point on every board: starts logging by itself after power-up.
# `board` is the board module chosen at deploy time (boards/NAME.py installed as board.py).
import sys

import board
import logger
import protocol


def main():
    try:
        app = logger.Logger(board.Board())
        app.link = protocol.Server(app, board.NAME)
        app.run()
    except Exception as exc:
        # Never let a traceback reach stdout: it is the binary link. The watchdog resets the
        # board if this was fatal; logging resumes after the reset.
        sys.print_exception(exc, sys.stderr)  # pyright: ignore
        raise


main()
