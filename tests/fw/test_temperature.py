# Temperature drivers against fake buses. Runs under CPython (pytest) and the MicroPython unix port.
import temperature
from fwcheck import close, raises
from temperature import (
    DS18B20,
    TMP117,
    SensorBusError,
    SensorCRCError,
    SensorError,
    SensorMissing,
    SensorOpenCircuit,
    SensorOutOfRange,
    SensorPowerOnValue,
    SensorShortCircuit,
    SensorWrongDevice,
    Thermistor,
    crc8_dallas,
)

# The DS18B20 power-on scratchpad (85.0 C) as the part sends it, CRC 0x1C included.
POWER_ON_SCRATCHPAD = bytes([0x50, 0x05, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10, 0x1C])


def scratchpad(raw, config=0x7F, bad_crc=False):
    sp = bytearray([raw & 0xFF, (raw >> 8) & 0xFF, 0x4B, 0x46, config, 0xFF, 0x0C, 0x10, 0])
    sp[8] = crc8_dallas(sp, 8) ^ (0x5A if bad_crc else 0)
    return sp


class FakeOneWire:
    """One DS18B20 whose scratchpad the test sets directly; logs every bus operation."""

    def __init__(self, sp=POWER_ON_SCRATCHPAD, present=True):
        self.sp = bytearray(sp)
        self.present = present
        self.log = []

    def reset(self, required=False):
        self.log.append("reset")
        return self.present

    def writebyte(self, value):
        self.log.append(value)

    def readinto(self, buf):
        self.log.append("read%d" % len(buf))
        for i in range(len(buf)):
            buf[i] = self.sp[i] if self.present and i < len(self.sp) else 0xFF


def converted(raw, **kw):
    """A driver and bus where a conversion was started and produced `raw`."""
    ow = FakeOneWire(scratchpad(raw, **kw))
    sensor = DS18B20(ow)
    sensor.start()
    return sensor, ow


# --- CRC ---------------------------------------------------------------------------------------


def test_crc8_known_vectors():
    # Maxim application note 27 example ROM, and the power-on scratchpad.
    assert crc8_dallas(bytes([0x02, 0x1C, 0xB8, 0x01, 0x00, 0x00, 0x00]), 7) == 0xA2
    assert crc8_dallas(POWER_ON_SCRATCHPAD, 8) == 0x1C
    # Over the whole block including its CRC the remainder is zero.
    assert crc8_dallas(POWER_ON_SCRATCHPAD, 9) == 0


def test_ds18b20_reads_good_crc():
    sensor, _ = converted(0x0191)  # +25.0625 C, datasheet table
    assert sensor.read_c() == 25.0625


def test_ds18b20_rejects_bad_crc():
    sensor, _ = converted(0x0191, bad_crc=True)
    exc = raises(SensorCRCError, sensor.read_c)
    assert isinstance(exc, SensorError) and isinstance(exc, OSError)
    assert exc.fault == "crc"


def test_ds18b20_rejects_single_bit_flip():
    sp = scratchpad(0x0191)
    sp[0] ^= 0x04
    ow = FakeOneWire(sp)
    sensor = DS18B20(ow)
    sensor.start()
    raises(SensorCRCError, sensor.read_c)


def test_ds18b20_rejects_all_zero_scratchpad():
    # A bus stuck low fakes a presence pulse and reads zeros, whose CRC is valid.
    ow = FakeOneWire(bytes(9))
    sensor = DS18B20(ow)
    sensor.start()
    exc = raises(SensorBusError, sensor.read_c)
    assert exc.fault == "bus"


# --- bus protocol --------------------------------------------------------------------------------


def test_ds18b20_bus_sequence():
    sensor, ow = converted(0x0191)
    assert ow.log == ["reset", 0xCC, 0x44]
    sensor.read_c()
    assert ow.log[3:] == ["reset", 0xCC, 0xBE, "read9"]
    assert DS18B20.conversion_ms == 750


