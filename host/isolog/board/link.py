"""The host end of the USB sync protocol (docs/protocol.md): frames over pyserial.

Every request is idempotent, so a request that got no reply is simply sent again (with the same
request id; a late reply to an earlier try is recognised and dropped by its id).
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from isolog.errors import UserError
from isolog_fw import frame, mac

TIMEOUT_S = 1.0
_READ_MAX = 65536  # bytes per serial read
RETRIES = 5


# Errors with which a board refuses a signed request's signature (its challenge stays as it was).
_AUTH_ERRORS = ("unauthenticated", "bad_mac", "replayed", "version")


class LinkError(UserError):
    """The board did not answer, or answered with an error."""


# What each command does, for messages (never its hex code): firmware/frame.py.
COMMAND_WORDS = {
    frame.CMD_IDENTIFY: "identify",
    frame.CMD_GET_CLOCK: "read the clock",
    frame.CMD_SET_CLOCK: "set the clock",
    frame.CMD_GET_CONFIG: "read the configuration",
    frame.CMD_SET_CONFIG: "configure",
    frame.CMD_LIST: "list the log",
    frame.CMD_READ: "read the log",
    frame.CMD_ACK: "acknowledge stored records",
    frame.CMD_STATUS: "read the status",
    frame.CMD_ACK_ALARMS: "acknowledge alarms",
    frame.CMD_PROVISION: "provision",
    frame.CMD_TEST_MODE: "test mode",
    frame.CMD_MAINTENANCE: "maintenance reset",
    frame.CMD_COMMIT: "write the records in memory",
    frame.CMD_DIAG: "diagnostics",
}


def command_words(cmd: int) -> str:
    return f'"{COMMAND_WORDS.get(cmd & ~frame.AUTH, "an unknown request")}"'


def os_words(exc: BaseException) -> str:
    """A serial port's OS error in words and what to do (no errno)."""
    import errno
    import re

    code = getattr(exc, "errno", None)
    if code is None:  # pyserial often gives the OS error only as text: "... [Errno 5] ..."
        m = re.search(r"\[Errno (\d+)\]", str(exc))
        code = int(m.group(1)) if m else None
    words = {
        errno.EIO: "the board stopped answering (unplugged, or it restarted): plug it in again and retry",
        errno.EAGAIN: "the port is busy: another program (or another isolog) is using it; close it and retry",
        errno.EBUSY: "the port is in use by another program: close it and retry",
        errno.ENOENT: "no such port: plug the board in (`isolog devices` lists the ports)",
        errno.ENODEV: "the board is gone (unplugged?): plug it in again and retry",
        errno.ENXIO: "the board is gone (unplugged?): plug it in again and retry",
        errno.EACCES: "no permission to use the port (on Linux: add your user to the dialout group, log in again)",
        errno.EPERM: "no permission to use the port (on Linux: add your user to the dialout group, log in again)",
    }
    if code in words:
        return words[code]
    text = str(getattr(exc, "strerror", None) or exc)
    text = re.sub(r"\[Errno -?\d+\]\s*", "", text)
    return re.sub(r"^could not open port [^:]*:\s*", "", text) or type(exc).__name__


class BoardError(LinkError):
    def __init__(self, code: str, message: str):
        super().__init__(f"the board refused the request: {message} ({code})")
        self.code = code
        self.board_message = message


# Counters a signed request may carry (u32 on the wire). Ordinary commands stop short of the end
# so that a re-key (PROVISION, signed with the old key) always has a counter left.
COUNTER_MAX = 0xFFFFFFFF
COUNTER_RESERVE = 16


class CounterExhausted(UserError):
    pass


class Signer:
    """Signs a link's state-changing requests for one board (firmware/protocol.py): the key, the
    board's device id, its current challenge, and the counter. The counter comes from
    next_counter(cmd) (the store keeps it per device and key: board/provision.py), never from the
    board's word; accepted(cmd, counter) is told of every request the board took (the audit)."""

    def __init__(
        self,
        key: bytes,
        device_id: bytes,
        challenge: bytes,
        next_counter: Callable[[int], int],
        accepted: Callable[[int, int], None] | None = None,
    ):
        self.key = key
        self.device_id = device_id
        self.challenge = challenge
        self.next_counter = next_counter
        self.on_accepted = accepted
        self.counter = 0  # the last counter signed

    def sign(self, cmd: int, body: bytes) -> tuple[bytes, bytes]:
        """(signed body, its mac)."""
        counter = self.next_counter(cmd)
        if not 0 < counter <= COUNTER_MAX:
            raise CounterExhausted(f"authentication counter {counter} out of range: re-provision the board")
        self.counter = counter
        trailer = struct.pack("<I", counter)
        m = mac.request_mac(self.key, cmd, trailer, self.device_id, self.challenge, body)
        return body + trailer + m, m

    def accepted(self, cmd: int, m: bytes, done: bool = True) -> None:
        """The board took the signature (done: and acted on the request; else it refused what the
        request asked, e.g. a bad configuration): its challenge moved on either way."""
        self.challenge = m[:8]  # the board's next challenge (firmware/protocol.py)
        if done and self.on_accepted is not None:
            self.on_accepted(cmd, self.counter)


