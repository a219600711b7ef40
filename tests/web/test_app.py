"""The dashboard's pages through Starlette's TestClient, on a store with a synced failing shipment
(tests/web/conftest.py): sign-in required, CSRF enforced, signatures need the password again and
the right role, refusals audited, certificates archived, the audit trail filtered and exported."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import sqlite3
import time
from datetime import datetime, timezone

import pytest
from starlette.testclient import TestClient

from isolog import cli
from isolog.store import SHIPMENT_STATES
from isolog.web.app import COOKIE, create_app
from web_helpers import csrf_of, signed_in, text_of

pytestmark = pytest.mark.sim_only

SHIP_ROW = 1  # the one shipment configuration in the store


@pytest.fixture
def app(store_copy):
    db, _ = store_copy
    return create_app(db)


def _audit(db, action: str) -> list[dict]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT device, details FROM audit WHERE action = ? ORDER BY id", (action,)).fetchall()
    finally:
        con.close()
    return [dict(json.loads(d), device=dev) for dev, d in rows]


def _signatures(db) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT user_name, meaning, reason, verdict, records_sha256 FROM web_signatures").fetchall()
    finally:
        con.close()


def _sign_form(client: TestClient, **fields) -> dict:
    page = client.get(f"/shipments/{SHIP_ROW}").text
    shown = re.search(r'name="records_sha256" value="([0-9a-f]{64})"', page)
    return {
        "csrf": csrf_of(page),
        "meaning": "rejected",
        "reason": "warm for 10 h",
        "records_sha256": shown.group(1) if shown else "",
        **fields,
    }


def _records_sha256(db, tmp_path) -> str:
    """The SHA-256 of the shipment's records as `isolog export --format jsonl` writes them."""
    out = tmp_path / "records.jsonl"
    assert (
        cli.main(["export", "--db", str(db), "--shipment", "LU-2026-11-0042", "--format", "jsonl", "-o", str(out)]) == 0
    )
    return hashlib.sha256(out.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "path", ["/containers", "/shipments", f"/shipments/{SHIP_ROW}", "/audit", "/audit.csv", "/certificates"]
)
def test_every_page_needs_a_signed_in_user(app, path):
    r = TestClient(app).get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/signin?next=")


def test_the_plot_needs_a_signed_in_user(app):
    assert TestClient(app).get(f"/shipments/{SHIP_ROW}/plot.png").status_code == 401


def test_a_wrong_password_does_not_sign_in_and_is_audited(app, store_copy):
    db, _ = store_copy
    c = TestClient(app)
    token = csrf_of(c.get("/signin").text)
    r = c.post("/signin", data={"csrf": token, "user": "quinn", "password": "qa-password-12"})
    assert r.status_code == 401 and "Wrong user id or password" in r.text
    assert c.get("/containers", follow_redirects=False).status_code == 303
    assert _audit(db, "sign_in_refused") == [{"user": "quinn", "why": "wrong user id or password", "device": None}]


def test_a_user_id_is_locked_after_five_wrong_passwords(app, store_copy):
    db, _ = store_copy
    c = TestClient(app)
    for _ in range(5):
        token = csrf_of(c.get("/signin").text)
        assert c.post("/signin", data={"csrf": token, "user": "quinn", "password": "guess"}).status_code == 401
    token = csrf_of(c.get("/signin").text)
    r = c.post("/signin", data={"csrf": token, "user": "quinn", "password": "qa-password-123"})
    assert r.status_code == 429 and "Too many failed password attempts for this user id: try again in 15 min" in r.text
    assert [a["why"] for a in _audit(db, "sign_in_refused")] == ["wrong user id or password"] * 5 + ["locked"]
    signed_in(app, "sam", "staff-password-1")  # other user ids are not affected


def test_the_session_cookie_is_httponly_and_samesite_strict(store_copy):
    db, _ = store_copy
    for secure in (False, True):
        c = TestClient(create_app(db, secure_cookies=secure), base_url="https://testserver")
        cookie = c.get("/signin").headers["set-cookie"].lower()
        assert cookie.startswith(COOKIE + "=")
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert ("; secure" in cookie) is secure


