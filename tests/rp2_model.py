"""A CPython model of MicroPython's `rp2` PIO API, so boards/pico.py runs unchanged in tests with its
PIO programs executed by rp2040-pio-emulator (module `pioemu`).

Three parts, each following the source it names (checked against MicroPython master of 2026-08,
commit 1c3c201, and pico-sdk a1438df):

1. The assembler: `asm_pio` / `asm_pio_encode` with the semantics of MicroPython's
   ports/rp2/modules/rp2.py (class PIOASMEmit): the decorated function runs twice with the
   instruction names injected into its module globals; pass 0 records each label as the number
   of instructions emitted before it (so a label after the last instruction is `len(program)`),
   pass 1 emits; `wrap()` defaults to the last instruction; `[n]` ORs a delay into bits 12:8. The
   program object is the list MicroPython builds: [array of opcodes, offset in PIO0, PIO1, PIO2,
   EXECCTRL, SHIFTCTRL, out_init, set_init, sideset_init]. Opcodes are the RP2040 datasheet's
   (section 3.4, "Instruction Set": bits 15:13 select JMP 000, WAIT 001, IN 010, OUT 011,
   PUSH/PULL 100, MOV 101, IRQ 110, SET 111); side-set is not modelled (the boards use none).
2. The loader: MicroPython's StateMachine.init (ports/rp2/rp2_pio.c) calls pico-sdk's
   pio_add_program(), which places a program without a fixed origin at the highest free offset
   ("work down from the top always", find_offset_for_program in src/rp2_common/hardware_pio/pio.c)
   and writes every JMP as `instr + offset` (add_program_at_offset): the whole 16-bit word is added
   to, so a target past the end carries into the condition bits. rp2_pio.c then adds the offset to
   the wrap top and bottom of EXECCTRL. Unwritten instruction memory holds 0x0000 (`jmp 0`), the
   reset value of INSTR_MEM0..31 (RP2040 datasheet, PIO register list).
3. The state machine: a pioemu emulation of the loaded 32-word memory. The emulator's WAIT and
   JMP PIN address pins from GPIO 0 (its README: "no support for pin-sets associated with IN"),
   so the model checks that `in_base` and `jmp_pin` are the same pin and presents that pin's
   level on bit 0. `exec()` runs one instruction on the current state and leaves the program
   counter where it was (datasheet 3.5.? SMx_INSTR: "execute an instruction immediately ... and
   then resume execution"); it takes no cycle here. Time runs only in run_until().
"""

from array import array
from dataclasses import replace

from pioemu import State, emulate


# rp2.PIO constants (MicroPython docs, library/rp2.PIO.rst; values from ports/rp2/rp2_pio.c)
class PIO:
    IN_LOW = 0
    IN_HIGH = 1
    OUT_LOW = 2
    OUT_HIGH = 3
    SHIFT_LEFT = 0
    SHIFT_RIGHT = 1
    JOIN_NONE = 0
    JOIN_TX = 1
    JOIN_RX = 2


class PIOASMError(Exception):
    pass


_PROG_DATA = 0
_PROG_OFFSET_PIO0 = 1
_PROG_EXECCTRL = 4
_PROG_SHIFTCTRL = 5
_INSTRUCTION_COUNT = 32  # PIO instruction memory, words (datasheet 3.2)

# Operand names the assembler puts into the program's globals (values as in rp2.py's _pio_funcs:
# the datasheet's encodings of sources/destinations and JMP conditions).
_NAMES = {
    "gpio": 0,
    "pins": 0,
    "x": 1,
    "y": 2,
    "null": 3,
    "pindirs": 4,
    "pc": 5,
    "status": 5,
    "isr": 6,
    "osr": 7,
    "exec": 8,
    "invert": lambda v: v | 0x08,
    "reverse": lambda v: v | 0x10,
    "not_x": 1,
    "x_dec": 2,
    "not_y": 3,
    "y_dec": 4,
    "x_not_y": 5,
    "pin": 6,
    "not_osre": 7,
    "noblock": 0x01,
    "block": 0x21,
    "iffull": 0x40,
    "ifempty": 0x40,
    "clear": 0x40,
    "rel": lambda v: v | 0x10,
}
_DIRECTIVES = ("wrap_target", "wrap", "label")
_INSTRUCTIONS = ("word", "nop", "jmp", "wait", "in_", "out", "push", "pull", "mov", "irq", "set")


