"""The device protocol fuzzed on a running virtual board: nothing a host sends may stop logging.

More than 10,000 random and mutated frames go to a logging virtual board in bulk: random bytes,
valid frames with flipped bits, wrong and huge lengths, truncated frames, other protocol versions,
unknown commands, well-formed frames whose bodies are garbage or hold out-of-range values for every
command, and runs of 0x03 (Ctrl-C on a REPL). The board is provisioned, as in service: state changes
come signed with its key (then their bodies are fuzzed), unsigned, with a wrong MAC, a short trailer
or a replayed counter. Fuzzing may legitimately change state (a valid signed SET_CLOCK, ACK or
SET_CONFIG), so the checks are invariants:

- every well-formed request (right sync, length, CRC) got exactly one answer, in order, with its
  request id and the answer its kind calls for, and nothing else came back (no traceback or stray
  byte on the link); the board's authentication counter is the last one it was given;
- the board never restarted or printed a traceback, still answers every read-only command, takes
  a configuration and the clock again, and goes on logging;
- the log on flash is intact: no damaged chunk, contiguous sequence numbers, every record committed
  before the fuzzing unchanged.
"""

from __future__ import annotations

import json
import os
import random
import select
import struct
import time
import tty
from binascii import crc32
from pathlib import Path

import pytest

from isolog.board.link import BoardError, Link
from isolog.log import decode
from isolog.log import image as flash_image
from isolog.sim.launcher import VirtualBoard
from isolog_fw import frame, mac
from sim_helpers import assert_intact, read_log, scenario

pytestmark = [pytest.mark.slow, pytest.mark.sim_only]

SEED = 20261126
N_FRAMES = 20_000
SPEED = 3000  # virtual seconds per real second: 50 one-minute samples a second
MAX_REQUEST = 1024  # the board's request payload limit (firmware/protocol.py MAX_REQUEST)
MIN_EPOCH_MS = 946_684_800_000  # 2000-01-01: the board refuses earlier clocks
# Accepted clocks stay below year 6400: far-future clocks are a known bug, see
# test_far_future_clock_is_refused below.
MAX_FUZZ_EPOCH_MS = 4102444800000 - 1  # the board takes clock times from 2000 to 2100

AUTH = frame.AUTH
STATE_CHANGING = tuple(frame.STATE_CHANGING)
READ_ONLY = (frame.CMD_IDENTIFY, frame.CMD_GET_CLOCK, frame.CMD_GET_CONFIG, frame.CMD_STATUS)
READS = READ_ONLY + (frame.CMD_LIST, frame.CMD_READ)
CMD_DIAG = frame.CMD_DIAG  # test mode only
KNOWN = READS + STATE_CHANGING + (CMD_DIAG,)
KEY = bytes(range(32))  # the device key the board is provisioned with (the fuzzer is its host)

# What a well-formed request must get back.
ANY = "reply or error"
REPLY = "reply"
ERR_VERSION = "error version"
ERR_UNKNOWN = "error unknown_command"
ERR_NOT_TEST_MODE = "error not_test_mode"
ERR_BAD_REQUEST = "error bad_request"  # e.g. the authentication bit on a command that takes none
ERR_UNAUTHENTICATED = "error unauthenticated"
ERR_BAD_MAC = "error bad_mac"
ERR_REPLAYED = "error replayed"


def raw_frame(cmd: int, req: int, body: bytes, version: int = frame.VERSION, length: int | None = None) -> bytes:
    """A frame with a correct CRC; version and length may lie."""
    payload = bytes([cmd, req & 0xFF]) + body
    n = len(payload) if length is None else length
    head = bytes([version, n & 0xFF, (n >> 8) & 0xFF]) + payload
    return b"IL" + head + struct.pack("<I", crc32(head) & 0xFFFFFFFF)


