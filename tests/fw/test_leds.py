# Status LEDs: every state has its own pattern, and the most important state shows.
import leds


def test_every_state_has_a_distinct_pattern():
    seen = []
    for state in leds.PRIORITY:
        pattern = leds.PATTERNS[state]
        assert pattern not in seen, state
        seen.append(pattern)
        assert all(ms > 0 for _, _, ms in pattern)
        assert any(g or r for g, r, _ in pattern)  # every state lights something


def test_priority():
    assert leds.choose(False, False, False, False, False, False, False) == "armed"
    assert leds.choose(False, False, False, False, False, False, True) == "logging"
    assert leds.choose(False, True, True, False, False, True, True) == "alarm"
    assert leds.choose(False, False, True, False, True, True, True) == "fault"
    assert leds.choose(True, True, True, True, True, True, True) == "syncing"


class _Board:
    def __init__(self):
        self.calls = []

    def leds(self, steps, name):
        self.calls.append(name)


def test_board_is_told_only_on_change():
    b = _Board()
    s = leds.StatusLeds(b)
    s.show("logging")
    s.show("logging")
    s.show("alarm")
    assert b.calls == ["logging", "alarm"]


def test_patterns_are_low_duty():
    """Issue 13: on battery no pattern lights an LED more than 10 % of the time (syncing runs only
    while a host is attached and powers the board)."""
    for name, steps in leds.PATTERNS.items():
        cycle = sum(s[2] for s in steps)
        lit = sum(s[2] for s in steps if s[0] or s[1])
        assert name == "syncing" or lit / cycle <= 0.10, (name, lit, cycle)
    fault = leds.PATTERNS["fault"]
    assert [s[2] for s in fault if s[1]] == [200] and sum(s[2] for s in fault) == 2000  # 1 red flash / 2 s
