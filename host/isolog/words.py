"""The words logistics staff read: the board's alarm and LED names as people say them
(README.md#status-leds-for-couriers), never the firmware's identifiers."""

from __future__ import annotations

from collections.abc import Iterable

# firmware/alarms.py ALARM_NAMES -> words
ALARM_WORDS = {
    "dose_warn": "dose-rate warning",
    "dose_alarm": "dose-rate alarm",
    "temp_alarm": "temperature alarm",
    "temp_fault": "temperature sensor fault",
    "gm_fault": "radiation sensor (GM tube) fault",
    "storage": "memory full or write error",
}

# firmware/leds.py PATTERNS -> what the courier sees and what it means (README.md's LED table)
LED_WORDS = {
    "armed": "armed (one slow green blink every 20 s): not logging yet",
    "logging": "logging (one short green flash every 10 s): all in order",
    "warning": "warning (green, then red flash every 10 s): a limit is exceeded right now, no alarm yet",
    "storage_low": "storage low (two green flashes every 10 s): sync the board soon",
    "low_battery": "low battery (amber flash every 10 s): change or charge the battery",
    "alarm": "ALARM (two red flashes every 10 s): an alarm is latched; report it",
    "fault": "FAULT (red on 1 s, off 1 s): a sensor fails now, or the memory is full; report it",
    "syncing": "syncing (green flickers fast): a host is reading the board",
}


def alarm_words(names: Iterable[str]) -> str:
    """'temperature alarm and dose-rate warning' (unknown names as they are)."""
    words = [ALARM_WORDS.get(n, n.replace("_", " ")) for n in names]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def led_words(state: str | None) -> str:
    return LED_WORDS.get(state or "", state or "unknown")