class Fuzzer:
    """Generates the frames, and for every well-formed one the answer it must get."""

    def __init__(self, rng: random.Random, config: dict, segments: list[int], device: bytes, challenge: bytes):
        self.rng = rng
        self.device = device
        self.challenge = challenge  # the board's current challenge (firmware/protocol.py)
        self.pending_mac = b""  # the MAC of the last well-signed request made
        self.config = config
        self.segments = segments
        self.req = 0
        self.expected: list[tuple[int, int, str]] = []  # (request id, command, what must come back)
        self.kinds: dict[str, int] = {}
        self.counter = 0  # the last authentication counter used
        self.board_counter = 0  # the board's counter once it took every frame sent so far

    def next_req(self) -> int:
        self.req = (self.req + 1) & 0xFF
        return self.req

    def well_formed(self, cmd: int, body: bytes, expect: str, version: int = frame.VERSION, counter: int = 0) -> bytes:
        """A frame the board must answer (if it fits its request buffer). counter: the
        authentication counter the board takes from it (0: none)."""
        req = self.next_req()
        if len(body) + 2 <= MAX_REQUEST:
            self.expected.append((req, cmd, expect))
            if version == frame.VERSION and counter > self.board_counter:
                self.board_counter = counter
                self.challenge = self.pending_mac[:8]  # the board takes it: its next challenge
        return raw_frame(cmd, req, body, version)

    # --- authentication (the board is provisioned with KEY) --------------------------------------

    def signed(self, base: int, body: bytes, counter: int | None = None) -> tuple[int, bytes, int]:
        """(command with the AUTH bit, body with counter and MAC, counter) as the host signs them."""
        if counter is None:
            self.counter += 1
            counter = self.counter
        trailer = struct.pack("<I", counter)
        m = mac.request_mac(KEY, base, trailer, self.device, self.challenge, body)
        self.pending_mac = m
        return base | AUTH, body + trailer + m, counter

    def state_change(self, base: int, body: bytes) -> tuple[int, bytes, str, int]:
        """A state-changing request, signed well or badly or not at all: (command, body, what
        must come back, counter the board takes)."""
        r = self.rng
        mode = r.choices(["good", "none", "bad_mac", "short", "replay"], weights=[50, 15, 15, 5, 15])[0]
        if base == frame.CMD_MAINTENANCE and mode == "good":
            mode = "bad_mac"  # an authenticated MAINTENANCE stops logging by design (a deploy)
        if mode == "replay" and self.board_counter < 2:
            mode = "bad_mac"
        if mode == "good":
            cmd, body, counter = self.signed(base, body)
            return cmd, body, ANY, counter
        if mode == "none":
            return base, body, ERR_UNAUTHENTICATED, 0
        if mode == "short":
            return base | AUTH, (body + r.randbytes(20))[: r.randrange(4 + mac.MAC_LEN)], ERR_UNAUTHENTICATED, 0
        if mode == "replay":  # a counter the board already took, with a right MAC
            cmd, body, _ = self.signed(base, body, r.randint(1, self.board_counter - 1))
            return cmd, body, ERR_REPLAYED, 0
        cmd, body, _ = self.signed(base, body)
        body = body[: -mac.MAC_LEN] + bytes(x ^ 0x5A for x in body[-mac.MAC_LEN :])
        return cmd, body, ERR_BAD_MAC, 0

    # --- values ----------------------------------------------------------------------------------

    def junk_value(self):
        r = self.rng
        return r.choice(
            [
                None,
                True,
                False,
                0,
                -1,
                1,
                r.randint(-(1 << 70), 1 << 70),
                10 ** r.randint(10, 40),
                -(10 ** r.randint(1, 30)),
                r.uniform(-1e9, 1e9),
                1e308,
                -1e308,
                1e-320,
                0.5,
                "",
                "x" * r.randint(1, 60),
                "\u00e9\u2603",
                [],
                [1, 2, 3],
                {},
                {"a": [None]},
                r.randint(0, 1 << 32),
                r.randint(0, 100_000),
            ]
        )

    def junk_bytes(self, lo: int = 0, hi: int = 64) -> bytes:
        r = self.rng
        n = r.randint(lo, hi)
        style = r.random()
        if style < 0.5:
            return r.randbytes(n)
        if style < 0.8:  # sync bytes, versions, Ctrl-C, NUL, 0xFF: the bytes a decoder looks at
            return bytes(r.choice(b"IL\x01\x03\x00\xff\x02") for _ in range(n))
        return b"\x03" * n

    def json_body(self, obj) -> bytes:
        return json.dumps(obj).encode()

    # --- bodies per command ----------------------------------------------------------------------

    def body_for(self, cmd: int) -> bytes:
        r = self.rng
        roll = r.random()
        if roll < 0.12:
            return self.junk_bytes()
        if roll < 0.18:  # JSON, but not an object
            return self.json_body(r.choice([[1, 2], "text", 42, None, True, [{"upto": 1}]]))
        if cmd == frame.CMD_SET_CLOCK:
            v = r.choice(
                [
                    r.randint(MIN_EPOCH_MS, MAX_FUZZ_EPOCH_MS),
                    r.randint(MIN_EPOCH_MS, MAX_FUZZ_EPOCH_MS),
                    r.randint(-(1 << 64), MIN_EPOCH_MS - 1),
                    MIN_EPOCH_MS - 1,
                    0,
                    -1,
                    MAX_FUZZ_EPOCH_MS + 1,
                    r.randint(MAX_FUZZ_EPOCH_MS + 1, 1 << 70),
                    10**30,
                    float(MIN_EPOCH_MS + 1e9),
                    "1795680000000",
                    None,
                    True,
                    [MIN_EPOCH_MS],
                    {"t": 1},
                ]
            )
            obj = {"time_ms": v} if r.random() < 0.9 else {"time": v}
            return self.json_body(obj)
        if cmd == frame.CMD_SET_CONFIG:
            return self.json_body(self.mutated_config())
        if cmd == frame.CMD_LIST:
            n = r.choice([4, 4, 4, 0, 1, 3, 5, 8])
            if n == 4:
                return struct.pack("<I", r.choice([0, r.randint(0, 5000), r.getrandbits(32), 0xFFFFFFFF]))
            return r.randbytes(n)
        if cmd == frame.CMD_READ:
            if r.random() < 0.15:
                return r.randbytes(r.choice([0, 1, 9, 11, 12, 20]))
            seg = r.choice(self.segments + [r.getrandbits(32), 0xFFFFFFFF, 1, 7])
            offset = r.choice([0, r.randint(0, 40_000), r.getrandbits(32), 0xFFFFFFFF])
            want = r.choice([0, 1, 2048, 2049, 0xFFFF, r.getrandbits(16)])
            return struct.pack("<IIH", seg, offset, want)
        if cmd == frame.CMD_ACK:
            v = r.choice(
                [
                    r.randint(0, 5000),
                    r.randint(0, 1 << 32),
                    1 << 64,
                    10**30,
                    -1,
                    -(1 << 40),
                    0,
                    1.5,
                    "12",
                    None,
                    True,
                    [3],
                ]
            )
            return self.json_body({"upto": v} if r.random() < 0.9 else {"up_to": v})
        if cmd == frame.CMD_PROVISION:  # never a valid one: a new key would end the fuzzing's signing
            return self.json_body(
                {
                    "name": r.choice(["box-7", "", "n" * 33, None, 5]),
                    "key": r.choice(["ab" * 31, "zz" * 32, "0" * 65, "g" + "0" * 63, None, 7, KEY.hex()[:-1]]),
                    "force": r.choice([True, False, None, "yes"]),
                }
            )
        if cmd == frame.CMD_TEST_MODE:  # never on: test mode answers diagnostics that inject pulses
            return self.json_body({"on": r.choice([False, 0, 1, "true", None, [], {"on": True}])})
        # Commands that take no body: anything in it is ignored.
        return self.junk_bytes(0, 32) if roll < 0.6 else b""

    def mutated_config(self) -> dict | list:
        r = self.rng
        cfg = json.loads(json.dumps(self.config))
        for _ in range(r.randint(1, 3)):
            what = r.random()
            keys = list(cfg)
            if what < 0.55:
                cfg[r.choice(keys)] = self.junk_value()
            elif what < 0.65:
                del cfg[r.choice(keys)]
            elif what < 0.7:
                cfg["unknown_" + str(r.randint(0, 9))] = self.junk_value()
            elif what < 0.8:  # numbers just outside the board's limits
                key, value = r.choice(
                    [
                        ("interval_s", 9),
                        ("interval_s", 3601),
                        ("interval_s", 60.5),
                        ("cal_cpm_per_usv_h", 0.0),
                        ("dead_time_us", -1.0),
                        ("background_usv_h", 100.1),
                        ("dose_warn_usv_h", 2e7),
                        ("dose_alarm_usv_h", -0.001),
                        ("id", ""),
                        ("id", "y" * 33),
                    ]
                )
                cfg[key] = value
            else:
                rules = cfg.get("temp_rules")
                if not isinstance(rules, list):
                    rules = cfg["temp_rules"] = []
                choice = r.random()
                if choice < 0.3:
                    cfg["temp_rules"] = [["r", 25.0, "above", 60, "single"]] * r.randint(9, 12)
                elif choice < 0.6 and rules:
                    rule = list(rules[r.randrange(len(rules))]) if isinstance(rules[0], list) else []
                    if rule:
                        rule[r.randrange(len(rule))] = self.junk_value()
                    rules.append(rule)
                else:
                    rules.append(
                        r.choice(
                            [
                                ["n", 999.0, "above", 60, "single"],
                                ["n", 2.0, "sideways", 60, "single"],
                                ["n", 2.0, "below", -5, "single"],
                                ["n", 2.0, "below", 60, "sometimes"],
                                ["", 2.0, "below", 60, "single"],
                                ["n", 2.0, "below"],
                                "rule",
                                None,
                                ["n", float("nan"), "above", 60, "single"],
                            ]
                        )
                    )
        if r.random() < 0.03:
            return [cfg]
        return cfg

    # --- frames ----------------------------------------------------------------------------------

    def one(self) -> bytes:
        r = self.rng
        kind = r.choices(
            [
                "random",
                "flipped",
                "length",
                "truncated",
                "version",
                "unknown",
                "garbage_body",
                "huge",
                "ctrl_c",
                "read_only",
                "diag",
                "auth_bit",
            ],
            weights=[8, 12, 8, 10, 6, 6, 34, 4, 4, 8, 2, 3],
        )[0]
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if kind == "random":
            data = self.junk_bytes(1, 300)
            if r.random() < 0.3:  # a sync pair with an unlucky length inside the noise
                data += b"IL" + bytes([r.randrange(256)]) + r.randbytes(2)
            return data
        if kind == "diag":  # test-mode diagnostics: refused on a board in service
            op = r.choice(["read", "commit", "inject", "set_temp", None, 5])
            return self.well_formed(
                CMD_DIAG, self.json_body({"op": op}) if r.random() < 0.8 else self.junk_bytes(), ERR_NOT_TEST_MODE
            )
        if kind == "read_only":
            return self.well_formed(r.choice(READ_ONLY), b"", REPLY)
        if kind == "auth_bit":  # a signature on a command that takes none, known or not
            base = r.choice(
                READS + (CMD_DIAG, 0x00, 0x3F, r.randint(0x0F, 0x1F), r.randint(0x80, 0xBF))
            )  # 0x0E: COMMIT
            return self.well_formed(base | AUTH, self.signed(base, self.body_for(base))[1], ERR_BAD_REQUEST)
        if kind == "unknown":
            cmd = CMD_DIAG
            while cmd in KNOWN or cmd & AUTH:
                cmd = r.choice([0x00, 0x3F, 0x80, 0x81, 0x87, 0xBF, r.randint(0x0E, 0x3F), r.randint(0x80, 0xBF)])
            return self.well_formed(cmd, self.junk_bytes(0, 40), ERR_UNKNOWN)
        cmd = r.choice(KNOWN)
        body = self.body_for(cmd)
        expect = REPLY if cmd in READ_ONLY else ERR_NOT_TEST_MODE if cmd == CMD_DIAG else ANY
        counter = 0
        if cmd in STATE_CHANGING:
            cmd, body, expect, counter = self.state_change(cmd, body)
        if kind == "garbage_body":
            return self.well_formed(cmd, body, expect, counter=counter)
        if kind == "version":
            version = r.choice([0, 2, 3, 0x49, 0x80, 0xFF])
            return self.well_formed(cmd, body, ERR_VERSION, version)
        # The rest are damaged: the board must drop them without an answer.
        good = raw_frame(cmd, self.next_req(), body)
        if kind == "flipped":
            data = bytearray(good)
            for _ in range(r.randint(1, 3)):
                data[r.randrange(len(data))] ^= 1 << r.randrange(8)
            if data == good:
                data[-1] ^= 0x01
            return bytes(data)
        if kind == "length":
            length = len(good) - frame.OVERHEAD
            wrong = r.choice([0, 1, length - 1, length + 1, r.randint(2, 1100), r.randint(0, 0xFFFF)])
            if wrong == length:
                wrong += 1
            data = bytearray(good)
            data[3], data[4] = wrong & 0xFF, wrong >> 8
            if r.random() < 0.5:  # CRC computed over the lie: still not a whole frame
                head = bytes(data[2 : frame.HEAD + min(wrong, length)])
                data[-4:] = struct.pack("<I", crc32(head) & 0xFFFFFFFF)
            return bytes(data)
        if kind == "truncated":
            cut = r.randrange(1, len(good))
            # Not where the next frame's first byte ("I") would complete it: a frame cut there and
            # followed by a frame is whole again on the wire, and rightly answered.
            while good[cut] == frame.SYNC0:
                cut = r.randrange(1, len(good))
            return good[:cut]
        if kind == "huge":
            length = r.choice(
                [MAX_REQUEST + 1, r.randint(MAX_REQUEST + 1, frame.MAX_PAYLOAD), frame.MAX_PAYLOAD + 1, 0xFFFF]
            )
            if length <= frame.MAX_PAYLOAD and r.random() < 0.5:
                # Well-formed by docs/protocol.md but over the board's request buffer: dropped.
                return raw_frame(cmd, self.next_req(), r.randbytes(length - 2))
            return raw_frame(cmd, self.next_req(), r.randbytes(r.randint(0, 200)), length=length)
        assert kind == "ctrl_c"
        if r.random() < 0.5:
            return b"\x03" * r.randint(1, 16) + b"\x04\x02\x01"  # Ctrl-C, Ctrl-D, raw-REPL entry
        self.req = 2  # request id 3: Ctrl-C in the header too
        return b"\x03" * r.randint(1, 8) + self.well_formed(r.choice(READ_ONLY), b"\x03" * r.randint(0, 40), REPLY)