def test_a_form_without_the_csrf_token_is_refused(app, store_copy):
    db, _ = store_copy
    c = TestClient(app)
    c.get("/signin")
    r = c.post("/signin", data={"user": "quinn", "password": "qa-password-123"})
    assert r.status_code == 403
    c = signed_in(app, "quinn", "qa-password-123")
    form = _sign_form(c, user="quinn", password="qa-password-123")
    for bad in ("", "x" * 43):
        r = c.post(f"/shipments/{SHIP_ROW}/sign", data=dict(form, csrf=bad))
        assert r.status_code == 403
    r = c.post(f"/shipments/{SHIP_ROW}/certificate", data={})
    assert r.status_code == 403
    assert _signatures(db) == []
    assert _audit(db, "certificate_issued") == []


def test_a_cross_site_redirect_after_sign_in_is_not_followed(app):
    c = TestClient(app)
    token = csrf_of(c.get("/signin").text)
    r = c.post(
        "/signin",
        data={"csrf": token, "user": "sam", "password": "staff-password-1", "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/containers"


def test_the_containers_page_lists_the_board(app, store_copy):
    _, device = store_copy
    page = text_of(signed_in(app, "sam", "staff-password-1").get("/containers").text)
    assert f"container-17 {device}" in page
    assert "LU-2026-11-0042" in page
    assert "temp_alarm" in page  # the board latched its temperature alarm at 30 °C


def test_the_containers_page_shows_battery_storage_and_calibration_or_unknown(app, store_copy):
    """The virtual board of the fixture reports no battery (its scenario has none) and its storage
    (littlefs blocks in use); no calibration record: "unknown", never a made-up figure. Then a
    calibration due yesterday is marked overdue."""
    from datetime import date, timedelta

    from isolog.store import Store

    db, device = store_copy
    with Store(db) as st:
        status = st.device_status(device)
    assert status is not None and status["battery_v"] is None and status["storage_used_percent"] is not None
    c = signed_in(app, "sam", "staff-password-1")
    row = re.search(r"<tr>\s*<td>container-17</td>.*?</tr>", c.get("/containers").text, re.S)
    assert row, "no row for container-17"
    cells = dict(re.findall(r'<td class="(battery|storage|calibration)">(.*?)</td>', row.group(0), re.S))
    assert text_of(cells["battery"]) == "unknown"
    assert text_of(cells["storage"]) == f"{status['storage_used_percent']:.0f} % used"
    assert text_of(cells["calibration"]) == "unknown"
    yesterday = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    with Store(db) as st:
        st.set_container(
            device,
            {
                "sensor_model": "SBM-20",
                "cal_cpm_per_usv_h": 153.8,
                "dead_time_us": 190.0,
                "one_metre_factor": None,
                "surface_factor": None,
                "calibrated_on": (date.fromisoformat(yesterday) - timedelta(days=365)).isoformat(),
                "calibration_due": yesterday,
            },
        )
        st.set_device_status(device, {"battery_v": 3.8, "battery_percent": 61.04, "battery_days_left": 12.345})
    page = c.get("/containers").text
    assert f'<span class="badge fail">OVERDUE</span> since {yesterday}' in page
    assert '<td class="battery">61 %, 12.3 days left</td>' in page
    assert '<td class="storage"><span class="dim">unknown</span></td>' in page  # that reply had no storage


def test_the_shipment_page_shows_the_failing_verdict_and_its_rules(app, store_copy, tmp_path):
    db, _ = store_copy
    c = signed_in(app, "sam", "staff-password-1")
    page = c.get(f"/shipments/{SHIP_ROW}").text
    assert 'id="verdict">FAIL<' in page
    text = text_of(page)
    assert "temperature.high fail" in text
    assert _records_sha256(db, tmp_path) in text
    png = c.get(f"/shipments/{SHIP_ROW}/plot.png")
    assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    # The verdict is remembered for the shipment list.
    assert "LU-2026-11-0042" in (listing := text_of(c.get("/shipments").text))
    assert " fail " in listing


def test_staff_cannot_sign(app, store_copy):
    db, _ = store_copy
    c = signed_in(app, "sam", "staff-password-1")
    page = c.get(f"/shipments/{SHIP_ROW}").text
    assert f'action="/shipments/{SHIP_ROW}/sign"' not in page
    r = c.post(f"/shipments/{SHIP_ROW}/sign", data=_sign_form(c, user="sam", password="staff-password-1"))
    assert "role staff may not sign" in r.text
    assert _signatures(db) == []
    [refused] = _audit(db, "signature_refused")
    assert refused["user"] == "sam" and "role staff" in refused["why"]


def test_a_wrong_password_at_signing_is_refused_and_audited(app, store_copy):
    db, device = store_copy
    c = signed_in(app, "quinn", "qa-password-123")
    r = c.post(f"/shipments/{SHIP_ROW}/sign", data=_sign_form(c, user="quinn", password="qa-password-124"))
    assert "Signature refused: wrong user id or password" in r.text
    assert _signatures(db) == []
    [refused] = _audit(db, "signature_refused")
    assert refused == {
        "user": "quinn",
        "shipment": "LU-2026-11-0042",
        "shipment_row": SHIP_ROW,
        "meaning": "rejected",
        "why": "wrong user id or password",
        "device": device,
    }


def test_a_signature_on_records_that_changed_since_the_page_was_shown_is_refused(app, store_copy):
    db, _ = store_copy
    c = signed_in(app, "quinn", "qa-password-123")
    form = _sign_form(c, user="quinn", password="qa-password-123", records_sha256="0" * 64)
    r = c.post(f"/shipments/{SHIP_ROW}/sign", data=form)
    assert "records changed since the page was shown" in r.text
    assert _signatures(db) == []


def test_another_users_id_at_signing_is_refused(app, store_copy):
    db, _ = store_copy
    c = signed_in(app, "quinn", "qa-password-123")
    r = c.post(f"/shipments/{SHIP_ROW}/sign", data=_sign_form(c, user="ada", password="admin-password-1"))
    assert "not the signed-in user" in r.text
    assert _signatures(db) == []


def test_qa_signs_a_decision_with_the_password(app, store_copy, tmp_path):
    db, device = store_copy
    c = signed_in(app, "quinn", "qa-password-123")
    r = c.post(f"/shipments/{SHIP_ROW}/sign", data=_sign_form(c, user="quinn", password="qa-password-123"))
    sha = _records_sha256(db, tmp_path)
    assert _signatures(db) == [("quinn", "rejected", "warm for 10 h", "fail", sha)]
    text = text_of(r.text)
    assert "rejected Quinn Quality (quinn)" in text and "warm for 10 h" in text
    [audited] = _audit(db, "signature")
    assert audited["user"] == "quinn" and audited["meaning"] == "rejected" and audited["records_sha256"] == sha
    assert audited["device"] == device


def test_certificates_are_archived_with_their_hash_and_never_replaced(app, store_copy):
    db, _ = store_copy
    c = signed_in(app, "quinn", "qa-password-123")
    pdfs = []
    for _ in range(2):
        token = csrf_of(c.get(f"/shipments/{SHIP_ROW}").text)
        assert c.post(f"/shipments/{SHIP_ROW}/certificate", data={"csrf": token}).status_code == 200
    con = sqlite3.connect(db)
    archived = con.execute("SELECT id, sha256, size FROM web_certificates ORDER BY id").fetchall()
    con.close()
    assert [a[0] for a in archived] == [1, 2]
    for cert_id, sha, size in archived:
        r = c.get(f"/certificates/{cert_id}.pdf")
        assert r.headers["content-type"] == "application/pdf"
        assert r.content.startswith(b"%PDF-") and len(r.content) == size
        assert hashlib.sha256(r.content).hexdigest() == sha
        pdfs.append(r.content)
    assert len(_audit(db, "certificate_issued")) == 2
    archive = text_of(c.get("/certificates").text)
    assert all(sha in archive for _, sha, _ in archived)


def test_the_audit_trail_filters_by_device_and_exports_csv(app, store_copy):
    db, device = store_copy
    c = signed_in(app, "ada", "admin-password-1")
    con = sqlite3.connect(db)
    want_all = con.execute("SELECT id, action FROM audit ORDER BY id").fetchall()
    want_dev = con.execute("SELECT id, action FROM audit WHERE device = ? ORDER BY id", (device,)).fetchall()
    con.close()
    assert any(a == "user_add" for _, a in want_all) and any(a == "configure" for _, a in want_dev)
    r = c.get("/audit.csv", params={"device": device})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(int(x["id"]), x["action"]) for x in rows] == want_dev
    assert all(x["device"] == device for x in rows)
    rows = list(csv.DictReader(io.StringIO(c.get("/audit.csv").text)))
    assert len(rows) >= len(want_all)  # the dashboard's own sign-in is audited too
    page = text_of(c.get("/audit", params={"device": device}).text)
    assert "configure" in page and "user_add" not in page


def test_signing_out_ends_the_session_on_the_server(app):
    c = signed_in(app, "sam", "staff-password-1")
    cookie = c.cookies.get(COOKIE)
    token = csrf_of(c.get("/containers").text)
    assert c.post("/signout", data={"csrf": token}).url.path == "/signin"
    replay = TestClient(app, cookies={COOKIE: cookie})
    assert replay.get("/containers", follow_redirects=False).status_code == 303


def test_the_server_checks_unchecked_shipments_in_the_background(store_copy):
    db, _ = store_copy
    app = create_app(db, background_checks=True)
    with TestClient(app) as c:  # the lifespan starts the checker
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            con = sqlite3.connect(db)
            got = con.execute("SELECT verdict, records, final FROM web_verdicts").fetchall()
            con.close()
            if got:
                break
            time.sleep(0.2)
        token = csrf_of(c.get("/signin").text)
        c.post("/signin", data={"csrf": token, "user": "sam", "password": "staff-password-1"})
        listing = text_of(c.get("/shipments").text)
    # the one shipment: failing, its records still open (no later configuration on the board)
    assert len(got) == 1 and got[0][0] == "fail" and got[0][2] == 0
    # the stage of its life with the records, then the dispatch, delivery and return times (one word
    # each, "–" when none), then the verdict
    stages = "|".join(SHIPMENT_STATES)
    assert re.search(rf"({stages}), {got[0][1]} records \S+ \S+ \S+ fail", listing), listing


def test_pages_run_no_script_and_are_not_cached(app):
    c = signed_in(app, "sam", "staff-password-1")
    for path in ("/signin", "/containers", f"/shipments/{SHIP_ROW}"):
        r = c.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store"
        assert "<script" not in r.text
    assert "no-store" not in c.get("/static/style.css").headers.get("cache-control", "")


# --- QA review of each excursion (web/reviews.py) ------------------------------------------------


def _excursions_expected(db) -> list[str]:
    """The keys of the shipment's excursions, worked out from the stored records and the stored
    shipment file: the container sat at 30 °C for the whole trip, so each 'above' rule whose
    threshold is below 30 °C has one excursion from the first record's interval start; a 'below'
    rule none."""
    import tomllib
    from datetime import datetime, timedelta

    con = sqlite3.connect(db)
    try:
        first_seq, toml = con.execute("SELECT first_seq, toml FROM shipments WHERE rowid = ?", (SHIP_ROW,)).fetchone()
        time_text, interval_s, temp = con.execute(
            "SELECT time, interval_s, temperature_c FROM records WHERE seq >= ? ORDER BY seq LIMIT 1", (first_seq,)
        ).fetchone()
    finally:
        con.close()
    rules = tomllib.loads(toml)["temperature"]["rules"]
    above = [r["name"] for r in rules if r["direction"] == "above" and r["threshold_c"] < temp]
    assert len(above) == 2 and len(rules) == 3
    start = datetime.fromisoformat(time_text.replace("Z", "+00:00")) - timedelta(seconds=interval_s)
    text = start.isoformat(timespec="milliseconds" if start.microsecond else "seconds").replace("+00:00", "Z")
    return [f"temperature.{name} from {text}" for name in above]


def _reviews(db) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT excursion, user_name, full_name, meaning, reason FROM web_excursion_reviews ORDER BY id"
        ).fetchall()
    finally:
        con.close()


