"""Every route declares its role, and the role is enforced: the whole route table, every role.

For each route of the app (``app.routes``, so routes other branches add are covered too) the
test finds the role dependency it declares (``alerts.api.security.ROLE_DEPENDENCIES``), and for
each role calls it with that role's API token: a role outside the set gets 403, a role inside
it gets past authorization (anything but 401/403; a made-up path parameter may well be 404 or
422). Without credentials every route answers 401. A cookie session must send the CSRF token on
every state-changing route. A route with no role fails the test, unless it is one of the few
public ones (login, logout, static files, health, the OpenAPI document).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from alerts.api.app import route_table
from alerts.api.security import AUDITOR_MAY_CHANGE, ROLE_DEPENDENCIES, ROLES, SAFE_METHODS
from alerts.settings import Settings
from tests.console.conftest import PASSWORD, bearer, make_user

PUBLIC = {"/login", "/logout", "/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
# Values for path parameters: names that exist nowhere, shaped to pass typical patterns.
PARAMETER_VALUES = {"name": "nobody", "token_id": "abc123"}


def declared_roles(route: Any) -> list[frozenset[str]]:
    """The role sets of the role dependencies anywhere in the route's dependency tree."""
    return [ROLE_DEPENDENCIES[call] for call in declared_dependencies(route)]


def declared_dependencies(route: Any) -> list[Any]:
    """The role dependencies anywhere in the route's dependency tree."""
    found: list[Any] = []
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        if dependant.call in ROLE_DEPENDENCIES:
            found.append(dependant.call)
        stack.extend(dependant.dependencies)
    return found


def api_routes(app: Any) -> list[tuple[str, str, Any]]:
    routes = [(method, route.path, route) for route in route_table(app) if isinstance(route.original_route, APIRoute)
              for method in sorted(route.methods - {"HEAD"})]
    assert len(routes) >= 10, "the route table is empty: has FastAPI changed how it keeps included routers?"
    return routes


def concrete(path: str) -> str:
    import re

    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: PARAMETER_VALUES.get(m.group(1), "x1"), path)


def call(client: TestClient, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    kwargs: dict[str, Any] = {"headers": {"Accept": "application/json", **(headers or {})}}
    if method not in SAFE_METHODS:
        kwargs["json"] = {}
    return client.request(method, concrete(path), follow_redirects=False, **kwargs)


@pytest.fixture
def tokens(console_settings: Settings) -> dict[str, dict[str, str]]:
    for role in ROLES:
        make_user(console_settings, f"the-{role}", role)
    return {role: bearer(console_settings, f"the-{role}") for role in ROLES}


def test_every_route_declares_exactly_one_role(client: TestClient) -> None:
    missing, several, read_changes = [], [], []
    for method, path, route in api_routes(client.app):
        if path in PUBLIC:
            continue
        roles = declared_roles(route)
        if not roles:
            missing.append(f"{method} {path}")
        elif len(set(roles)) > 1:
            several.append(f"{method} {path}")
        elif method not in SAFE_METHODS and "auditor" in roles[0] \
                and declared_dependencies(route)[0] not in AUDITOR_MAY_CHANGE:
            read_changes.append(f"{method} {path}")  # the auditor changes nothing but issuing reports
    assert not missing, f"routes without a role dependency: {missing}"
    assert not several, f"routes with conflicting role dependencies: {several}"
    assert not read_changes, f"state-changing routes open to the auditor: {read_changes}"


def test_each_role_is_denied_or_granted_on_every_route(client: TestClient,
                                                       tokens: dict[str, dict[str, str]]) -> None:
    wrong: list[str] = []
    checked = 0
    for method, path, route in api_routes(client.app):
        if path in PUBLIC:
            continue
        allowed = declared_roles(route)[0]
        for role in ROLES:
            status = call(client, method, path, tokens[role]).status_code
            checked += 1
            if role in allowed and status in (401, 403):
                wrong.append(f"{role} refused ({status}) on {method} {path}")
            if role not in allowed and status != 403:
                wrong.append(f"{role} not refused ({status}) on {method} {path}")
    assert not wrong, wrong
    assert checked >= 3 * 10


def test_no_credentials_no_access(client: TestClient) -> None:
    open_routes = [f"{method} {path}" for method, path, _ in api_routes(client.app)
                   if path not in PUBLIC and call(client, method, path).status_code != 401]
    assert not open_routes


def test_bad_tokens_are_refused(client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    for header in ("Bearer sfc_nope_nope", "Bearer ", "Basic YWRtaW46YWRtaW4=", tokens["admin"]["Authorization"] + "x"):
        assert client.get("/api/users", headers={"Authorization": header}).status_code == 401


def test_cookie_sessions_need_the_csrf_token_on_every_change(client: TestClient, console_settings: Settings) -> None:
    make_user(console_settings, "root", "admin")
    login = client.get("/login")
    token = login.cookies.get("socflow_login") or client.cookies.get("socflow_login")
    answer = client.post("/login", data={"username": "root", "password": PASSWORD, "login_token": token},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    csrf = client.get("/api/me").json()["csrf_token"]
    assert csrf
    unprotected, blocked = [], []
    for method, path, _route in api_routes(client.app):
        if path in PUBLIC or method in SAFE_METHODS:
            continue
        without = call(client, method, path)
        if without.status_code != 403 or "CSRF" not in without.text:
            unprotected.append(f"{method} {path}: {without.status_code}")
        with_token = call(client, method, path, {"X-CSRF-Token": csrf})
        if with_token.status_code in (401, 403):
            blocked.append(f"{method} {path}: {with_token.status_code}")
        wrong = call(client, method, path, {"X-CSRF-Token": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")})
        if wrong.status_code != 403:
            unprotected.append(f"{method} {path} with a wrong token: {wrong.status_code}")
    assert not unprotected, unprotected
    assert not blocked, blocked
