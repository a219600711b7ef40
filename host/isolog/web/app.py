"""The fleet dashboard: a Starlette app over the sync store (`isolog serve`, docs/dashboard.md).

Server-rendered pages (Jinja2), plain CSS, no script. Every page needs a signed-in user; every form
carries the session's CSRF token (a POST without it is refused, 403). The session cookie is signed
(itsdangerous), HttpOnly, SameSite=Strict, and Secure when the app is served behind TLS
(`secure_cookies`). It holds only a random session token and the CSRF token: the session itself is
a row in the store (web_sessions), ended by signing out or after IDLE_S of inactivity.

Database work runs in worker threads, each with its own Store connection (sqlite3 connections
belong to one thread); the compliance engine and matplotlib run one at a time (pyplot is not
thread-safe) and the last few check results are kept in memory, keyed by the shipment and the
device's next sequence number (a sync makes a new key).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import secrets
import tempfile
import threading
from collections import OrderedDict
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from isolog.errors import UserError
from isolog.store import Store
from isolog.units import format_duration
from isolog.web import accounts, queries, reviews

HERE = Path(__file__).resolve().parent
COOKIE = "isolog_session"
_CACHE_SIZE = 4  # check results kept in memory (a shipment of 10,000 records: a few MB each)


class _Checks:
    """The compliance engine's result per (shipment row, device next_seq), computed once."""

    def __init__(self, db: Path | str | None):
        self.db = db
        self.lock = threading.Lock()
        self.cache: OrderedDict[tuple[int, int], Any] = OrderedDict()

    def result(self, store: Store, ship: dict[str, Any]):
        from isolog.compliance import check
        from isolog.store import load_for_check

        key = (ship["row"], queries.device_next_seq(store, ship["device"]))
        with self.lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
            try:
                rec, shipment = load_for_check(self.db, ship["id"], ship["device"])
            except UserError:
                queries.remember_verdict(store, ship["row"], "none", 0, "", key[1])
                raise
            _, _, end = store.shipment_range(ship["id"], ship["device"])
            try:
                verification = store.shipment_verification(ship["id"])
            except UserError:
                from isolog.compliance import Verification

                verification = Verification.not_checked("the shipment id names several boards")
            result = check(rec, shipment, verification)
            queries.remember_verdict(
                store,
                ship["row"],
                result.overall,
                int(result.summary["records"]),
                result.records_sha256 or "",
                key[1],
                final=end is not None and end <= key[1],
                excursions=reviews.excursions(result),
                unlisted=reviews.unlisted(result),
            )
            self.cache[key] = result
            while len(self.cache) > _CACHE_SIZE:
                self.cache.popitem(last=False)
            return result

    def plot_png(self, store: Store, ship: dict[str, Any]) -> bytes:
        import matplotlib.pyplot as plt

        from isolog.compliance import report

        result = self.result(store, ship)
        with self.lock:
            fig = report.figure_plots(result)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=90)
            plt.close(fig)
            return buf.getvalue()

    def certificate_pdf(self, store: Store, ship: dict[str, Any]) -> tuple[Any, bytes]:
        from isolog.compliance import report

        result = self.result(store, ship)
        with self.lock, tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "certificate.pdf"
            report.write_pdf(result, path)
            return result, path.read_bytes()


class _Checker:
    """Checks, one at a time in a thread of its own, the shipments whose verdict the list lacks
    (newest first), so the shipment list shows verdicts without anyone opening each shipment."""

    IDLE_S = 5.0  # wait when every shipment has a current verdict
    PAUSE_S = 0.2  # between two checks: pages come first

    def __init__(self, db: Path | str | None, checks: _Checks):
        self.db = db
        self.checks = checks
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="isolog-checker", daemon=True)

    def _run(self) -> None:
        with Store(self.db) as st:
            while not self.stop.is_set():
                ship = queries.next_unchecked(st)
                if ship is None:
                    self.stop.wait(self.IDLE_S)
                    continue
                try:
                    self.checks.result(st, ship)
                except UserError:
                    pass  # remembered as "none" (no records yet, ...): tried again after the next sync
                self.stop.wait(self.PAUSE_S)


