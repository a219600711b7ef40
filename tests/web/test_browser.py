"""The dashboard as people use it, in a real browser: Debian's Chromium (/usr/bin/chromium, installed
by `make test`, see the Makefile) driven by Playwright against `isolog serve`'s uvicorn on a free
port, over a store holding a synced failing shipment (tests/web/conftest.py).

A QA user signs in, sees the containers, opens the failing shipment, signs a decision on one of
its excursions and then a rejection of the shipment (user id and password again, each time),
issues and downloads the certificate (a PDF whose SHA-256 is the archived one), and after a reload
the page still shows the signatures. No skip when the browser is missing: the test
fails and says what to install."""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.sim_only

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(store_copy):
    import uvicorn

    from isolog.web.app import create_app

    db, device = store_copy
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(db), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline and t.is_alive(), "the dashboard did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", db, device
    finally:
        srv.should_exit = True
        t.join(10)


def test_qa_rejects_a_failing_shipment_in_the_browser(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM.exists(), (
        f"no browser at {CHROMIUM}: run `make test` (installs Debian's chromium) or apt-get install chromium"
    )
    base, db, device = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_context(accept_downloads=True).new_page()
            page.set_default_timeout(15_000)
            page.goto(base + "/")
            expect(page).to_have_url(base + "/signin?next=%2Fcontainers")

            page.get_by_label("User id").fill("quinn")
            page.get_by_label("Password").fill("qa-password-123")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Containers")).to_be_visible()
            row = page.locator("tbody tr", has_text="container-17")
            expect(row).to_contain_text(device)
            expect(row).to_contain_text("temp_alarm")

            row.get_by_role("link", name="LU-2026-11-0042").click()
            expect(page.locator("#verdict")).to_have_text("FAIL")
            expect(page.locator("table.rules tr", has_text="temperature.high")).to_contain_text("fail")
            plot = page.get_by_role("img", name="Temperature and dose rate of shipment LU-2026-11-0042")
            expect(plot).to_be_visible()
            # the PNG loaded and decoded (its endpoint runs the engine's plots)
            page.wait_for_function("img => img.complete && img.naturalWidth === 744", arg=plot.element_handle())

            # one excursion's decision first: the high rule's (listed first), accepted
            awaiting = page.locator("tr.excursion", has_text="awaiting review")
            expect(awaiting).to_have_count(2)
            review = page.get_by_role("form", name="Sign a decision on an excursion")
            review.get_by_label("Excursion").select_option(index=0)
            key = review.get_by_label("Excursion").input_value()
            assert key.startswith("temperature.high from ")
            review.get_by_label("accepted: no impact on the product").check()
            review.get_by_label("Reason").fill("an hour at 30 °C: within the stability data")
            review.get_by_label("User id").fill("quinn")
            review.get_by_label("Password").fill("qa-password-123")
            review.get_by_role("button", name="Sign the excursion decision").click()
            expect(page.get_by_role("status")).to_contain_text(f"Signed: excursion {key} accepted")
            expect(awaiting).to_have_count(1)

            form = page.get_by_role("form", name="Sign a QA decision")
            form.get_by_label("rejected").check()
            form.get_by_label("Reason").fill("10 h above 25 °C on the tarmac")
            form.get_by_label("User id").fill("quinn")
            form.get_by_label("Password").fill("qa-password-123")
            form.get_by_role("button", name="Sign", exact=True).click()
            expect(page.get_by_role("status")).to_contain_text("Signed: rejected by Quinn Quality")

            page.get_by_role("button", name="Issue certificate").click()
            expect(page.get_by_role("status")).to_contain_text("Certificate 1 issued")
            with page.expect_download() as dl:
                page.get_by_role("link", name="Download PDF").click()
            pdf = Path(dl.value.path()).read_bytes()

            page.reload()
            signature = page.locator("tr.signature")
            expect(signature).to_have_count(1)
            expect(signature).to_contain_text("rejected")
            expect(signature).to_contain_text("Quinn Quality (quinn)")
            expect(signature).to_contain_text("10 h above 25 °C on the tarmac")
            reviewed = page.locator("tr.excursion", has_text="temperature.high")
            expect(reviewed).to_contain_text("accepted: no impact on the product")
            expect(reviewed).to_contain_text("signed by Quinn Quality (quinn)")
        finally:
            browser.close()

    con = sqlite3.connect(db)
    (archived,) = con.execute("SELECT sha256 FROM web_certificates").fetchone()
    (meaning, user) = con.execute("SELECT meaning, user_name FROM web_signatures").fetchone()
    reviews = con.execute("SELECT excursion, meaning, user_name FROM web_excursion_reviews").fetchall()
    con.close()
    assert reviews == [(key, "accepted", "quinn")]
    assert pdf.startswith(b"%PDF-")
    assert hashlib.sha256(pdf).hexdigest() == archived
    assert (meaning, user) == ("rejected", "quinn")
