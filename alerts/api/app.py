"""``create_app``: the console's FastAPI application (JSON API + web pages), served by ``socflow serve``.

The app includes the router of every module named in ``ROUTER_MODULES`` (each exposes
``router: APIRouter``); a module not on this branch yet is skipped. Every route declares its
role through ``alerts.api.security``. Around every response: a strict Content-Security-Policy
(no inline script or style anywhere), nosniff, no referrer, no framing, ``no-store`` caching of
anything but static files, and HSTS under TLS. Elasticsearch failures become 503 with a reason
(JSON for ``/api/``, a page otherwise), and the Elasticsearch banner turns on until it is back.
The interactive docs (``/docs``) are off: they need inline script, which the CSP forbids; the
OpenAPI document stays at ``/openapi.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from elasticsearch import ApiError, Elasticsearch, TransportError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from alerts.api.context import Console, ElasticsearchHealth, console
from alerts.api.security import NotAuthenticated
from alerts.api.sessions import LoginLimiter, SessionStore
from alerts.audit.trail import AuditError, AuditTrail
from alerts.cli import present_modules
from alerts.indexer import connect
from alerts.settings import Settings
from alerts.users.store import UserError, UserStore
from alerts.web.render import STATIC_DIR, make_templates, render
from ingest.logs import log_event

LOGGER = logging.getLogger(__name__)

# Modules whose ``router`` the app includes, in order.
ROUTER_MODULES = (
    "alerts.api.auth_routes",
    "alerts.api.user_routes",
    "alerts.api.audit_routes",
    "alerts.api.rules",
    "alerts.web.rules_pages",
    "alerts.web.pages",
    "alerts.api.triage",
    "alerts.web.triage_pages",
    "alerts.api.report_routes",
)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utc_now,
               elasticsearch: Elasticsearch | None = None) -> FastAPI:
    """The console application for ``settings`` (``elasticsearch``: a client to use instead of one from settings)."""
    options = settings.console
    client = elasticsearch if elasticsearch is not None else connect(settings.elasticsearch)
    # max_body_size: FastAPI reads a body before the role dependencies run, so without a bound
    # anyone could make the console hold any amount of JSON in memory.
    app = FastAPI(title="socflow console", version="1", docs_url=None, redoc_url=None,
                  max_body_size=options.max_body_bytes,
                  description="Alerts triage, incidents and the audit trail of socflow. Authenticate with "
                  "`Authorization: Bearer <token>` (`socflow users token NAME`).")
    app.state.console = Console(
        settings=settings,
        users=UserStore(settings.console_dir / "users.json", min_password_length=options.min_password_length),
        sessions=SessionStore(ttl=timedelta(seconds=options.session_ttl_s),
                              idle=timedelta(seconds=options.session_idle_s)),
        limiter=LoginLimiter(max_failures=options.login_max_failures,
                             window=timedelta(seconds=options.login_window_s)),
        audit=AuditTrail(client, options.audit_index, settings.audit_dir / "chain-head"),
        es=client,
        health=ElasticsearchHealth(client, options.elasticsearch_check_s),
        clock=clock,
        templates=make_templates(),
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in present_modules(ROUTER_MODULES):
        app.include_router(module.router)
    _install_handlers(app)
    _install_headers(app, tls=options.tls)
    return app


def route_table(app: FastAPI) -> list[Any]:
    """Every route of ``app`` with its effective path, methods and dependant, included routers flattened.

    FastAPI keeps an included router as one lazy entry of ``app.routes``; ``iter_route_contexts``
    walks into them. Each item has ``.path``, ``.methods``, ``.original_route`` and, for an
    ``APIRoute``, ``.dependant`` (with the router's own dependencies).
    """
    return list(iter_route_contexts(app.routes))


def wants_json(request: Request) -> bool:
    """API paths and clients that did not ask for HTML get JSON errors."""
    return request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", "")


def _error(request: Request, status: int, detail: str, *, reason: str | None = None,
           headers: dict[str, str] | None = None) -> Response:
    if wants_json(request):
        body: dict[str, Any] = {"detail": detail}
        if reason:
            body["reason"] = reason
        return JSONResponse(body, status_code=status, headers=headers)
    headings = {401: "Not logged in", 403: "Not allowed", 404: "Not found", 409: "Conflict",
                429: "Too many attempts", 503: "Service unavailable"}
    return render(request, "error.html", {"heading": headings.get(status, "Error"), "detail": detail,
                                          "title": headings.get(status, "Error")},
                  status_code=status, headers=headers)


def _install_handlers(app: FastAPI) -> None:
    async def not_authenticated(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotAuthenticated)
        if wants_json(request):
            return _error(request, 401, str(exc.detail), headers=dict(exc.headers or {}))
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return _error(request, exc.status_code, str(exc.detail), headers=dict(exc.headers) if exc.headers else None)

    async def elasticsearch_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", None)
        if isinstance(exc, ApiError) and isinstance(status, int) and status < 500:
            log_event(LOGGER, "console_elasticsearch_refused", logging.ERROR, path=request.url.path,
                      status=status, error=str(exc)[:500])
            return _error(request, 502, f"Elasticsearch refused the request ({status})", reason="elasticsearch_error")
        reason = f"Elasticsearch is unavailable ({type(exc).__name__})"
        console(request).health.failed(reason)
        return _error(request, 503, reason, reason="elasticsearch_unavailable", headers={"Retry-After": "5"})

    async def audit_error(request: Request, exc: Exception) -> Response:
        console(request).health.failed(str(exc))
        return _error(request, 503, f"the audit trail cannot be written: {exc}", reason="audit_unavailable",
                      headers={"Retry-After": "5"})

    async def user_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, UserError)
        return _error(request, exc.status, str(exc), reason="invalid_user_change")

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if wants_json(request):
            errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                      for e in exc.errors()]
            return JSONResponse({"detail": errors}, status_code=422)
        return _error(request, 422, "the form or link has invalid values")

    app.add_exception_handler(NotAuthenticated, not_authenticated)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(TransportError, elasticsearch_error)
    app.add_exception_handler(ApiError, elasticsearch_error)
    app.add_exception_handler(AuditError, audit_error)
    app.add_exception_handler(UserError, user_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def _install_headers(app: FastAPI, *, tls: bool) -> None:
    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        headers = response.headers
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        headers["X-Frame-Options"] = "DENY"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if not request.url.path.startswith("/static/"):
            headers["Cache-Control"] = "no-store"
        if tls:
            headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return response
