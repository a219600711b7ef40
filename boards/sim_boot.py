"""The virtual board's boot: what a board's ROM and _boot.py do before main.py.

Run by the launcher as `micropython -m sim_boot` on a pseudo-terminal: puts the link in raw mode,
mounts the flash image at /flash and makes it the working folder and import path (the firmware's
.mpy files and main.py live on the flash, installed like on a board), then runs main.py. With no
main.py, or in maintenance mode (the firmware was told to stop for a deploy), it exits with
REPL_EXIT and the launcher starts `micropython -i -m sim_boot repl`, which mounts the flash the
same way and leaves the REPL answering on the link, so mpremote can work on the board. (The
REPL cannot follow in the same process: with -i, every exit, a power loss too, enters the REPL.)
"""

import os
import sys
import termios

import vfs

termios.setraw(0)  # the device side of the link: no echo, no CR/LF translation, 0x03 is data

import sim_flash  # noqa: E402  (on MICROPYPATH: the build the launcher made)

flash = sim_flash.open_flash()
try:
    fs = vfs.VfsLfs2(flash)
except OSError:
    vfs.VfsLfs2.mkfs(flash)
    fs = vfs.VfsLfs2(flash)
vfs.mount(fs, "/flash")
os.chdir("/flash")
sys.path[:] = ["/flash", "/flash/lib"] + [p for p in sys.path if p not in ("/flash", "/flash/lib")]


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


REPL_EXIT = 77

if sys.argv[-1] == "repl":
    pass  # the REPL follows (-i)
elif _exists("/flash/data/maintenance"):
    os.remove("/flash/data/maintenance")
    sim_flash.say("maintenance")
    sys.exit(REPL_EXIT)
elif _exists("/flash/main.py"):
    import gc

    gc.collect()
    import main  # noqa: F401  (runs the firmware until the scenario ends)
else:
    sim_flash.say("no_firmware")
    sys.exit(REPL_EXIT)