class Replies:
    """Reads and decodes what the board sends back."""

    def __init__(self, fd: int):
        self.fd = fd
        self.dec = frame.Decoder(frame.MAX_PAYLOAD + frame.OVERHEAD)
        self.got: list[tuple[int, int, bytes]] = []

    def read(self, timeout_s: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout_s)
        if not ready:
            return False
        data = os.read(self.fd, 65536)
        # Decoder.feed() drops its whole buffer when given more than fits: feed in pieces and
        # take the frames out in between.
        for i in range(0, len(data), 1024):
            self.dec.feed(data[i : i + 1024])
            while (got := self.dec.next()) is not None:
                cmd, rid, start, length = got
                self.got.append((cmd, rid, bytes(self.dec.buf[start : start + length])))
        return True


def write_all(fd: int, data: bytes, replies: Replies) -> None:
    view = memoryview(data)
    while view:
        _, writable, _ = select.select([], [fd], [], 0.05)
        if writable:
            view = view[os.write(fd, view[:4096]) :]
        replies.read(0)


def blast(fd: int, fuzz: Fuzzer, n_frames: int) -> tuple[int, int, Replies]:
    """Send n_frames fuzzed frames in bursts, each as big as the link can answer at once.

    The virtual board's relay drops replies the host side cannot take, like a USB device whose host
    does not read; a pseudo-terminal holds ~16 KB and drains through the kernel at its own pace, so
    a burst stops once its answers may fill ~10 KB, and the next starts when they are all in. A
    burst ends with zeros, so a damaged frame that claimed a long length does not hold back the
    answers to the frames after it."""
    replies = Replies(fd)
    sent = nbytes = 0
    pad = bytes(MAX_REQUEST + frame.OVERHEAD)
    while sent < n_frames:
        burst = []
        budget = 10_000
        while budget > 0 and sent < n_frames:
            before = len(fuzz.expected)
            burst.append(fuzz.one())
            sent += 1
            for _, cmd, _ in fuzz.expected[before:]:
                budget -= 2100 if cmd == frame.CMD_READ else 600 if cmd == frame.CMD_IDENTIFY else 450
        data = b"".join(burst) + pad
        nbytes += len(data) - len(pad)
        write_all(fd, data, replies)
        deadline = time.monotonic() + 30
        while len(replies.got) < len(fuzz.expected) and time.monotonic() < deadline:
            replies.read(0.1)
        if len(replies.got) < len(fuzz.expected):
            break  # lost answers: asserted by the caller
    while replies.read(0.3):  # nothing more may come
        pass
    return sent, nbytes, replies