def _review_form(client: TestClient, excursion: str, **fields) -> dict:
    page = client.get(f"/shipments/{SHIP_ROW}").text
    shown = re.search(r'name="records_sha256" value="([0-9a-f]{64})"', page)
    return {
        "csrf": csrf_of(page),
        "excursion": excursion,
        "meaning": "accepted",
        "reason": "30 °C for an hour: within the product's stability data",
        "records_sha256": shown.group(1) if shown else "",
        "user": "quinn",
        "password": "qa-password-123",
        **fields,
    }


def test_the_shipment_page_lists_each_excursion_awaiting_review(app, store_copy):
    db, _ = store_copy
    keys = _excursions_expected(db)
    c = signed_in(app, "quinn", "qa-password-123")
    page = c.get(f"/shipments/{SHIP_ROW}").text
    assert page.count('<tr class="excursion">') == 2
    assert [f'<option value="{k}">' in page for k in keys] == [True, True]
    assert text_of(page).count("awaiting review") == 2
    assert 'id="awaiting">2 awaiting QA review<' in page
    # the list counts them (from the check the page just made)
    listing = c.get("/shipments").text
    assert re.search(r'<td class="num awaiting"><span class="badge warn">2</span></td>', listing)


def test_qa_signs_a_decision_on_one_excursion(app, store_copy, tmp_path):
    db, device = store_copy
    high, warm = _excursions_expected(db)
    c = signed_in(app, "quinn", "qa-password-123")
    r = c.post(f"/shipments/{SHIP_ROW}/review", data=_review_form(c, high))
    assert r.status_code == 200 and r.url.fragment == "excursions"
    reason = "30 °C for an hour: within the product's stability data"
    assert _reviews(db) == [(high, "quinn", "Quinn Quality", "accepted", reason)]
    [audited] = _audit(db, "excursion_review")
    sha = _records_sha256(db, tmp_path)
    assert audited["excursion"] == high and audited["meaning"] == "accepted" and audited["records_sha256"] == sha
    assert audited["user"] == "quinn" and audited["device"] == device
    # after a reload (a new session too): who, when, what it means; the other still awaits
    c2 = signed_in(app, "sam", "staff-password-1")
    page = c2.get(f"/shipments/{SHIP_ROW}").text
    text = html.unescape(text_of(page))
    assert (
        f"accepted accepted: no impact on the product signed by Quinn Quality (quinn), {audited['signed_at']} UTC"
        in text
    )
    assert f"Reason: {reason}" in text
    assert text.count("awaiting review") == 1 and 'id="awaiting">1 awaiting QA review<' in page
    assert f'action="/shipments/{SHIP_ROW}/review"' not in page  # staff sees no form
    assert re.search(r'<td class="num awaiting"><span class="badge warn">1</span></td>', c2.get("/shipments").text)
    # the same excursion cannot be decided twice
    r = c.post(f"/shipments/{SHIP_ROW}/review", data=_review_form(c, high, meaning="rejected"))
    assert "Signature refused: excursion" in r.text and "was reviewed already (accepted by Quinn Quality" in r.text
    assert len(_reviews(db)) == 1


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"password": "qa-password-124"}, "wrong user id or password"),
        ({"user": "ada", "password": "admin-password-1"}, "the user id is not the signed-in user's"),
        ({"meaning": "maybe"}, "meaning 'maybe': one of accepted, rejected"),
        ({"reason": "  "}, "a reason is required"),
        ({"excursion": "temperature.high from 1999-01-01T00:00:00Z"}, "no excursion 'temperature.high from 1999"),
        ({"records_sha256": "0" * 64}, "the shipment's records changed since the page was shown"),
    ],
)
def test_an_excursion_decision_is_refused_and_audited(app, store_copy, fields, why):
    db, _ = store_copy
    high, _ = _excursions_expected(db)
    c = signed_in(app, "quinn", "qa-password-123")
    r = c.post(f"/shipments/{SHIP_ROW}/review", data=_review_form(c, **{"excursion": high, **fields}))
    assert "Signature refused: " + why in html.unescape(r.text)
    assert _reviews(db) == []
    [refused] = _audit(db, "signature_refused")
    assert refused["excursion"] == fields.get("excursion", high) and why in refused["why"]


