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

# The built-in modules the firmware and the board modules use, bound under their plain names
# before anything imports them. For an "extensible" built-in (os, json, time, struct...)
# MicroPython searches every sys.path entry on the filesystem at each import statement before it
# falls back to the built-in, and it never keeps the built-in in sys.modules
# (py/builtinimport.c; the u-prefixed name is the built-in at once: tests/import/builtin_ext.py).
# On littlefs that search reads the directory's metadata: about 190 block reads an import
# statement on the virtual board's flash, and the modules hold about twenty of them: at every
# power-up, and in the low-power mode at every wake (firmware/sleep.py). Bound here, an import is
# a dictionary look-up, and no file on the flash can stand in for a built-in.
for _name in ("binascii", "errno", "hashlib", "io", "json", "os", "random", "select", "struct", "time"):
    try:
        sys.modules[_name] = __import__("u" + _name)
    except ImportError:  # a port without it: the firmware does not use it there
        pass
del _name


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
    import logstore

    import board

    # A timer wake from deep sleep with no host attached (the low-power mode, once a minute:
    # firmware/sleep.py) only takes its sample and sleeps again: the link (protocol.py, frame.py
    # and their buffers) is not loaded, about a fifth of a wake's work. A host that appears during
    # such a wake makes the logger start again with it (Logger.step).
    quiet_wake = getattr(board, "quiet_wake", None)
    quiet = quiet_wake is not None and quiet_wake()
    protocol = buffers = None
    if not quiet:
        import protocol

        # The long-lived buffers first, before start-up's temporary allocations fragment the heap.
        buffers = protocol.allocate()
    store_buf = logstore.allocate_buffer()
    b = board.Board()
    if logger.maintenance_requested(b):
        return  # `isolog deploy` asked for the REPL: no logging, no watchdog until the next reset
    app = logger.Logger(b, store_buf)
    if protocol is not None:
        protocol.Server(app, board.NAME, buffers)
    gc.collect()
    app.run()


try:
    main()
except SystemExit:
    raise  # the virtual board's own exits (power loss, reset, end of the scenario)
except BaseException as exc:  # noqa: B036 - KeyboardInterrupt and MemoryError too
    _fatal(exc)
