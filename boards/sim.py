"""The virtual board: the MicroPython unix port with simulated hardware.

Started by `isolog sim` (host/isolog/sim/launcher.py) through sim_boot.py, which mounts the flash
image (sim_flash.py) at /flash and runs main.py from it, as a board does. The launcher passes the
rest in the environment:

  ISOLOG_SIM_SCENARIO  the scenario as JSON (normalised by the host from TOML, see scenarios/)
  ISOLOG_SIM_SPEED     virtual seconds per real second; 0 runs as fast as the firmware can
  ISOLOG_SIM_T0_S      scenario time at this power-up (the launcher restarts the board after a
                       power loss at the scenario time the power comes back)
  ISOLOG_SIM_UNTIL_END "1": end (exit 0) when the scenario ends
  ISOLOG_SIM_SEED      seed of the pulse and noise generators
  ISOLOG_SIM_ID        device id (16 hex digits)
  ISOLOG_SIM_LOW_BATTERY_V  the low-battery level of the board it stands for (boards/energy.py)
  ISOLOG_SIM_RTC       the file holding RTC memory (kept through resets and deep sleep, deleted
                       by the launcher on a power loss)
  ISOLOG_SIM_LOW_POWER "1": the board sleeps between samples (an ESP32-S3 with its ULP counting)
  ISOLOG_SIM_UART      "baud,fifo_bytes,tick_us" of the generic ESP32-S3 build's UART REPL, which
                       every link byte goes through first (sim_uart.py), or unset (boards/profiles.py)
  ISOLOG_SIM_SE        the secure element's memory (sim_atecc.py), a file outside the flash image;
                       unset: no secure element on the I2C bus

The USB link is stdin/stdout, which the launcher relays to a pseudo-terminal. Messages for the
launcher go to stderr as lines starting with "@sim ". A power loss ends the process with exit
code POWER_LOSS_EXIT after marking the flash dead, so nothing written afterwards (finalizers) reaches it.

Deep sleep (issue 13 item 3): with ISOLOG_SIM_LOW_POWER=1 the board stands for an ESP32-S3 whose
ULP counts while the CPU sleeps (low_power; the firmware then sleeps between samples,
firmware/sleep.py). deepsleep(ms) lets the virtual time pass with the CPU off (the scenario's events
and end included; a host writing on the link wakes the board early, as VBUS does: wake_reason()
"usb"), then the program starts again from main.py, as a port does on a wake: sim_boot.py drops
every module the firmware and this module loaded (their RAM) and runs main.py again in the same
process (a wake costs ~10 ms here, not a new interpreter's ~80 ms). RTC memory
(rtc_memory()) and the flash survive; the ULP's counter keeps counting through the sleep: the first
counts() after the wake includes the pulses of the slept interval. lightsleep(ms) pauses the CPU
with the counter running.

The clock is virtual: time advances only while the firmware idles, by the time it asked to idle.
At speed S the board sleeps ms/S real milliseconds; input on the link ends the idle early.

Energy: the board reports, every virtual hour and when it stops, the time it spent in each state
the energy model prices (boards/energy.py, on the host): "@sim energy up_ms=... cpu_us=...
flash_us=... conv=... ow_resets=... ow_bytes=... green_ms=... red_ms=... usb_ms=... light_ms=...
wakes=...", cumulative since this start (wakes=1: the start was a wake from deep sleep, whose ROM and
bootloader time the model prices). USB counts as attached while the link carried input in the last
_USB_ACTIVE_MS (the "syncing" LED's time: a host talks at least that often).
"""

# The built-ins by their u-names: a plain `import json` searches the flash for json.py first, at
# every import statement (firmware/main.py says why it binds the plain names); this module is
# imported again at every wake from deep sleep, and its cost is the model's, not the board's.
import math
import sys

import sim_flash
import uos as os
import urandom as random
import uselect as select
import utime as time
from sim_onewire import SimDS18B20Bus

