"""The dashboard over a shared PostgreSQL store (issue 15: several desks, one database): a board
provisioned, configured and synced into the database by a station (tests/fakes.py's FakeBoard,
the firmware's own code), then a QA user signs in, finds the container and the shipment, signs a
decision and downloads the certificate, all through the app on the database's URL."""

from __future__ import annotations

import hashlib
import re

import pytest
from starlette.testclient import TestClient

from fakes import FakeBoard, FakeSerial
from isolog import cli
from isolog.board import configure as configure_mod
from isolog.board import link as link_mod
from isolog.board import provision as provision_mod
from isolog.board import sync as sync_mod
from isolog.store import Store
from isolog.web import accounts
from isolog.web.app import create_app
from web_helpers import csrf_of, signed_in, text_of

SHIP_ID = "LU-PG-0001"


@pytest.fixture
def pg_store(monkeypatch, pg_server, shipment_file, tmp_path):
    url = pg_server.new_database("isolog_web")
    board = FakeBoard(device_id=bytes.fromhex("15010c00000000c3"))
    real = link_mod.Link

    def open_port(port: str, *args, **kwargs):
        return real(port, timeout_s=0.05, retries=2, serial_obj=FakeSerial(board, port))

    for mod in (link_mod, sync_mod, provision_mod, configure_mod):
        monkeypatch.setattr(mod, "Link", open_port)
    provision_mod.provision("ST1", "crate-pg", url)
    configure_mod.configure("ST1", shipment_file(shipment__id=SHIP_ID), url, set_clock=False)
    board.run_for(2 * 3600)  # 120 one-minute records
    assert sync_mod.sync("ST1", db=url, set_clock=False).records_added == 120
    with Store(url) as st:
        accounts.add_user(st, "quinn", "qa", "qa-password-123", "Quinn Quality")
    return url, board.id.hex()


def test_qa_signs_and_downloads_on_a_postgresql_store(pg_store, tmp_path):
    url, device = pg_store
    c = signed_in(create_app(url), "quinn", "qa-password-123")
    assert "crate-pg" in text_of(c.get("/containers").text) and device in c.get("/containers").text
    listing = c.get("/shipments").text
    assert SHIP_ID in text_of(listing)
    row = int(re.search(r'href="/shipments/(\d+)"', listing).group(1))  # type: ignore[union-attr]
    page = c.get(f"/shipments/{row}").text
    shown = re.search(r'name="records_sha256" value="([0-9a-f]{64})"', page)
    assert shown, "the shipment page offers no signature"
    # the hash the page signs is that of the records as `isolog export` writes them
    out = tmp_path / "records.jsonl"
    assert cli.main(["export", "--db", url, "--shipment", SHIP_ID, "--format", "jsonl", "-o", str(out)]) == 0
    assert shown.group(1) == hashlib.sha256(out.read_bytes()).hexdigest()
    form = {
        "csrf": csrf_of(page),
        "meaning": "released",
        "reason": "within limits",
        "records_sha256": shown.group(1),
        "user": "quinn",
        "password": "qa-password-123",
    }
    r = c.post(f"/shipments/{row}/sign", data=form)
    assert r.status_code == 200, r.text[:300]
    after = text_of(TestClient(c.app, cookies=c.cookies).get(f"/shipments/{row}").text)
    assert "released" in after and "Quinn Quality" in after
    page = c.get(f"/shipments/{row}").text
    r = c.post(f"/shipments/{row}/certificate", data={"csrf": csrf_of(page)})
    assert r.status_code == 200, r.text[:300]
    link = re.search(r'href="/certificates/(\d+)\.pdf"', c.get("/certificates").text)
    assert link, "the archive lists no certificate"
    pdf = c.get(f"/certificates/{link.group(1)}.pdf")
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
    assert hashlib.sha256(pdf.content).hexdigest() in c.get("/certificates").text