def test_staff_cannot_sign_an_excursion_decision(app, store_copy):
    db, _ = store_copy
    high, _ = _excursions_expected(db)
    c = signed_in(app, "sam", "staff-password-1")
    r = c.post(f"/shipments/{SHIP_ROW}/review", data=_review_form(c, high, user="sam", password="staff-password-1"))
    assert "role staff may not sign" in r.text
    assert _reviews(db) == []


def test_a_release_is_refused_while_an_excursion_awaits_review(app, store_copy):
    db, _ = store_copy
    high, warm = _excursions_expected(db)
    c = signed_in(app, "quinn", "qa-password-123")
    page = c.get(f"/shipments/{SHIP_ROW}").text
    assert "Release is not possible yet: 2 temperature excursions await QA review" in text_of(page)
    release = {"meaning": "released", "reason": "stable product", "user": "quinn", "password": "qa-password-123"}
    r = c.post(f"/shipments/{SHIP_ROW}/sign", data=_sign_form(c, **release))
    assert (
        "Signature refused: 2 temperature excursions await QA review: sign a decision on each before releasing "
        "the shipment." in text_of(r.text)
    )
    assert _signatures(db) == []
    assert _audit(db, "signature_refused")[-1]["meaning"] == "released"
    c.post(f"/shipments/{SHIP_ROW}/review", data=_review_form(c, high))
    r = c.post(f"/shipments/{SHIP_ROW}/sign", data=_sign_form(c, **release))
    assert "1 temperature excursion awaits QA review" in text_of(r.text) and _signatures(db) == []
    # a rejected excursion holds the release back too; rejecting the shipment is always possible
    c.post(f"/shipments/{SHIP_ROW}/review", data=_review_form(c, warm, meaning="rejected", reason="too warm"))
    assert 'id="awaiting">all reviewed<' in c.get(f"/shipments/{SHIP_ROW}").text
    r = c.post(f"/shipments/{SHIP_ROW}/sign", data=_sign_form(c, **release))
    assert "Signature refused: 1 temperature excursion was rejected: the shipment cannot be released." in text_of(
        r.text
    )
    assert _signatures(db) == []
    c.post(f"/shipments/{SHIP_ROW}/sign", data=_sign_form(c, user="quinn", password="qa-password-123"))
    assert [s[1] for s in _signatures(db)] == ["rejected"]


