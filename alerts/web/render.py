"""Render pages: one Jinja2 environment (autoescape everywhere, every value made inert).

``render(request, "name.html", {...})`` adds what ``base.html`` needs: the user, the CSRF token
for ``<meta name="csrf-token">``, the Elasticsearch banner and the navigation. Navigation lists
``NAV`` entries whose path is a route of this app and whose roles include the user's, so a page
another branch adds appears once its route exists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape
from starlette.templating import Jinja2Templates

from alerts.api.context import console
from alerts.web.inert import DISPLAY_LIMIT, inert

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

ALL = ("analyst", "admin", "auditor")
# (path, label, roles that see it), in menu order.
NAV: list[tuple[str, str, tuple[str, ...]]] = [
    ("/", "Home", ALL),
    ("/queue", "Queue", ALL),
    ("/incidents", "Incidents", ALL),
    ("/suppressions", "Suppressions", ALL),
    ("/rules", "Rules", ALL),
    ("/audit", "Audit trail", ("auditor", "admin")),
    ("/reports", "Reports", ALL),
    ("/admin/users", "Users", ("admin",)),
]


def _finalize(value: object) -> object:
    """Applied to every ``{{ expression }}``: hostile text becomes visible, not active."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return inert(value)
    return value


VALUE_LIMIT = 4_000


def _cut_strings(value: object) -> object:
    if isinstance(value, str) and len(value) > VALUE_LIMIT:
        return value[:VALUE_LIMIT] + f"… [{len(value) - VALUE_LIMIT:,} more characters not shown]"
    if isinstance(value, dict):
        return {key: _cut_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_cut_strings(item) for item in value]
    return value


def pretty_json(value: object) -> Markup:
    """Indented JSON of a stored value, made inert and HTML-escaped here (so not cut again as a whole).

    Each long string is cut on its own, so one 100 KB field cannot push the others off the page.
    """
    text = json.dumps(_cut_strings(value), indent=1, ensure_ascii=False, sort_keys=True, default=str)
    return escape(inert(text, limit=max(DISPLAY_LIMIT, len(text))))


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["inert"] = inert
    env.filters["pretty_json"] = pretty_json
    return Jinja2Templates(env=env)


def _page_paths(app: Any) -> frozenset[str]:
    cached: frozenset[str] | None = getattr(app.state, "page_paths", None)
    if cached is None:
        from fastapi.routing import iter_route_contexts

        cached = frozenset(str(route.path) for route in iter_route_contexts(app.routes) if route.path)
        app.state.page_paths = cached
    return cached


def render(request: Request, template: str, context: dict[str, Any] | None = None, *, status_code: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    state = console(request)
    user = getattr(request.state, "user", None)
    session = getattr(request.state, "session", None)
    paths = _page_paths(request.app)
    nav = [(path, label) for path, label, roles in NAV if user is not None and user.role in roles and path in paths]
    values: dict[str, Any] = {
        "user": user,
        "csrf_token": session.csrf_token if session is not None else "",
        "es_down": state.health.reason(),
        "nav": nav,
        "current_path": request.url.path,
        "title": "",
    }
    values.update(context or {})
    response = state.templates.TemplateResponse(request, template, values, status_code=status_code,
                                                headers=headers)
    return response
