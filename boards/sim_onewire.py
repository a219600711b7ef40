# A simulated 1-Wire bus with one DS18B20 on it, for the virtual board (MicroPython unix port, which
# has no machine.Pin). It speaks the byte level of onewire.OneWire: reset() -> presence,
# writebyte(b), readinto(buf), and answers like a DS18B20 with external power:
#
#   reset + 0xCC (Skip ROM) or 0x55 + 8-byte ROM (Match ROM) selects the sensor; 0x33 (Read ROM)
#   returns its ROM code;
#   0x44 (Convert T) latches the temperature set with set_c() into the scratchpad (conversions
#   complete at once: read slots during a conversion return 0xFF, "done");
#   0xBE (Read Scratchpad) returns the 9 scratchpad bytes, then 0xFF.
#
# Like the real part, the scratchpad holds 85.0 C (raw 0x0550) after power-up until the first
# conversion; plugging the sensor back in after "unplugged" is a power-up.
#
# Faults, set_fault(...):
#   None        healthy
#   "unplugged" no presence pulse; the pulled-up bus reads 0xFF
#   "crc"       the scratchpad is sent with a wrong CRC byte
#   "power_on"  the sensor resets before every read: the scratchpad always holds 85.0 C
#
# The CRC here is written independently of firmware/temperature.py so that a test of the driver
# against this bus checks one implementation against another.

_FAMILY_DS18B20 = 0x28
_POWER_ON_RAW = 0x0550
_IDLE = 0
_ROM = 1  # expecting a ROM command
_MATCH = 2  # receiving the 8 bytes after Match ROM
_FUNCTION = 3  # selected, expecting a function command
_READ_SP = 4  # reading the scratchpad
_READ_ROM = 5  # reading the ROM code

FAULTS = (None, "unplugged", "crc", "power_on")


def _crc8(data, n):
    # Dallas CRC-8, table-free, shift register per the DS18B20 datasheet (figure "CRC generator"):
    # feedback = input bit XOR register bit 0; it is fed into bits 3 and 4 (x^5, x^4) and bit 7.
    reg = 0
    for i in range(n):
        b = data[i]
        for bit in range(8):
            fb = ((b >> bit) ^ reg) & 1
            reg >>= 1
            if fb:
                reg ^= 0b10001100
    return reg


class SimDS18B20Bus:
    def __init__(self, serial=b"\x5a\x17\x00\x00\x00\x01", temp_c=21.0):
        rom = bytearray(8)
        rom[0] = _FAMILY_DS18B20
        rom[1:7] = serial
        rom[7] = _crc8(rom, 7)
        self.rom = bytes(rom)
        # TH=0x4B, TL=0x46 (factory alarm registers), config 0x7F (12 bit), reserved FF 0C 10.
        self._sp = bytearray(b"\x50\x05\x4b\x46\x7f\xff\x0c\x10\x00")
        self._t_c = temp_c
        self._fault = None
        self._state = _IDLE
        self._pos = 0
        self.conversions = 0  # number of Convert T commands the sensor accepted
        # Bus time for the energy model (boards/energy.py): reset pulses, and bytes moved either way
        self.resets = 0
        self.bytes = 0
        self._power_up()

    # --- scenario controls -------------------------------------------------------------------
    def set_c(self, t_c):
        """The temperature the sensor will measure at its next conversion."""
        self._t_c = t_c

    def set_fault(self, fault):
        if fault not in FAULTS:
            raise ValueError("unknown 1-Wire fault: %r" % (fault,))
        if fault == self._fault:
            return  # the virtual board sets the fault on every step; only a change matters
        if self._fault == "unplugged":
            self._power_up()  # plugged back in
        self._fault = fault
        self._state = _IDLE

    def fault(self):
        return self._fault

    # --- onewire.OneWire surface -------------------------------------------------------------
    def reset(self, required=False):
        self.resets += 1
        if self._fault == "unplugged":
            self._state = _IDLE
            if required:
                raise OSError("1-Wire: no presence")
            return False
        self._state = _ROM
        return True

    def writebyte(self, value):
        self.bytes += 1
        state = self._state
        if state == _ROM:
            if value == 0xCC:
                self._state = _FUNCTION
            elif value == 0x55:
                self._state = _MATCH
                self._pos = 0
            elif value == 0x33:
                self._state = _READ_ROM
                self._pos = 0
            else:
                self._state = _IDLE  # search and alarm search are not simulated
        elif state == _MATCH:
            if value != self.rom[self._pos]:
                self._state = _IDLE  # another device was addressed
            else:
                self._pos += 1
                if self._pos == 8:
                    self._state = _FUNCTION
        elif state == _FUNCTION:
            if value == 0x44:
                self._convert()
                self._state = _IDLE
            elif value == 0xBE:
                if self._fault == "power_on":
                    self._power_up()
                self._state = _READ_SP
                self._pos = 0
            else:
                self._state = _IDLE
        else:
            self._state = _IDLE

    def write(self, buf):
        for b in buf:
            self.writebyte(b)

    def readinto(self, buf):
        n = len(buf)
        self.bytes += n
        if self._state == _READ_SP:
            src = self._sp
        elif self._state == _READ_ROM:
            src = self.rom
        else:
            src = None
        first = self._pos
        for i in range(n):
            if src is not None and self._pos < len(src):
                buf[i] = src[self._pos]
                self._pos += 1
            else:
                buf[i] = 0xFF  # nothing drives the bus: the pull-up reads as ones
        if src is self._sp and self._fault == "crc" and first <= 8 < self._pos:
            buf[8 - first] ^= 0xA5  # the CRC byte went out corrupted

    def readbyte(self):
        one = bytearray(1)
        self.readinto(one)
        return one[0]

    # --- the sensor ----------------------------------------------------------------------------
    def _power_up(self):
        self._set_raw(_POWER_ON_RAW)

    def _convert(self):
        self.conversions += 1
        raw = int(round(self._t_c * 16))
        # Outside -55..125 C the part is unspecified; the simulation passes the value through (so the
        # driver's range check sees it), limited to what the 16-bit register can hold.
        if raw < -0x8000:
            raw = -0x8000
        elif raw > 0x7FFF:
            raw = 0x7FFF
        self._set_raw(raw & 0xFFFF)

    def _set_raw(self, raw):
        sp = self._sp
        sp[0] = raw & 0xFF
        sp[1] = (raw >> 8) & 0xFF
        sp[8] = _crc8(sp, 8)
