"""isolog.board.link against the firmware's own protocol server (tests/fakes.py), CPython only:
request and reply, retries with the same request id, late replies, pipelined reads, the board's
refusals as BoardError, a dead or silent port as LinkError."""

from __future__ import annotations

import struct
from binascii import crc32

import pytest

import fakes
from fakes import FakeBoard, FakeSerial, Hold, drop, garbage_before, garble, link_to, lose_byte
from isolog.board.link import BoardError, Link, LinkError

CMD_IDENTIFY, CMD_GET_CLOCK, CMD_READ = 0x01, 0x02, 0x07  # docs/protocol.md


def parse_frame(data: bytes) -> tuple[int, int, bytes]:
    """(command, request id, body) of one frame, by the layout in docs/protocol.md."""
    assert data[:2] == b"IL" and data[2] == 1
    length = data[3] | data[4] << 8
    assert len(data) == 5 + length + 4
    assert struct.unpack("<I", data[-4:])[0] == crc32(data[2 : 5 + length])
    return data[5], data[6], data[7 : 5 + length]


@pytest.fixture(scope="module")
def logged() -> FakeBoard:
    """A configured board after 3 hours and 30 s of logging at one record a minute."""
    board = FakeBoard()
    board.configure()
    board.run_for(3 * 3600 + 30)
    return board


@pytest.fixture()
def board(logged):
    logged.cable = None
    return logged


def segment(board: FakeBoard) -> tuple[int, bytes]:
    path = board.segment_paths()[0]
    return int(path.rsplit("/", 1)[1][:8], 16), board.fs.read(path)


def test_identify_round_trip(board):
    link, ser = link_to(board)
    ident = link.identify()
    assert ident["device"] == fakes.DEVICE_ID.hex()
    assert ident["board"] == "fake" and ident["protocol"] == 1
    assert ident["config_id"] == fakes.CONFIG["id"]
    # 180 one-minute samples, committed or still in RAM
    assert ident["log"]["next"] + ident["log"]["in_ram"] == 180
    cmd, req, body = parse_frame(ser.sent[0])
    assert (cmd, body) == (CMD_IDENTIFY, b"")
    assert link.retried == 0


def test_consecutive_requests_use_new_request_ids(board):
    link, ser = link_to(board)
    link.get_clock()
    link.get_clock()
    ids = [parse_frame(f)[1] for f in ser.sent]
    assert ids[1] == (ids[0] + 1) & 0xFF


def test_lost_reply_is_retried_with_the_same_request(board):
    link, ser = link_to(board, to_host=drop(0))
    clock = link.get_clock()
    assert clock["valid"] is True and clock["time_ms"] == fakes.START_EPOCH_MS + board.uptime_ms
    assert len(ser.sent) == 2 and ser.sent[0] == ser.sent[1]  # same frame, same request id
    assert parse_frame(ser.sent[0])[0] == CMD_GET_CLOCK
    assert link.retried == 1


def test_lost_request_is_sent_again(board):
    link, ser = link_to(board, to_board=drop(0))
    assert link.identify()["device"] == fakes.DEVICE_ID.hex()
    assert len(ser.sent) == 2 and link.retried == 1


@pytest.mark.parametrize("fault", [garble(0), lose_byte(0), lose_byte(0, at=3)], ids=["flipped", "lost", "lost-length"])
def test_damaged_reply_is_dropped_and_the_request_retried(board, fault):
    first, data = segment(board)
    link, ser = link_to(board, to_host=fault)
    got = link.read(first, 40, 64)
    assert (got.first, got.size, got.data) == (first, len(data), data[40:104])
    assert link.retried == 1


def test_damaged_request_is_not_answered_and_sent_again(board):
    link, ser = link_to(board, to_board=garble(0))
    assert link.identify()["device"] == fakes.DEVICE_ID.hex()
    assert link.retried == 1