# --- temperatures ---------------------------------------------------------------------------------


def test_ds18b20_negative_temperatures():
    for raw, t_c in ((0xFF5E, -10.125), (0xFFF8, -0.5), (0xFE6F, -25.0625), (0xFC90, -55.0)):
        sensor, _ = converted(raw)
        assert sensor.read_c() == t_c, (hex(raw), t_c)


def test_ds18b20_positive_temperatures():
    for raw, t_c in ((0x0000, 0.0), (0x0008, 0.5), (0x00A2, 10.125), (0x07D0, 125.0)):
        sensor, _ = converted(raw)
        assert sensor.read_c() == t_c, (hex(raw), t_c)


def test_ds18b20_out_of_range():
    for raw in (0xFC8F, 0x07D1, 0x7FFF, 0x8000):  # -55.0625, 125.0625, extremes
        sensor, _ = converted(raw)
        exc = raises(SensorOutOfRange, sensor.read_c)
        assert exc.fault == "range"


def test_ds18b20_low_resolution_masks_undefined_bits():
    # 9-bit configuration (0x1F): bits 2..0 are undefined and must not count.
    sensor, _ = converted(0x0197, config=0x1F)
    assert sensor.read_c() == 25.0


# --- the 85.0 C power-on value ------------------------------------------------------------------


def test_power_on_value_rejected_as_first_reading():
    ow = FakeOneWire(POWER_ON_SCRATCHPAD)
    sensor = DS18B20(ow)
    sensor.start()
    exc = raises(SensorPowerOnValue, sensor.read_c)
    assert exc.fault == "power_on"


def test_power_on_value_rejected_without_a_conversion():
    ow = FakeOneWire(scratchpad(0x0500))  # 80.0 C
    sensor = DS18B20(ow)
    sensor.start()
    assert sensor.read_c() == 80.0
    ow.sp = bytearray(POWER_ON_SCRATCHPAD)
    raises(SensorPowerOnValue, sensor.read_c)  # no start() since the last read


def test_power_on_value_rejected_after_a_jump():
    sensor, ow = converted(0x0140)  # 20.0 C
    assert sensor.read_c() == 20.0
    ow.sp = bytearray(POWER_ON_SCRATCHPAD)  # the sensor browned out between start and read
    sensor.start()
    raises(SensorPowerOnValue, sensor.read_c)


def test_real_85_accepted_when_temperature_got_there():
    sensor, ow = converted(0x0530)  # 83.0 C
    assert sensor.read_c() == 83.0
    ow.sp = bytearray(POWER_ON_SCRATCHPAD)
    sensor.start()
    assert sensor.read_c() == 85.0
    sensor.start()
    assert sensor.read_c() == 85.0


def test_power_on_value_rejected_after_sensor_was_missing():
    sensor, ow = converted(0x0540)  # 84.0 C
    assert sensor.read_c() == 84.0
    ow.present = False
    raises(SensorMissing, sensor.start)
    ow.present = True  # replugged: the part powers up with 85.0 in its scratchpad
    ow.sp = bytearray(POWER_ON_SCRATCHPAD)
    sensor.start()
    raises(SensorPowerOnValue, sensor.read_c)


def test_recovers_after_power_on_value():
    ow = FakeOneWire(POWER_ON_SCRATCHPAD)
    sensor = DS18B20(ow)
    sensor.start()
    raises(SensorPowerOnValue, sensor.read_c)
    ow.sp = scratchpad(0x0150)  # 21.0 C
    sensor.start()
    assert sensor.read_c() == 21.0


# --- unplugged ------------------------------------------------------------------------------------


def test_ds18b20_unplugged():
    ow = FakeOneWire(present=False)
    sensor = DS18B20(ow)
    exc = raises(SensorMissing, sensor.start)
    assert exc.fault == "unplugged" and isinstance(exc, OSError)
    raises(SensorMissing, sensor.read_c)
    assert 0x44 not in ow.log and 0xBE not in ow.log  # nothing sent to a bus without presence


