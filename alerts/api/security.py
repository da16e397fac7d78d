"""Who is asking, and may they: authentication, CSRF, and the role dependencies.

Roles: ``analyst`` triages alerts and manages incidents; ``admin`` also manages suppressions and
users; ``auditor`` reads everything and changes nothing. Every route declares exactly one of
the dependencies below (``tests/console/test_routes.py`` walks the route table and fails on a
route without one); each returns the current ``User`` (``.name``, ``.role``):

- ``require_read``: every role (pages and GET API routes);
- ``require_triage``: analyst, admin (triage actions, incidents);
- ``require_admin``: admin (suppressions, users);
- ``require_audit``: auditor, admin (the audit trail);
- ``require_issue``: auditor, admin (issuing a report: the one change an auditor may make; it
  adds an archive entry and an audit record and changes no alert, incident, rule, suppression
  or user; ``AUDITOR_MAY_CHANGE`` names it for the route-table test).

A request authenticates with a session cookie (the browser) or ``Authorization: Bearer <API
token>`` (scripts). A cookie session must send its CSRF token on every POST/PUT/PATCH/DELETE,
in the ``X-CSRF-Token`` header (pages read it from ``<meta name="csrf-token">``) or, for plain
HTML forms, a ``csrf_token`` field; a token request needs none (a browser never adds that
header by itself). A user disabled while logged in is refused on the next request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from alerts.api.context import console
from alerts.users.store import User

ANALYST, ADMIN, AUDITOR = "analyst", "admin", "auditor"
ROLES = (ANALYST, ADMIN, AUDITOR)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


class NotAuthenticated(HTTPException):
    """No valid session or token: 401 for the API, a redirect to the login page for pages."""

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> User:
    """The user behind this request's bearer token or session cookie (CSRF checked)."""
    state = console(request)
    cached: User | None = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("Authorization must be 'Bearer <API token>'")
        user = state.users.authenticate_token(token.strip())
        if user is None:
            raise NotAuthenticated("invalid or revoked API token")
        request.state.user, request.state.session = user, None
        return user
    cookie = request.cookies.get(state.session_cookie)
    if not cookie:
        raise NotAuthenticated("not logged in")
    session = state.sessions.get(cookie, state.clock())
    if session is None:
        raise NotAuthenticated("session expired; log in again")
    user = state.users.get(session.user)
    if user is None or user.disabled or user.password_changed != session.stamp:
        # Checked on every request: `socflow users disable|passwd` in another process takes
        # effect at once, without reaching into this process's sessions.
        state.sessions.end(cookie)
        raise NotAuthenticated("account disabled or password changed; log in again")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            field = (await request.form()).get(CSRF_FIELD)
            sent = field if isinstance(field, str) else None
        if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise HTTPException(status_code=403, detail="CSRF token missing or wrong; reload the page")
    request.state.user, request.state.session = user, session
    return user


def _allow(user: User, roles: tuple[str, ...], what: str) -> User:
    if user.role not in roles:
        raise HTTPException(status_code=403, detail=f"role {user.role!r} may not {what}")
    return user


async def require_read(user: Annotated[User, Depends(authenticate)]) -> User:
    """Any logged-in role: reading alerts, incidents, pages."""
    return _allow(user, ROLES, "read this")


async def require_triage(user: Annotated[User, Depends(authenticate)]) -> User:
    """Analysts and admins: triage actions and incidents."""
    return _allow(user, (ANALYST, ADMIN), "change alerts or incidents")


async def require_admin(user: Annotated[User, Depends(authenticate)]) -> User:
    """Admins: suppressions and users."""
    return _allow(user, (ADMIN,), "manage users or suppressions")


async def require_audit(user: Annotated[User, Depends(authenticate)]) -> User:
    """Auditors and admins: the audit trail."""
    return _allow(user, (AUDITOR, ADMIN), "read the audit trail")


async def require_issue(user: Annotated[User, Depends(authenticate)]) -> User:
    """Auditors and admins: issuing a report into the archive (audited as ``report.issue``)."""
    return _allow(user, (AUDITOR, ADMIN), "issue reports")


# Which roles each dependency lets through: the route-table test's source of truth.
ROLE_DEPENDENCIES = {
    require_read: frozenset(ROLES),
    require_triage: frozenset({ANALYST, ADMIN}),
    require_admin: frozenset({ADMIN}),
    require_audit: frozenset({AUDITOR, ADMIN}),
    require_issue: frozenset({AUDITOR, ADMIN}),
}
# The only dependencies under which an auditor may POST: none of them changes security state.
AUDITOR_MAY_CHANGE = frozenset({require_issue})

ReadUser = Annotated[User, Depends(require_read)]
TriageUser = Annotated[User, Depends(require_triage)]
AdminUser = Annotated[User, Depends(require_admin)]
AuditUser = Annotated[User, Depends(require_audit)]
IssueUser = Annotated[User, Depends(require_issue)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
