"""Authenticated commands and provisioning on the virtual board: forged, replayed and
unauthenticated state changes are refused with nothing changed; reads stay open."""

from __future__ import annotations

import struct
import time

import pytest

from isolog.board.link import BoardError, Link
from isolog.log import image
from isolog.sim.launcher import VirtualBoard
from isolog_fw import frame, mac
from sim_helpers import scenario

KEY = bytes(range(32))


@pytest.fixture()
def board(tmp_path):
    """A fresh board, unconfigured (so it has no records yet), running 10 minutes a second."""
    sc = scenario(duration="30d")
    b = VirtualBoard(dict(sc, board_config=None), tmp_path / "flash.img", speed=600.0)
    b.shipment = sc["board_config"]
    b.start()
    yield b
    b.close()


def _wait_records(link: Link, n: int) -> None:
    for _ in range(200):
        if link.status()["next_seq"] >= n:
            return
        time.sleep(0.05)
    raise AssertionError("the board does not log")


def test_unprovisioned_board_takes_plain_commands_and_provisioning(board):
    with Link(board.port) as link:
        ident = link.identify()
        assert ident["provisioned"] is False and ident["name"] == ""
        link.set_clock(1795000000000)
        link.set_config(board.shipment)
        link.acknowledge(0)
        # a board that is logging holds unsynced records: provisioning it needs force
        _wait_records(link, 3)
        with pytest.raises(BoardError, match="not synced"):
            link.provision("container-7", KEY)
        reply = link.provision("container-7", KEY, force=True)
        assert reply["provisioned"] is True and reply["name"] == "container-7"
        assert link.identify()["auth_counter"] == 0


def _provisioned(board) -> Link:
    """Provisioned (a fresh board: no records, so no force needed), then configured."""
    link = Link(board.port)
    link.provision("container-7", KEY)
    link.set_config(board.shipment)
    return link


def test_plain_state_changes_are_refused_once_provisioned(board):
    with _provisioned(board) as link:
        before = link.get_config()
    with Link(board.port) as plain:  # a host without the key (one host at a time: the port is locked)
        with pytest.raises(BoardError) as err:
            plain.set_config(dict(before, id="FORGED"))
        assert err.value.code == "unauthenticated"
        for call in (
            lambda: plain.set_clock(1795000000000),
            lambda: plain.acknowledge(10**6),
            plain.acknowledge_alarms,
            lambda: plain.set_test_mode(True),
        ):
            with pytest.raises(BoardError, match="needs the device key"):
                call()
        # nothing changed, and reads stay open
        assert plain.get_config() == before
        ident = plain.identify()
        assert ident["log"]["synced"] == 0 and ident["test_mode"] is False
        assert plain.status()["led"]


def test_wrong_key_and_replays_are_refused(board):
    with _provisioned(board) as link:
        cfg = link.get_config()
        link.set_config(dict(cfg, id="LU-SIGNED"))
        assert link.get_config()["id"] == "LU-SIGNED"
        # a request captured on the wire, sent again later: same counter, same MAC
        body = b'{"upto": 5}'
        assert link.signer is not None
        trailer = struct.pack("<I", link.auth_counter + 1)
        device = bytes.fromhex(link.identify()["device"])
        captured = body + trailer + mac.request_mac(KEY, frame.CMD_ACK, trailer, device, link.signer.challenge, body)
        link.use_key(KEY, link.auth_counter + 1)  # sent by hand: the next request goes on from there
        link.request(frame.CMD_ACK | frame.AUTH, captured)
        link.use_key(KEY, link.auth_counter)
        link.set_clock(1795000000000)  # a later request moves the counter and the challenge on
        with pytest.raises(BoardError) as err:
            link.request(frame.CMD_ACK | frame.AUTH, captured)
        assert err.value.code == "replayed"
        synced = link.identify()["log"]["synced"]
    with Link(board.port) as forger:
        forger.use_key(b"x" * 32)
        with pytest.raises(BoardError) as err:
            forger.set_config(dict(cfg, id="FORGED"))
        assert err.value.code == "bad_mac"
        with pytest.raises(BoardError) as err:  # a MAC-less request in the authenticated form
            forger.request(frame.CMD_ACK_ALARMS | frame.AUTH, b"")
        assert err.value.code == "unauthenticated"
        assert forger.get_config()["id"] == "LU-SIGNED" and forger.identify()["log"]["synced"] == synced


