"""The logger's wake from deep sleep (firmware/logger.py _saved_state, firmware/sleep.py) on the
fake board, where a test can change the flash while the CPU is off: the saved state is used only if
the flash is exactly as the sleep left it; otherwise the wake is a boot like any other."""

from __future__ import annotations

import pytest

from fakes import FakeBoard, Firmware


class _Slept(Exception):
    """The firmware called deepsleep(ms): on a board that call never returns."""


class SleepyBoard(FakeBoard):
    """The fake board with the low-power surface of boards/esp32s3.py: RTC memory, the wake reason,
    deep sleep (the CPU off, its RAM lost) and light sleep. No host attached (no VBUS)."""

    low_power = True

    def __init__(self, **kw):
        self.rtc_mem = b""
        self.reason = "power_on"
        self.slept = 0
        super().__init__(**kw)

    def wake_reason(self) -> str:
        return self.reason

    def rtc_memory(self, data=None):
        if data is None:
            return self.rtc_mem
        self.rtc_mem = bytes(data)
        return None

    vbus = False  # a USB host plugged in

    def usb_present(self) -> bool:
        return self.vbus

    def slept_ms(self) -> int:
        return self.slept

    def lightsleep(self, ms: int) -> None:
        self.idle(ms)

    def deepsleep(self, ms: int) -> None:
        raise _Slept(ms)

    def until_asleep(self, seconds: float = 600) -> int:
        """Run until the firmware deep-sleeps: the ms it asked to sleep."""
        with pytest.raises(_Slept) as info:
            self.run_for(seconds)
        return info.value.args[0]

    def wake(self, ms: int, quiet: bool = False) -> None:
        """ms later, the timer wakes the CPU: its RAM is gone (the firmware's modules load afresh,
        main.py runs again); the RTC, RTC memory and the flash are as they were. quiet: as
        main.py starts a timer wake with no host, without the link."""
        self.uptime_ms += ms
        self.slept = ms
        self.reason = "timer"
        self.fw = Firmware(self.fs)
        if self.se_chip is not None:
            self.se_chip._to_sleep()
        self.app = self.fw.load("logger").Logger(self)
        self.server = None if quiet else self.fw.load("protocol").Server(self.app, self.NAME)


def _asleep_with_a_batch() -> tuple[SleepyBoard, int, int]:
    """A configured board, asleep after its third sample (three records in the batch in RTC
    memory): (board, its boot, the firmware's uptime when it went to sleep)."""
    b = SleepyBoard()
    b.configure()
    ms = b.until_asleep()
    for _ in range(3):
        b.wake(ms)
        ms = b.until_asleep()
    assert b.app.store.count == 3 and b.app.boot == 1
    return b, b.app.boot, b.app.uptime_ms


def test_a_wake_goes_on_with_the_boot_the_uptime_and_the_batch():
    b, boot, uptime = _asleep_with_a_batch()
    ms = 40_000
    b.wake(ms)
    assert b.app.boot == boot
    assert b.app.uptime_ms == uptime + ms  # the time slept counts: one clock across wakes
    assert b.app.store.count == 3


def test_a_flash_changed_while_asleep_makes_the_wake_a_boot():
    b, boot, _ = _asleep_with_a_batch()
    b.fs.files["data/seq"] = bytearray(b"12345")  # the high-water mark is not the saved one
    b.wake(40_000)
    assert b.app.boot == boot + 1  # a new boot: its records carry the boot flag
    # its uptime starts again, as after any boot (not the old boot's uptime with the sleep added)
    assert b.app.uptime_ms == 0
    assert b.app.store.count == 0  # the batch in RTC memory is not evidence: dropped
    assert b.app.store.next_seq == 12345


def test_a_host_plugged_in_during_a_quiet_wake_starts_the_board_again_with_the_link():
    b, boot, _ = _asleep_with_a_batch()
    b.wake(40_000, quiet=True)
    assert b.app.link is None
    b.vbus = True  # a courier plugs the board into the return desk's host during the wake
    ms = b.until_asleep()
    assert ms == 1  # a deep sleep that only starts the program again: VBUS wakes it at once
    b.wake(ms)  # a start with the link (main.py: VBUS present)
    assert b.app.link is b.server and b.app.boot == boot and b.app.store.count == 3
    b.run_for(120)  # plugged in, the board stays awake and logs
    assert b.app.store.count >= 4