class _Emitter:
    def __init__(
        self,
        in_shiftdir=PIO.SHIFT_LEFT,
        out_shiftdir=PIO.SHIFT_LEFT,
        autopush=False,
        autopull=False,
        push_thresh=32,
        pull_thresh=32,
        fifo_join=PIO.JOIN_NONE,
        out_init=None,
        set_init=None,
        sideset_init=None,
    ):
        if sideset_init is not None:
            raise PIOASMError("side-set is not modelled")
        self.labels: dict[str, int] = {}
        shiftctrl = (
            fifo_join << 30
            | (pull_thresh & 0x1F) << 25
            | (push_thresh & 0x1F) << 20
            | out_shiftdir << 19
            | in_shiftdir << 18
            | int(autopull) << 17
            | int(autopush) << 16
        )
        self.prog = [array("H"), -1, -1, -1, 0, shiftctrl, out_init, set_init, sideset_init]
        self.wrap_used = False
        self.pass_ = 0
        self.num_instr = 0

    def start_pass(self, pass_):
        if pass_ == 1 and not self.wrap_used and self.num_instr:
            self.wrap()
        self.pass_ = pass_
        self.num_instr = 0

    # directives
    def wrap_target(self):
        self.prog[_PROG_EXECCTRL] |= self.num_instr << 7  # EXECCTRL.WRAP_BOTTOM, bits 11:7

    def wrap(self):
        assert self.num_instr
        self.prog[_PROG_EXECCTRL] |= (self.num_instr - 1) << 12  # EXECCTRL.WRAP_TOP, bits 16:12
        self.wrap_used = True

    def label(self, name):
        if self.pass_ == 0:
            if name in self.labels:
                raise PIOASMError("duplicate label %s" % name)
            self.labels[name] = self.num_instr

    # `instr[n]`: delay of n cycles in bits 12:8 (5 bits with no side-set)
    def __getitem__(self, delay):
        if self.pass_ > 0:
            if not 0 <= delay <= 31:
                raise PIOASMError("delay too large")
            self.prog[_PROG_DATA][-1] |= delay << 8
        return self

    # instructions
    def word(self, instr, label=None):
        self.num_instr += 1
        if self.pass_ > 0:
            target = 0
            if label is not None:
                if label not in self.labels:
                    raise PIOASMError("unknown label %s" % label)
                target = self.labels[label]
            self.prog[_PROG_DATA].append(instr | target)
        return self

    def nop(self):
        return self.word(0xA042)  # mov y, y

    def jmp(self, cond, label=None):
        if label is None:
            cond, label = 0, cond
        return self.word(0x0000 | cond << 5, label)

    def wait(self, polarity, src, index):
        src = 1 if src == 6 else (0 if src == 0 else 2)  # "pin" is 6 as a JMP condition; irq is 2
        return self.word(0x2000 | polarity << 7 | src << 5 | index)

    def in_(self, src, bits):
        if not 0 < bits <= 32:
            raise PIOASMError("invalid bit count %s" % bits)
        return self.word(0x4000 | src << 5 | bits & 0x1F)

    def out(self, dest, bits):
        if not 0 < bits <= 32:
            raise PIOASMError("invalid bit count %s" % bits)
        return self.word(0x6000 | (7 if dest == 8 else dest) << 5 | bits & 0x1F)

    def push(self, value=0, value2=0):
        value |= value2
        if not value & 1:
            value |= 0x20  # blocking unless noblock
        return self.word(0x8000 | value & 0x60)

    def pull(self, value=0, value2=0):
        value |= value2
        if not value & 1:
            value |= 0x20
        return self.word(0x8080 | value & 0x60)

    def mov(self, dest, src):
        return self.word(0xA000 | (4 if dest == 8 else dest) << 5 | src)

    def irq(self, mod, index=None):
        if index is None:
            mod, index = 0, mod
        return self.word(0xC000 | mod & 0x60 | index)

    def set(self, dest, data):
        return self.word(0xE000 | dest << 5 | data)


