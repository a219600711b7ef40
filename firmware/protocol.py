# The USB sync protocol, served by the running firmware between samples (docs/protocol.md).
#
# One request is handled per pass of the main loop, so sampling stays on its schedule while a host
# syncs. Every request is answered (a reply or an error frame); nothing a host sends can stop
# logging: handlers run under a catch-all, and frames are read into preallocated buffers.
# The log is read as raw segment bytes: the chunks carry their own CRC-32 from flash to the
# host's store, and the board spends no time decoding them.
import gc
import json
import os
import struct

import alarms
import config
import frame
import leds
import logstore
import mac
import micropython
from frame import (
    AUTH,
    CMD_ACK,
    CMD_ACK_ALARMS,
    CMD_COMMIT,
    CMD_DIAG,
    CMD_GET_CLOCK,
    CMD_GET_CONFIG,
    CMD_IDENTIFY,
    CMD_LIST,
    CMD_MAINTENANCE,
    CMD_PROVISION,
    CMD_READ,
    CMD_SET_CLOCK,
    CMD_SET_CONFIG,
    CMD_STATUS,
    CMD_TEST_MODE,
    ERROR,
    MAX_READ,
    REPLY,
    STATE_CHANGING,
)

try:
    from micropython import const
except ImportError:  # CPython: the host shares this file (package isolog_fw) and tests run it

    def const(__expr):  # positional-only, as MicroPython's (no `/` in its grammar)
        return __expr


# The repository's one version number, reported on IDENTIFY: pyproject.toml and isolog.__version__
# read this line (keep it a plain string literal).
FIRMWARE_VERSION = "0.1.0"
MAX_REQUEST = const(1024)

_LIST_PAGE = const(16)  # a LIST reply stays small: the board may hold hundreds of segments
_CHALLENGE_LEN = const(8)
_RETRY_MS = const(10000)  # a host's retry of its last request comes within this (link.py: 6 x 1 s)
_NONCE_LEN = const(16)  # a host's nonce in IDENTIFY, answered with a proof of the key


class ProtocolError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def allocate():
    """The link's buffers: the receive decoder and the reply buffer (the largest reply is a READ:
    command, request id, segment, size, data). main.py allocates them before the logger starts up,
    so they come first on an unfragmented heap."""
    return frame.Decoder(MAX_REQUEST + frame.OVERHEAD), bytearray(frame.OVERHEAD + 2 + 8 + MAX_READ)


