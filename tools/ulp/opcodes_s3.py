"""ESP32-S3 encodings for micropython-esp32-ulp 1.2.0 (MicroPython unix port; tools/ulp/assemble_s3.py).

The pinned assembler (requirements/ulp.txt) encodes for the ESP32's ULP-FSM only; the ESP32-S2/S3
ULP-FSM "is not binary compatible with ESP32 ULP FSM" (ESP-IDF, "ULP Coprocessor Instruction Set",
docs/en/api-reference/system/ulp_instruction_set.rst): the sub-opcodes of ALU and branch
instructions are 2 bits wide, JUMPR compares with less / greater / equal, ST and LD carry half-word
fields, and the peripheral registers sit at other addresses. install() replaces the encoders of
1.2.0's `opcodes` module (its parser, symbols, sections and binary header are kept) with the S3's,
for the instructions isolog's ULP program uses; every other instruction is refused.

Bit layouts (least significant field first), from ESP-IDF components/ulp/ulp_fsm/include/esp32s3/
ulp.h, union ulp_insn [V, read]; the same layouts as micropython-esp32-ulp's later opcodes_s2.py,
which its authors checked against Espressif's binutils (esp32s2ulp-elf-as) [V, read]:

  ALU reg    dreg:2 sreg:2 treg:2 -:15 sel:4 -:1 sub_opcode:2 (0) opcode:4 (7)
  ALU imm    dreg:2 sreg:2 imm:16 -:1 sel:4 -:1 sub_opcode:2 (1) opcode:4 (7)
  ST         data reg:2 addr reg:2 label:2 upper:1 wr_way:2 -:1 offset:11 -:4 sub_opcode:3 (4) opcode:4 (6)
             (ST = STL: upper 0, wr_way 3, label 0: only the low half-word is written)
  LD         dreg:2 sreg:2 -:6 offset:11 -:6 rd_upper:1 (0: low half) opcode:4 (13)
  JUMP       dreg:2 addr:11 -:8 reg:1 type:3 (0 always, 1 zero, 2 overflow) -:1 sub_opcode:2 (1) opcode:4 (8)
  JUMPR      imm:16 cmp:2 (0 R0<imm, 1 R0>imm, 2 R0==imm) offset:7 sign:1 sub_opcode:2 (0) opcode:4 (8)
  REG_RD     addr:8 periph_sel:2 -:8 low:5 high:5 opcode:4 (2)
  REG_WR     addr:8 periph_sel:2 data:8 low:5 high:5 opcode:4 (1)
  WAIT       cycles:16 -:12 opcode:4 (4)
  HALT       -:28 opcode:4 (11)

Peripheral bases (ESP-IDF components/soc/esp32s3/include/soc/reg_base.h, as in micropython-esp32-
ulp's soc_s3.py [V, read]): RTC_CNTL 0x60008000, RTC_IO 0x60008400, SENS 0x60008800, RTC_I2C
0x60008C00, IO_MUX 0x60009000; a register's address field is its word offset in its peripheral.
"""

from esp32_ulp import opcodes as base

_OP_WR_REG = 1
_OP_RD_REG = 2
_OP_DELAY = 4
_OP_ST = 6
_OP_ALU = 7
_OP_BRANCH = 8
_OP_HALT = 11
_OP_LD = 13
_SUB_ALU_REG = 0
_SUB_ALU_IMM = 1
_SUB_ST = 4
_SUB_B = 0
_SUB_BX = 1
_SEL = {"add": 0, "sub": 1, "and": 2, "or": 3, "move": 4, "lsh": 5, "rsh": 6}
_B_CMP = {"lt": 0, "gt": 1, "eq": 2}
_BX_TYPE = {"--": 0, "eq": 1, "ov": 2}
_PERIPH = ((0x60008000, 0), (0x60008400, 1), (0x60008800, 2), (0x60008C00, 3), (0x60009000, None))


def _alu(dest, src1, src2, sel):
    d = base.get_reg(dest)
    s1 = base.get_reg(src1)
    arg = base.arg_qualify(src2)
    if arg.type == base.REG:
        return d | s1 << 2 | arg.value << 4 | sel << 21 | _SUB_ALU_REG << 26 | _OP_ALU << 28
    imm = base.get_abs(arg) & 0xFFFF
    return d | s1 << 2 | imm << 4 | sel << 21 | _SUB_ALU_IMM << 26 | _OP_ALU << 28


def i_add(d, s1, s2):
    return _alu(d, s1, s2, _SEL["add"])


def i_sub(d, s1, s2):
    return _alu(d, s1, s2, _SEL["sub"])


def i_and(d, s1, s2):
    return _alu(d, s1, s2, _SEL["and"])


def i_or(d, s1, s2):
    return _alu(d, s1, s2, _SEL["or"])