def create_app(
    db: Path | str | None = None,
    secure_cookies: bool = False,
    background_checks: bool = False,
    return_days: int = queries.RETURN_DAYS,
    today: Callable[[], date] | None = None,
) -> Starlette:
    """The dashboard over the store at db (None: the default store); background_checks: check the
    shipments the list has no verdict for in a thread while the app runs (`isolog serve` does);
    return_days: the site's return window (a container not back this many days after its delivery,
    or dispatch, is an overdue return); today: the UTC date, asked once per request (tests set it)."""
    utc_today = today or (lambda: datetime.now(timezone.utc).date())
    with Store(db) as st:
        key = accounts.secret_key(st)
    local = threading.local()
    checks = _Checks(db)
    throttle = accounts.Throttle()
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["q"] = lambda s: quote(str(s), safe="")
    templates.env.filters["duration"] = format_duration

    def store() -> Store:
        st = getattr(local, "store", None)
        if st is None:
            st = local.store = Store(db)
        return st

    async def call(fn, *args):
        """fn(store, *args) on a worker thread, with that thread's own store connection."""
        return await run_in_threadpool(lambda: fn(store(), *args))

    # --- sessions, CSRF, rendering ---------------------------------------------------------------

    def csrf(request: Request) -> str:
        tok = request.session.get("csrf")
        if not tok:
            tok = request.session["csrf"] = secrets.token_urlsafe(32)
        return tok

    async def user_of(request: Request) -> accounts.User | None:
        token = request.session.get("token")
        if not token:
            return None
        return await call(accounts.session_user, token)

    async def form_checked(request: Request) -> dict[str, str] | None:
        form = await request.form()
        sent = form.get("csrf")
        want = request.session.get("csrf")
        if not isinstance(sent, str) or not want or not secrets.compare_digest(sent, want):
            return None
        return {k: v for k, v in form.items() if isinstance(v, str)}

    async def signed_form(request: Request) -> tuple[accounts.User, dict[str, str]] | Response:
        """A form posted by a signed-in user with this session's CSRF token: (user, fields), or the
        response that refuses it (to the sign-in page, or 403)."""
        user = await user_of(request)
        if user is None:
            return to_signin(request)
        form = await form_checked(request)
        if form is None:
            return refused_csrf()
        return user, form

    def refused_csrf() -> Response:
        return HTMLResponse(
            "<h1>403: the form is stale or not from this site</h1><p>Reload the page and try again.</p>", 403
        )

    def flash(request: Request, kind: str, text: str) -> None:
        request.session.setdefault("flash", []).append([kind, text])

    def render(request: Request, name: str, user: accounts.User | None, status: int = 200, **ctx) -> Response:
        messages = request.session.pop("flash", [])
        return templates.TemplateResponse(
            request, name, {"user": user, "csrf": csrf(request), "messages": messages, **ctx}, status_code=status
        )

    def to_signin(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/signin?" + urlencode({"next": target}), 303)

    def page_number(request: Request) -> int:
        try:
            return int(request.query_params.get("page", "1"))
        except ValueError:
            return 1

    # --- pages ------------------------------------------------------------------------------------

    async def home(request: Request) -> Response:
        return RedirectResponse("/containers", 303)

    async def signin(request: Request) -> Response:
        nxt = request.query_params.get("next", "/containers")
        if request.method == "GET":
            return render(request, "signin.html", await user_of(request), next=nxt)
        form = await form_checked(request)
        if form is None:
            return refused_csrf()
        name, password = form.get("user", "").strip(), form.get("password", "")
        nxt = form.get("next") or "/containers"
        if not nxt.startswith("/") or nxt.startswith("//"):
            nxt = "/containers"  # only this site's pages (no open redirect)

        def attempt(st):
            wait = throttle.wait_s(st, name[:64])
            if wait > 0:
                st.audit(None, None, "sign_in_refused", {"user": name[:64], "why": "locked"})
                return None, accounts.locked_text(wait)
            user = accounts.verify_password(st, name, password)
            if user is None:
                throttle.failed(st, name[:64])
                st.audit(None, None, "sign_in_refused", {"user": name[:64], "why": "wrong user id or password"})
                return None, "wrong user id or password"
            throttle.succeeded(st, name[:64])
            st.audit(None, None, "sign_in", {"user": user.name})
            return user, accounts.start_session(st, user)

        user, token = await call(attempt)
        if user is None:
            flash(request, "error", token[:1].upper() + token[1:] + ".")
            locked = token.startswith("too many")
            return render(request, "signin.html", None, status=429 if locked else 401, next=nxt)
        request.session.clear()  # a new session: nothing from before signing in is kept
        request.session["token"] = token
        request.session["csrf"] = secrets.token_urlsafe(32)
        return RedirectResponse(nxt, 303)

    async def signout(request: Request) -> Response:
        form = await form_checked(request)
        if form is None:
            return refused_csrf()
        token = request.session.get("token")
        if token:
            user = await user_of(request)

            def end(st):
                accounts.end_session(st, token)
                if user:
                    st.audit(None, None, "sign_out", {"user": user.name})

            await call(end)
        request.session.clear()
        return RedirectResponse("/signin", 303)

    async def containers(request: Request) -> Response:
        user = await user_of(request)
        if user is None:
            return to_signin(request)
        page = await call(queries.containers, page_number(request))
        return render(request, "containers.html", user, page=page)

    async def shipments(request: Request) -> Response:
        user = await user_of(request)
        if user is None:
            return to_signin(request)
        device = request.query_params.get("device") or None
        overdue = request.query_params.get("overdue") == "1"
        day = utc_today()  # once per request: every row is judged against the same day
        page = await call(queries.shipments, page_number(request), device, overdue, day, return_days)
        return render(
            request, "shipments.html", user, page=page, device=device, overdue=overdue, return_days=return_days
        )

    async def shipment(request: Request) -> Response:
        user = await user_of(request)
        if user is None:
            return to_signin(request)
        row = request.path_params["row"]

        def load(st):
            ship = queries.shipment_row(st, row)
            if ship is None:
                return None
            result, problem = None, None
            try:
                result = checks.result(st, ship)
            except UserError as exc:
                problem = str(exc)
            return {
                "ship": ship,
                "result": result,
                "problem": problem,
                "review": reviews.state(st, row, result) if result else None,
                "signatures": accounts.signatures(st, row),
                "certificates": accounts.certificates(st, row),
            }

        ctx = await call(load)
        if ctx is None:
            return render(request, "error.html", user, status=404, message=f"No shipment {row} in this store.")
        return render(
            request,
            "shipment.html",
            user,
            meanings=accounts.MEANINGS,
            excursion_meanings=reviews.MEANINGS,
            **ctx,
        )

    async def plot(request: Request) -> Response:
        user = await user_of(request)
        if user is None:
            return Response("sign in first", 401)
        row = request.path_params["row"]

        def png(st):
            ship = queries.shipment_row(st, row)
            return checks.plot_png(st, ship) if ship else None

        try:
            data = await call(png)
        except UserError as exc:
            return Response(str(exc), 404)
        if data is None:
            return Response("no such shipment", 404)
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})

    def _about(st: Store, row: int) -> tuple[dict[str, Any], Any, Any]:
        """(the shipment's row, what a signature names of it, its check result)."""
        ship = queries.shipment_row(st, row)
        if ship is None:
            raise UserError(f"no shipment {row}")
        result = checks.result(st, ship)
        about = accounts.Shipment(row, ship["id"], ship["device"], result.overall, result.records_sha256 or "")
        return ship, about, result

    async def sign(request: Request) -> Response:
        got = await signed_form(request)
        if isinstance(got, Response):
            return got
        user, form = got
        row = request.path_params["row"]

        def do(st):
            _, about, result = _about(st, row)
            review = reviews.state(st, row, result)
            return accounts.sign(
                st,
                form.get("user", "").strip(),
                form.get("password", ""),
                user,
                about,
                form.get("meaning", ""),
                form.get("reason", ""),
                throttle,
                form.get("records_sha256", ""),
                review.release_refusal(),
            )

        try:
            sig = await call(do)
        except UserError as exc:
            flash(request, "error", _sentence(exc))
            return RedirectResponse(f"/shipments/{row}", 303)
        flash(request, "ok", f"Signed: {sig['meaning']} by {sig['full_name']} at {sig['signed_at']}.")
        return RedirectResponse(f"/shipments/{row}#signatures", 303)

    async def review_excursion(request: Request) -> Response:
        got = await signed_form(request)
        if isinstance(got, Response):
            return got
        user, form = got
        row = request.path_params["row"]

        def do(st):
            _, about, result = _about(st, row)
            return reviews.sign(
                st,
                form.get("user", "").strip(),
                form.get("password", ""),
                user,
                about,
                result,
                form.get("excursion", ""),
                form.get("meaning", ""),
                form.get("reason", ""),
                throttle,
                form.get("records_sha256", ""),
            )

        try:
            sig = await call(do)
        except UserError as exc:
            flash(request, "error", _sentence(exc))
            return RedirectResponse(f"/shipments/{row}#excursions", 303)
        flash(
            request,
            "ok",
            f"Signed: excursion {sig['excursion']} {sig['meaning_text']}, by {sig['full_name']} at {sig['signed_at']}.",
        )
        return RedirectResponse(f"/shipments/{row}#excursions", 303)

    async def issue_certificate(request: Request) -> Response:
        got = await signed_form(request)
        if isinstance(got, Response):
            return got
        user, form = got
        row = request.path_params["row"]

        def do(st):
            ship, about, _ = _about(st, row)
            _, pdf = checks.certificate_pdf(st, ship)
            return accounts.archive_certificate(st, about, pdf, user)

        try:
            cert = await call(do)
        except UserError as exc:
            flash(request, "error", str(exc))
            return RedirectResponse(f"/shipments/{row}", 303)
        flash(request, "ok", f"Certificate {cert['id']} issued, SHA-256 {cert['sha256']}.")
        return RedirectResponse(f"/shipments/{row}#certificates", 303)

    async def certificate(request: Request) -> Response:
        user = await user_of(request)
        if user is None:
            return to_signin(request)
        got = await call(accounts.certificate_pdf, request.path_params["cert"])
        if got is None:
            return render(request, "error.html", user, status=404, message="No such certificate.")
        meta, pdf = got
        name = f"certificate-{meta['shipment_id']}-{meta['id']}.pdf"
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
                "X-Content-SHA256": meta["sha256"],
            },
        )

    async def archive(request: Request) -> Response:
        user = await user_of(request)
        if user is None:
            return to_signin(request)
        certs = await call(accounts.certificates, None)
        return render(request, "certificates.html", user, certs=certs)

    async def audit(request: Request) -> Response:
        user = await user_of(request)
        if user is None:
            return to_signin(request)
        device = request.query_params.get("device") or None
        page, devices = await call(queries.audit_page, device, page_number(request))
        return render(request, "audit.html", user, page=page, device=device, devices=devices, json=json)

    async def audit_csv(request: Request) -> Response:
        user = await user_of(request)
        if user is None:
            return to_signin(request)
        device = request.query_params.get("device") or None
        trail = await call(lambda st: st.audit_trail(device))

        def lines():
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(["id", "time", "host_user", "device", "action", "details"])
            for r in trail:
                w.writerow([r["id"], r["time"], r["host_user"], r["device"] or "", r["action"], _details(r["details"])])
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
            if not trail:
                yield buf.getvalue()

        name = f"audit-{device or 'all'}.csv"
        return StreamingResponse(
            lines(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    routes = [
        Route("/", home),
        Route("/signin", signin, methods=["GET", "POST"]),
        Route("/signout", signout, methods=["POST"]),
        Route("/containers", containers),
        Route("/shipments", shipments),
        Route("/shipments/{row:int}", shipment),
        Route("/shipments/{row:int}/plot.png", plot),
        Route("/shipments/{row:int}/sign", sign, methods=["POST"]),
        Route("/shipments/{row:int}/review", review_excursion, methods=["POST"]),
        Route("/shipments/{row:int}/certificate", issue_certificate, methods=["POST"]),
        Route("/certificates", archive),
        Route("/certificates/{cert:int}.pdf", certificate),
        Route("/audit", audit),
        Route("/audit.csv", audit_csv),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(_SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=key,
            session_cookie=COOKIE,
            max_age=None,  # a browser-session cookie; the server ends idle sessions (accounts.IDLE_S)
            same_site="strict",
            https_only=secure_cookies,
        ),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        checker = _Checker(db, checks) if background_checks else None
        if checker:
            checker.thread.start()
        try:
            yield
        finally:
            if checker:
                checker.stop.set()
                await run_in_threadpool(checker.thread.join, 30)

    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


# Sent with every response: the pages run no script and load nothing from elsewhere (CSP level 3),
# are not framed (clickjacking), are not sniffed into another type, and are not kept in shared or
# back-button caches (they show records and signatures). Static CSS may be cached.
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'none'; object-src 'none'; frame-ancestors 'none'; "
        b"base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class _SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [h for h in _HEADERS if h[0] not in names]
                if not static and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _sentence(exc: Exception) -> str:
    """A refusal's one line (lower case, no stop: the CLI's style) as a sentence for a page."""
    text = str(exc)
    return text[:1].upper() + text[1:] + "."


def _details(d: Any) -> str:
    return json.dumps(d, sort_keys=True) if not isinstance(d, str) else d


def serve(
    db: Path | str | None, host: str, port: int, secure_cookies: bool = False, return_days: int = queries.RETURN_DAYS
) -> None:
    """Run the dashboard with uvicorn until interrupted. An address that cannot be listened on is a
    UserError (uvicorn itself would exit with 3, isolog's code for a bug)."""
    import socket

    import uvicorn

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UserError(f"--host {host}: {exc.strerror or exc}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (choose another --port)") from None
    app = create_app(db, secure_cookies, background_checks=True, return_days=return_days)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=secure_cookies)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise UserError(f"the dashboard could not start on {host}:{port} (uvicorn's message above)") from None