NAME = "sim"
POWER_LOSS_EXIT = sim_flash.POWER_LOSS_EXIT  # boards/profiles.py, through the launcher
RESET_EXIT = sim_flash.RESET_EXIT  # machine.reset(): the launcher powers the board up again at once
DEEPSLEEP_EXIT = sim_flash.DEEPSLEEP_EXIT  # deepsleep(ms): unwinds to sim_boot.py, which starts the program again
_RTC_MEMORY_BYTES = 2048  # machine.RTC().memory() on esp32: up to 2 KiB (docs/references.md)
# time.ticks_ms() wraps; the firmware's time.ticks_diff() must see the same period as this port's.
_TICKS_PERIOD = time.ticks_add(0, -1) + 1
WDT_RUNNING = [False]  # set by wdt_start: sim_boot.py resets rather than idling in the REPL

# How much slower a board runs the firmware's bytecode than this host's unix port. An estimate,
# not a measurement (no board on this bench yet): a 125 MHz Cortex-M0+ against a desktop core,
# issue 12 put a 112 ms scan on the PC at 5-11 s on an RP2040 (45-100x); the low end is taken, so
# the model never exaggerates. The ESP32-S3 (240 MHz LX7) is faster: the RP2040 is the bound.
_CPU_SLOWDOWN = 45
# A board at a lower clock runs slower still: the launcher passes its board's factor
# (boards/energy.py, cpu_slowdown; 117 for the Pico at 48 MHz); never below the estimate above.
_CPU_SLOWDOWN = max(_CPU_SLOWDOWN, int(os.getenv("ISOLOG_SIM_CPU_SLOWDOWN") or _CPU_SLOWDOWN))
_ENERGY_EVERY_MS = 3_600_000  # an "@sim energy" line every virtual hour (an interrupted run keeps them)
_USB_ACTIVE_MS = 3000  # firmware/logger.py _SYNC_LED_MS
# A low-power board takes a host as plugged in (VBUS) this long after the host's last byte: longer
# than the pauses of a sync (boards/sim.py usb_present; a real board senses VBUS on a pin).
_VBUS_HOLD_MS = 10_000
_SCHEDSTAT_BUF = bytearray(64)


def _cpu_us():
    """CPU time this process ran, in us (Linux /proc/self/schedstat, first field, ns); 0 where
    there is none (the model then counts idle and flash time only). Allocates nothing after the
    first call: the simulation must not take heap the firmware would have on a board."""
    f = sim_flash.SCHEDSTAT
    if f is None:
        return 0
    f.seek(0)
    n = f.readinto(_SCHEDSTAT_BUF)
    ns = 0
    for i in range(n):
        c = _SCHEDSTAT_BUF[i]
        if c < 48 or c > 57:
            break
        ns = ns * 10 + c - 48
    return ns // 1000


def _lit_ms(steps, ms):
    """(green, red) ms lit when the LED steps [(green, red, ms), ...] play cyclically for ms from
    their first step, as the boards' LED player does after every change (boards/mcu.py)."""
    cycle = 0
    for step in steps:
        cycle += step[2]
    if cycle <= 0 or ms <= 0:
        return 0, 0
    full, rest = divmod(ms, cycle)
    green = red = 0
    for g, r, d in steps:
        on = d * full + min(d, rest)
        rest = max(0, rest - d)
        if g:
            green += on
        if r:
            red += on
    return green, red


def reset():
    """Hard reset without a Board (main.py after a start-up exception): as machine.reset()."""
    _say("reset", "start-up")
    raise SystemExit(RESET_EXIT)


def quiet_wake():
    """True at a timer wake from deep sleep (a host on the link wakes the board as "usb"): as
    esp32s3.py's, asked before Board() is made."""
    return sim_flash.WAKE[0] == 1


def _env(name, default=""):
    value = os.getenv(name)
    return default if value is None else value


