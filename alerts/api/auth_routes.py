"""Log in, log out, and who am I.

The login form is protected against login CSRF by a double-submit token: ``GET /login`` sets a
random ``login`` cookie (HttpOnly, SameSite=Strict) and puts the same value in the form;
``POST /login`` accepts only when both agree. Failed logins count per user name and per client
address (``LoginLimiter``); past the limit the answer is 429 with Retry-After, right password or
not. Every attempt — success, failure, refusal — is an audit record. A login whose audit
record cannot be written (Elasticsearch down) still succeeds, so the console can say that
Elasticsearch is down: the record waits, fsynced, in ``<data-dir>/audit/pending.jsonl`` and is
chained before the next record once Elasticsearch is back. Refusing every login while
Elasticsearch is away would lock out the people who must see that it is.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alerts.api.context import Console, console
from alerts.api.security import AuditUser, ReadUser, client_address
from alerts.metrics import CONSOLE_LOGINS
from alerts.web.render import render
from ingest.logs import log_event

LOGGER = logging.getLogger(__name__)
router = APIRouter()


def safe_next(path: str | None) -> str:
    """Only a path on this site: no scheme, no host, no ``//`` or backslash tricks."""
    if not path or not path.startswith("/") or path.startswith(("//", "/\\")) or any(c in path for c in "\\\r\n\t"):
        return "/"
    return path[:2000]


def _audit(state: Console, *, actor: str, action: str, address: str, after: object = None) -> None:
    # defer: a login must work while Elasticsearch is down (so the console can say it is); its
    # record waits in <data-dir>/audit/pending.jsonl and joins the chain with the next record.
    state.audit.append(actor=actor, action=action, target=f"user:{actor}", after=after, now=state.clock(),
                       source_ip=address, defer=True)


def _login_page(request: Request, *, error: str = "", username: str = "", next_path: str = "/",
                status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    state = console(request)
    # Reuse a valid pending token: two login tabs must not invalidate each other's form.
    existing = request.cookies.get(state.login_cookie, "")
    token = existing if 20 <= len(existing) <= 64 and existing.isascii() else secrets.token_urlsafe(24)
    response = render(request, "login.html", {"title": "Log in", "error": error, "username": username,
                                              "next_path": safe_next(next_path), "login_token": token},
                      status_code=status_code, headers=headers)
    response.set_cookie(state.login_cookie, token, max_age=3600, path="/", secure=state.tls, httponly=True,
                        samesite="strict")
    return response


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str = "/") -> Response:
    return _login_page(request, next_path=next)


@router.post("/login", include_in_schema=False)
def login(request: Request, username: Annotated[str, Form(max_length=200)],
          password: Annotated[str, Form(max_length=1024)], login_token: Annotated[str, Form(max_length=200)] = "",
          next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    state = console(request)
    address = client_address(request)
    now = state.clock()
    cookie = request.cookies.get(state.login_cookie, "")
    if not login_token or not cookie or not hmac.compare_digest(login_token.encode(), cookie.encode()):
        return _login_page(request, error="The login form expired; please try again.", username=username,
                           next_path=next, status_code=400)
    name = username.strip().lower()
    wait = state.limiter.retry_after(name, address, now)
    if wait:
        CONSOLE_LOGINS.labels("throttled").inc()
        _audit(state, actor=name, action="login_throttled", address=address, after={"retry_after_s": wait})
        minutes = max(1, round(wait / 60))
        return _login_page(request, error=f"Too many failed attempts. Try again in about {minutes} minute(s).",
                           username=username, next_path=next, status_code=429, headers={"Retry-After": str(wait)})
    user = state.users.authenticate(name, password)
    if user is None:
        state.limiter.failed(name, address, now)
        CONSOLE_LOGINS.labels("failure").inc()
        _audit(state, actor=name, action="login_failure", address=address)
        log_event(LOGGER, "login_failure", user=name, address=address)
        return _login_page(request, error="Wrong user name or password, or the account is disabled.",
                           username=username, next_path=next, status_code=401)
    state.limiter.succeeded(name)
    CONSOLE_LOGINS.labels("success").inc()
    previous = request.cookies.get(state.session_cookie)
    if previous:
        state.sessions.end(previous)  # a login always starts a new session id (no fixation)
    session_id, _session = state.sessions.create(user.name, now, user.password_changed)
    _audit(state, actor=user.name, action="login_success", address=address, after={"role": user.role})
    log_event(LOGGER, "login_success", user=user.name, address=address)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(state.session_cookie, session_id, path="/", secure=state.tls, httponly=True,
                        samesite="strict")
    response.delete_cookie(state.login_cookie, path="/", secure=state.tls, httponly=True, samesite="strict")
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    """End the session. The CSRF field must match: a forged form cannot log an analyst out."""
    state = console(request)
    cookie = request.cookies.get(state.session_cookie)
    session = state.sessions.get(cookie, state.clock()) if cookie else None
    if session is not None:
        form = await request.form()
        sent = form.get("csrf_token")
        header = request.headers.get("x-csrf-token")
        token = header if header is not None else sent if isinstance(sent, str) else ""
        if not token or not hmac.compare_digest(token.encode(), session.csrf_token.encode()):
            raise HTTPException(status_code=403, detail="CSRF token missing or wrong; reload the page")
        state.sessions.end(cookie or "")
        _audit(state, actor=session.user, action="logout", address=client_address(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(state.session_cookie, path="/", secure=state.tls, httponly=True, samesite="strict")
    return response


@router.get("/api/me", tags=["session"])
def me(request: Request, user: ReadUser) -> dict[str, Any]:
    """The caller: name, role, and (for a cookie session) the CSRF token to send on changes."""
    session = getattr(request.state, "session", None)
    return {"name": user.name, "role": user.role, "csrf_token": session.csrf_token if session else None}


@router.get("/api/status", tags=["session"])
def status(request: Request, user: ReadUser) -> dict[str, Any]:
    """Is Elasticsearch reachable (the page banner polls this)."""
    reason = console(request).health.reason()
    return {"elasticsearch": "down" if reason else "up", "reason": reason}


@router.get("/metrics", include_in_schema=False)
def metrics(user: AuditUser) -> Response:
    """Prometheus metrics of this process (scrape with an auditor's API token as bearer)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    """Liveness of the console process (no login; says nothing about Elasticsearch)."""
    return {"status": "ok"}