def asm_pio(**kw):
    emit = _Emitter(**kw)

    def dec(f):
        gl = f.__globals__
        saved = gl.copy()
        gl.clear()  # as MicroPython does: the body sees only the assembler's names
        try:
            gl.update(_NAMES)
            for name in _DIRECTIVES + _INSTRUCTIONS:
                gl[name] = getattr(emit, name)
            emit.start_pass(0)
            f()
            emit.start_pass(1)
            f()
        finally:
            gl.clear()
            gl.update(saved)
        return emit.prog

    return dec


def asm_pio_encode(instr, sideset_count, sideset_opt=False):
    if sideset_count or sideset_opt:
        raise PIOASMError("side-set is not modelled")
    emit = _Emitter()
    emit.pass_ = 1
    gl = dict(_NAMES)
    for name in _INSTRUCTIONS:
        gl[name] = getattr(emit, name)
    gl["jmp"] = None  # rp2.py: "emit.jmp currently not supported"
    exec(instr, gl)
    if len(emit.prog[_PROG_DATA]) != 1:
        raise PIOASMError("expecting exactly 1 instruction")
    return emit.prog[_PROG_DATA][0]


# --- pico-sdk's loader and the state machines ---------------------------------------------------


class PioBlock:
    """One PIO block's instruction memory and which words are taken."""

    def __init__(self):
        self.instr_mem = [0x0000] * _INSTRUCTION_COUNT
        self.used = 0

    def reserve_above(self, offset, length):
        """Mark the words above offset+length as taken (by other programs), so that pico-sdk's
        top-down search places the next program of `length` words exactly at `offset`."""
        top = offset + length
        self.used |= ((1 << _INSTRUCTION_COUNT) - 1) & ~((1 << top) - 1)

    def add_program(self, opcodes):
        length = len(opcodes)
        mask = (1 << length) - 1
        for offset in range(_INSTRUCTION_COUNT - length, -1, -1):  # find_offset_for_program
            if not self.used & (mask << offset):
                break
        else:
            raise OSError("ENOMEM: no room in PIO instruction memory")
        for i, instr in enumerate(opcodes):  # add_program_at_offset
            is_jmp = instr >> 13 == 0
            self.instr_mem[offset + i] = (instr + offset) & 0xFFFF if is_jmp else instr
        self.used |= mask << offset
        return offset


PIO_BLOCKS = [PioBlock(), PioBlock()]
STATE_MACHINES: dict[int, "StateMachine"] = {}


def reset_model():
    PIO_BLOCKS[:] = [PioBlock(), PioBlock()]
    STATE_MACHINES.clear()


def _pin_id(pin):
    return pin if isinstance(pin, int) else pin.id


