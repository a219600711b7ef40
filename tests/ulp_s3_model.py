"""An interpreter of the ESP32-S3 ULP-FSM instructions that boards/esp32s3_ulp.S uses, run on the
assembled words (boards/esp32s3_ulp.py, BINARY), not on the source.

Decoding follows the bit layouts of ESP-IDF components/ulp/ulp_fsm/include/esp32s3/ulp.h (union
ulp_insn) [V, read]; semantics and cycle counts follow ESP-IDF's "ULP Coprocessor Instruction Set"
(docs/en/api-reference/system/ulp_instruction_set.rst, the S2/S3 text) [V, read]:

  instruction   execute + fetch of the next (cycles)   what it does
  ALU           2 + 4                                  16-bit result; zero and overflow flags
                                                       (LSH, RSH: shifts, no overflow)
  JUMP, JUMPR   2 + 2                                  JUMPR: R0 <, >, == an immediate (S2/S3 codes)
  LD, ST        4 + 4                                  ST (wr_way 3): one half-word of the word
  REG_RD        4 + 4                                  R0 = register[high:low]
  REG_WR        8 + 4                                  register[high:low] = 8-bit data
  WAIT n        (2 + n) + 4
  HALT          2                                      the program stops

The same page says in general that a fetch after an ALU or branch instruction takes 2 cycles,
4 otherwise; the per-instruction figures above are the ones used (they make the loop slower, so the
filter window computed here is the wider one). The pin is sampled at the cycle a REG_RD starts.
Anything the program does not use (stage counter, LDH/STH, STI, ADC, I2C, WAKE) raises.

The clock: RTC_FAST_CLK, 17.5 MHz on the S3 (ESP32-S3 TRM, ULP chapter, "clocked with 17.5 MHz
RTC_FAST_CLK", read in a quotation of the TRM) [V in a secondary source].
"""

from __future__ import annotations

import struct
from collections.abc import Callable

CLOCK_HZ = 17_500_000
MEMORY_WORDS = 2048  # 8 KiB of RTC slow memory the ULP-FSM can address
RTCIO = 1  # periph_sel of RTC_IO in REG_RD/REG_WR
RTC_GPIO_IN_WORD = 0x24 // 4  # RTC_GPIO_IN_REG, DR_REG_RTCIO_BASE + 0x24
RTC_GPIO_IN_SHIFT = 10  # RTC_GPIO_IN_NEXT: bit 10 + RTC GPIO number


class Unsupported(Exception):
    pass


class Waveform:
    """A line that idles high and goes low over [start, end) intervals (seconds, sorted)."""

    def __init__(self, lows: list[tuple[float, float]]):
        self.lows = lows
        self._i = 0

    def level(self, t: float) -> int:
        lows = self.lows
        i = self._i
        if i > 0 and t < lows[i - 1][1]:  # time went back (a new run): search from the start
            i = 0
        while i < len(lows) and lows[i][1] <= t:
            i += 1
        self._i = i
        return 0 if i < len(lows) and lows[i][0] <= t else 1


