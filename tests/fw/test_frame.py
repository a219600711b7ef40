# Frame codec: the same tests run under CPython and MicroPython (tests/fw/README.md).
import frame


def _frames(*bodies):
    return [frame.encode_bytes(frame.CMD_STATUS, i, b) for i, b in enumerate(bodies)]


def _all(dec):
    out = []
    while True:
        got = dec.next()
        if got is None:
            return out
        cmd, req, start, length = got
        out.append((cmd, req, bytes(dec.buf[start : start + length])))


def test_round_trip():
    dec = frame.Decoder()
    for f in _frames(b"", b"abc", b"x" * 1000):
        dec.feed(f)
    assert [(r, len(b)) for _, r, b in _all(dec)] == [(0, 0), (1, 3), (2, 1000)]


def test_resynchronises_after_garbage_and_damage():
    a, b, c = _frames(b"one", b"two", b"three")
    bad = bytearray(b)
    bad[8] ^= 1
    dec = frame.Decoder()
    dec.feed(b"Traceback (most recent call last):\r\nIL\x01\xff" + a + bytes(bad) + b"\x03\x03" + c)
    assert [body for _, _, body in _all(dec)] == [b"one", b"three"]
    assert dec.skipped > 0


def test_torn_frame_does_not_stall_the_link():
    # A request torn right after its sync pair: the next bytes read as a long length. The retry
    # that follows is whole, so the decoder gives up the torn one instead of waiting.
    a, b = _frames(b"first", b"retry")
    dec = frame.Decoder()
    dec.feed(a[:2] + b)
    assert [body for _, _, body in _all(dec)] == [b"retry"]


def test_waits_for_the_rest_of_a_frame():
    (a,) = _frames(b"payload")
    dec = frame.Decoder()
    dec.feed(a[:6])
    assert dec.next() is None
    dec.feed(a[6:])
    assert [body for _, _, body in _all(dec)] == [b"payload"]


def test_other_version_is_flagged():
    (a,) = _frames(b"v")
    raw = bytearray(a)
    raw[2] = 9
    import struct
    from binascii import crc32

    struct.pack_into("<I", raw, len(raw) - 4, crc32(bytes(raw[2:-4])) & 0xFFFFFFFF)
    dec = frame.Decoder()
    dec.feed(raw)
    assert dec.next() is not None and dec.bad_version