class StateMachine:
    def __init__(
        self,
        sm_id,
        prog,
        freq=-1,
        *,
        in_base=None,
        jmp_pin=None,
        out_base=None,
        set_base=None,
        sideset_base=None,
        **_kw,
    ):
        self.id = sm_id
        block = PIO_BLOCKS[sm_id // 4]
        if prog[_PROG_OFFSET_PIO0 + sm_id // 4] < 0:
            prog[_PROG_OFFSET_PIO0 + sm_id // 4] = block.add_program(list(prog[_PROG_DATA]))
        self.offset = prog[_PROG_OFFSET_PIO0 + sm_id // 4]
        self.length = len(prog[_PROG_DATA])
        self.memory = block.instr_mem
        self.freq = freq
        execctrl = prog[_PROG_EXECCTRL]
        self.wrap_bottom = ((execctrl >> 7) & 0x1F) + self.offset
        self.wrap_top = ((execctrl >> 12) & 0x1F) + self.offset
        shiftctrl = prog[_PROG_SHIFTCTRL]
        self.shift_isr_right = bool(shiftctrl >> 18 & 1)
        self.autopush = bool(shiftctrl >> 16 & 1)
        self.push_thresh = (shiftctrl >> 20 & 0x1F) or 32
        self.in_pin = None if in_base is None else _pin_id(in_base)
        uses_jmp_pin = any(op >> 13 == 0 and (op >> 5) & 7 == 6 for op in prog[_PROG_DATA])
        if uses_jmp_pin:
            if jmp_pin is None:
                raise AssertionError(
                    "the program uses JMP PIN but StateMachine got no jmp_pin (EXECCTRL.JMP_PIN would stay GPIO 0)"
                )
            if self.in_pin is not None and _pin_id(jmp_pin) != self.in_pin:
                raise AssertionError("the model needs jmp_pin == in_base")
            self.in_pin = _pin_id(jmp_pin)
        self.state = State(program_counter=self.offset, pin_values=1)
        self.running = False
        self.level_at_us = lambda t_us: 1  # the input pin's level (1 high, 0 low) against time
        STATE_MACHINES[sm_id] = self

    # the PIO clock: freq Hz, 1 MHz and up (the model runs in whole cycles)
    def _cycles_per_us(self):
        if self.freq <= 0 or self.freq % 1_000_000:
            raise AssertionError("model supports whole-MHz PIO clocks, got %r" % self.freq)
        return self.freq // 1_000_000

    def active(self, value=None):
        if value is not None:
            self.running = bool(value)
        return self.running

    def _emulate(self, opcodes, state, stop_when, wrap=None):
        per_us = self._cycles_per_us()
        level = self.level_at_us

        def pins(clock: int) -> int:
            return 1 if level(clock / per_us) else 0

        return emulate(
            opcodes,
            stop_when=stop_when,
            initial_state=state,
            input_source=pins,
            shift_isr_right=self.shift_isr_right,
            auto_push=self.autopush,
            push_threshold=self.push_thresh,
            jmp_pin=0,
            wrap_target=wrap[0] if wrap else self.wrap_bottom,
            wrap_top=wrap[1] if wrap else self.wrap_top,
        )

    def run_until(self, t_us):
        """Run the state machine up to time t_us (from its start), sampling level_at_us."""
        if not self.running:
            return
        end = int(t_us * self._cycles_per_us())
        assert self.wrap_top != 0, "pioemu reads wrap_top 0 as 'last word'"
        for _before, after in self._emulate(self.memory, self.state, lambda _op, s: s.clock >= end):
            self.state = after

    @property
    def x(self):
        return self.state.x_register

    @property
    def pc(self):
        return self.state.program_counter

    def exec(self, instr):
        if instr >> 13 == 0:
            raise AssertionError("exec of a JMP is not modelled")
        before = self.state
        if instr & 0xE080 == 0x8000 and len(before.receive_fifo) == 4:
            raise AssertionError("exec'd PUSH on a full RX FIFO stalls the state machine")
        steps = self._emulate(
            [instr], replace(before, program_counter=0), lambda _op, s: s.clock > before.clock, wrap=(0, 0)
        )
        _b, after = next(steps)
        self.state = replace(after, program_counter=before.program_counter, clock=before.clock)

    def rx_fifo(self):
        return len(self.state.receive_fifo)

    def get(self):
        fifo = self.state.receive_fifo
        if not fifo:
            raise AssertionError("StateMachine.get() on an empty RX FIFO blocks forever on the board")
        fifo = fifo.copy()
        word = fifo.popleft()
        self.state = replace(self.state, receive_fifo=fifo)
        return word