def memory_counter(start: int) -> Callable[[int], int]:
    """A counter kept in memory from start (tests, tools without a store)."""
    state = [start]

    def nxt(cmd: int) -> int:
        state[0] += 1
        if state[0] > COUNTER_MAX - (0 if cmd == frame.CMD_PROVISION else COUNTER_RESERVE):
            raise CounterExhausted("the board's authentication counter is used up: re-provision it (isolog provision)")
        return state[0]

    return nxt


@dataclass
class ReadResult:
    first: int
    size: int  # the segment's size on the board now
    data: bytes


def _inner(exc: BaseException) -> BaseException:
    """pyserial wraps the OS error (SerialException(errno, text)): the OS error where there is one."""
    for e in (exc, exc.__cause__, exc.__context__):
        if isinstance(e, OSError) and e.errno is not None:
            return e
    if getattr(exc, "errno", None) is not None:
        return exc
    args = getattr(exc, "args", ())
    if len(args) >= 1 and isinstance(args[0], int):
        return OSError(args[0], str(args[1]) if len(args) > 1 else "")
    return exc


class Link:
    def __init__(self, port: str, timeout_s: float = TIMEOUT_S, retries: int = RETRIES, serial_obj: Any = None):
        self.port = port
        self.timeout_s = timeout_s
        self.retries = retries
        if serial_obj is None:
            import serial  # pyserial

            try:
                serial_obj = serial.Serial(port, baudrate=115200, timeout=0.05, write_timeout=2, exclusive=True)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise UserError(f"cannot open {port}: {os_words(_inner(exc))}") from None
            try:
                serial_obj.reset_input_buffer()  # whatever an earlier connection left unread
            except (serial.SerialException, OSError):
                pass
        self.ser = serial_obj
        # Room for a whole read (up to _READ_MAX bytes) on top of a partial frame: the decoder drops
        # a buffer that fills up, and several pipelined replies can arrive in one read.
        self.dec = frame.Decoder(_READ_MAX + 2 * (frame.MAX_PAYLOAD + frame.OVERHEAD))
        # A random first request id: replies still on their way to an earlier connection (an
        # interrupted sync) are unlikely to carry an id this one waits for.
        self._req = os.urandom(1)[0]
        self.signer: Signer | None = None  # state-changing requests are signed with the device key
        self.bytes_in = 0
        self.bytes_out = 0
        self.retried = 0

    def close(self) -> None:
        try:
            self.ser.close()
        except Exception:
            pass

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests ------------------------------------------------------------------------------

    @property
    def key(self) -> bytes | None:
        return self.signer.key if self.signer is not None else None

    @property
    def auth_counter(self) -> int:
        return self.signer.counter if self.signer is not None else 0

    def use_signer(self, signer: Signer | None) -> None:
        self.signer = signer

    def use_key(self, key: bytes, counter: int | None = None) -> None:
        """Sign with the device key and a counter kept in this Link's memory, starting after
        `counter` (default: the board's own, as IDENTIFY reports it). For tests and tools: the
        isolog commands keep the counter in the store (board/provision.py authorize)."""
        ident = self.identify()
        start = int(ident["auth_counter"]) if counter is None else counter
        self.signer = Signer(
            key, bytes.fromhex(ident["device"]), bytes.fromhex(ident.get("challenge") or ""), memory_counter(start)
        )
        self.signer.counter = start

    def request(self, cmd: int, body: bytes = b"", timeout_s: float | None = None) -> tuple[int, bytes]:
        """Send a request, return (reply command, body). Retries on silence (the same frame: the
        board takes an exact repeat of its last authenticated request as a retry)."""
        signed = None
        base = cmd
        if cmd in frame.STATE_CHANGING and self.signer is not None:
            body, signed = self.signer.sign(cmd, body)
            cmd |= frame.AUTH
        self._req = (self._req + 1) & 0xFF
        req = self._req
        data = frame.encode_bytes(cmd, req, body)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        for attempt in range(self.retries + 1):
            if attempt:
                self.retried += 1
            self._write(data)
            got = self._wait(req, timeout, cmd)
            if got is not None:
                rcmd, rbody = got
                if rcmd == frame.ERROR:
                    err = _loads(rbody)
                    if signed is not None and self.signer is not None and err.get("error") not in _AUTH_ERRORS:
                        self.signer.accepted(base, signed, done=False)  # signature taken, request refused
                    if signed is not None and err.get("error") == "replayed":
                        raise BoardError(
                            "replayed",
                            f"{err.get('message')}: the board's counter is ahead of this store's. It took "
                            "requests this store did not sign (another copy of the store, a restored "
                            "backup, or a stolen key): do not use it; re-provision it from this store "
                            "(isolog provision --force) after QA has seen it",
                        )
                    raise BoardError(str(err.get("error")), str(err.get("message")))
                if rcmd != (frame.REPLY | cmd):
                    raise LinkError(
                        f"the board on {self.port} gave a wrong answer to {command_words(cmd)} "
                        "(not an isolog board, or a firmware of another version?)"
                    )
                if signed is not None and self.signer is not None:
                    self.signer.accepted(base, signed)
                return rcmd, rbody
        raise LinkError(
            f"no answer to {command_words(cmd)} from the board on {self.port} after {self.retries + 1} "
            "tries (is it an isolog board, and is the firmware running?)"
        )

    def _write(self, data: bytes) -> None:
        import serial

        try:
            self.ser.write(data)
            self.ser.flush()
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:  # closed under us
            raise LinkError(f"the link to {self.port} failed: {os_words(_inner(exc))}") from None
        self.bytes_out += len(data)

    def _wait(self, req: int, timeout: float, cmd_sent: int | None = None) -> tuple[int, bytes] | None:
        deadline = time.monotonic() + timeout
        while True:
            got = self.dec.next()
            while got is not None:
                cmd, rid, start, length = got
                if rid == req and (cmd_sent is None or cmd in (frame.REPLY | cmd_sent, frame.ERROR)):
                    return cmd, bytes(self.dec.buf[start : start + length])
                got = self.dec.next()  # a late reply to an earlier request (or connection): dropped
            if time.monotonic() > deadline:
                return None
            self._pump()

    def _pump(self) -> None:
        """Read what has arrived (waiting up to the port's short timeout) into the decoder."""
        import serial

        try:
            waiting = self.ser.in_waiting
            chunk = self.ser.read(max(1, min(waiting, _READ_MAX)))
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:  # closed under us
            raise LinkError(f"the link to {self.port} failed: {os_words(_inner(exc))}") from None
        if chunk:
            self.bytes_in += len(chunk)
            self.dec.feed(chunk)

    def request_many(
        self, requests: Iterable[tuple[int, bytes]], window: int = 4, timeout_s: float | None = None
    ) -> Iterator[bytes]:
        """Send requests with up to `window` of them in flight and yield each reply body in request
        order: the board works on the next request while the host digests a reply. A request that
        got no reply in time is sent again (they are idempotent), `retries` times at most."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        pending: deque[list] = deque()  # [req id, cmd, frame bytes, deadline, tries]
        replies: dict[int, tuple[int, bytes]] = {}
        source = iter(requests)
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                try:
                    cmd, body = next(source)
                except StopIteration:
                    exhausted = True
                    break
                self._req = (self._req + 1) & 0xFF
                data = frame.encode_bytes(cmd, self._req, body)
                self._write(data)
                pending.append([self._req, cmd, data, time.monotonic() + timeout, 1])
            if not pending:
                return
            head = pending[0]
            got = replies.pop(head[0], None)
            if got is None:
                if time.monotonic() > head[3]:
                    if head[4] > self.retries:
                        raise LinkError(
                            f"no answer from the board on {self.port} after {head[4]} tries "
                            "(is it an isolog board, and is the firmware running?)"
                        )
                    head[4] += 1
                    self.retried += 1
                    self._write(head[2])
                    head[3] = time.monotonic() + timeout
                    continue
                self._receive({p[0]: p[1] for p in pending}, replies, head[3])
                continue
            pending.popleft()
            rcmd, rbody = got
            if rcmd == frame.ERROR:
                err = _loads(rbody)
                raise BoardError(str(err.get("error")), str(err.get("message")))
            if rcmd != (frame.REPLY | head[1]):
                raise LinkError(
                    f"the board on {self.port} gave a wrong answer to {command_words(head[1])} "
                    "(not an isolog board, or a firmware of another version?)"
                )
            yield rbody

    def _receive(self, wanted: dict[int, int], replies: dict[int, tuple[int, bytes]], deadline: float) -> None:
        """Read what arrived (waiting at most until deadline) and file the replies to wanted ids."""
        while True:
            got = self.dec.next()
            found = False
            while got is not None:
                cmd, rid, start, length = got
                if rid in wanted and cmd in (frame.REPLY | wanted[rid], frame.ERROR):
                    replies[rid] = (cmd, bytes(self.dec.buf[start : start + length]))
                    found = True
                got = self.dec.next()
            if found or time.monotonic() > deadline:
                return
            self._pump()

    def read_pieces(
        self, first: int, offset: int, end: int, piece: int = frame.MAX_READ, window: int = 4
    ) -> Iterator[ReadResult]:
        """READ segment `first` from offset up to end in pieces, pipelined (request_many)."""
        reqs = (
            (frame.CMD_READ, struct.pack("<IIH", first, off, min(piece, end - off)))
            for off in range(offset, end, piece)
        )
        for body in self.request_many(reqs, window):
            yield self._read_result(first, body)

    def call(self, cmd: int, obj: dict | None = None, timeout_s: float | None = None) -> dict:
        body = json.dumps(obj).encode() if obj is not None else b""
        _, rbody = self.request(cmd, body, timeout_s)
        return _loads(rbody)

    # --- the commands --------------------------------------------------------------------------

    def identify(self, nonce: bytes | None = None) -> dict:
        """IDENTIFY; with a 16-byte nonce the board adds `proof` (mac.identify_proof) if it has a key."""
        if nonce is None:
            return self.call(frame.CMD_IDENTIFY)
        _, body = self.request(frame.CMD_IDENTIFY, nonce)
        return _loads(body)

    def commit(self) -> int:
        """COMMIT: the board writes the records in RAM now (signed on a provisioned board)."""
        return int(self.call(frame.CMD_COMMIT).get("committed", 0))

    def status(self) -> dict:
        return self.call(frame.CMD_STATUS)

    def get_clock(self) -> dict:
        return self.call(frame.CMD_GET_CLOCK)

    def set_clock(self, epoch_ms: int) -> dict:
        return self.call(frame.CMD_SET_CLOCK, {"time_ms": int(epoch_ms)})

    def get_config(self) -> dict | None:
        return self.call(frame.CMD_GET_CONFIG).get("config")

    def set_config(self, cfg: dict) -> dict:
        return self.call(frame.CMD_SET_CONFIG, cfg)["config"]

    def list_segments(self, start: int = 0) -> dict:
        """One page of LIST (docs/protocol.md): the board answers at most a page of segments."""
        _, body = self.request(frame.CMD_LIST, struct.pack("<I", start))
        return _loads(body)

    def list_all(self, start: int = 0) -> tuple[list[tuple[int, int]], int]:
        """Every segment holding records from start on, page by page: ([(first_seq, size)] in
        order, the board's next sequence number)."""
        out: dict[int, int] = {}
        board_next = start
        while True:
            resp = self.list_segments(start)
            try:
                segs = [(int(a), int(b)) for a, b in resp["segments"]]
                board_next = int(resp["next"])
            except (KeyError, TypeError, ValueError):
                raise LinkError("the board's LIST reply is malformed") from None
            for first, size in segs:
                out.setdefault(first, size)
            if not resp.get("more") or not segs or segs[-1][0] == start:
                break
            start = segs[-1][0]
        return sorted(out.items()), board_next

    def read(self, first: int, offset: int, length: int = frame.MAX_READ) -> ReadResult:
        _, body = self.request(frame.CMD_READ, struct.pack("<IIH", first, offset, length))
        return self._read_result(first, body)

    @staticmethod
    def _read_result(first: int, body: bytes) -> ReadResult:
        if len(body) < 8:
            raise LinkError("short READ reply")
        rfirst, size = struct.unpack_from("<II", body)
        if rfirst != first:
            raise LinkError(f"READ reply for segment {rfirst}, asked for {first}")
        return ReadResult(first, size, body[8:])

    def acknowledge(self, upto_seq: int) -> int:
        return int(self.call(frame.CMD_ACK, {"upto": int(upto_seq)})["synced"])

    def acknowledge_alarms(self) -> dict:
        return self.call(frame.CMD_ACK_ALARMS)

    def provision(self, name: str, key: bytes, force: bool = False) -> dict:
        """Give the board a name and a new key (signed with the current key, if it has one)."""
        reply = self.call(frame.CMD_PROVISION, {"name": name, "key": key.hex(), "force": force})
        challenge = bytes.fromhex(reply.get("challenge") or "")
        self.signer = Signer(key, bytes.fromhex(reply["device"]), challenge, memory_counter(0))
        return reply

    def set_test_mode(self, on: bool) -> bool:
        return bool(self.call(frame.CMD_TEST_MODE, {"on": on})["test_mode"])


def _loads(body: bytes) -> dict:
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise LinkError("the board sent a reply that is not JSON") from None
    if not isinstance(obj, dict):
        raise LinkError("the board sent a reply that is not a JSON object")
    return obj
