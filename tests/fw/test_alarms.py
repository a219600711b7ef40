# On-board alarms: cold-chain excursion rules, dose limits, latching.
import alarms


def _rule(cumulative, allowed_s=1800, threshold=25.0, above=True):
    return alarms.TempRule("high", threshold, above, allowed_s * 1000, cumulative)


MIN = 60000


def test_single_event_needs_uninterrupted_time():
    r = _rule(False)
    for _ in range(29):
        r.update(26.0, MIN)
    r.update(24.0, MIN)  # back in range: the timer restarts
    for _ in range(29):
        r.update(26.0, MIN)
    assert not r.triggered
    r.update(26.0, MIN)
    assert r.triggered


def test_cumulative_adds_up_interrupted_time():
    r = _rule(True)
    for _ in range(3):
        for _ in range(10):
            r.update(26.0, MIN)
        r.update(20.0, MIN)
    assert r.triggered and r.beyond_ms == 30 * MIN


def test_zero_allowed_time_alarms_at_once_and_below_rules():
    r = _rule(False, allowed_s=0, threshold=0.0, above=False)
    r.update(0.5, MIN)
    assert not r.triggered
    r.update(-0.1, MIN)
    assert r.triggered


def test_missing_reading_holds_the_timers():
    r = _rule(False)
    for _ in range(20):
        r.update(26.0, MIN)
    r.update(None, MIN)
    assert r.beyond_ms == 20 * MIN


def _alarms():
    return alarms.Alarms([_rule(False, allowed_s=120)], 1500.0, 2000.0)


def test_alarm_latches_until_acknowledged():
    a = _alarms()
    for _ in range(3):
        a.update(10.0, False, False, 30.0, False, MIN, False)
    assert a.latched & alarms.A_TEMP_ALARM
    for _ in range(5):
        a.update(10.0, False, False, 5.0, False, MIN, False)
    assert a.latched & alarms.A_TEMP_ALARM and not a.active & alarms.A_TEMP_ALARM
    a.acknowledge()
    assert a.latched == 0
    a.update(10.0, False, False, 5.0, False, MIN, False)
    assert a.latched == 0


def test_dose_levels_and_over_range():
    a = _alarms()
    a.update(1600.0, False, False, 5.0, False, MIN, False)
    assert a.active == alarms.A_DOSE_WARN
    a.update(2100.0, False, False, 5.0, False, MIN, False)
    assert a.active == alarms.A_DOSE_WARN | alarms.A_DOSE_ALARM
    a.acknowledge()
    a.update(None, True, False, 5.0, False, MIN, False)  # over range: never a low reading
    assert a.active & alarms.A_DOSE_ALARM


def test_faults():
    a = _alarms()
    a.update(None, False, True, None, True, MIN, True)
    assert a.active == alarms.A_GM_FAULT | alarms.A_TEMP_FAULT | alarms.A_STORAGE
    assert alarms.names(a.latched) == ["temp_fault", "gm_fault", "storage"]


def test_state_survives_a_restart():
    a = _alarms()
    for _ in range(3):
        a.update(10.0, False, False, 30.0, False, MIN, False)
    b = _alarms()
    assert b.restore(a.state())
    assert b.latched == a.latched and b.rules[0].triggered and b.rules[0].beyond_ms == 3 * MIN
    assert not b.restore([0])  # a state for other rules is refused
