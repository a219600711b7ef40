"""The low-power mode (issue 13 items 2-3): the unchanged firmware on a virtual board that
deep-sleeps between samples (VirtualBoard(low_power=True), firmware/sleep.py). The program starts
again at every wake; the log must be what an awake board writes: contiguous, one boot per power-on,
every interval's pulses counted, alarms kept, a power cut losing at most the batch in RTC memory."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest

from isolog import cli
from isolog.sim.launcher import VirtualBoard
from isolog_boards import energy
from sim_helpers import assert_intact, read_log, scenario

# 6 hours, a warm spell that trips the 25 C / 30 min rule, and a power cut while the board sleeps
# (samples fall on whole minutes, the board sleeps from just after one until 0.75 s before the next)
_SC = dict(
    duration="6h",
    temperature={"points": [["0h", 5.0], ["1h", 5.0], ["1h1min", 27.0], ["2h", 27.0], ["2h1min", 5.0]], "noise_c": 0.1},
    events=[{"kind": "power_loss", "at": "4h30s", "off": "10min"}],
)


def _run(tmp_path, low_power):
    b = VirtualBoard(scenario(**_SC), tmp_path / "flash.img", speed=0, until_end=True, low_power=low_power)
    t = time.monotonic()
    try:
        b.run()
    finally:
        b.close()
    return b, read_log(tmp_path / "flash.img"), time.monotonic() - t


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("lp"), True), _run(tmp_path_factory.mktemp("awake"), False)


def test_the_log_is_whole_and_a_wake_is_not_a_boot(runs):
    (b, log, _), _ = runs
    assert b.exit_code == 0 and b.boots == 2  # power-ups of the process: the start and after the cut
    assert_intact(log)
    wakes = [e for e in b.events if e.kind == "deepsleep"]
    assert len(wakes) >= 300  # it slept between (nearly) every two samples
    # one boot flag per power-on, none per wake
    assert [r["boot"] for r in log.records if "boot" in r["flags"]] == [1, 2]
    # 360 samples less 10 min without power, the batch in RTC memory at the cut (at most 15) and
    # the first interval after it
    assert 360 - 10 - 15 - 1 <= len(log.records) <= 360 - 10
    # A wake runs in the same process (boards/sim_boot.py): the names the firmware's modules
    # interned stay in the heap and are charged to its budget at every wake; they are its modules'
    # names (about 12 KiB), not a growing leak
    interned = [int(e.fields["interned"]) for e in b.events if e.kind == "heap" and "interned" in e.fields]
    assert interned and max(interned) <= 16 * 1024, interned


def test_it_logs_what_an_awake_board_logs(runs):
    (_, slept, _), (_, awake, _) = runs
    lost = {r["seq"] for r in awake.records} - {r["seq"] for r in slept.records}
    assert len(lost) <= 15  # where the power cut fell in each run's batch
    by_time = {r["time"]: r for r in awake.records}
    both = [(r, by_time[r["time"]]) for r in slept.records if r["time"] in by_time]
    assert len(both) >= len(slept.records) - 1
    for s, a in both:
        assert s["interval_s"] == a["interval_s"] == 60.0
        assert abs(s["temperature_c"] - a["temperature_c"]) <= 0.6  # the same profile, own noise
    alarms_s = [r["time"] for r in slept.records if "temp_alarm" in r["flags"]]
    alarms_a = [r["time"] for r in awake.records if "temp_alarm" in r["flags"]]
    assert alarms_s and alarms_s[0] == alarms_a[0]  # 30 min beyond 25 C, counted across wakes


def test_every_pulse_of_the_sleeps_is_counted(runs):
    """The ULP counts through the sleep: the pulses per interval match the tube's expected rate
    (computed here from the scenario: Lu-177 from 30 uSv/h, 153.8 cpm per uSv/h, 190 us dead
    time, 0.1 uSv/h background), within 5 standard deviations over the run."""
    (_, log, _), _ = runs
    half_life_s = 6.6443 * 86400
    expected = 0.0
    observed = 0
    for r in log.records[1:]:
        t_mid = r["uptime_s"] - 30 if r["boot"] == 1 else None
        if t_mid is None:
            continue  # after the power cut uptime restarts: the first boot's records suffice
        rate_usv_h = 30.0 * 2 ** (-t_mid / half_life_s) + 0.1
        n = rate_usv_h * 153.8 / 60
        expected += n / (1 + n * 190e-6) * r["interval_s"]
        observed += r["interval_counts"]
    assert expected > 100_000
    assert abs(observed - expected) < 5 * math.sqrt(expected), (observed, expected)


def test_the_board_sleeps_most_of_the_time(runs):
    (b, _, _), (a, _, _) = runs
    m = b.energy()
    assert m.deep_sleep_ms / (m.elapsed_ms + m.deep_sleep_ms) > 0.95
    esp = energy.board("esp32s3")
    slept_ua = energy.estimate(m, esp).average_ua
    awake_ua = energy.estimate(a.energy(), esp).average_ua
    assert slept_ua < awake_ua / 10, (slept_ua, awake_ua)
    # The CPU time of a wake is what energy.logging_average_ua(low_power=True) (battery days, the
    # low-battery level) is built on: the same magnitude here (it varies with the host's load)
    wakes = sum(1 for e in b.events if e.kind == "deepsleep")
    assert energy.CPU_US_PER_WAKE / 2 < m.cpu_us / wakes < energy.CPU_US_PER_WAKE * 2, m.cpu_us / wakes
    # Every sleep but the one the power cut ended is followed by a start the model prices its ROM
    # and bootloader time for (energy.WAKE_BOOT_MS each); a power-up is not such a wake
    assert m.wakes == wakes - 1, (m.wakes, wakes)
    esp_no_boot = dataclasses.replace(esp, wake_boot_ms=0.0)
    boot_mas = energy.estimate(m, esp).charge_mas["wake start-up (ROM, bootloader)"]
    assert boot_mas == pytest.approx(
        m.wakes * energy.WAKE_BOOT_MS * (energy.WAKE_BOOT_MA + (220 + 3.7 / 200e3 * 1e6 + 10 + 0.75) / 1000) / 1000
    )
    assert slept_ua > energy.estimate(m, esp_no_boot).average_ua


def test_a_timer_wake_does_not_load_the_link(runs):
    # firmware/main.py: a timer wake with no host (VBUS low) takes its sample without protocol.py;
    # a power-up loads it. The board says at each sleep whether this start had it (boards/sim.py).
    (b, _, _), _ = runs
    links = []
    for e in b.events:
        if e.kind == "power_loss":
            links.append("cut")
        elif e.kind == "deepsleep":
            links.append(e.fields["link"])
    # the power-up at the start and the one after the cut load the link; every wake in between not
    first_after_cut = links.index("cut") + 1
    assert links[0] == "1" and links[first_after_cut] == "1"
    quiet = links[1 : first_after_cut - 1] + links[first_after_cut + 1 :]
    assert len(quiet) >= 300 and set(quiet) == {"0"}


def test_a_host_wakes_a_sleeping_board_and_syncs_it(tmp_path, capsys):
    """Held at the scenario's end the board sleeps; a host writing on the link wakes it (VBUS) and
    the board stays up to serve it."""
    b = VirtualBoard(scenario(duration="1h"), tmp_path / "flash.img", speed=0, hold_at_end=True, low_power=True)
    b.start()
    try:
        deadline = time.monotonic() + 60
        while not any(e.kind == "end" for e in b.events):
            assert time.monotonic() < deadline and b.exit_code is None
            time.sleep(0.02)
        boots_before = sum(1 for e in b.events if e.kind == "boot")
        assert cli.main(["sync", b.port, "--db", str(tmp_path / "store.sqlite3")]) == 0
        out = capsys.readouterr().out
        assert "stored up to record 59" in out
        assert sum(1 for e in b.events if e.kind == "boot") == boots_before + 1  # the wake
        # the host's wake loaded the link (the sleeps before were quiet wakes: no link)
        links = [e.fields["link"] for e in b.events if e.kind == "deepsleep"]
        assert links[0] == "1" and set(links[1:]) == {"0"}
    finally:
        b.close()


# The built-ins firmware/main.py binds before anything imports them (for an extensible built-in,
# MicroPython searches the flash first at every import statement): a file of the same name on the
# flash must neither be imported nor cost the board a search. Each decoy says so if it loads.
_BUILTINS = ("binascii", "errno", "hashlib", "io", "json", "os", "random", "select", "struct", "time")


def test_no_file_on_the_flash_stands_in_for_a_builtin(tmp_path):
    from isolog.sim import launcher

    b = VirtualBoard(scenario(duration="30min"), tmp_path / "flash.img", speed=0, until_end=True, low_power=True)
    decoy = "import sys\nsys.stderr.write('@sim decoy name=%s\\n')\nraise ImportError('decoy')\n"
    launcher.put_files(b.flash, {f"/{name}.py": (decoy % name).encode() for name in _BUILTINS})
    try:
        code = b.run()
    finally:
        b.close()
    assert [e.fields for e in b.events if e.kind == "decoy"] == []
    assert code == 0 and b.boots == 1
    assert sum(1 for e in b.events if e.kind == "deepsleep") >= 25  # it woke and slept every minute
    assert len(read_log(tmp_path / "flash.img").records) >= 29


def test_a_long_run_keeps_no_event_list_and_still_sums_its_energy(tmp_path):
    # `isolog sim` (keep_events=False): events are printed as they come, not kept; the energy of
    # every start (a wake is one) is summed as each ends, not kept row by row
    seen = []
    b = VirtualBoard(
        scenario(duration="1h"),
        tmp_path / "flash.img",
        speed=0,
        until_end=True,
        low_power=True,
        keep_events=False,
        on_event=lambda ev: seen.append(ev.kind),
    )
    try:
        assert b.run() == 0
    finally:
        b.close()
    assert b.events == []
    m = b.energy()
    sleeps = seen.count("deepsleep")
    assert sleeps >= 55
    assert m.wakes == sleeps  # each sleep ended in a wake (the last one for the scenario's end)
    assert m.deep_sleep_ms + m.elapsed_ms == pytest.approx(3_600_000, abs=1_000)
