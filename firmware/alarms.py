# Alarms evaluated on the board. Every alarm latches until a host acknowledges it, like the
# indicators of cold-chain loggers (docs/references.md#cold-chain-loggers): the courier sees that
# something happened even after conditions returned to normal.
#
# Temperature rules are (threshold, allowed time, type), the way cold-chain loggers define them
# (e.g. WHO PQS E006 type I 10-day monitors: >= 45 C single 1 h, >= 30 C cumulative 10 h):
#   single:     the threshold is exceeded without interruption for the allowed time; the timer
#               restarts when the temperature is back in range.
#   cumulative: all time beyond the threshold adds up to the allowed time.
# A reading stands for the interval that ends at it (the same convention as the log records).
try:
    from micropython import const
except ImportError:  # CPython: the host shares this file (package isolog_fw) and tests run it

    def const(__expr):  # positional-only, as MicroPython's (no `/` in its grammar)
        return __expr


A_DOSE_WARN = const(0x01)
A_DOSE_ALARM = const(0x02)
A_TEMP_ALARM = const(0x04)
A_TEMP_FAULT = const(0x08)
A_GM_FAULT = const(0x10)
A_STORAGE = const(0x20)  # flash full or write errors: logging is impaired

ALARM_NAMES = (
    (A_DOSE_WARN, "dose_warn"),
    (A_DOSE_ALARM, "dose_alarm"),
    (A_TEMP_ALARM, "temp_alarm"),
    (A_TEMP_FAULT, "temp_fault"),
    (A_GM_FAULT, "gm_fault"),
    (A_STORAGE, "storage"),
)


class TempRule:
    def __init__(self, name, threshold_c, above, allowed_ms, cumulative):
        self.name = name
        self.threshold_c = threshold_c
        self.above = above
        self.allowed_ms = allowed_ms
        self.cumulative = cumulative
        self.beyond_ms = 0  # current run (single) or total (cumulative)
        self.triggered = False  # latched until acknowledged

    def beyond(self, temp_c):
        return temp_c > self.threshold_c if self.above else temp_c < self.threshold_c

    def update(self, temp_c, interval_ms):
        """Feed one reading (None: no valid reading, the timers hold). Returns True while the
        temperature is beyond the threshold."""
        if temp_c is None:
            return False
        if self.beyond(temp_c):
            self.beyond_ms += interval_ms
            if self.beyond_ms >= self.allowed_ms:
                self.triggered = True
            return True
        if not self.cumulative:
            self.beyond_ms = 0
        return False


class Alarms:
    def __init__(self, rules, dose_warn_usv_h, dose_alarm_usv_h):
        self.rules = rules
        self.dose_warn = dose_warn_usv_h
        self.dose_alarm = dose_alarm_usv_h
        self.latched = 0  # A_* bits, cleared only by acknowledge()
        self.active = 0  # A_* bits whose condition holds in the last interval
        self.temp_excursion = False  # some rule is beyond its threshold right now (a warning)

    def update(self, dose_usv_h, over_range, gm_silent, temp_c, temp_fault, interval_ms, storage_bad):
        active = 0
        if over_range or (dose_usv_h is not None and dose_usv_h >= self.dose_alarm):
            active |= A_DOSE_ALARM
        if dose_usv_h is not None and dose_usv_h >= self.dose_warn:
            active |= A_DOSE_WARN
        if gm_silent:
            active |= A_GM_FAULT
        if temp_fault:
            active |= A_TEMP_FAULT
        if storage_bad:
            active |= A_STORAGE
        excursion = False
        for rule in self.rules:
            was = rule.triggered
            beyond = rule.update(None if temp_fault else temp_c, interval_ms)
            excursion = excursion or beyond
            # Active while a triggered rule is still beyond its threshold (the latch keeps it after).
            if rule.triggered and (beyond or not was):
                active |= A_TEMP_ALARM
        self.temp_excursion = excursion
        self.active = active
        self.latched |= active

    def acknowledge(self):
        """Clear the latches. Conditions that still hold latch again at the next sample; rules
        re-arm (a single-event rule needs a new full allowed time, a cumulative rule alarms again
        at its next excursion)."""
        self.latched = 0
        for rule in self.rules:
            rule.triggered = False
            if not rule.cumulative:
                rule.beyond_ms = 0

    def state(self):
        """What must survive a power cut: the latches and the rules' timers."""
        return [self.latched] + [[r.beyond_ms, r.triggered] for r in self.rules]

    def restore(self, state):
        if not isinstance(state, list) or len(state) != 1 + len(self.rules):
            return False
        self.latched = state[0]
        for rule, saved in zip(self.rules, state[1:]):
            rule.beyond_ms, rule.triggered = saved
        return True


def names(bits):
    return [name for bit, name in ALARM_NAMES if bits & bit]