class Ulp:
    def __init__(self, binary: bytes, rtc_gpio: int, waveform: Waveform):
        magic, text_offset, text_size, data_size, _bss = struct.unpack_from("<IHHHH", binary)
        if magic != 0x00706C75:
            raise ValueError("not a ULP binary")
        body = binary[text_offset : text_offset + text_size + data_size]
        self.mem = [0] * MEMORY_WORDS
        for i in range(len(body) // 4):
            self.mem[i] = struct.unpack_from("<I", body, 4 * i)[0]
        self.regs = [0, 0, 0, 0]
        self.zero = False
        self.overflow = False
        self.pc = 0
        self.cycles = 0
        self.halted = False
        self.gpio_bit = RTC_GPIO_IN_SHIFT + rtc_gpio
        self.wave = waveform
        self.periph: dict[tuple[int, int], int] = {}
        self.reads = 0  # REG_RD of the input register: samples taken

    def time(self) -> float:
        return self.cycles / CLOCK_HZ

    def run(self, until_s: float, after_step: Callable[[Ulp], None] | None = None) -> None:
        limit = until_s * CLOCK_HZ
        while not self.halted and self.cycles < limit:
            self.step()
            if after_step is not None:
                after_step(self)

    def _set_flags(self, raw: int) -> int:
        self.zero = raw & 0xFFFF == 0
        self.overflow = raw > 0xFFFF or raw < 0
        return raw & 0xFFFF

    def step(self) -> None:
        word = self.mem[self.pc]
        op = word >> 28
        r = self.regs
        nxt = self.pc + 1
        if op == 7:  # ALU
            sub = (word >> 26) & 3
            sel = (word >> 21) & 0xF
            d, s = word & 3, (word >> 2) & 3
            if sub == 0:
                b = r[(word >> 4) & 3]
            elif sub == 1:
                b = (word >> 4) & 0xFFFF
            else:
                raise Unsupported(f"stage-counter instruction {word:#010x}")
            a = r[s]
            if sel == 0:
                r[d] = self._set_flags(a + b)
            elif sel == 1:
                r[d] = self._set_flags(a - b)
            elif sel == 2:
                r[d] = self._set_flags(a & b)
            elif sel == 3:
                r[d] = self._set_flags(a | b)
            elif sel == 4:
                r[d] = self._set_flags(a if sub == 0 else b)
            elif sel == 5:
                r[d] = self._set_flags((a << b) & 0xFFFF)
            elif sel == 6:
                r[d] = self._set_flags(a >> b)
            else:
                raise Unsupported(f"ALU sel {sel}")
            cost = 6
        elif op == 8:  # branches
            sub = (word >> 26) & 3
            if sub == 1:  # JUMP (absolute)
                kind = (word >> 22) & 7
                target = r[word & 3] if (word >> 21) & 1 else (word >> 2) & 0x7FF
                if kind == 0 or (kind == 1 and self.zero) or (kind == 2 and self.overflow):
                    nxt = target
                elif kind not in (1, 2):
                    raise Unsupported(f"JUMP type {kind}")
            elif sub == 0:  # JUMPR
                imm, cmp = word & 0xFFFF, (word >> 16) & 3
                offset = (word >> 18) & 0x7F
                if (word >> 25) & 1:
                    offset = -offset
                taken = (r[0] < imm, r[0] > imm, r[0] == imm)[cmp] if cmp < 3 else None
                if taken is None:
                    raise Unsupported("JUMPR cmp 3")
                if taken:
                    nxt = self.pc + offset
            else:
                raise Unsupported(f"JUMPS {word:#010x}")
            cost = 4
        elif op == 2:  # REG_RD
            addr, sel = word & 0xFF, (word >> 8) & 3
            low, high = (word >> 18) & 0x1F, (word >> 23) & 0x1F
            r[0] = (self._read_periph(sel, addr) >> low) & ((1 << (high - low + 1)) - 1) & 0xFFFF
            cost = 8
        elif op == 1:  # REG_WR
            addr, sel = word & 0xFF, (word >> 8) & 3
            data, low, high = (word >> 10) & 0xFF, (word >> 18) & 0x1F, (word >> 23) & 0x1F
            mask = ((1 << (high - low + 1)) - 1) << low
            old = self.periph.get((sel, addr), 0)
            self.periph[(sel, addr)] = (old & ~mask) | ((data << low) & mask)
            cost = 12
        elif op == 13:  # LD
            if (word >> 27) & 1:
                raise Unsupported("LDH")
            addr = (r[(word >> 2) & 3] + _signed11((word >> 10) & 0x7FF)) & 0x7FF
            r[word & 3] = self.mem[addr] & 0xFFFF
            cost = 8
        elif op == 6:  # ST
            if (word >> 25) & 7 != 4 or (word >> 7) & 3 != 3 or (word >> 6) & 1:
                raise Unsupported(f"ST form {word:#010x}")
            addr = (r[(word >> 2) & 3] + _signed11((word >> 10) & 0x7FF)) & 0x7FF
            self.mem[addr] = (self.mem[addr] & 0xFFFF0000) | r[word & 3]
            cost = 8
        elif op == 4:  # WAIT
            cost = 2 + (word & 0xFFFF) + 4
        elif op == 11:  # HALT
            self.halted = True
            cost = 2
        else:
            raise Unsupported(f"opcode {op} ({word:#010x})")
        self.cycles += cost
        self.pc = nxt

    def _read_periph(self, sel: int, addr: int) -> int:
        if (sel, addr) == (RTCIO, RTC_GPIO_IN_WORD):
            self.reads += 1
            return self.wave.level(self.time()) << self.gpio_bit
        return self.periph.get((sel, addr), 0)


def _signed11(v: int) -> int:
    return v - 0x800 if v & 0x400 else v