def test_garbage_on_the_line_is_skipped_both_ways(board):
    link, ser = link_to(board, to_host=garbage_before(0, 1), to_board=garbage_before(0))
    assert link.identify()["device"] == fakes.DEVICE_ID.hex()
    assert "time_ms" in link.get_clock()
    assert link.retried == 0  # resynchronised on the spot, no retry needed


def test_late_reply_to_an_earlier_request_is_dropped(board):
    """The reply to READ at offset 0 is late: the host retries (same id), gets the retry's answer;
    the late one arrives just before the answer to the next READ and must not be taken for it."""
    first, data = segment(board)
    link, ser = link_to(board, to_host=Hold(0, release=2))
    a = link.read(first, 0, 32)
    b = link.read(first, 32, 32)
    assert a.data == data[0:32]
    assert b.data == data[32:64]
    assert link.retried == 1


def test_late_reply_to_another_command_is_dropped(board):
    link, ser = link_to(board, to_host=Hold(0, release=2))
    assert "device" in link.identify()  # answered by the retry
    clock = link.get_clock()  # the late IDENTIFY reply arrives first
    assert set(clock) == {"time_ms", "uptime_ms", "valid"}


def test_pipelined_reads_keep_several_requests_in_flight_and_return_pieces_in_order(board):
    first, data = segment(board)
    frames_sent_at_first_reply: list[int] = []
    holder: list[FakeSerial] = []

    def watch(i: int, frame: bytes) -> bytes:
        if i == 0:
            frames_sent_at_first_reply.append(holder[0].frames_to_board)
        return frame

    link, ser = link_to(board, to_host=watch)
    holder.append(ser)
    pieces = list(link.read_pieces(first, 0, len(data), piece=100, window=4))
    assert frames_sent_at_first_reply == [4]
    assert [p.first for p in pieces] == [first] * (-(-len(data) // 100))
    assert b"".join(p.data for p in pieces) == data
    offsets = [struct.unpack("<IIH", parse_frame(f)[2])[1] for f in ser.sent]
    assert offsets == list(range(0, len(data), 100))


@pytest.mark.parametrize("direction", ["to_host", "to_board"])
def test_pipelined_reads_survive_a_lost_frame(board, direction):
    first, data = segment(board)
    link, ser = link_to(board, to_host=drop(2)) if direction == "to_host" else link_to(board, to_board=drop(2))
    pieces = list(link.read_pieces(first, 100, len(data), piece=128, window=4))
    assert b"".join(p.data for p in pieces) == data[100:]
    assert link.retried >= 1


def test_pipelined_reads_with_a_late_reply(board):
    first, data = segment(board)
    link, ser = link_to(board, to_host=Hold(1, release=6))
    pieces = list(link.read_pieces(first, 0, len(data), piece=128, window=3))
    assert b"".join(p.data for p in pieces) == data


def test_request_many_returns_every_reply_in_request_order(board):
    first, data = segment(board)
    link, ser = link_to(board)
    reqs = [(CMD_READ, struct.pack("<IIH", first, off, 8)) for off in (64, 0, 200, 8)]
    bodies = list(link.request_many(iter(reqs), window=3))
    assert [b[8:] for b in bodies] == [data[64:72], data[0:8], data[200:208], data[8:16]]


def test_board_refusals_are_board_errors(board):
    link, ser = link_to(board)
    with pytest.raises(BoardError) as exc:
        link.read(0x1234, 0)
    assert exc.value.code == "no_segment" and str(0x1234) in exc.value.board_message
    bad = dict(fakes.CONFIG, interval_s=5)
    with pytest.raises(BoardError) as exc:
        link.set_config(bad)
    assert exc.value.code == "bad_config" and "interval_s" in str(exc.value)
    with pytest.raises(BoardError) as exc:
        link.request(0x3E)
    assert exc.value.code == "unknown_command"
    with pytest.raises(BoardError) as exc:
        link.call(0x03, {"time_ms": 5})  # SET_CLOCK to 1970
    assert exc.value.code == "bad_request"
    assert link.retried == 0  # a refusal is an answer: never retried
    assert link.get_config()["interval_s"] == fakes.CONFIG["interval_s"]  # nothing changed


def test_board_refusal_inside_a_pipeline_is_a_board_error(board):
    link, ser = link_to(board)
    with pytest.raises(BoardError) as exc:
        list(link.read_pieces(0x777, 0, 1000, piece=100))
    assert exc.value.code == "no_segment"


def test_board_error_is_a_link_error_with_the_boards_words(board):
    link, ser = link_to(board)
    with pytest.raises(LinkError, match=r"the board refused the request: .*segment 4660.*\(no_segment\)"):
        link.read(0x1234, 0)


@pytest.mark.parametrize("read_raises", [False, True], ids=["reads-empty", "reads-raise"])
def test_pulled_cable_is_a_link_error_naming_the_port(board, read_raises):
    link, ser = link_to(board, port="COM7", read_raises=read_raises)
    assert link.identify()
    ser.pull()
    with pytest.raises(LinkError, match=r"COM7") as exc:
        link.get_clock()
    assert not isinstance(exc.value, BoardError)
    assert "failed" in str(exc.value)


def test_silent_port_is_a_link_error_after_the_retries(board):
    ser = FakeSerial(None, "/dev/ttyACM9")  # nothing on the other end
    link = Link("/dev/ttyACM9", timeout_s=0.02, retries=2, serial_obj=ser)
    with pytest.raises(LinkError, match=r"no answer .* /dev/ttyACM9 after 3 tries"):
        link.identify()
    assert len(ser.sent) == 3 and len(set(ser.sent)) == 1


def test_silent_port_in_a_pipeline_is_a_link_error(board):
    ser = FakeSerial(None, "/dev/ttyACM9")
    link = Link("/dev/ttyACM9", timeout_s=0.02, retries=1, serial_obj=ser)
    with pytest.raises(LinkError, match=r"no answer from the board on /dev/ttyACM9"):
        list(link.read_pieces(0, 0, 4000))


@pytest.mark.parametrize("cut", [3, 20, 200])
def test_cable_pulled_in_the_middle_of_a_reply(board, cut):
    first, data = segment(board)
    link, ser = link_to(board)
    ser.cut_after(to_host=cut)
    with pytest.raises(LinkError, match="FAKE0"):
        link.read(first, 0, 1024)


def test_cable_pulled_in_the_middle_of_a_pipelined_read_keeps_the_pieces_before(board):
    first, data = segment(board)
    link, ser = link_to(board)
    ser.cut_after(to_host=700)
    got = b""
    with pytest.raises(LinkError):
        for piece in link.read_pieces(first, 0, len(data), piece=256, window=2):
            got += piece.data
    assert 0 < len(got) < len(data) and got == data[: len(got)]


def test_board_answers_a_new_connection_after_a_torn_request(board):
    link, ser = link_to(board)
    ser.cut_after(to_board=9)  # the board got the first 9 bytes of a frame, then nothing
    with pytest.raises(LinkError):
        link.identify()
    link2, ser2 = link_to(board)
    assert link2.identify()["device"] == fakes.DEVICE_ID.hex()
    assert link2.retried == 0


def test_link_errors_in_words_without_errno_or_hex_codes():
    import errno

    import serial

    from isolog.board.link import command_words, os_words

    assert os_words(OSError(errno.EIO, "Input/output error")).startswith("the board stopped answering")
    assert os_words(serial.SerialException("write failed: [Errno 5] Input/output error")).startswith(
        "the board stopped answering"
    )
    busy = os_words(serial.SerialException(errno.EAGAIN, "could not open port /dev/ttyACM0: [Errno 11] Resource"))
    assert busy.startswith("the port is busy") and "Errno" not in busy
    assert "dialout" in os_words(PermissionError(errno.EACCES, "Permission denied"))
    assert os_words(OSError(errno.ENOSPC, "No space left on device")) == "No space left on device"
    assert command_words(0x09) == '"read the status"' and command_words(0x09 | 0x40) == '"read the status"'
    assert command_words(0x3F) == '"an unknown request"'