def test_a_release_is_signed_once_every_excursion_is_accepted(app, store_copy):
    db, _ = store_copy
    c = signed_in(app, "quinn", "qa-password-123")
    for key in _excursions_expected(db):
        c.post(f"/shipments/{SHIP_ROW}/review", data=_review_form(c, key))
    assert len(_reviews(db)) == 2
    assert re.search(r'<td class="num awaiting">0</td>', c.get("/shipments").text)
    release = {"meaning": "released", "reason": "excursions assessed", "user": "quinn", "password": "qa-password-123"}
    r = c.post(f"/shipments/{SHIP_ROW}/sign", data=_sign_form(c, **release))
    assert "Signed: released by Quinn Quality" in r.text
    assert [s[1] for s in _signatures(db)] == ["released"]


def test_a_lockout_outlives_a_restart_of_the_dashboard(store_copy):
    """Five wrong passwords on one app; a second app on the same store (a restart, or a second
    server process) refuses the right password too."""
    db, _ = store_copy
    first = TestClient(create_app(db))
    for _ in range(5):
        token = csrf_of(first.get("/signin").text)
        assert first.post("/signin", data={"csrf": token, "user": "quinn", "password": "guess"}).status_code == 401
    second = TestClient(create_app(db))
    token = csrf_of(second.get("/signin").text)
    r = second.post("/signin", data={"csrf": token, "user": "quinn", "password": "qa-password-123"})
    assert r.status_code == 429 and "Too many failed password attempts" in r.text