# --- thermistor ------------------------------------------------------------------------------------


def adc_for(r_ohm, r_series_ohm=10000):
    code = int(65535 * r_ohm / (r_series_ohm + r_ohm) + 0.5)
    return lambda: code


def ntc(read):
    # A common 10 k NTC, B = 3950 K (25/50), with a 10 k series resistor.
    return Thermistor(read, beta=3950, r0_ohm=10000, t0_c=25.0, r_series_ohm=10000)


def test_thermistor_at_reference_point():
    assert close(ntc(adc_for(10000)).read_c(), 25.0, abs_=0.01)


def test_thermistor_curve_known_points():
    # R(T) = R0 * exp(B * (1/T - 1/T0)) for this part: 0 C -> 33620.6 ohm, 50 C -> 3588.2 ohm,
    # -20 C -> 105384.7 ohm.
    assert close(ntc(adc_for(33620.6)).read_c(), 0.0, abs_=0.05)
    assert close(ntc(adc_for(3588.2)).read_c(), 50.0, abs_=0.05)
    assert close(ntc(adc_for(105384.0)).read_c(), -20.0, abs_=0.1)


def test_thermistor_averages_samples():
    codes = [32000, 33535, 32000, 33535]
    t = ntc(lambda: codes.pop())
    assert close(t.read_c(), 25.0, abs_=0.05)
    assert codes == []


def test_thermistor_open_circuit():
    exc = raises(SensorOpenCircuit, ntc(lambda: 65535).read_c)
    assert exc.fault == "open" and isinstance(exc, SensorError)


def test_thermistor_short_circuit():
    exc = raises(SensorShortCircuit, ntc(lambda: 0).read_c)
    assert exc.fault == "short"


# --- TMP117 ----------------------------------------------------------------------------------------


class FakeI2C:
    def __init__(self, regs, addr=0x48):
        self.regs = regs
        self.addr = addr
        self.present = True

    def readfrom_mem_into(self, addr, memaddr, buf):
        if not self.present or addr != self.addr:
            raise OSError(19)  # ENODEV, what machine.I2C raises on a missing ACK
        v = self.regs[memaddr]
        buf[0] = v >> 8
        buf[1] = v & 0xFF


def test_tmp117_reads_temperatures():
    i2c = FakeI2C({0x0F: 0x0117, 0x00: 0x0C80})  # 25.0 C
    sensor = TMP117(i2c)
    assert sensor.read_c() == 25.0
    i2c.regs[0x00] = 0xFF00  # -2.0 C
    assert sensor.read_c() == -2.0
    assert TMP117.conversion_ms == 0


def test_tmp117_checks_device_id():
    sensor = TMP117(FakeI2C({0x0F: 0x2117, 0x00: 0x0C80}))  # revision bits are ignored
    assert sensor.read_c() == 25.0
    exc = raises(SensorWrongDevice, TMP117(FakeI2C({0x0F: 0x0400, 0x00: 0x0C80})).read_c)
    assert exc.fault == "device"


def test_tmp117_bus_error_becomes_sensor_error():
    i2c = FakeI2C({0x0F: 0x0117, 0x00: 0x0C80})
    sensor = TMP117(i2c, addr=0x48)
    i2c.present = False
    exc = raises(SensorMissing, sensor.read_c)
    assert isinstance(exc, OSError)
    raises(SensorMissing, TMP117(FakeI2C({0x0F: 0x0117, 0x00: 0}), addr=0x49).read_c)


def test_tmp117_not_ready_value():
    raises(SensorPowerOnValue, TMP117(FakeI2C({0x0F: 0x0117, 0x00: 0x8000})).read_c)


def test_every_driver_has_the_same_interface():
    for cls in (temperature.DS18B20, temperature.Thermistor, temperature.TMP117):
        assert hasattr(cls, "start") and hasattr(cls, "read_c") and hasattr(cls, "conversion_ms")