class Server:
    def __init__(self, app, board_name, buffers=None):
        self.app = app
        self.board = app.board
        self.board_name = board_name
        self.rx, self.tx = buffers if buffers is not None else allocate()
        self.txmv = memoryview(self.tx)
        self.requests = 0
        self.errors = 0
        self.maintenance_pending = False
        # Replay protection: the counter of the last authenticated request, kept on flash, and a
        # challenge every signed request is bound to: random at each boot, then the first bytes of
        # the last accepted request's MAC. A request is good once, on this board, in this state.
        self.auth_path = app.data_dir + "/auth"
        self.auth_counter = logstore._read_int(self.auth_path, 0)
        self.auth_last = b""  # the mac of that request: an exact repeat is a retry, not a replay
        self.auth_prev = b""  # the challenge it was made with
        self.auth_at = 0  # uptime when it was accepted
        self.challenge = _random(_CHALLENGE_LEN, app.device_id)
        self.repeat = False  # this request repeats the last accepted one: answer, change nothing
        self.authed = False  # this request came signed with the device key
        self.forced_commit_ms = -logstore.COMMIT_AGE_MS  # uptime of the last unauthenticated COMMIT
        app.link = self
        # The link is binary: a 0x03 byte in a frame is data, not Ctrl-C.
        micropython.kbd_intr(-1)

    # --- framing -------------------------------------------------------------------------------

    def service(self):
        """Read what the host sent and answer at most one request. True if one was handled."""
        room = self.rx.space()
        n = self.board.link_readinto(room)
        if n:
            self.rx.wrote(n)
        got = self.rx.next()
        if got is None:
            return False
        cmd, req, start, length = got
        self.requests += 1
        # A look at the board (IDENTIFY, STATUS: `isolog status` polls every second) is not a sync:
        # the LEDs keep the state the courier must see, and the status reports it (issue 14).
        look = cmd & ~AUTH
        if look != CMD_IDENTIFY and look != CMD_STATUS:
            self.app.note_sync()
        try:
            if self.rx.bad_version:
                raise ProtocolError("version", "protocol version %d required" % frame.VERSION)
            body = self.rx.mv[start : start + length]
            base = cmd & ~AUTH
            self.repeat = False
            self.authed = False
            if base in STATE_CHANGING:
                body = self.authenticate(cmd, base, body)
            elif cmd & AUTH:
                raise ProtocolError("bad_request", "command 0x%02x takes no authentication" % base)
            self.handle(base, cmd, req, body)
        except ProtocolError as exc:
            self.error(cmd, req, exc.code, str(exc))
        except config.ConfigError as exc:
            self.error(cmd, req, "bad_config", str(exc))
        except Exception as exc:  # nothing a host sends may stop logging
            self.error(cmd, req, "internal", "%s: %s" % (type(exc).__name__, exc))
        return True

    def send(self, cmd, req, body_len):
        size = frame.encode(self.tx, REPLY | cmd, req, b"", body_len)
        self.board.link_write(self.txmv[:size])

    def reply_json(self, cmd, req, obj):
        data = _utf8(json.dumps(obj))
        if len(data) > len(self.tx) - frame.OVERHEAD - 2:
            raise ProtocolError("internal", "reply too long")
        self.tx[7 : 7 + len(data)] = data
        self.send(cmd, req, len(data))

    def error(self, cmd, req, code, message):
        self.errors += 1
        data = _utf8(json.dumps({"error": code, "message": message, "command": cmd}))
        data = data[: len(self.tx) - frame.OVERHEAD - 2]
        self.tx[7 : 7 + len(data)] = data
        size = frame.encode(self.tx, ERROR, req, b"", len(data))
        self.board.link_write(self.txmv[:size])

    # --- requests ------------------------------------------------------------------------------

    def authenticate(self, cmd, base, body):
        """The payload of a state-changing request, once its MAC, counter and challenge check out.
        A board with no key yet (factory state) also takes them unauthenticated."""
        key = self.app.key
        if not cmd & AUTH:
            if key:
                raise ProtocolError("unauthenticated", "this board is provisioned: the command needs the device key")
            return body
        if not key:
            raise ProtocolError("unauthenticated", "this board has no key: it takes no signed request")
        if len(body) < 4 + mac.MAC_LEN:
            raise ProtocolError("unauthenticated", "authentication trailer missing")
        end = len(body) - 4 - mac.MAC_LEN
        payload = body[:end]
        counter4 = bytes(body[end : end + 4])
        counter = struct.unpack("<I", counter4)[0]
        given = bytes(body[end + 4 :])
        dev = self.app.device_id
        if (
            counter == self.auth_counter
            and self.auth_prev
            and given == self.auth_last
            and self.app.tick() - self.auth_at < _RETRY_MS
        ):
            # The host sent its last request again (no reply reached it): answer, act not again.
            if mac.equal(given, mac.request_mac(key, base, counter4, dev, self.auth_prev, payload)):
                self.repeat = True
                self.authed = True
                return payload
        if not mac.equal(given, mac.request_mac(key, base, counter4, dev, self.challenge, payload)):
            if counter <= self.auth_counter:
                raise ProtocolError("replayed", "counter %d already used (last %d)" % (counter, self.auth_counter))
            raise ProtocolError("bad_mac", "wrong MAC: not made with this board's key for its current challenge")
        if counter <= self.auth_counter:
            raise ProtocolError("replayed", "counter %d already used (last %d)" % (counter, self.auth_counter))
        config.atomic_write(self.auth_path, str(counter))  # before acting: a replay stays refused
        self.auth_counter = counter
        self.auth_last = given
        self.auth_prev = self.challenge
        self.auth_at = self.app.uptime_ms
        self.challenge = given[:_CHALLENGE_LEN]
        self.authed = True
        return payload

    def handle(self, cmd, wire_cmd, req, body):
        """cmd: the command without the AUTH bit; replies carry the command as it came."""
        app = self.app
        cmd_in = cmd
        cmd = wire_cmd
        again = self.repeat  # an exact repeat of the last accepted request: the state as it is
        if cmd_in == CMD_IDENTIFY:
            self.reply_json(cmd, req, self.identify(bytes(body) if len(body) == _NONCE_LEN else None))
        elif cmd_in == CMD_GET_CLOCK:
            self.reply_json(cmd, req, self.clock())
        elif cmd_in == CMD_SET_CLOCK:
            t = _json(body).get("time_ms")
            if not isinstance(t, int) or not 946684800000 <= t < 4102444800000:  # 2000 .. 2100
                raise ProtocolError("bad_request", "time_ms: epoch milliseconds between 2000 and 2100 required")
            if not again:
                app.set_clock(t)
            self.reply_json(cmd, req, self.clock())
        elif cmd_in == CMD_GET_CONFIG:
            self.reply_json(cmd, req, {"config": app.cfg})
        elif cmd_in == CMD_SET_CONFIG:
            cfg = app.cfg if again else app.configure(_json(body))
            self.reply_json(cmd, req, {"config": cfg})
        elif cmd_in == CMD_LIST:
            if len(body) != 4:
                raise ProtocolError("bad_request", "LIST takes the first sequence number to list from")
            (start,) = struct.unpack("<I", body)
            self.reply_json(cmd, req, self.list_segments(start))
        elif cmd_in == CMD_READ:
            self.read(cmd, req, body)
        elif cmd_in == CMD_ACK:
            upto = _json(body).get("upto")
            if not isinstance(upto, int) or upto < 0:
                raise ProtocolError("bad_request", "upto: a sequence number required")
            self.reply_json(cmd, req, {"synced": app.store.synced if again else app.store.acknowledge(upto)})
        elif cmd_in == CMD_STATUS:
            self.reply_json(cmd, req, self.status())
        elif cmd_in == CMD_ACK_ALARMS:
            if not again:
                app.acknowledge_alarms()
            self.reply_json(cmd, req, self.status())
        elif cmd_in == CMD_COMMIT:
            self.reply_json(cmd, req, {"committed": 0 if again else self.commit(), "next": app.store.next_seq})
        elif cmd_in == CMD_DIAG:
            if not app.test_mode:
                raise ProtocolError("not_test_mode", "diagnostics are answered only in test mode")
            self.reply_json(cmd, req, self.diag(_json(body)))
        elif cmd_in == CMD_PROVISION:
            self.reply_json(cmd, req, self.provision(_json(body)))
        elif cmd_in == CMD_MAINTENANCE:
            self.reply_json(cmd, req, {"maintenance": True})
            if not again:
                self.maintenance_pending = True  # after the reply is out (logger.step)
        elif cmd_in == CMD_TEST_MODE:
            on = _json(body).get("on")
            if not isinstance(on, bool):
                raise ProtocolError("bad_request", "on: true or false required")
            if not again:
                app.set_test_mode(on)
            self.reply_json(cmd, req, {"test_mode": app.test_mode})
        else:
            raise ProtocolError("unknown_command", "unknown command 0x%02x" % cmd)

    def provision(self, req):
        """Give the board its name and key. Refused while records are not synced, unless forced:
        a new key must not leave unsynced evidence that the host cannot verify."""
        app = self.app
        name = req.get("name")
        key_hex = req.get("key")
        if not isinstance(name, str) or not 1 <= len(name) <= 32:
            raise ProtocolError("bad_request", "name: 1..32 characters required")
        if not isinstance(key_hex, str) or len(key_hex) != 64:
            raise ProtocolError("bad_request", "key: 64 hex digits required")
        try:
            key = bytes.fromhex(key_hex)
        except ValueError:
            raise ProtocolError("bad_request", "key: 64 hex digits required")
        store = app.store
        unsynced = store.next_seq + store.count - store.synced
        if unsynced > 0 and req.get("force") is not True:
            raise ProtocolError("unsynced", "%d records are not synced: sync first, or force" % unsynced)
        app.provision(name, key)
        self.auth_counter = 0
        self.auth_last = b""
        self.auth_prev = b""
        self.challenge = _random(_CHALLENGE_LEN, self.challenge)
        config.atomic_write(self.auth_path, "0")
        return self.identify()

    def commit(self):
        """COMMIT: the records in RAM to flash now, so a sync takes everything logged up to now.
        Signed (a provisioned board) it commits at once; unsigned (a board never provisioned) at
        most once per COMMIT_AGE_MS, so nothing on the link wears the flash faster than the batching
        does. LIST, READ and STATUS never commit."""
        app = self.app
        now = app.tick()
        if not self.authed:
            if now - self.forced_commit_ms < logstore.COMMIT_AGE_MS:
                return 0
            self.forced_commit_ms = now
        return app.store.commit()

    def identify(self, nonce=None):
        app = self.app
        store = app.store
        first, nxt, synced = store.bounds()
        total, free = store._space()
        return {
            "device": app.device_id.hex(),
            "board": self.board_name,
            "firmware": FIRMWARE_VERSION,
            "protocol": frame.VERSION,
            "name": app.name,
            "provisioned": bool(app.key),
            "key_id": logstore.key_id_hex(app.key),
            # where the key is: "se" in the secure element, "flash" a file anyone can read
            "key_store": (("flash" if isinstance(app.key, (bytes, bytearray)) else "se") if app.key else None),
            "auth_counter": self.auth_counter,
            "challenge": self.challenge.hex(),  # its presence: challenge-bound signed requests
            # the answer to the host's nonce: only a board holding the key can make it
            "proof": mac.identify_proof(app.key, app.device_id, nonce, self.challenge).hex()
            if nonce is not None and app.key
            else None,
            "test_mode": app.test_mode,
            "boot": app.boot,
            "log": {"first": first, "next": nxt, "in_ram": store.count, "synced": synced},
            "flash": {"total": total, "free": free},
            "config_id": app.cfg["id"] if app.cfg else None,
            "clock": self.clock(),
        }

    def clock(self):
        app = self.app
        app.tick()
        return {"time_ms": app.now_epoch_ms(), "uptime_ms": app.uptime_ms, "valid": app.clock_valid}

    def status(self):
        app = self.app
        store = app.store
        return {
            "dose_rate_usv_h": app.dose_usv_h,
            "over_range": app.over_range,
            "temperature_c": app.temp_c,
            "battery_v": app.battery_v,
            "led": app.leds.state,
            "alarms": alarms.names(app.alarms.latched),
            "active": alarms.names(app.alarms.active),
            "next_seq": store.next_seq + store.count,
            "storage_low": store.low,
            "storage_full": store.full,
            "storage_used_percent": store.used_percent(),
            "low_power": app.low_power,  # sleeps between samples: the host prices its battery so
            "uptime_ms": app.uptime_ms,
            "mem_free": gc.mem_free(),
        }

    def diag(self, req):
        """Test mode only (hil_tests/): read back counters, LEDs and memory on any board; drive
        the simulated sensors or a loopback pulse output where the board has them."""
        app = self.app
        op = req.get("op")
        if op == "read":
            store = app.store
            gc.collect()
            return {
                "counts": self.board.counts(),
                "total_counts": app.total_counts,
                "led": app.leds.state,
                "led_steps": [list(s) for s in leds.PATTERNS[app.leds.state]],
                "alarms": alarms.names(app.alarms.latched),
                "uptime_ms": app.uptime_ms,
                "mem_free": gc.mem_free(),
                "mem_alloc": gc.mem_alloc(),
                "next_seq": store.next_seq,
                "in_ram": store.count,
                "segments": len(store.segments),
                "write_errors": store.write_errors,
                "storage_full": store.full,
                "boot": app.boot,
                "requests": self.requests,
                "errors": self.errors,
            }
        if op == "commit":
            return {"committed": app.store.commit()}
        diag = getattr(self.board, "diag", None)
        if diag is None:
            raise ProtocolError("unsupported", "this board has no diagnostic operation " + str(op))
        try:
            return diag(op, req)
        except ValueError as exc:
            raise ProtocolError("unsupported", str(exc))

    def list_segments(self, start):
        """Segments holding records from `start` on. Records still in RAM stay there (a host that
        wants them sends COMMIT first): an unauthenticated request never writes the flash."""
        store = self.app.store
        segs = store.segments
        i = 0
        while i + 1 < len(segs) and segs[i + 1] <= start:
            i += 1
        out = []
        for first in segs[i : i + _LIST_PAGE]:
            try:
                size = os.stat(store._path(first))[6]
            except OSError:
                continue
            out.append([first, size])
        first, nxt, synced = store.bounds()
        return {"segments": out, "more": i + _LIST_PAGE < len(segs), "next": nxt, "synced": synced}

    def read(self, cmd, req, body):
        if len(body) != 10:
            raise ProtocolError("bad_request", "READ takes segment, offset and length")
        first, offset, want = struct.unpack("<IIH", body)
        store = self.app.store
        if first not in store.segments:
            raise ProtocolError("no_segment", "segment %d is not on the board" % first)
        want = min(want, MAX_READ)
        n = 0
        size = 0
        with open(store._path(first), "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            if offset < size:
                f.seek(offset)
                n = f.readinto(self.txmv[15 : 15 + min(want, size - offset)])
        struct.pack_into("<II", self.tx, 7, first, size)
        self.send(cmd, req, 8 + (n or 0))


def _json(body):
    try:
        obj = json.loads(bytes(body))
    except ValueError:
        raise ProtocolError("bad_request", "body is not JSON")
    if not isinstance(obj, dict):
        raise ProtocolError("bad_request", "body must be a JSON object")
    return obj


def _utf8(text):
    """The bytes of a str without a copy where the port allows it (MicroPython: a str is a
    buffer; a reply is up to ~600 bytes, and a second copy of it fails on a fragmented heap)."""
    try:
        return memoryview(text)
    except TypeError:  # CPython
        return text.encode()


def _random(n, seed):
    """n unpredictable bytes (the challenge): os.urandom where the port has it (ESP32-S3, RP2040
    and the unix port do), else derived from what changes (a test stand-in)."""
    try:
        return os.urandom(n)
    except (AttributeError, OSError, NotImplementedError):
        import hashlib
        import time

        return hashlib.sha256(bytes(seed) + str(time.ticks_ms()).encode()).digest()[:n]
