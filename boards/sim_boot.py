"""The virtual board's boot: what a board's ROM and _boot.py do before main.py.

Run by the launcher as `micropython -m sim_boot` on a pseudo-terminal: puts the link in raw mode,
mounts the flash image at /flash and makes it the working folder and import path (the firmware's
.mpy files and main.py live on the flash, installed like on a board), then runs main.py. With no
main.py, or in maintenance mode (the firmware was told to stop for a deploy), it exits with
REPL_EXIT and the launcher starts `micropython -i -m sim_boot repl`, which mounts the flash the
same way and leaves the REPL answering on the link, so mpremote can work on the board. (The
REPL cannot follow in the same process: with -i, every exit, a power loss too, enters the REPL.)
"""

import gc
import os
import sys
import termios

import vfs

gc.collect()
_BASE = gc.mem_alloc()  # the interpreter's own, before any model: a board has its equivalent

# The launcher models the USB stack's Ctrl-C handling from here on: before, the interpreter (the
# unix port inside its CPython wrapper) is not running yet, like a board still in its ROM.
sys.stderr.write("@sim vm\n")
termios.setraw(0)  # the device side of the link: no echo, no CR/LF translation, 0x03 is data

# The outside world's models, loaded before the firmware, stay loaded through wakes from deep sleep
# (they are not the board's RAM; made again at each wake they would cost the board's CPU time,
# which the energy model prices): the 1-Wire sensor and the secure element, and the UART REPL's
# model where the profile has one. Their objects are made again at each start (boards/sim.py).
import sim_atecc  # noqa: E402, F401
import sim_flash  # noqa: E402  (on MICROPYPATH: the build the launcher made)
import sim_onewire  # noqa: E402, F401

if os.getenv("ISOLOG_SIM_UART"):
    import sim_uart  # noqa: F401
if os.getenv("ISOLOG_SIM_SCENARIO"):
    sim_flash.scenario()  # kept through wakes too: parsed here, low in the heap

REPL_EXIT = sim_flash.REPL_EXIT


def _mount(tear=True):
    # As the board's _boot.py: VfsLfs2 with the board's read size, program size and lookahead
    # (boards/profiles.py; on the Pico progsize=256, ports/rp2/modules/_boot.py).
    flash = sim_flash.open_flash(tear)
    _block, read, prog, lookahead = sim_flash.GEOMETRY
    try:
        fs = vfs.VfsLfs2(flash, readsize=read, progsize=prog, lookahead=lookahead)
    except OSError:
        vfs.VfsLfs2.mkfs(flash, readsize=read, progsize=prog, lookahead=lookahead)
        fs = vfs.VfsLfs2(flash, readsize=read, progsize=prog, lookahead=lookahead)
    vfs.mount(fs, "/flash")
    os.chdir("/flash")
    sys.path[:] = ["/flash", "/flash/lib"] + [p for p in sys.path if p not in ("/flash", "/flash/lib")]


# A Ctrl-C from the link (the launcher's relay turns 0x03 into KeyboardInterrupt while the
# interrupt character is enabled, as a board's USB stack does) can arrive during this boot code
# too. On a board it interrupts _boot.py/boot.py, the port prints it and goes on to main.py
# (ports/rp2/main.c runs them one after the other): model that, boot code is not the firmware's.
for _attempt in range(100):
    try:
        _mount()
        break
    except KeyboardInterrupt:
        sim_flash.say("keyboard_interrupt", "in=boot")
        try:
            vfs.umount("/flash")
        except OSError:
            pass


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


# The filler (see _charge_models): made once, at the power-up, and kept through wakes from deep sleep;
# a wake only adds a small top-up. (Freeing a large block and making it again at each wake can fail
# on a heap the firmware's run left in pieces; a board's reset has no such memory.)
_FILLER = [None, None]
# What the firmware's runs left in the heap for good: the names (qstrs) its .mpy modules interned
# as they loaded, and any its code interned as it ran, which the interpreter never frees. A board's
# reset clears them and its imports intern them again from the firmware's heap; here the next wake
# finds them interned and allocates nothing for them: so they are the firmware's, charged to its
# budget at every wake from then on (the most any wake found; said in the log when it grows: this
# only ever leaves the firmware less heap than a board, never more).
_INTERNED = [0]


