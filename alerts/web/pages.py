"""The console's own pages: home, the audit trail (auditors, admins) and user management (admins).

Forms post with a ``csrf_token`` field (``alerts.api.security``); a change answers with the page
and a message, and a new API token is shown on that answer only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from alerts.api.context import console
from alerts.api.security import AdminUser, AuditUser, ReadUser, client_address
from alerts.audit.query import AuditFilter, actions, search
from alerts.audit.trail import AuditError
from alerts.users import service
from alerts.users.store import ROLES, UserError
from alerts.web.render import render

router = APIRouter(include_in_schema=False)

ROLE_TEXT = {
    "analyst": "you triage alerts and manage incidents.",
    "admin": "you triage alerts, manage incidents, suppressions and users.",
    "auditor": "you can read everything, including the audit trail, and change nothing; you can issue reports.",
}


@router.get("/")
def home(request: Request, user: ReadUser) -> Response:
    return render(request, "home.html", {"title": "Home", "role_text": ROLE_TEXT.get(user.role, "")})


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/audit")
def audit_page(request: Request, user: AuditUser, *,
               actor: Annotated[str, Query(max_length=200)] = "",
               action: Annotated[str, Query(max_length=100)] = "",
               since: Annotated[str, Query(max_length=40)] = "",
               until: Annotated[str, Query(max_length=40)] = "",
               before: Annotated[int | None, Query(ge=1)] = None) -> Response:
    state = console(request)
    flt = AuditFilter(actor.strip() or None, action.strip() or None, _moment(since), _moment(until))
    page = search(state.es, state.audit.index, flt, before=before, size=50)
    return render(request, "audit.html", {
        "title": "Audit trail", "page": page, "actions": actions(state.es, state.audit.index),
        "f": {"actor": actor, "action": action, "since": since, "until": until},
        "bad_time": bool((since and not _moment(since)) or (until and not _moment(until))),
    })


@router.get("/audit/verify")
def audit_verify_page(request: Request, user: AuditUser) -> Response:
    verdict = console(request).audit.verify()
    return render(request, "audit_verify.html", {"title": "Audit chain", "verdict": verdict})


def _users_page(request: Request, *, message: str = "", error: str = "", token: str = "",
                status_code: int = 200) -> Response:
    return render(request, "users.html", {"title": "Users", "users": console(request).users.list(), "roles": ROLES,
                                          "message": message, "error": error, "token": token},
                  status_code=status_code)


@router.get("/admin/users")
def users_page(request: Request, user: AdminUser) -> Response:
    return _users_page(request)


@router.post("/admin/users")
def users_change(request: Request, user: AdminUser, *,
                 op: Annotated[str, Form(max_length=20)],
                 name: Annotated[str, Form(max_length=64)],
                 role: Annotated[str, Form(max_length=20)] = "",
                 password: Annotated[str, Form(max_length=1024)] = "",
                 token_id: Annotated[str, Form(max_length=40)] = "",
                 label: Annotated[str, Form(max_length=200)] = "") -> Response:
    """One form handler for every user change (``op``), so each change is one audited call."""
    state = console(request)
    actor = service.Actor(user.name, state.clock(), client_address(request))
    token = ""
    try:
        if op == "add":
            service.add_user(state.users, state.audit, actor, name, role=role, password=password)
            message = f"User {name} added as {role}."
        elif op in ("disable", "enable"):
            service.set_disabled(state.users, state.audit, actor, name, op == "disable")
            if op == "disable":
                state.sessions.end_user(name)
            message = f"User {name} {op}d."
        elif op == "role":
            service.set_role(state.users, state.audit, actor, name, role)
            message = f"User {name} is now {role}."
        elif op == "password":
            service.set_password(state.users, state.audit, actor, name, password)
            state.sessions.end_user(name)
            message = f"Password of {name} changed; their sessions ended."
        elif op == "token":
            _, token = service.new_token(state.users, state.audit, actor, name, label)
            message = f"New API token for {name}. Copy it now: it is not shown again."
        elif op == "revoke":
            service.revoke_token(state.users, state.audit, actor, name, token_id)
            message = f"Token {token_id} of {name} revoked."
        else:
            return _users_page(request, error=f"unknown operation {op!r}", status_code=400)
    except UserError as error:
        return _users_page(request, error=str(error), status_code=400)
    except AuditError as error:
        return _users_page(request, error=f"Nothing changed: the audit record could not be written ({error})",
                           status_code=503)
    return _users_page(request, message=message, token=token)