def test_a_decision_made_on_earlier_records_says_so(app, store_copy):
    """A review keeps the records' SHA-256 it was signed on; once a sync changed the shipment's
    records (modelled: the review's hash set to another value) the page says the decision was made
    on earlier records."""
    db, _ = store_copy
    high, _ = _excursions_expected(db)
    c = signed_in(app, "quinn", "qa-password-123")
    c.post(f"/shipments/{SHIP_ROW}/review", data=_review_form(c, high))
    assert "Made on earlier records" not in c.get(f"/shipments/{SHIP_ROW}").text
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE web_excursion_reviews SET records_sha256 = ?", ("12" * 32,))
    con.close()
    text = text_of(c.get(f"/shipments/{SHIP_ROW}").text)
    assert "Made on earlier records (SHA-256 1212121212121212… ): a sync added records since." in text


def _shipment_cells(page: str) -> dict[str, dict[str, str]]:
    """{shipment id: {column class: the cell's text}} of the shipment list's table."""
    out = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        ship = re.search(r'<a href="/shipments/\d+">([^<]+)</a>', tr)
        if ship:
            cells = re.findall(r'<td class="(state|dispatched|delivered|returned|certificate)">(.*?)</td>', tr, re.S)
            out[ship.group(1)] = {k: text_of(v).replace(" ,", ",") for k, v in cells}  # text_of spaces tags
    return out