def _charge_models(wake=False):
    """Leave the firmware exactly the heap a board would: its budget (ISOLOG_SIM_HEAP, KiB as on
    a 32-bit board, scaled like -X heapsize=NwK) less what the interpreter held before the models
    and less the real board module's share. The models (sim.py and what it loads) took the rest of
    the launcher's extra heap; a bytearray fills what they left over."""
    try:
        import board  # the virtual board module, from the flash like the firmware's own import
    except ImportError:
        return  # not the firmware's flash: main.py fails as it would on a board
    board.preload()
    kib, board_module = sim_flash.env_ints("ISOLOG_SIM_HEAP")
    budget = kib * 1024 * (8 if sys.maxsize > 2**32 else 4) // 4
    _FILLER[1] = None
    gc.collect()
    extra = gc.mem_free() - (budget - _BASE - board_module)
    if wake:
        if -extra > _INTERNED[0]:
            _INTERNED[0] = -extra
            sim_flash.say("heap", "interned=%d" % _INTERNED[0])
        extra += _INTERNED[0]
    if extra < 0:
        sim_flash.say("model_heap", "short=%d" % -extra)
        raise RuntimeError("the virtual board's models took %d bytes past their allowance" % -extra)
    piece = bytearray(extra - 64) if extra > 64 else None  # 64: the object's own header
    _FILLER[1 if wake else 0] = piece
    gc.collect()
    # What the heap holds now that a board's would not (models and filler, less the board module's
    # charge): the host takes it off the board's mem_alloc to show the firmware's own (hil_tests).
    sim_flash.say("heap", "outside=%d" % (gc.mem_alloc() - _BASE - board_module))


def _run_main():
    """Run main.py (the firmware, until the scenario ends). True: it went to deep sleep and wakes."""
    try:
        import main  # noqa: F401
    except SystemExit as exc:
        if exc.args and exc.args[0] == sim_flash.DEEPSLEEP_EXIT:
            return True
        raise  # power loss, reset, end of the scenario: the board's own exits
    except BaseException as exc:  # noqa: B036 - KeyboardInterrupt too, as on a board
        # main.py ended with an uncaught exception: a board prints it and enters the REPL
        # (pyexec_file_if_exists("main.py") returns, then the REPL loop). With its watchdog
        # running, the REPL lasts until the watchdog resets the board; otherwise for good.
        sys.print_exception(exc, sys.stderr)  # pyright: ignore
        board = sys.modules.get("board")
        if board is not None and getattr(board, "WDT_RUNNING", [False])[0]:
            sim_flash.say("uncaught", type(exc).__name__, "watchdog_reset")
            sys.exit(sim_flash.RESET_EXIT)  # the watchdog restarts the board, main.py runs again
        sim_flash.say("uncaught", type(exc).__name__, "repl")
        sys.exit(REPL_EXIT)
    return False


if sys.argv[-1] == "repl":
    pass  # the REPL follows (-i)
elif _exists("/flash/data/maintenance"):
    os.remove("/flash/data/maintenance")
    sim_flash.say("maintenance")
    sys.exit(REPL_EXIT)
elif _exists("/flash/main.py"):
    _BOOT_MODULES = set(sys.modules)  # the interpreter's and this boot code's: not the firmware's RAM
    _charge_models()
    while _run_main():
        # A wake from deep sleep (boards/sim.py deepsleep): the CPU's RAM is gone, the program
        # starts again from main.py. In this process, for speed: every module the firmware and the
        # board module loaded is dropped (their state with them) and main.py runs afresh; what
        # outlives a sleep on a board (flash, RTC memory, the ULP's count, the outside world) is in
        # files and in sim_flash's small integers (WAKE, ENDED); the flash is mounted again.
        for _name in list(sys.modules):
            if _name not in _BOOT_MODULES:
                del sys.modules[_name]
        vfs.umount("/flash")  # the files the firmware left open go with its RAM
        gc.collect()
        _mount(tear=False)  # as _boot.py does at every start; the flash's counters from zero
        _charge_models(wake=True)
else:
    sim_flash.say("no_firmware")
    sys.exit(REPL_EXIT)