_say = sim_flash.say


def _interp(points, t):
    """Piecewise-linear profile [[t, v], ...]; constant beyond the ends."""
    if not points:
        return 0.0
    if t <= points[0][0]:
        return points[0][1]
    for i in range(1, len(points)):
        t1, v1 = points[i]
        if t <= t1:
            t0, v0 = points[i - 1]
            return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1
    return points[-1][1]


def _poisson(mean):
    """Poisson sample: Knuth's method for small means, the normal approximation above 30."""
    if mean <= 0:
        return 0
    if mean < 30:
        limit = math.exp(-mean)
        k = 0
        p = random.random()
        while p > limit:
            k += 1
            p *= random.random()
        return k
    u1 = random.random() or 1e-12
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * random.random())
    return max(0, int(mean + math.sqrt(mean) * z + 0.5))


_SCENARIO = None  # loaded by preload()
_I2C = None  # the board's I2C bus (sim_atecc.py), made by preload()


def preload():
    """Load the virtual board's models before the firmware starts (sim_boot.py): the scenario and
    the UART model stand in for the outside world and a board's C drivers, so their heap is not
    the firmware's (sim_boot.py then leaves the firmware exactly a board's heap)."""
    global _SCENARIO, _I2C
    if _SCENARIO is None:
        _SCENARIO = sim_flash.scenario()
    if _I2C is None:
        # The I2C bus, with the secure element on it when the launcher fitted one: its memory is a
        # file next to the flash image, never in it (ISOLOG_SIM_SE).
        import sim_atecc

        # The bus and the chip live in the virtual time: the driver's waits take no real time (the
        # virtual clock stands, as while the firmware computes: counted as waited_us, not priced),
        # and the chip's watchdog sleeps it while the board deep-sleeps.
        _I2C = sim_atecc.VirtualTimeI2C()
        se_path = os.getenv("ISOLOG_SIM_SE")
        if se_path:
            _I2C.devices[sim_atecc.ADDRESS] = sim_atecc.SimATECC608(se_path, clock_ms=sim_flash.now_ms)
    if os.getenv("ISOLOG_SIM_UART"):
        import sim_uart  # noqa: F401


