"""Tamper evidence: the MAC chain through the log shows an edited, dropped, reordered or
inserted record in a flash dump, and says which range fails."""

from __future__ import annotations

import io

import pytest

from isolog.log import decode
from isolog.log import image as flash_image
from isolog.sim.launcher import VirtualBoard, put_files
from isolog_fw import record
from sim_helpers import scenario

KEY = bytes(range(100, 132))


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A provisioned board's flash after three hours of logging."""
    tmp = tmp_path_factory.mktemp("tamper")
    flash = tmp / "flash.img"
    board = VirtualBoard(scenario(duration="3h"), flash, until_end=True, flash_size_kib=256)
    board.close()  # image made, firmware installed; now give it its key, then run
    put_files(flash, {"/data/key": KEY})
    board = VirtualBoard(scenario(duration="3h"), flash, until_end=True)
    try:
        assert board.run() == 0
    finally:
        board.close()
    return flash


def _segment(image) -> tuple[str, bytes]:
    fs = flash_image.open_image(image)
    name = sorted(fs.listdir(flash_image.LOG_DIR))[0]
    with fs.open(f"{flash_image.LOG_DIR}/{name}", "rb") as f:
        return name, f.read()


def _chunks(data: bytes) -> list[bytes]:
    reader = record.ChunkReader(io.BytesIO(data))
    out = []
    while (got := reader.next()) is not None:
        _, start, length = got
        out.append(bytes(reader.buf[start - 4 : start + length + 4]))
    return out


def _decode(data: bytes) -> decode.Log:
    log = decode.Log()
    decode.decode_segment("seg", data, log, KEY)
    decode.check_sequence(log)
    return log


def test_the_log_verifies_with_its_key(image):
    log = flash_image.read_image(image, key=KEY)
    assert len(log.records) == 180 and log.verified == 180 and not log.problems
    assert log.verification().startswith("verified")


def test_every_single_byte_change_in_the_log_area_is_detected_or_harmless(image, tmp_path):
    original = flash_image.read_image(image, key=KEY).records
    data = bytearray(image.read_bytes())
    _, seg = _segment(image)
    start = data.find(seg)  # the segment's current copy (older copies of its block may linger)
    assert start >= 0, "the segment does not lie in one place: make the scenario shorter"
    detected = harmless = 0
    for i in range(start, start + len(seg)):
        data[i] ^= 0xFF
        (tmp_path / "t.img").write_bytes(data)
        data[i] ^= 0xFF
        log = flash_image.read_image(tmp_path / "t.img", key=KEY)
        if log.problems or log.failed or log.unverified:
            detected += 1
        else:
            assert log.records == original, f"byte {i - start} of the segment changed a record undetected"
            harmless += 1
    assert detected == len(seg) - harmless and detected > 0.99 * len(seg)


def test_dropped_reordered_and_inserted_chunks_name_the_range(image):
    _, seg = _segment(image)
    chunks = _chunks(seg)
    heads = 2 if chunks[1][1] == record.KIND_CONFIG else 1  # the header and the configuration chunk
    header, batches = b"".join(chunks[:heads]), chunks[heads:]
    assert len(batches) >= 4
    first_of = [record.decode_batch(b, 4, len(b) - 8)[0][0] for b in batches]
    last_of = [first_of[i] + record.decode_batch(b, 4, len(b) - 8)[0][1] - 1 for i, b in enumerate(batches)]

    dropped = _decode(header + b"".join(batches[:1] + batches[2:]))
    assert f"records {first_of[2]}..{last_of[2]} fail the MAC check" in " ".join(map(str, dropped.problems))
    assert f"records {last_of[0] + 1}..{first_of[2] - 1} are missing" in " ".join(map(str, dropped.problems))

    swapped = _decode(header + b"".join([batches[0], batches[2], batches[1]] + batches[3:]))
    assert swapped.failed and swapped.verified  # the chain breaks at the swap, holds elsewhere

    inserted = _decode(header + b"".join(batches[:2] + [batches[1]] + batches[2:]))
    assert inserted.failed  # a copy of a genuine batch does not fit the chain where it was put

    forged_key = decode.Log()
    decode.decode_segment("seg", seg, forged_key, b"not the key" * 3)
    assert forged_key.verified == 0 and "NOT VERIFIED" in forged_key.verification()