def test_reprovisioning_needs_the_key_and_synced_records(board):
    with _provisioned(board) as link:
        _wait_records(link, 40)
        link.commit()  # the records in RAM (LIST does not commit)
    with Link(board.port) as other:
        with pytest.raises(BoardError, match="needs the device key"):
            other.provision("thief", b"t" * 32)
    with Link(board.port) as link:
        link.use_key(KEY)
        with pytest.raises(BoardError) as err:
            link.provision("container-8", b"n" * 32)
        assert err.value.code == "unsynced"
        assert link.identify()["name"] == "container-7"
        reply = link.provision("container-8", b"n" * 32, force=True)
        assert reply["name"] == "container-8" and reply["auth_counter"] == 0
        link.set_clock(1795000000000)  # now signed with the new key


def test_log_verifies_with_the_device_key_and_not_without(board, tmp_path):
    with _provisioned(board) as link:
        _wait_records(link, 60)
    board.close()
    good = image.read_image(board.flash, key=KEY)
    assert good.records and not good.failed and good.verified == len(good.records)
    wrong = image.read_image(board.flash, key=b"y" * 32)
    assert wrong.verified == 0 and "NOT VERIFIED" in wrong.verification()


def test_sync_signs_with_the_stored_key_and_verifies_the_chain(board, tmp_path, capsys):
    from isolog import cli
    from isolog.board import provision
    from isolog.store import Store

    db = tmp_path / "store.sqlite3"
    provision.provision(board.port, "container-9", db)
    with Link(board.port) as link:
        with Store(db) as store:
            provision.authorize(link, store, link.identify())
            link.set_config(board.shipment)
        _wait_records(link, 30)
    assert cli.main(["sync", board.port, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "data: verified:" in out
    with Link(board.port) as link:
        ident = link.identify()
        assert ident["log"]["synced"] > 0  # the signed ACK was taken
    # Another store, without the key: refused clearly, nothing acknowledged or changed.
    assert cli.main(["sync", board.port, "--db", str(tmp_path / "other.sqlite3")]) == 2
    err = capsys.readouterr().err
    assert "does not hold its key" in err and "Traceback" not in err


def _image_files(flash, profile: str) -> dict[str, bytes]:
    from isolog.sim.launcher import _image

    out = {}
    with _image(flash, format_blank=False, profile=profile) as fs:
        assert fs is not None
        for top, _dirs, files in fs.walk("/"):
            for name in files:
                path = top.rstrip("/") + "/" + name
                with fs.open(path, "rb") as f:
                    out[path] = f.read()
    return out


def test_key_is_nowhere_in_a_dump_of_the_flash_image(board, tmp_path):
    """The key lives in the secure element (boards/sim_atecc.py, its memory beside the image): the
    whole image, read as raw bytes and file by file, holds neither the key's bytes nor its hex."""
    from isolog.board import provision
    from isolog.store import Store

    db = tmp_path / "store.sqlite3"
    reply = provision.provision(board.port, "container-10", db)
    assert reply["key_store"] == "se"
    with Store(db) as store:
        key = store.current_key(reply["device"])
    assert key is not None
    with Link(board.port) as link, Store(db) as store:
        provision.authorize(link, store, link.identify())
        link.set_config(board.shipment)
        _wait_records(link, 30)
        link.commit()
    board.close()
    raw = board.flash.read_bytes()
    for form in (key, key.hex().encode(), key.hex().upper().encode()):
        assert form not in raw
    files = _image_files(board.flash, board.profile)
    assert "/data/key_id" in files and "/data/key" not in files and any("/log/" in p for p in files)
    for path, data in files.items():
        for form in (key, key.hex().encode(), key.hex().upper().encode()):
            assert form not in data, path
    assert key.hex() in board.se_path.read_text()  # where it is: the chip, not the flash
    # and the log still verifies with it (the chip computed the MACs the host checks)
    good = image.read_image(board.flash, key=key)
    assert good.records and not good.failed and good.verified == len(good.records)


def test_board_without_a_secure_element_keeps_its_key_in_the_image(tmp_path):
    """The contrast: without the chip the key is a file on the flash (readable by anyone who dumps
    it), and the board says so (key_store "flash"), which the host reports as not authenticated."""
    sc = scenario(duration="1d")
    b = VirtualBoard(dict(sc, board_config=None), tmp_path / "flash.img", speed=600.0, secure_element=False)
    b.start()
    try:
        with Link(b.port) as link:
            reply = link.provision("container-11", KEY)
            assert reply["key_store"] == "flash" and reply["provisioned"] is True
    finally:
        b.close()
    assert not b.se_path.exists()
    assert _image_files(b.flash, b.profile)["/data/key"] == KEY
