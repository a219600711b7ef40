"""Facts that differ per board, defined once. The host imports this module as
`isolog_boards.profiles` (the launcher, the flash image on the host, the tests); the launcher hands
the virtual board its row and the exit codes in the environment (sim_flash.py reads them), because
importing the whole table there would cost the firmware ~1 KiB of its heap budget.

Flash geometry: what MicroPython's littlefs uses on each board, i.e. the arguments its boot code
passes to vfs.VfsLfs2 (read size, program size, lookahead; MicroPython's defaults are 32, 32, 32:
extmod/vfs_lfs.c, lfs_make_allowed_args) and the block size its block device reports (ioctl 5).
Every value names its source (MicroPython master of the 1.29 era, read in the source;
docs/references.md#micropython-ports):

- pico: rp2.Flash, BLOCK_SIZE_BYTES = FLASH_SECTOR_SIZE = 4096 (ports/rp2/rp2_flash.c, pico-sdk
  hardware_flash); ports/rp2/modules/_boot.py mounts VfsLfs2(bdev, progsize=256) because "the flash
  requires the programming size to be aligned to 256 bytes" (pico-sdk flash_range_program works in
  256-byte pages, FLASH_PAGE_SIZE); read size and lookahead are the defaults.
- esp32s3: esp32.Partition "vfs", NATIVE_BLOCK_SIZE_BYTES = 4096 (ports/esp32/esp32_partition.c);
  ports/esp32/modules/_boot.py mounts it with vfs.mount(bdev, "/"), which autodetects littlefs
  and makes a VfsLfs2 with no arguments (extmod/vfs.c, mp_vfs_autodetect): the defaults, 32/32/32;
  inisetup.py formats it with VfsLfs2.mkfs(bdev), the same defaults.

A host writing an image a board will mount must use that board's program size: littlefs aligns
every program to it, and on the Pico a program that is not 256-byte aligned is not what the chip
does (the virtual board refuses it, sim_flash.py). Reading works with any program size.

Stdout path (`uart_repl_baud`): on the generic ESP32-S3 build, MICROPY_HW_ENABLE_UART_REPL is 1
(ports/esp32/boards/ESP32_GENERIC_S3/mpconfigboard.h), and mp_hal_stdout_tx_strn
(ports/esp32/mphalport.c) writes every stdout byte to UART0 first, blocking, at
MICROPY_HW_UART_REPL_BAUD = 115200 (ports/esp32/uart.h), then to USB CDC. uart_stdout_tx_strn
(ports/esp32/uart.c) fills the UART's TX FIFO and, while it is full, waits one FreeRTOS tick
(ulTaskNotifyTake(pdFALSE, 1)). isolog's own ESP32-S3 build (boards/micropython/ISOLOG_ESP32S3)
turns the UART REPL off: that is the "esp32s3" profile; "esp32s3-generic" is the stock download.
"""

try:
    from micropython import const
except ImportError:  # CPython (the host)

    def const(__expr):  # positional-only, as MicroPython's (no `/` in its grammar)
        return __expr


# Flash erase block of both boards (see the sources above): littlefs block size, 4 KiB.
BLOCK_SIZE = const(4096)

# The virtual board's exit codes (the launcher restarts it accordingly; host/isolog/sim/launcher.py).
POWER_LOSS_EXIT = const(75)  # power lost (scenario event, torn write, watchdog, unplugged)
RESET_EXIT = const(76)  # machine.reset() or a watchdog reset: power up again, main.py runs
REPL_EXIT = const(77)  # maintenance or nothing to run: the REPL answers on the link

# ESP32-S3 UART TX FIFO: SOC_UART_FIFO_LEN = 128 bytes (ESP-IDF components/soc/esp32s3/include/
# soc/soc_caps.h) [R: recalled, not read for isolog]; FreeRTOS tick 10 ms: CONFIG_FREERTOS_HZ is not
# set in MicroPython's ports/esp32/boards/sdkconfig.base (read), so ESP-IDF's default of 100 Hz
# applies [R: the ESP-IDF default recalled].
UART_FIFO_BYTES = const(128)

# The heap a real board's own module takes (boards/mcu.py with esp32s3.py and its ULP program
# esp32s3_ulp.py, the larger of the two boards since the low-power mode of issue 13: 14,112 with
# the ULP's LED table, 12,096 before it; with pico.py 9,312), as bytes of the unix port's 64-bit
# heap measured by tests/boards/test_board_heap.py, with room (esp32s3.py took 7,200 before the
# low-power mode). The secure element's driver
# (atecc.py) is loaded by the firmware at boot, from the firmware's heap on the virtual board too.
# The virtual board's models (sim.py, sim_flash.py, sim_onewire.py, sim_uart.py, sim_atecc.py,
# the scenario) stand in for C drivers a board has in ROM, or for other chips, and do not count
# against the firmware; the real board module does (sim_boot.py charges it).
BOARD_MODULE_HEAP_BYTES = const(14800)
RTOS_TICK_US = const(10_000)

# name: (block size, read size, program size, lookahead size, UART REPL baud or 0)
PROFILES = {
    "pico": (BLOCK_SIZE, 32, 256, 32, 0),
    "esp32s3": (BLOCK_SIZE, 32, 32, 32, 0),
    "esp32s3-generic": (BLOCK_SIZE, 32, 32, 32, 115200),
}
DEFAULT = "esp32s3"  # the virtual board's default geometry (the firmware starts in a 64 KiB heap with it; see README)


def profile(name):
    """(block, read, prog, lookahead, uart_repl_baud) of a board; ValueError for an unknown one."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError("unknown board profile %r: one of %s" % (name, ", ".join(sorted(PROFILES))))


def flash_geometry(name):
    """(block, read, prog, lookahead) of a board's littlefs."""
    return profile(name)[:4]


# littlefs settings MicroPython derives from those (extmod/vfs_lfsx.c, init_config): wear levelling
# moves metadata after 100 erase cycles, and the read/program cache is four times the larger of the
# read and program sizes, at most one block.
BLOCK_CYCLES = const(100)


def littlefs_config(name):
    """The littlefs configuration MicroPython's VfsLfs2 uses on a board, as keyword arguments
    (littlefs-python's names)."""
    block, read, prog, lookahead = flash_geometry(name)
    return {
        "block_size": block,
        "read_size": read,
        "prog_size": prog,
        "lookahead_size": lookahead,
        "cache_size": min(block, 4 * max(read, prog)),
        "block_cycles": BLOCK_CYCLES,
    }
