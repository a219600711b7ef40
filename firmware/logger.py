# The logger: samples the Geiger-Mueller counter and the temperature every interval, evaluates
# alarms, logs records, drives the status LEDs and serves the USB link between samples.
# Board specifics come only through the `board` object (boards/README.md).
import json
import os
import time

import alarms
import config
import counting
import leds
import logstore
import mac
import record
import temperature

try:
    from micropython import const
except ImportError:  # CPython: the host shares this file (package isolog_fw) and tests run it

    def const(__expr):  # positional-only, as MicroPython's (no `/` in its grammar)
        return __expr


TYPE_CHECKING = False  # no typing module on the boards
if TYPE_CHECKING:
    from protocol import Server  # noqa: F401 - used in a type comment (self.link)

_COUNT_MASK = const(0x3FFFFFFF)  # boards report the hardware count masked to 30 bits
WDT_TIMEOUT_MS = const(8000)  # RP2040's watchdog allows at most 8388 ms
_MAX_IDLE_MS = const(2000)  # the loop feeds the watchdog at least this often
_SYNC_LED_MS = const(3000)  # the "syncing" pattern stays this long after the last request
_RESTART_MS = const(1)  # a deep sleep that only starts the program again (VBUS wakes it at once)
# Shorter waits light-sleep: a deep-sleep wake restarts the program [R: 3 s chosen, not measured].
# By boards/energy.py's figures a wake (~150 ms of CPU at 32.6 mA and 45 ms of start-up at 20 mA,
# 5.8 mA*s) costs what light sleep's extra 233 uA over deep sleep costs in ~25 s: at 1-minute
# logging deep sleep saves about 130 uA; waits of 3-25 s (intervals under ~26 s) would cost less
# light-sleeping. To be measured on a board (the light-sleep, ULP and start-up figures are [R]).
_MIN_DEEP_SLEEP_MS = const(3000)


MAINTENANCE_FILE = "/maintenance"  # in the data folder: the next boot stays in the REPL


def maintenance_requested(board):
    """True (once) if the last reset was asked for by `isolog deploy`: the board then boots into
    the REPL for mpremote instead of logging. The flag is removed, so the boot after is normal."""
    path = board.mount() + MAINTENANCE_FILE
    if not logstore._exists(path):
        return False
    os.remove(path)
    return True


