# HMAC-SHA256 (RFC 2104) for the tamper-evident log and authenticated commands, on hashlib.sha256,
# which every board and the host have (MicroPython has no hmac module). Shared with the host and
# checked there against Python's hmac module.
import hashlib

try:
    from micropython import const
except ImportError:  # CPython: the host shares this file (package isolog_fw) and tests run it

    def const(__expr):  # positional-only, as MicroPython's (no `/` in its grammar)
        return __expr


MAC_LEN = const(16)  # truncated to 128 bits (RFC 2104 section 5 allows truncation to >= half)
_BLOCK = const(64)


def hmac_sha256(key, *parts):
    """HMAC-SHA256 of the concatenation of parts under key (bytes)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    pad = bytearray(_BLOCK)
    pad[: len(key)] = key
    for i in range(_BLOCK):
        pad[i] ^= 0x36
    inner = hashlib.sha256(pad)
    for part in parts:
        inner.update(part)
    for i in range(_BLOCK):
        pad[i] ^= 0x36 ^ 0x5C
    outer = hashlib.sha256(pad)
    outer.update(inner.digest())
    return outer.digest()


def mac(key, *parts):
    """key: bytes, or a key held in hardware (an object with .mac(*parts), e.g. the secure
    element's slot, boards/atecc.py): the firmware never needs the key's bytes."""
    if not isinstance(key, (bytes, bytearray)):
        return key.mac(*parts)
    return hmac_sha256(key, *parts)[:MAC_LEN]


# Signed requests (frame.py, protocol.py) and the board's proof of holding its key (IDENTIFY).
_PROOF = b"isolog-identify"


def request_mac(key, cmd, counter4, device_id, challenge, payload):
    """The MAC of a state-changing request: bound to the command, the counter, the board and its
    current challenge, so it is good once, on one board."""
    return mac(key, bytes((cmd,)), counter4, device_id, challenge, payload)


def identify_proof(key, device_id, nonce, challenge):
    """The board's answer to a host's nonce: proves it holds the key (an impostor or a wiped board
    cannot make it), and vouches for the challenge the host signs its next request with."""
    return mac(key, _PROOF, device_id, nonce, challenge)


def equal(a, b):
    """Compare MACs in time independent of where they differ."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0