def i_lsh(d, s1, s2):
    return _alu(d, s1, s2, _SEL["lsh"])


def i_rsh(d, s1, s2):
    return _alu(d, s1, s2, _SEL["rsh"])


def i_move(dest, src):
    # a register source goes in sreg and treg, as binutils encodes it (1.2.0's i_move says the same)
    arg = base.arg_qualify(src)
    if arg.type == base.REG:
        return _alu(dest, src, src, _SEL["move"])
    d = base.get_reg(dest)
    return d | (base.get_abs(arg) & 0xFFFF) << 4 | _SEL["move"] << 21 | _SUB_ALU_IMM << 26 | _OP_ALU << 28


def _offset_words(offset):
    value = base.get_imm(offset)
    if value % 4:
        raise ValueError("ST/LD offset must be a multiple of 4 bytes: %s" % offset)
    return (value // 4) & 0x7FF


def i_st(reg_val, reg_addr, offset):
    wr_way_no_label = 3
    return (
        base.get_reg(reg_val)
        | base.get_reg(reg_addr) << 2
        | wr_way_no_label << 7
        | _offset_words(offset) << 10
        | _SUB_ST << 25
        | _OP_ST << 28
    )


def i_ld(reg_dest, reg_addr, offset):
    return base.get_reg(reg_dest) | base.get_reg(reg_addr) << 2 | _offset_words(offset) << 10 | _OP_LD << 28


def i_jump(target, condition="--"):
    kind = _BX_TYPE.get(base.get_cond(condition))
    if kind is None:
        raise ValueError("JUMP condition must be eq or ov: %s" % condition)
    arg = base.arg_qualify(target)
    if arg.type == base.REG:
        return arg.value | 1 << 21 | kind << 22 | _SUB_BX << 26 | _OP_BRANCH << 28
    # labels are tracked in words; an immediate address is in bytes (as 1.2.0's i_jump does)
    addr = base.get_abs(arg) if arg.type == base.SYM else base.get_abs(arg) >> 2
    return (addr & 0x7FF) << 2 | kind << 22 | _SUB_BX << 26 | _OP_BRANCH << 28


def i_jumpr(offset, threshold, condition):
    cmp = _B_CMP.get(base.get_cond(condition))
    if cmp is None:  # le and ge take two instructions on the S3; the program does not need them
        raise ValueError("JUMPR condition must be lt, gt or eq here: %s" % condition)
    _kind, words = base.get_rel(offset)
    if not -127 <= words <= 127:
        raise ValueError("JUMPR target out of range: %s" % offset)
    sign = 1 if words < 0 else 0
    return (
        base.get_imm(threshold) & 0xFFFF | cmp << 16 | abs(words) << 18 | sign << 25 | _SUB_B << 26 | _OP_BRANCH << 28
    )


def _periph(reg):
    for i in range(len(_PERIPH) - 1):
        if _PERIPH[i][0] <= reg < _PERIPH[i + 1][0]:
            return (reg >> 2) & 0xFF, _PERIPH[i][1]
    raise ValueError("not an RTC peripheral register of the ESP32-S3: 0x%x" % reg)


def i_reg_rd(reg, high_bit, low_bit):
    addr, sel = _periph(base.get_imm(reg))
    return addr | sel << 8 | base.get_imm(low_bit) << 18 | base.get_imm(high_bit) << 23 | _OP_RD_REG << 28


def i_reg_wr(reg, high_bit, low_bit, val):
    addr, sel = _periph(base.get_imm(reg))
    data = base.get_imm(val) & 0xFF
    return addr | sel << 8 | data << 10 | base.get_imm(low_bit) << 18 | base.get_imm(high_bit) << 23 | _OP_WR_REG << 28


def i_wait(cycles):
    return base.get_imm(cycles) & 0xFFFF | _OP_DELAY << 28


def i_nop():
    return _OP_DELAY << 28


def i_halt():
    return _OP_HALT << 28


def no_of_instr(opcode, args):
    return 1


SUPPORTED = ("add", "sub", "and", "or", "lsh", "rsh", "move", "st", "ld", "jump", "jumpr", "reg_rd", "reg_wr",
             "wait", "nop", "halt")  # fmt: skip


def _refuse(name):
    def refused(*args):
        raise ValueError("%s: not encoded for the ESP32-S3 by tools/ulp/opcodes_s3.py" % name)

    return refused


def install():
    """Make 1.2.0's assembler emit ESP32-S3 words: its `opcodes` module gets these encoders."""
    for name in dir(base):
        if name.startswith("i_"):
            setattr(base, name, _refuse(name[2:]))
    g = globals()
    for name in SUPPORTED:
        setattr(base, "i_" + name, g["i_" + name])
    base.no_of_instr = no_of_instr