class Logger:
    """Everything the board does, started up on construction; run() is the main loop."""

    def __init__(self, board, store_buf=None):
        self.board = board
        self.link = None  # type: Server | None  # the USB protocol server, attached by main
        self.uptime_ms = 0
        self.clock_offset_ms = 0  # epoch ms = offset + uptime_ms, when clock_valid
        self.clock_valid = False
        self.cfg = None  # type: dict | None
        self.dose_usv_h = None
        self.over_range = False
        self.temp_c = None
        self.battery_v = None
        self.flags = 0  # flags of the last record
        self.last_sync_ms = -_SYNC_LED_MS
        self.pending_flags = 0  # flags for the next record (alarm acknowledged, ...)
        self.first_record = True
        self.total_counts = 0  # pulses counted since logging started in this boot
        self.interval_ms = 0
        self.last_sample_ms = 0
        self.last_counts = 0
        self.last_pulse_ms = 0
        self.next_sample_ms = 0
        # The temperature conversion starts conversion_ms before each sample, so a record's
        # temperature is measured at the end of its own interval (starting it right after a sample
        # would give each record the temperature of the interval before: alarms one interval late).
        self.conversion_started = False
        self._saved_alarms = None

        b = board
        b.wdt_start(WDT_TIMEOUT_MS)
        self._ticks = b.ticks_ms()
        self.leds = leds.StatusLeds(b)
        # A board that counts while its CPU sleeps deep-sleeps between samples (firmware/sleep.py);
        # after such a wake the state it saved in RTC memory lets it go on instead of booting.
        self.low_power = bool(getattr(b, "low_power", False))
        self.data_dir = b.mount()
        saved = self._saved_state() if self.low_power else None
        if saved is None:
            self.leds.show("armed")
            self.boot = logstore.bump_boot_counter(self.data_dir)
        self.device_id = b.unique_id()
        # Test mode (diagnostic commands for hil_tests/) is on while this file exists.
        self.test_mode = logstore._exists(self.data_dir + "/testmode")
        # The device key (given at provisioning) chains a MAC through the log and authenticates
        # state changes; empty until then. The name is the one given at provisioning. On a board
        # with a secure element (boards/atecc.py) the key lives in the chip, which computes the
        # MACs itself: the flash keeps only the key's id (data/key_id). Without one, the key is the
        # file data/key, readable by anyone with the flash (the host reports such a board's log as
        # not authenticated, docs/security.md).
        find_se = getattr(b, "secure_element", None)
        se = self.se = find_se() if find_se else None
        kid = logstore.read_bytes(self.data_dir + "/key_id") if se is not None else b""
        if se is not None and len(kid) == 4:
            self.key = se.key(kid, mac.MAC_LEN)
        else:
            self.key = logstore.read_bytes(self.data_dir + "/key")
        self.name = logstore.read_bytes(self.data_dir + "/name").decode()
        self.store = logstore.LogStore(
            self.data_dir, self.boot, self.device_id, key=self.key, feed=b.wdt_feed, buf=store_buf
        )
        if saved is not None and not self.store.resume(saved[1], saved[3]):
            saved = None  # the flash is not as the sleep left it: boot normally (sleep.py, trust)
            self.boot = self.store.boot = logstore.bump_boot_counter(self.data_dir)
            self.uptime_ms = 0  # a boot's uptime starts from 0, not from the one the sleep saved
            self._ticks = b.ticks_ms()
        if saved is None:
            self.store.recover()
        b.wdt_feed()
        rtc = b.rtc_ms() if saved is None else None
        if rtc is not None:
            self.clock_offset_ms = rtc - self.uptime_ms
            self.clock_valid = True
        self.sensor = temperature.DS18B20(b.temp_bus())
        self.alarms = alarms.Alarms([], 1e9, 1e9)
        self.apply_config(config.load(self.data_dir), saved)

    def apply_config(self, cfg, saved=None):
        """Use a validated configuration (None: unconfigured, the board stays armed). `saved`:
        the state a deep sleep left (firmware/sleep.py), made under this same configuration."""
        self.cfg = cfg
        if cfg is None:
            self.alarms = alarms.Alarms([], 1e9, 1e9)
            return
        rules = [
            alarms.TempRule(r[0], r[1], r[2] == "above", r[3] * 1000, r[4] == "cumulative") for r in cfg["temp_rules"]
        ]
        self.alarms = alarms.Alarms(rules, cfg["dose_warn_usv_h"], cfg["dose_alarm_usv_h"])
        header = (cfg["interval_s"], cfg["cal_cpm_per_usv_h"], cfg["dead_time_us"], cfg["background_usv_h"])
        if saved is not None:
            # The segment the sleep left open goes on: the same header and configuration chunk.
            self.store.header = header
            self.store.config = cfg
        else:
            self._restore_alarms(cfg["id"])
            # its file is MAC'd into the log ("C" chunk): a host compares it with what it configured
            self.store.set_header(header[0], header[1], header[2], header[3], cfg)
        self.interval_ms = cfg["interval_s"] * 1000
        if saved is not None:
            import sleep

            if sleep.restore_logger(self, saved[0], saved[2], self.uptime_ms):
                self._saved_alarms = None  # written again at the next commit
                return
            self._restore_alarms(cfg["id"])
        # A new configuration starts a new interval: counts before it used other settings.
        self.last_sample_ms = self.uptime_ms
        self.last_counts = self.board.counts()
        self.last_pulse_ms = self.uptime_ms
        self.next_sample_ms = self.uptime_ms + self.interval_ms
        self.first_record = True

    # --- deep sleep between samples (firmware/sleep.py) ----------------------------------------

    def _saved_state(self):
        """After a wake from deep sleep: what the sleep saved in RTC memory (decoded), with the boot
        and the uptime going on from it; None after a power-on or reset, with nothing intact saved,
        or saved in another boot than the flash's."""
        b = self.board
        if b.wake_reason() == "power_on":
            return None
        import sleep

        saved = sleep.decode(b.rtc_memory())
        b.rtc_memory(b"")  # used once: a reset later must not take it for a wake
        if saved is None:
            return None
        boot = sleep.saved_boot(saved[0])
        if logstore._read_int(self.data_dir + "/boot", -1) != boot:
            return None
        self.boot = boot  # the same boot goes on: its uptime, segment and chain
        # The time slept (the RTC keeps counting in deep sleep) and this wake's start-up.
        self.uptime_ms = sleep.saved_uptime(saved[0]) + b.slept_ms()
        self._ticks = b.ticks_ms()
        return saved

    def deep_sleep(self, ms):
        """Save the state and sleep ms with the CPU off (never returns); the board starts again
        from main.py. If RTC memory cannot take the state, the board stays awake instead."""
        import sleep

        self.tick()
        try:
            self.board.rtc_memory(sleep.encode(self, ms))
        except (ValueError, OSError):
            self.board.idle(min(ms, _MAX_IDLE_MS))
            return
        self.board.deepsleep(ms)

    def configure(self, cfg):
        """Validate, store atomically and apply a configuration from a host. A new shipment
        starts with no alarms."""
        cfg = config.store(self.data_dir, cfg)
        self.store.commit()
        self.apply_config(cfg)
        self.alarms.acknowledge()
        self._save_alarms()
        return cfg

    # Alarm latches and excursion timers survive power cuts: a latched alarm must still show after
    # the board restarts, and a cumulative rule keeps counting. Saved atomically when an alarm
    # latches or is acknowledged, and with every commit while a timer runs.
    def _alarm_path(self):
        return self.data_dir + "/alarms.json"

    def _save_alarms(self):
        state = [self.cfg["id"] if self.cfg else "", self.alarms.state()]
        if state != self._saved_alarms:
            try:
                config.atomic_write(self._alarm_path(), json.dumps(state))
                self._saved_alarms = state
            except OSError:
                pass  # flash full: the latches still hold in RAM

    def _restore_alarms(self, shipment_id):
        self._saved_alarms = None
        try:
            with open(self._alarm_path()) as f:
                saved = json.load(f)
            if saved[0] == shipment_id and self.alarms.restore(saved[1]):
                self._saved_alarms = saved
        except (OSError, ValueError, IndexError, TypeError, KeyError):
            pass

    def set_clock(self, epoch_ms):
        self.tick()
        self.store.commit()  # a batch never mixes clock bases
        self.clock_offset_ms = epoch_ms - self.uptime_ms
        self.clock_valid = True
        self.board.rtc_set_ms(epoch_ms)

    def provision(self, name, key):
        """A new name and key (protocol.py checked the request). Records from now on are written
        with the new key, in a new segment."""
        self.tick()
        self.store.commit()
        config.atomic_write(self.data_dir + "/name", name)
        if self.se is not None:
            # Into the chip's slot, never onto the flash; the flash keeps the key's id only.
            self.se.store_key(key)
            kid = record.key_id(key)
            config.atomic_write(self.data_dir + "/key_id", kid)
            try:
                os.remove(self.data_dir + "/key")  # a key from before the chip was fitted
            except OSError:
                pass
            key = self.se.key(kid, mac.MAC_LEN)
        else:
            config.atomic_write(self.data_dir + "/key", key)
        self.key = key
        self.name = name
        self.store.set_key(key)

    def enter_maintenance(self):
        """Stop logging for a deploy: commit, flag the next boot for the REPL, reset."""
        self.store.close()
        config.atomic_write(self.data_dir + MAINTENANCE_FILE, "1")
        self.board.reset()

    def set_test_mode(self, on):
        path = self.data_dir + "/testmode"
        if on:
            config.atomic_write(path, "1")
        elif self.test_mode:
            os.remove(path)
        self.test_mode = on

    def now_epoch_ms(self):
        return self.clock_offset_ms + self.uptime_ms if self.clock_valid else None

    def acknowledge_alarms(self):
        self.alarms.acknowledge()
        self.pending_flags |= record.F_ALARM_ACK
        self._save_alarms()
        self.update_leds()

    # --- main loop -----------------------------------------------------------------------------

    def tick(self):
        """Advance uptime from the board's wrapping millisecond ticks."""
        t = self.board.ticks_ms()
        self.uptime_ms += time.ticks_diff(t, self._ticks)
        self._ticks = t
        return self.uptime_ms

    def run(self):
        b = self.board
        while b.running():
            self.step()
        self.store.close()

    def step(self):
        b = self.board
        now = self.tick()
        b.wdt_feed()
        if self.cfg is not None and not self.conversion_started and now >= self._conversion_ms():
            self._start_conversion()
        if self.cfg is not None and now >= self.next_sample_ms:
            self.sample(now)
        link = self.link
        # The LEDs as of now, before a request is answered: a status read reports the state the
        # courier sees at this moment (the last update may be up to _MAX_IDLE_MS old).
        self.update_leds()
        busy = link is not None and link.service()
        if link is not None and link.maintenance_pending:
            self.enter_maintenance()
        self.update_leds()
        if busy:
            return  # a host is talking: answer its next request without idling
        wait = _MAX_IDLE_MS
        # Unplugged, a low-power board sleeps: deep between samples, light through the
        # temperature conversion (its counter keeps counting in both); plugged in, it serves USB.
        asleep = self.low_power and not b.usb_present()
        if self.low_power and not asleep and link is None:
            # A host appeared during a wake that started without the link (a quiet wake,
            # firmware/main.py): start again with it (VBUS wakes the board at once).
            self.deep_sleep(_RESTART_MS)
            return
        if self.cfg is not None:
            due = self.next_sample_ms if self.conversion_started else self._conversion_ms()
            until = due - self.tick()
            if asleep and until >= _MIN_DEEP_SLEEP_MS:
                self.deep_sleep(until)
                return
            wait = min(wait, until)
        if wait > 0:
            if asleep:
                b.lightsleep(wait)
            else:
                b.idle(wait)

    def sample(self, now):
        b = self.board
        cfg = self.cfg
        if cfg is None:
            return
        counts = b.counts()
        interval_counts = (counts - self.last_counts) & _COUNT_MASK
        interval_ms = now - self.last_sample_ms
        self.last_counts = counts
        self.last_sample_ms = now
        # The schedule stays on the grid of the interval; missed slots are skipped, not bunched.
        self.next_sample_ms += self.interval_ms
        if self.next_sample_ms <= now:
            self.next_sample_ms = now + self.interval_ms

        if not self.conversion_started:
            self._start_conversion()  # late (a long request held the loop): at least the next is fresh
        temp_c, temp_fault = self._read_temperature()
        self.conversion_started = False

        if interval_counts:
            self.last_pulse_ms = now
        gm_silent = now - self.last_pulse_ms >= counting.SILENT_AFTER_MS
        dose, over = counting.reading(
            interval_counts, interval_ms, cfg["cal_cpm_per_usv_h"], cfg["dead_time_us"], cfg["background_usv_h"]
        )
        self.dose_usv_h = None if gm_silent else dose
        self.over_range = over
        self.temp_c = temp_c
        self.battery_v = b.battery_v()
        # Below the board's level a trip's worth of logging is left (boards/energy.py, low_battery_v)
        low_battery = self.battery_v is not None and self.battery_v < b.low_battery_v

        store = self.store
        latched_before = self.alarms.latched
        self.alarms.update(self.dose_usv_h, over, gm_silent, temp_c, temp_fault, interval_ms, store.full)
        a = self.alarms.active
        flags = self.pending_flags
        self.pending_flags = 0
        if self.first_record:
            flags |= record.F_BOOT
            self.first_record = False
        if over:
            flags |= record.F_OVER_RANGE
        if gm_silent:
            flags |= record.F_GM_SILENT
        if temp_fault:
            flags |= record.F_TEMP_FAULT
        if a & alarms.A_DOSE_WARN:
            flags |= record.F_DOSE_WARN
        if a & alarms.A_DOSE_ALARM:
            flags |= record.F_DOSE_ALARM
        if a & alarms.A_TEMP_ALARM:
            flags |= record.F_TEMP_ALARM
        if low_battery:
            flags |= record.F_LOW_BATTERY
        self.flags = flags
        self.total_counts += interval_counts
        due = store.append(
            now,
            now,
            self.total_counts,
            interval_ms,
            interval_counts,
            temp_c,
            flags,
            self.clock_valid,
            self.clock_offset_ms,
        )
        # A new alarm is committed at once: the evidence must survive a power cut.
        if due or store.commit_due(now) or self.alarms.latched & ~latched_before:
            if store.commit():
                self._save_alarms()

    def _read_temperature(self):
        try:
            return self.sensor.read_c(), False
        except OSError:  # temperature.SensorError is an OSError: unplugged, CRC, power-on value
            return None, True

    def _conversion_ms(self):
        """Uptime at which the conversion for the next sample starts."""
        return self.next_sample_ms - self.sensor.conversion_ms

    def _start_conversion(self):
        self.conversion_started = True
        try:
            self.sensor.start()
        except OSError:
            pass  # reported as a fault when the reading is due

    # --- LEDs ----------------------------------------------------------------------------------

    def note_sync(self):
        self.last_sync_ms = self.uptime_ms

    def update_leds(self):
        a = self.alarms
        store = self.store
        latched = a.latched
        state = leds.choose(
            syncing=self.uptime_ms - self.last_sync_ms < _SYNC_LED_MS,
            alarm=bool(latched & (alarms.A_DOSE_ALARM | alarms.A_TEMP_ALARM)),
            # a fault now (the last interval's), not a past one: a sensor drop-out that ended is in
            # the log, the latched alarms and the certificate, not on the courier's LED (issue 14)
            fault=bool(a.active & (alarms.A_TEMP_FAULT | alarms.A_GM_FAULT | alarms.A_STORAGE)) or store.full,
            low_battery=bool(self.flags & record.F_LOW_BATTERY),
            storage_low=store.low,
            warning=a.temp_excursion or bool(a.active & alarms.A_DOSE_WARN),
            logging=self.cfg is not None and not self.first_record,
        )
        self.leds.show(state)