def provision_image(flash: Path, key: bytes, name: str) -> None:
    """Give a board its key and name on its flash image before it starts (as provisioning would)."""
    from littlefs import LittleFS, UserContext

    data = bytearray(flash.read_bytes())
    ctx = UserContext(buffer=data)
    fs = LittleFS(
        context=ctx,
        block_size=4096,
        block_count=len(data) // 4096,
        read_size=32,
        prog_size=32,
        lookahead_size=32,
        mount=False,
    )
    fs.mount()
    with fs.open("/data/key", "wb") as f:
        f.write(key)
    with fs.open("/data/name", "wb") as f:
        f.write(name.encode())
    fs.unmount()
    flash.write_bytes(bytes(ctx.buffer))


def read_segments(link: Link) -> decode.Log:
    """The board's log as a host sees it over the link (LIST + READ)."""
    log = decode.Log()
    listing = link.list_segments(0)
    for first, _ in listing["segments"]:
        data = b""
        while True:
            got = link.read(first, len(data))
            if not got.data:
                break
            data += got.data
        decode.decode_segment(f"{first:08x}.seg", data, log, KEY)
    decode.check_sequence(log)
    return log


def wait_logged(link: Link, at_least: int) -> dict:
    """IDENTIFY until the board logged at least this many records (committed or in RAM)."""
    deadline = time.monotonic() + 60
    while True:
        ident = link.identify()
        if ident["log"]["next"] + ident["log"]["in_ram"] >= at_least or time.monotonic() > deadline:
            return ident
        time.sleep(0.05)


