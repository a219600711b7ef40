# HMAC-SHA256 on hashlib: RFC 4231 test vectors (checked under both interpreters).
import mac


def _hex(b):
    return "".join("%02x" % x for x in b)


def test_rfc4231_case_1():
    key = b"\x0b" * 20
    assert _hex(mac.hmac_sha256(key, b"Hi There")) == (
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    )


def test_rfc4231_case_2_parts_concatenate():
    assert _hex(mac.hmac_sha256(b"Jefe", b"what do ya want ", b"for nothing?")) == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_rfc4231_case_6_long_key():
    key = b"\xaa" * 131
    msg = b"Test Using Larger Than Block-Size Key - Hash Key First"
    assert _hex(mac.hmac_sha256(key, msg)) == ("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")


def test_truncated_mac_and_compare():
    m = mac.mac(b"k", b"message")
    assert len(m) == mac.MAC_LEN
    assert mac.equal(m, mac.mac(b"k", b"message"))
    assert not mac.equal(m, mac.mac(b"k", b"messagf"))
    assert not mac.equal(m, m[:-1])
