# Status LEDs for couriers: one green and one red LED. The state with the highest priority shows.
# Every pattern lights an LED at most 10 % of the time (about 0.4 mA on average: boards/energy.py)
# except "syncing", shown only while a host (and its USB power) is attached.
# Patterns follow the conventions of USB temperature loggers (docs/references.md#cold-chain-loggers:
# green flash every 10 s = in range, red flashes = alarm, slower flash = armed) and are
# told apart by colour, count and rhythm at a glance. The legend is in README.md.
try:
    from micropython import const
except ImportError:  # CPython: the host shares this file (package isolog_fw) and tests run it

    def const(__expr):  # positional-only, as MicroPython's (no `/` in its grammar)
        return __expr


# (green, red, ms) steps, played cyclically by the board's timer.
_OFF = const(0)
PATTERNS = {
    # Powered, waiting for a configuration or for the first sample: one slow green blink / 20 s.
    "armed": ((True, False, 1000), (False, False, 19000)),
    # Logging, all in range: one short green flash every 10 s.
    "logging": ((True, False, 100), (False, False, 9900)),
    # A limit is exceeded now but no alarm yet (temperature beyond a threshold within its allowed
    # time, dose rate above the warning level): green then red flash every 10 s.
    "warning": ((True, False, 100), (False, False, 200), (False, True, 100), (False, False, 9600)),
    # Storage nearly full (sync soon): two green flashes every 10 s.
    "storage_low": ((True, False, 100), (False, False, 200), (True, False, 100), (False, False, 9600)),
    # Battery low: green and red together (amber) flash every 10 s.
    "low_battery": ((True, True, 100), (False, False, 9900)),
    # Alarm latched (dose or temperature): two red flashes every 10 s, until acknowledged.
    "alarm": ((False, True, 100), (False, False, 200), (False, True, 100), (False, False, 9600)),
    # Fault: a sensor failed, or the flash is full and logging stopped (records are kept until
    # synced): one red flash every 2 s. Faster than the alarm's rhythm and single, so the two are
    # told apart; 10 % duty, not the 50 % of a 1 s on / 1 s off blink, because a fault can last the
    # rest of a trip on battery (issue 13: 4 mA for half the time is 2 mA, as much as a sleeping
    # board's whole budget many times over).
    "fault": ((False, True, 200), (False, False, 1800)),
    # A host is syncing: green flickers fast.
    "syncing": ((True, False, 100), (False, False, 100)),
}

# Highest priority first.
PRIORITY = ("syncing", "alarm", "fault", "low_battery", "storage_low", "warning", "logging", "armed")


def choose(syncing, alarm, fault, low_battery, storage_low, warning, logging):
    flags = (syncing, alarm, fault, low_battery, storage_low, warning, logging)
    for i in range(len(flags)):
        if flags[i]:
            return PRIORITY[i]
    return "armed"


class StatusLeds:
    def __init__(self, board):
        self.board = board
        self.state = ""

    def show(self, state):
        if state != self.state:
            self.state = state
            self.board.leds(PATTERNS[state], state)
