"""isolog.log.image on random and damaged flash images: a Log (damage reported) or one UserError,
never another exception (issue 11, bad input)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes import SegmentBuilder
from isolog.errors import UserError
from isolog.log import image as flash_image
from isolog.log.decode import Log, decode_segment

BLOCK = 4096
BLOCKS = 32


def _segment() -> bytes:
    seg = SegmentBuilder()
    for b in range(3):
        seg.batch(b * 5, [(60_000, 100 + i, 4.0, 0) for i in range(5)], base_uptime_ms=b * 300_000)
    return bytes(seg.data)


@pytest.fixture(scope="module")
def good_image() -> bytes:
    buf = bytearray(BLOCK * BLOCKS)
    fs = flash_image.littlefs_over(buf, block_size=BLOCK)
    fs.format()
    fs.mount()
    fs.makedirs(flash_image.LOG_DIR, exist_ok=True)
    with fs.open(flash_image.segment_name(0), "wb") as f:
        f.write(_segment())
    fs.unmount()
    return bytes(buf)


def _read(tmp_path, data: bytes) -> Log | None:
    path = tmp_path / "flash.img"
    path.write_bytes(data)
    try:
        return flash_image.read_image(path, BLOCK)
    except UserError as exc:
        assert "\n" not in str(exc)
        return None


def test_the_image_the_fuzzing_starts_from_reads_clean(tmp_path, good_image):
    log = _read(tmp_path, good_image)
    assert log is not None and len(log.records) == 15 and log.problems == []


def test_random_damage_to_an_image_is_reported_or_refused(tmp_path_factory, good_image):
    tmp = tmp_path_factory.mktemp("fuzz")

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.integers(0, len(good_image) - 1), st.binary(min_size=1, max_size=64)), max_size=6))
    def check(writes):
        data = bytearray(good_image)
        for at, junk in writes:
            data[at : at + len(junk)] = junk[: len(data) - at]
        _read(tmp, bytes(data))

    check()


def test_random_bytes_as_an_image_are_refused_in_one_line(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")

    @settings(max_examples=60, deadline=None)
    @given(st.binary(max_size=3 * BLOCK), st.sampled_from([0, BLOCK, 2 * BLOCK]))
    def check(data, pad):
        _read(tmp, data + bytes(pad))

    check()


def test_random_segment_bytes_decode_to_records_and_problems():
    good = _segment()

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.binary(max_size=400), st.tuples(st.integers(0, len(good)), st.binary(max_size=16))))
    def check(x):
        data = x if isinstance(x, bytes) else good[: x[0]] + x[1] + good[x[0] + len(x[1]) :]
        log = Log()
        decode_segment("/data/log/00000000.seg", data, log)  # never raises: damage becomes problems

    check()
