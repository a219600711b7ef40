# The virtual board's simulated DS18B20 bus against the real driver (firmware/temperature.py).
# Runs under CPython (pytest) and the MicroPython unix port; boards/ is added to the path here.
import sys


def _boards_dir():
    try:
        here = __file__
    except NameError:  # pragma: no cover - run from the repository root without __file__
        return "boards"
    parts = here.replace("\\", "/").rsplit("/", 3)  # [root, "tests", "fw", "test_sim_onewire.py"]
    if len(parts) == 4:
        return (parts[0] or "/") + "/boards"
    return "../../boards" if len(parts) == 1 else "boards"


if _boards_dir() not in sys.path:
    sys.path.insert(0, _boards_dir())

import sim_onewire  # noqa: E402
from fwcheck import raises  # noqa: E402
from sim_onewire import SimDS18B20Bus  # noqa: E402
from temperature import (  # noqa: E402
    DS18B20,
    SensorCRCError,
    SensorMissing,
    SensorOutOfRange,
    SensorPowerOnValue,
    crc8_dallas,
)


def ready(temp_c=21.0):
    bus = SimDS18B20Bus(temp_c=temp_c)
    return bus, DS18B20(bus)


def test_reads_the_set_temperature():
    bus, sensor = ready(21.0)
    sensor.start()
    assert sensor.read_c() == 21.0
    for t_c in (-10.125, -55.0, 0.0, 4.5, 37.0625, 125.0):
        bus.set_c(t_c)
        sensor.start()
        assert sensor.read_c() == t_c, t_c
    assert bus.conversions == 7


def test_rounds_to_the_12_bit_step():
    bus, sensor = ready(21.03)
    sensor.start()
    assert sensor.read_c() == 21.0  # 21.03 * 16 = 336.48 -> 336


def test_power_up_scratchpad_is_85():
    _, sensor = ready()
    raises(SensorPowerOnValue, sensor.read_c)  # read before any conversion
    sensor.start()
    assert sensor.read_c() == 21.0


def test_fault_unplugged():
    bus, sensor = ready()
    bus.set_fault("unplugged")
    assert bus.reset() is False
    raises(OSError, bus.reset, True)
    raises(SensorMissing, sensor.start)
    raises(SensorMissing, sensor.read_c)
    buf = bytearray(3)
    bus.readinto(buf)
    assert buf == bytearray(b"\xff\xff\xff")


def test_replug_is_a_power_up():
    bus, sensor = ready(30.0)
    sensor.start()
    assert sensor.read_c() == 30.0
    bus.set_fault("unplugged")
    raises(SensorMissing, sensor.start)
    bus.set_fault(None)
    raises(SensorPowerOnValue, sensor.read_c)  # 85.0 in the scratchpad, no conversion yet
    sensor.start()
    assert sensor.read_c() == 30.0


def test_fault_crc():
    bus, sensor = ready()
    bus.set_fault("crc")
    sensor.start()
    raises(SensorCRCError, sensor.read_c)
    bus.set_fault(None)
    sensor.start()
    assert sensor.read_c() == 21.0


def test_fault_power_on():
    bus, sensor = ready(20.0)
    sensor.start()
    assert sensor.read_c() == 20.0
    bus.set_fault("power_on")
    for _ in range(3):
        sensor.start()
        raises(SensorPowerOnValue, sensor.read_c)
    bus.set_fault(None)
    sensor.start()
    assert sensor.read_c() == 20.0


def test_out_of_range_passes_through_to_the_driver():
    bus, sensor = ready(-78.5)  # dry ice: below the DS18B20's range
    sensor.start()
    raises(SensorOutOfRange, sensor.read_c)


def test_unknown_fault_is_refused():
    bus, _ = ready()
    raises(ValueError, bus.set_fault, "melted")


def test_rom_code_and_match_rom():
    bus, _ = ready()
    assert bus.rom[0] == 0x28 and crc8_dallas(bus.rom, 8) == 0
    assert bus.reset()
    bus.writebyte(0x33)  # Read ROM
    rom = bytearray(8)
    bus.readinto(rom)
    assert bytes(rom) == bus.rom
    # Match ROM with our code selects the sensor; with another code it stays silent.
    bus.set_c(-1.0)
    assert bus.reset()
    bus.write(b"\x55" + bus.rom + b"\x44")
    assert bus.conversions == 1
    assert bus.reset()
    bus.write(b"\x55" + b"\x28\x00\x00\x00\x00\x00\x00\x00" + b"\xbe")
    sp = bytearray(9)
    bus.readinto(sp)
    assert sp == bytearray(b"\xff" * 9)


def test_scratchpad_reads_in_pieces():
    bus, _ = ready(-10.125)
    bus.reset()
    bus.write(b"\xcc\x44")
    bus.reset()
    bus.write(b"\xcc\xbe")
    head = bytearray(2)
    tail = bytearray(8)
    bus.readinto(head)
    bus.readinto(tail)
    assert head == bytearray(b"\x5e\xff")  # -10.125 C = 0xFF5E
    assert tail[-1] == 0xFF  # past the 9th byte the bus floats high
    assert crc8_dallas(head + tail[:7], 9) == 0


def test_independent_crc_agrees_with_driver():
    data = bytearray(8)
    seed = 12345
    for _ in range(200):
        for i in range(8):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            data[i] = (seed >> 16) & 0xFF
        assert sim_onewire._crc8(data, 8) == crc8_dallas(data, 8)