def test_the_shipment_list_shows_life_certificate_and_overdue_returns(lives, store_db):
    """The page on each back end, with today set: the times the store holds ("–" where none), the
    OVERDUE badge with its days, the later certificate with its issuer, "none" elsewhere, and the
    'overdue returns' filter."""
    from web_helpers import LIVES, TODAY, expected_life

    _, rows, last = lives
    app = create_app(store_db, today=lambda: TODAY)
    c = signed_in(app, "quinn", "qa-password-123")
    got = _shipment_cells(c.get("/shipments").text)
    assert set(got) == set(LIVES)
    for ship_id in LIVES:
        want = expected_life(ship_id)
        shown_return = f"OVERDUE return, {want['out_days']} days" if want["overdue"] else (want["returned"] or "–")
        assert got[ship_id]["state"] == want["stage"], ship_id
        assert got[ship_id]["dispatched"] == (want["dispatched"] or "–"), ship_id
        assert got[ship_id]["delivered"] == (want["delivered"] or "–"), ship_id
        assert got[ship_id]["returned"] == shown_return, ship_id
        cert = f"No. {last['id']}, {last['issued_at']}, by Quinn Quality (quinn)" if ship_id == "LU-BACK" else "none"
        assert got[ship_id]["certificate"] == cert, ship_id
    assert got["LU-NO-EVENTS"] == {
        "state": "configured",
        "dispatched": "–",
        "delivered": "–",
        "returned": "–",
        "certificate": "none",
    }
    assert got["LU-LATE"]["returned"] == "OVERDUE return, 19 days"  # delivered 2026-11-11, today 2026-11-30
    listing = c.get("/shipments").text
    assert 'href="/shipments?overdue=1"' in listing
    overdue = c.get("/shipments?overdue=1").text
    want_ids = [s for s in sorted(LIVES, key=lambda s: -rows[s]) if expected_life(s)["overdue"]]
    assert list(_shipment_cells(overdue)) == want_ids == ["LU-EDGE-OVER", "LU-LATE"]
    # the site's own window (isolog serve --return-days): 20 days leaves none overdue
    wide = signed_in(create_app(store_db, return_days=20, today=lambda: TODAY), "quinn", "qa-password-123")
    assert _shipment_cells(wide.get("/shipments?overdue=1").text) == {}
    assert "No overdue returns." in text_of(wide.get("/shipments?overdue=1").text)
