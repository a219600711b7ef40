# Temperature sensor drivers, the same on every board.
#
# Each driver takes its bus as a constructor argument (the board supplies it), preallocates its
# buffers and raises a SensorError subclass on every fault; nothing is printed (stdout is the binary
# link). All three share one small interface so the firmware never asks which sensor it has:
#
#     sensor.start()                 # begin a conversion (a no-op where the sensor converts by itself)
#     ... wait sensor.conversion_ms ...
#     t_c = sensor.read_c()          # float degrees Celsius, or a SensorError
#
# SensorError derives from OSError so `except OSError` in a sampling loop also catches bus errors;
# each subclass carries a short `fault` string for the record flags and the LEDs.
#
# The 85.0 C rule (DS18B20). 0x0550 (85.0 C) is what the scratchpad holds after power-on until a
# conversion completes: a sensor that browned out, was replugged, or was read before its first
# conversion, reports exactly 85.0 C. A reading of raw 0x0550 is accepted only when both hold:
#   1. this driver started a conversion (start() found the sensor present) since its last read, and
#   2. the last accepted reading, since start-up or since the sensor was last missing, was within
#      _POWER_ON_WINDOW_C of 85.0 C, i.e. the temperature plausibly got there.
# Otherwise SensorPowerOnValue is raised. So 85.0 is always rejected as the first reading after
# start-up or after the sensor reappears, and a jump from e.g. 20 C to exactly 85.0000 C is treated
# as a sensor reset. The cost is small: a genuine 85.0000 C is rejected at most until the next
# reading differs by one LSB (0.0625 C), and the alarm logic sees a sensor fault meanwhile.

import math

try:
    from micropython import const
except ImportError:  # CPython: the host shares this file (package isolog_fw) and tests run it

    def const(__expr):  # positional-only, as MicroPython's (no `/` in its grammar)
        return __expr


_SKIP_ROM = const(0xCC)
_CONVERT_T = const(0x44)
_READ_SCRATCHPAD = const(0xBE)
_RAW_POWER_ON = const(0x0550)  # 85.0 C
_POWER_ON_WINDOW_C = const(10)

_MIN_C = const(-55)
_MAX_C = const(125)

_TMP117_TEMP = const(0x00)
_TMP117_DEVICE_ID = const(0x0F)
_TMP117_ID = const(0x0117)
_TMP117_NOT_READY = const(-32768)  # 0x8000: reset value, read before the first conversion ends

# Thermistor ADC codes (read_u16, 0..65535) beyond which the divider is open or shorted: a 10k NTC
# with a 10k series resistor sits near 1600 at 125 C and near 62000 at -55 C.
_OPEN_U16 = const(65000)
_SHORT_U16 = const(500)


class SensorError(OSError):
    """A temperature sensor fault; `fault` names it for flags and LEDs."""

    fault = "sensor"


class SensorMissing(SensorError):
    fault = "unplugged"


class SensorCRCError(SensorError):
    fault = "crc"


class SensorPowerOnValue(SensorError):
    fault = "power_on"


class SensorOutOfRange(SensorError):
    fault = "range"


class SensorBusError(SensorError):
    fault = "bus"


class SensorOpenCircuit(SensorError):
    fault = "open"


class SensorShortCircuit(SensorError):
    fault = "short"


class SensorWrongDevice(SensorError):
    fault = "device"


def crc8_dallas(buf, n):
    """Dallas/Maxim 1-Wire CRC-8 (x^8 + x^5 + x^4 + 1, bit-reflected 0x8C) over buf[0:n]."""
    crc = 0
    for i in range(n):
        byte = buf[i]
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            byte >>= 1
    return crc


def _check_range(t_c):
    if t_c < _MIN_C or t_c > _MAX_C:
        raise SensorOutOfRange("temperature out of range: %s C" % t_c)
    return t_c