def test_protocol_survives_fuzzing(tmp_path: Path):
    rng = random.Random(SEED)
    sc = scenario(duration="60d")
    config = sc["board_config"]
    stderr: list[str] = []
    board = VirtualBoard(
        sc, tmp_path / "flash.img", speed=SPEED, until_end=False, flash_size_kib=2048, on_stderr=stderr.append
    )
    with board:
        provision_image(board.flash, KEY, "fuzz-board")  # a board in service: state changes need the key
        board.start()
        with Link(board.port) as link:
            assert link.identify()["provisioned"] is True
            wait_logged(link, 100)
            before = read_segments(link)  # committed before the fuzzing: must survive unchanged
            assert before.records and not before.problems
            segments = [first for first, _ in link.list_segments(0)["segments"]]
            ident = link.identify()

        fuzz = Fuzzer(rng, config, segments, bytes.fromhex(ident["device"]), bytes.fromhex(ident["challenge"]))
        fd = os.open(board.port, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)
            os.set_blocking(fd, False)
            t0 = time.monotonic()
            sent, nbytes, replies = blast(fd, fuzz, N_FRAMES)
            fuzz_s = time.monotonic() - t0
        finally:
            os.close(fd)

        assert sent >= 10_000
        assert board.proc is not None and board.proc.poll() is None, "the board stopped"
        assert board.boots == 1 and not [e for e in board.events if e.kind in ("watchdog_reset", "power_loss")]
        assert not stderr, stderr[-20:]  # no traceback, no stray print

        # Every well-formed request got one answer, in order; nothing else came back.
        assert (replies.dec.skipped, board.link_dropped, len(replies.got)) == (0, 0, len(fuzz.expected))
        assert len(replies.got) == len(fuzz.expected), (len(replies.got), len(fuzz.expected))
        internal = []
        for (rcmd, rid, body), (req, cmd, expect) in zip(replies.got, fuzz.expected):
            assert rid == req
            if rcmd == frame.ERROR:
                err = json.loads(body)
                assert expect in (ANY, f"error {err['error']}"), (cmd, expect, err)
                assert err["command"] == cmd
                if err["error"] == "internal":
                    internal.append(err["message"])
            else:
                assert expect in (ANY, REPLY) and rcmd == frame.REPLY | cmd, (cmd, expect, rcmd)
                if cmd != frame.CMD_READ:
                    assert isinstance(json.loads(body), dict)
        # An "internal" error is an answer, but it means a handler raised: none is expected.
        assert not internal, sorted(set(internal))
        errors = sum(1 for rcmd, _, _ in replies.got if rcmd == frame.ERROR)
        accepted = {base: 0 for base in KNOWN}
        for rcmd, _, _ in replies.got:
            if rcmd != frame.ERROR and (rcmd & ~(frame.REPLY | AUTH)) in accepted:
                accepted[rcmd & ~(frame.REPLY | AUTH)] += 1
        # The fuzzing reached past validation: changes of state were taken too.
        assert all(
            accepted[cmd]
            for cmd in (frame.CMD_SET_CLOCK, frame.CMD_SET_CONFIG, frame.CMD_ACK, frame.CMD_LIST, frame.CMD_READ)
        ), accepted

        # Still answering: every read-only command, then a configuration and the clock again.
        with Link(board.port) as link:
            with pytest.raises(BoardError, match="unauthenticated"):
                link.set_clock(1_795_680_000_000)  # without the key
            link.use_key(KEY)
            ident = link.identify()
            assert ident["auth_counter"] == fuzz.board_counter  # every signed request counted, in order
            assert ident["device"] == board.device_id and ident["protocol"] == frame.VERSION
            assert link.get_clock()["valid"] is True
            assert isinstance(link.status()["next_seq"], int)
            link.get_config()
            listing = link.list_segments(0)
            assert listing["segments"] and listing["segments"][0][0] == 0
            assert link.read(0, 0, 64).data[:1] == b"\xa5"  # the segment header chunk
            assert link.set_config(config)["id"] == config["id"]
            link.set_clock(1_795_680_000_000)
            # Still logging: the sequence numbers go on.
            logged = ident["log"]["next"] + ident["log"]["in_ram"]
            after = wait_logged(link, logged + 40)
            assert after["log"]["next"] + after["log"]["in_ram"] >= logged + 40
            link.commit()  # what was in RAM (LIST does not commit)
            committed = link.list_segments(0)["next"]
        board.stop()
        board.proc.wait(timeout=10)

    log = flash_image.read_image(tmp_path / "flash.img", key=KEY)  # the MAC chain checked too
    assert_intact(log, before.records)
    assert log.records[0]["seq"] == 0 and log.records[-1]["seq"] + 1 >= committed
    print(
        f"\n{sent} frames ({nbytes} bytes) {fuzz.kinds}; {len(replies.got)} answers, "
        f"{errors} errors, accepted by command {accepted}, in {fuzz_s:.1f} s; {len(log.records)} records on flash"
    )


def test_far_future_clock_is_refused(tmp_path: Path):
    """A SET_CLOCK far in the future must be refused, or its records must still be readable."""
    board = VirtualBoard(scenario(duration="30d"), tmp_path / "flash.img", speed=SPEED, until_end=False)
    with board:
        board.start()
        with Link(board.port) as link:
            wait_logged(link, 40)
            refused = False
            try:
                link.set_clock(10**30)
            except Exception:
                refused = True
            ident = wait_logged(link, 100)
            link.commit()  # LIST does not commit
        board.stop()
        board.proc.wait(timeout=10)
    log = read_log(tmp_path / "flash.img")
    assert refused or not log.problems, [str(p) for p in log.problems][:3]
    assert_intact(log)
    assert len(log.records) >= ident["log"]["next"]