class Board:
    def __init__(self):
        preload()
        self.sc = _SCENARIO
        self.speed = float(_env("ISOLOG_SIM_SPEED", "0"))
        self.low_battery_v = float(_env("ISOLOG_SIM_LOW_BATTERY_V", "3.4"))
        self.t0_ms = int(float(_env("ISOLOG_SIM_T0_S", "0")) * 1000)
        # a wake from deep sleep, in this process (deepsleep(), sim_boot.py)
        wake = sim_flash.WAKE
        cpu0 = _cpu_us()
        if wake[0]:
            self.t0_ms = wake[3]
        self.until_end = _env("ISOLOG_SIM_UNTIL_END") == "1"
        # "hold": at the end the clock stops and the board stays up, serving the link (a shipment
        # that arrived, waiting to be synced)
        self.hold_at_end = _env("ISOLOG_SIM_UNTIL_END") == "hold"
        self._held = False
        self._ended = bool(sim_flash.ENDED[0])
        sim_flash.ENDED[0] = 0
        self.end_ms = int(self.sc["duration_s"] * 1000)
        random.seed(int(_env("ISOLOG_SIM_SEED", "1")) * 1000003 + self.t0_ms)
        self.id = bytes.fromhex(_env("ISOLOG_SIM_ID", "15010c0000000001"))
        self.uptime_ms = 0
        wrap_after_s = self.sc.get("ticks_wrap_after_s")
        # A board's ticks restart at 0 at every power-up: only the first one starts near the wrap.
        self._ticks0 = 0
        if wrap_after_s is not None and self.t0_ms == 0:
            self._ticks0 = (_TICKS_PERIOD - int(wrap_after_s * 1000)) % _TICKS_PERIOD
        self._real0 = time.ticks_ms()
        self.flash = sim_flash.FLASH  # mounted at /flash by sim_boot.py, like a board's root
        self.flash.clock = self.now_s
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._stdin = sys.stdin.buffer
        self._one = bytearray(1)
        self._stdout = sys.stdout.buffer
        # The generic ESP32-S3 build's stdout path: loaded only for that profile (its code would
        # take heap from the firmware on the others).
        self._uart = None
        if os.getenv("ISOLOG_SIM_UART"):
            import sim_uart

            self._uart = sim_uart.UartRepl(self, sim_flash.env_ints("ISOLOG_SIM_UART"))
        self._bus = SimDS18B20Bus()
        self._override = {}  # simulated sensors set by diagnostics (test mode), over the scenario
        self._counts = 0
        self._counts_at_ms = 0
        self.woke = None  # None: a power-on or reset; else the ms slept in deep sleep
        self._wake_kind = "power_on"
        # ISOLOG_SIM_LOW_POWER=1: the board stands for an ESP32-S3 with its ULP counting, which
        # sleeps between samples (firmware/sleep.py); else it idles like every board before.
        self.low_power = _env("ISOLOG_SIM_LOW_POWER") == "1"
        self._light_ms = 0
        self._slept_ms = 0  # deep sleep (its time is not the CPU's: "sleep_ms" in the energy line)
        self._asleep_at = None
        if wake[0]:  # (kind, slept ms, counts, scenario ms, CPU us): the ULP counted on
            kind, slept, counts, self.t0_ms, cpu0 = wake
            wake[0] = 0  # once
            self._wake_kind = "usb" if kind == 2 else "deepsleep"
            self.woke = slept
            self._counts = counts
            self._counts_at_ms = -self.woke  # the first counts() adds the slept interval's pulses
        self._noise_c = self.sc.get("temperature", {}).get("noise_c", 0.0)
        self._events = sorted(self.sc.get("events", []), key=lambda e: e["at_s"])
        self._wdt_ms = 0
        self._wdt_fed = 0
        self.led_state = ""
        self.led_steps = ()
        # energy model counters (see the module header); the CPU's time counts from the wake,
        # the firmware's start-up included
        self._cpu0_us = cpu0
        self._led_since_ms = 0
        self._green_ms = 0
        self._red_ms = 0
        self._usb_ms = 0
        self._rx_ms = 0 if self._wake_kind == "usb" else -_VBUS_HOLD_MS  # a host woke it: plugged in
        self._energy_at_ms = _ENERGY_EVERY_MS
        self.rtc_valid = self.sc.get("start_epoch_s") is not None and (
            self.t0_ms == 0 or self.sc.get("rtc_backup", False)
        )
        self.rtc_base_ms = 0
        if self.rtc_valid:
            self.rtc_base_ms = int(self.sc["start_epoch_s"] * 1000) + self.t0_ms
        sim_flash.NOW_MS[0] = self.t0_ms  # the devices' clock (the secure element's watchdog)
        _say("boot", "t=%d" % (self.t0_ms // 1000))
        if _env("ISOLOG_SIM_START_FAULT") == "1":  # VirtualBoard(start_faults=N): a failing start-up
            raise RuntimeError("simulated start-up fault")
        # VirtualBoard(start_delay_ms=N): a start-up as slow as a real board's (flash mount, sensor
        # presence), during which a host may already be writing to the link.
        time.sleep_ms(int(_env("ISOLOG_SIM_START_DELAY_MS", "0")))
        self._update_sensors()

    # --- time ----------------------------------------------------------------------------------

    def now_s(self):
        """Scenario time in seconds."""
        return (self.t0_ms + self.uptime_ms) / 1000

    def ticks_ms(self):
        # Wraps like time.ticks_ms(), with the period time.ticks_diff() uses in this port (2**62 on
        # the 64-bit unix port, 2**30 on the boards): a scenario's ticks_wrap_after starts the
        # counter that long before its wrap, so the firmware lives through one.
        return (self._ticks0 + self.uptime_ms) % _TICKS_PERIOD

    def idle(self, ms):
        # Stop at the next scenario event, so power loss happens at its time.
        now = self.t0_ms + self.uptime_ms
        for ev in self._events:
            at = int(ev["at_s"] * 1000)
            if at > now:
                ms = min(ms, at - now)
                break
        if self.until_end or self.hold_at_end:
            if now >= self.end_ms:  # the firmware had its turn at the end time
                if self.until_end:
                    self._ended = True
                    return
                if not self._held:
                    self._held = True
                    self._report()
                    _say("end", "t=%.3f" % self.now_s(), "holding")
                self._poll.poll(min(ms, 100))  # time stands still; the link is served
                return
            ms = min(ms, self.end_ms - now)
        if self.speed > 0:
            # Virtual time never runs ahead of real time x speed (checked on the totals, so
            # sub-millisecond waits add up correctly).
            real = time.ticks_diff(time.ticks_ms(), self._real0)
            wait = int((self.uptime_ms + ms) / self.speed) - real
            ready = self._poll.poll(wait) if wait > 0 else None
            if ready and not self._link_eof(ready):  # input on the link: virtual time went on at the real pace
                real = time.ticks_diff(time.ticks_ms(), self._real0)
                ms = max(0, min(ms, int(real * self.speed) - self.uptime_ms))
        elif self._ready() and not self._link_eof(self._poll.poll(0)):
            ms = 0
        since_rx = self.uptime_ms - self._rx_ms
        if since_rx < _USB_ACTIVE_MS:
            self._usb_ms += min(ms, _USB_ACTIVE_MS - since_rx)
        self.uptime_ms += ms
        sim_flash.NOW_MS[0] = self.t0_ms + self.uptime_ms
        if self.uptime_ms >= self._energy_at_ms and self._asleep_at is None:
            self._energy_at_ms += _ENERGY_EVERY_MS
            self._energy()
        self._check_watchdog()
        self._update_sensors()

    def _link_eof(self, events):
        """The launcher closed the board's end of the cable, or went away: the board is unplugged
        from everything, power included. Stop like a power loss (no orphan keeps running)."""
        for _, ev in events:
            if ev & (select.POLLHUP | select.POLLERR):
                self.flash.dead = True
                raise SystemExit(POWER_LOSS_EXIT)
        return False

    def running(self):
        if self._ended:
            self._report()
            _say("end", "t=%.3f" % self.now_s())
            return False
        return True

    def _energy(self):
        g, r = _lit_ms(self.led_steps, self.uptime_ms - self._led_since_ms)
        bus = self._bus
        slept = self._slept_ms + (0 if self._asleep_at is None else self.uptime_ms - self._asleep_at)
        _say(
            "energy",
            "up_ms=%d" % (self.uptime_ms - slept),
            "sleep_ms=%d" % slept,
            "cpu_us=%d" % (_cpu_us() - self._cpu0_us),
            "flash_us=%d" % self.flash.busy_us,
            "conv=%d" % bus.conversions,
            "ow_resets=%d" % bus.resets,
            "ow_bytes=%d" % bus.bytes,
            "green_ms=%d" % (self._green_ms + g),
            "red_ms=%d" % (self._red_ms + r),
            "usb_ms=%d" % self._usb_ms,
            "light_ms=%d" % self._light_ms,
            "wakes=%d" % (self._wake_kind != "power_on"),  # this start was a wake from deep sleep
        )

    def _report(self):
        self._energy()
        f = self.flash
        _say("flash", "ops=%d" % f.ops, "erases=%d" % f.erases, "programmed=%d" % f.programmed)
        if self._uart is not None:
            _say("uart_repl", "blocked_ms=%d" % (self._uart.blocked_us // 1000))
        se = _I2C.devices.get(0x60) if _I2C is not None else None
        if se is not None:
            _say("secure_element", "commands=%d" % se.commands, "wakes=%d" % se.wakes, "waited_us=%d" % _I2C.waited_us)

    # --- scenario ------------------------------------------------------------------------------

    def _active(self, kind, t_s):
        for ev in self._events:
            if ev["kind"] == kind and ev["at_s"] <= t_s < ev["at_s"] + ev.get("duration_s", 0):
                return ev
        return None

    def _update_sensors(self):
        t = self.now_s()
        now_ms = self.t0_ms + self.uptime_ms
        for ev in self._events:
            if ev["kind"] == "power_loss" and self.t0_ms < ev["at_s"] * 1000 <= now_ms:
                self.flash.dead = True
                self._report()
                _say("power_loss", "t=%.3f" % ev["at_s"], "off=%s" % ev.get("off_s", 0), "scenario")
                raise SystemExit(POWER_LOSS_EXIT)
        fault = self._active("temp_fault", t)
        over = self._override
        if "fault" in over:
            self._bus.set_fault(over["fault"])
        else:
            self._bus.set_fault(fault.get("mode", "unplugged") if fault else None)
        temp = over.get("temp_c")
        if temp is None:
            temp = _interp(self.sc.get("temperature", {}).get("points", []), t)
        if self._noise_c:
            temp += self._noise_c * (random.random() * 2 - 1)
        self._bus.set_c(temp)

    def dose_rate_usv_h(self, t_s):
        """Dose rate the tube sees at scenario time t_s (source plus background)."""
        dose = self.sc.get("dose", {})
        tube = self.sc["tube"]
        if "dose_usv_h" in self._override:
            return self._override["dose_usv_h"]
        if self._active("gm_silent", t_s):
            return 0.0
        sat = self._active("saturate", t_s)
        if sat:
            return sat["usv_h"]
        rate = dose.get("initial_usv_h", 0.0)
        half = dose.get("half_life_s", 0)
        if half:
            rate *= 2.0 ** (-t_s / half)
        for at, factor in dose.get("steps", []):
            if t_s >= at:
                rate *= factor
        return rate + tube.get("background_usv_h", 0.0)

    # --- sensors -------------------------------------------------------------------------------

    def counts(self):
        """Pulses since the last call: Poisson with the non-paralyzable dead time of the tube."""
        now = self.uptime_ms
        dt_s = (now - self._counts_at_ms) / 1000
        if dt_s > 0:
            tube = self.sc["tube"]
            t_mid = (self.t0_ms + self._counts_at_ms) / 1000 + dt_s / 2
            n = self.dose_rate_usv_h(t_mid) * tube["cpm_per_usv_h"] / 60.0
            m = n / (1.0 + n * tube["dead_time_us"] * 1e-6)
            self._counts = (self._counts + _poisson(m * dt_s)) & 0x3FFFFFFF
            self._counts_at_ms = now
        return self._counts

    def temp_bus(self):
        return self._bus

    def battery_v(self):
        points = self.sc.get("battery", {}).get("points")
        return _interp(points, self.now_s()) if points else None

    # --- outputs -------------------------------------------------------------------------------

    def leds(self, steps, name):
        g, r = _lit_ms(self.led_steps, self.uptime_ms - self._led_since_ms)
        self._green_ms += g
        self._red_ms += r
        self._led_since_ms = self.uptime_ms
        self.led_steps = steps
        if name != self.led_state:
            self.led_state = name
            _say("led", name, "t=%d" % self.now_s())

    # --- watchdog: virtual, like the boards' (a stalled loop resets the board) ------------------

    # The time a real board spends between two feeds is (1) the virtual time it idled, (2) the CPU
    # time the firmware ran, on a chip much slower than this host (_CPU_SLOWDOWN), and (3) the time
    # the flash was busy erasing and programming, during which an RP2040 stalls both cores
    # (sim_flash.py: typical W25Q16JV figures). All three count against the watchdog's timeout,
    # checked at every feed and every flash operation.

    def wdt_start(self, timeout_ms):
        WDT_RUNNING[0] = True
        self._wdt_ms = timeout_ms
        self._wdt_fed = self.uptime_ms
        self._wdt_fed_cpu_us = _cpu_us()
        self._wdt_fed_flash_us = self.flash.busy_us
        self.flash.on_op = self._check_watchdog

    def wdt_feed(self):
        self._check_watchdog()
        self._wdt_fed = self.uptime_ms
        self._wdt_fed_cpu_us = _cpu_us()
        self._wdt_fed_flash_us = self.flash.busy_us

    def _check_watchdog(self):
        if not self._wdt_ms:
            return
        cpu_ms = (_cpu_us() - self._wdt_fed_cpu_us) * _CPU_SLOWDOWN // 1000
        flash_ms = (self.flash.busy_us - self._wdt_fed_flash_us) // 1000
        idle_ms = self.uptime_ms - self._wdt_fed
        if idle_ms + cpu_ms + flash_ms > self._wdt_ms:
            _say(
                "watchdog_reset",
                "t=%d" % self.now_s(),
                "idle_ms=%d" % idle_ms,
                "cpu_ms=%d" % cpu_ms,
                "flash_ms=%d" % flash_ms,
            )
            self.flash.dead = True
            raise SystemExit(POWER_LOSS_EXIT)

    # --- link ----------------------------------------------------------------------------------

    def link_readinto(self, buf):
        # A stream read waits until the whole buffer is filled: read byte by byte while input is
        # pending (like the boards, whose stdin has the same behaviour).
        n = 0
        one = self._one
        while n < len(buf) and self._ready():
            if not self._stdin.readinto(one):
                break
            buf[n] = one[0]
            n += 1
        if n:
            self._rx_ms = self.uptime_ms
        return n

    def _ready(self):
        for _ in self._poll.ipoll(0):
            return True
        return False

    def link_write(self, data):
        if self._uart is not None:
            self._uart.write(len(data))
        self._stdout.write(data)

    # --- diagnostics (test mode; firmware/protocol.py) -----------------------------------------

    def diag(self, op, req):
        """inject: add pulses to the counter now. sensor: set (or with null, give back to the
        scenario) temp_c, fault (unplugged, crc, power_on) and dose_usv_h."""
        if op == "inject":
            n = req.get("pulses", 0)
            if not isinstance(n, int) or not 0 <= n < 1 << 30:
                raise ValueError("pulses: a count required")
            self.counts()  # the scenario's pulses up to now first
            self._counts = (self._counts + n) & 0x3FFFFFFF
            return {"counts": self._counts}
        if op == "sensor":
            self.counts()  # the pulses of the interval so far, at the rate before the change
            for key in ("temp_c", "fault", "dose_usv_h"):
                if key in req:
                    if req[key] is None:
                        self._override.pop(key, None)
                    else:
                        self._override[key] = req[key]
            self._update_sensors()
            return {"override": self._override}
        raise ValueError("the virtual board has no diagnostic operation %s" % op)

    # --- storage, clock, identity --------------------------------------------------------------

    def mount(self):
        try:
            os.mkdir("/flash/data")
        except OSError:
            pass
        return "/flash/data"

    def reset(self):
        _say("reset", "t=%.3f" % self.now_s())
        raise SystemExit(RESET_EXIT)

    # --- deep sleep (see the module header) ----------------------------------------------------

    def wake_reason(self):
        """ "deepsleep" after a timer wake from deep sleep, "usb" after a wake by a host on the
        link (VBUS, an ext0 wake on a board), else "power_on" (a power-up or a reset)."""
        return self._wake_kind

    def slept_ms(self):
        """Time since the deepsleep() call this power-up woke from (as the RTC measures it): the
        sleep and this wake's start-up so far; 0 after a power-on."""
        return 0 if self.woke is None else self.woke + self.uptime_ms

    def usb_present(self):
        """VBUS: the virtual board has no cable to sense, so a host counts as plugged in while it
        talked in the last _VBUS_HOLD_MS (or woke the board); always on a board that never sleeps."""
        if not self.low_power:
            return True
        return self.uptime_ms - self._rx_ms < _VBUS_HOLD_MS

    def lightsleep(self, ms):
        """The CPU paused for ms, the ULP counting; input on the link (VBUS) ends it early."""
        before = self.uptime_ms
        self.idle(ms)
        self._light_ms += self.uptime_ms - before

    def rtc_memory(self, data=None):
        """Read (no argument) or write the RTC memory, as machine.RTC().memory()."""
        path = _env("ISOLOG_SIM_RTC")
        if data is None:
            try:
                with open(path, "rb") as f:
                    return f.read()
            except OSError:
                return b""
        if len(data) > _RTC_MEMORY_BYTES:
            raise ValueError("RTC memory holds %d bytes" % _RTC_MEMORY_BYTES)
        with open(path, "wb") as f:
            f.write(data)

    def deepsleep(self, ms):
        """Sleep ms with the CPU off, then start again from main.py (never returns): the time
        passes here (the scenario's events, its end and power losses included; a host writing on
        the link wakes the board early, as VBUS does), then SystemExit(DEEPSLEEP_EXIT) unwinds to
        sim_boot.py, which drops the firmware's modules (its RAM) and runs main.py again in this
        process. The LED pattern goes on through the sleep (the energy line counts it)."""
        if self._ended:  # woken for the scenario's end and asleep again: the run is over
            self._report()
            _say("end", "t=%.3f" % self.now_s())
            raise SystemExit(0)
        counts = self.counts()  # the ULP takes over the count from here
        # link=0: this start did not load the firmware's link (a quiet wake, firmware/main.py)
        link = "protocol" in sys.modules
        _say("deepsleep", "t=%.3f" % self.now_s(), "ms=%d" % ms, "counts=%d" % counts, "link=%d" % link)
        self._wdt_ms = 0  # the CPU is off: no watchdog until the firmware starts it again
        self._asleep_at = self.uptime_ms
        kind = "deepsleep"
        left = ms
        while left > 0 and not self._ended:
            before = self.uptime_ms
            self.idle(left)  # raises on a power loss in the scenario
            left -= self.uptime_ms - before
            if self._ready():  # held at the scenario's end, it sleeps until a host comes
                kind = "usb"
                break
        slept = self.uptime_ms - self._asleep_at
        self._slept_ms += slept
        self._asleep_at = None
        if self._ended:
            # The scenario ended while it slept: it wakes for the end, as an awake board meets it
            # (running() is False at once, the firmware stops as it does then)
            sim_flash.ENDED[0] = 1
        self._report()
        w = sim_flash.WAKE
        w[1], w[2], w[3], w[4] = slept, counts, self.t0_ms + self.uptime_ms, _cpu_us()
        w[0] = 2 if kind == "usb" else 1
        raise SystemExit(DEEPSLEEP_EXIT)

    def rtc_ms(self):
        return self.rtc_base_ms + self.uptime_ms if self.rtc_valid else None

    def rtc_set_ms(self, epoch_ms):
        if self.sc.get("rtc_backup", False):
            self.rtc_valid = True
            self.rtc_base_ms = epoch_ms - self.uptime_ms

    def unique_id(self):
        return self.id

    def secure_element(self):
        """The ATECC608B on the I2C bus (boards/atecc.py, talking to sim_atecc.py), or None when
        none answers: detected at every boot, as the real boards do."""
        import atecc

        return atecc.detect(_I2C)
