"""Helpers for the dashboard tests: a signed-in TestClient and the CSRF token of a page."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def signed_in(app, name: str, password: str) -> TestClient:
    c = TestClient(app)
    token = csrf_of(c.get("/signin").text)
    r = c.post("/signin", data={"csrf": token, "user": name, "password": password, "next": "/containers"})
    assert r.status_code == 200 and r.url.path == "/containers", r.text[:300]
    return c


def text_of(html: str) -> str:
    """The page's text, tags removed, white space collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