class DS18B20:
    """One DS18B20 alone on a 1-Wire bus, addressed with Skip ROM.

    `ow` provides reset(required=False) -> presence, writebyte(b) and readinto(buf), like
    MicroPython's onewire.OneWire. The sensor needs external power (VDD wired): in parasite mode the
    bus would need a strong pull-up during the conversion, which onewire.OneWire does not drive.
    """

    conversion_ms = 750  # 12-bit resolution, datasheet maximum

    def __init__(self, ow):
        self._ow = ow
        self._buf = bytearray(9)
        self._converting = False  # a conversion was started since the last read
        self._last_c = None  # last accepted reading since start-up or since the sensor was missing

    def _select(self):
        if not self._ow.reset(False):
            self._converting = False
            self._last_c = None
            raise SensorMissing("DS18B20: no presence pulse")
        self._ow.writebyte(_SKIP_ROM)

    def start(self):
        """Start a temperature conversion; read_c() after conversion_ms."""
        self._select()
        self._ow.writebyte(_CONVERT_T)
        self._converting = True

    def read_c(self):
        """Read the scratchpad of the last conversion, in degrees C."""
        converted = self._converting
        self._converting = False  # each conversion is read at most once for the 85.0 C rule
        self._select()
        self._ow.writebyte(_READ_SCRATCHPAD)
        buf = self._buf
        self._ow.readinto(buf)
        if crc8_dallas(buf, 8) != buf[8]:
            raise SensorCRCError("DS18B20: scratchpad CRC mismatch")
        # The configuration register has bit 7 clear and bits 0-4 set: an all-zero scratchpad (bus
        # stuck low, which also fakes a presence pulse) passes the CRC but not this check.
        if buf[4] & 0x9F != 0x1F:
            raise SensorBusError("DS18B20: implausible configuration register")
        raw = buf[0] | (buf[1] << 8)
        # Below 12-bit resolution the low bits are undefined (datasheet): clear 3 - R bits.
        raw &= ~((1 << (3 - ((buf[4] >> 5) & 3))) - 1)
        if raw & 0x8000:
            raw -= 0x10000
        if raw == _RAW_POWER_ON:
            last = self._last_c
            if not converted or last is None or last < 85 - _POWER_ON_WINDOW_C:
                raise SensorPowerOnValue("DS18B20: 85.0 C power-on value")
        t_c = _check_range(raw / 16)
        self._last_c = t_c
        return t_c


class Thermistor:
    """NTC thermistor on an ADC, beta model.

    Wiring: Vref -- r_series_ohm -- ADC node -- thermistor -- GND, with the same Vref as the ADC's
    reference (ratiometric, so Vref drops out). adc_read_u16() returns 0..65535 (machine.ADC.read_u16).
    An open thermistor pulls the node to Vref, a shorted one to ground.
    """

    conversion_ms = 0

    def __init__(self, adc_read_u16, beta, r0_ohm, t0_c, r_series_ohm, samples=4):
        self._read = adc_read_u16
        self._inv_beta = 1.0 / beta
        self._r0_ohm = r0_ohm
        self._inv_t0 = 1.0 / (t0_c + 273.15)
        self._r_series_ohm = r_series_ohm
        self._samples = samples

    def start(self):
        pass

    def resistance_ohm(self):
        total = 0
        for _ in range(self._samples):
            total += self._read()
        code = total // self._samples
        if code >= _OPEN_U16:
            raise SensorOpenCircuit("thermistor open circuit (ADC %d)" % code)
        if code <= _SHORT_U16:
            raise SensorShortCircuit("thermistor short circuit (ADC %d)" % code)
        return self._r_series_ohm * code / (65535 - code)

    def read_c(self):
        r_ohm = self.resistance_ohm()
        inv_t = self._inv_t0 + self._inv_beta * math.log(r_ohm / self._r0_ohm)
        return _check_range(1.0 / inv_t - 273.15)


class TMP117:
    """TI TMP117 on I2C (default continuous conversion, 8 averages, one result a second).

    `i2c` provides readfrom_mem_into(addr, memaddr, buf) like machine.I2C. The device ID is checked
    on the first read and again after any error, so a swapped or reset chip is noticed.
    """

    conversion_ms = 0  # converts continuously by itself

    def __init__(self, i2c, addr=0x48):
        self._i2c = i2c
        self._addr = addr
        self._buf = bytearray(2)
        self._id_ok = False

    def _read_reg(self, reg):
        try:
            self._i2c.readfrom_mem_into(self._addr, reg, self._buf)
        except OSError as exc:
            self._id_ok = False
            if isinstance(exc, SensorError):
                raise
            raise SensorMissing("TMP117: no answer at 0x%02x (%s)" % (self._addr, exc))
        return (self._buf[0] << 8) | self._buf[1]

    def start(self):
        pass

    def read_c(self):
        if not self._id_ok:
            device_id = self._read_reg(_TMP117_DEVICE_ID)
            if device_id & 0x0FFF != _TMP117_ID:
                raise SensorWrongDevice("TMP117: device id 0x%04x" % device_id)
            self._id_ok = True
        raw = self._read_reg(_TMP117_TEMP)
        if raw & 0x8000:
            raw -= 0x10000
        if raw == _TMP117_NOT_READY:
            raise SensorPowerOnValue("TMP117: no conversion finished yet")
        return _check_range(raw * 0.0078125)
