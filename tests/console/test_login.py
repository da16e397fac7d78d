"""Logins, sessions, throttling and logout through the app (TestClient), with a clock the test moves.

The audit records of each attempt are read back from the real Elasticsearch.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerts.api.app import CONTENT_SECURITY_POLICY, create_app
from alerts.settings import Settings
from alerts.users.store import UserStore
from tests.console.conftest import PASSWORD, bearer, make_user


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def web(console_settings: Settings, clock: Clock) -> Iterator[TestClient]:
    make_user(console_settings, "ann", "analyst")
    with TestClient(create_app(console_settings, clock=clock), headers={"Accept": "text/html"}) as test_client:
        yield test_client


def login(client: TestClient, username: str = "ann", password: str = PASSWORD, next_path: str = "/",
          **headers: str) -> Any:
    client.get("/login")
    token = client.cookies.get("socflow_login")
    return client.post("/login", data={"username": username, "password": password, "login_token": token or "",
                                       "next": next_path}, follow_redirects=False, headers=headers)


def audit(client: TestClient) -> list[dict[str, Any]]:
    state = client.app.state.console  # type: ignore[attr-defined]
    return [record for _, record in state.audit.records()]


def test_login_sets_a_strict_session_cookie_and_audits(web: TestClient) -> None:
    answer = login(web, next_path="/audit?actor=x")
    assert answer.status_code == 303 and answer.headers["location"] == "/audit?actor=x"
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("socflow_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback; under TLS see test_tls_cookies
    assert web.get("/", follow_redirects=False).status_code == 200
    (record,) = audit(web)
    assert record["action"] == "login_success" and record["actor"] == "ann"
    assert record["source_ip"] == "testclient" and record["after"] == {"role": "analyst"}


def test_a_new_login_replaces_the_session(web: TestClient) -> None:
    login(web)
    first = web.cookies.get("socflow_session")
    login(web)
    second = web.cookies.get("socflow_session")
    assert first and second and first != second
    web.cookies.set("socflow_session", first)
    assert web.get("/api/me", headers={"Accept": "application/json"}).status_code == 401


def test_wrong_password_is_refused_and_audited(web: TestClient) -> None:
    from prometheus_client import REGISTRY

    before = REGISTRY.get_sample_value("socflow_console_logins_total", {"outcome": "failure"}) or 0
    answer = login(web, password="wrong password!")
    assert REGISTRY.get_sample_value("socflow_console_logins_total", {"outcome": "failure"}) == before + 1
    assert answer.status_code == 401
    assert "Wrong user name or password" in answer.text
    assert "socflow_session" not in answer.headers.get("set-cookie", "")
    login(web, username="nobody")
    assert [(r["action"], r["actor"]) for r in audit(web)] == [("login_failure", "ann"), ("login_failure", "nobody")]


def test_login_form_needs_its_token(web: TestClient) -> None:
    answer = web.post("/login", data={"username": "ann", "password": PASSWORD}, follow_redirects=False)
    assert answer.status_code == 400 and "expired" in answer.text


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"])
def test_no_open_redirect_after_login(web: TestClient, target: str) -> None:
    answer = login(web, next_path=target)
    assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_failures_per_user_are_throttled(web: TestClient, clock: Clock) -> None:
    for _ in range(5):
        assert login(web, password="wrong password!").status_code == 401
        clock.advance(seconds=10)
    refused = login(web)  # right password, still refused
    assert refused.status_code == 429
    retry = int(refused.headers["Retry-After"])
    assert 800 <= retry <= 900
    assert "Too many failed attempts" in refused.text
    clock.advance(seconds=retry)
    assert login(web).status_code == 303
    actions = [r["action"] for r in audit(web)]
    assert actions == ["login_failure"] * 5 + ["login_throttled", "login_success"]


def test_failures_per_address_are_throttled(web: TestClient, console_settings: Settings) -> None:
    make_user(console_settings, "bob", "analyst")
    for name in ("u1", "u2", "u3", "u4", "u5"):
        login(web, username=name)
    assert login(web, username="bob").status_code == 429  # another user, same address


def test_idle_and_absolute_expiry(web: TestClient, clock: Clock) -> None:
    login(web)
    clock.advance(minutes=29)
    assert web.get("/api/me", headers={"Accept": "application/json"}).status_code == 200
    clock.advance(minutes=31)
    assert web.get("/api/me", headers={"Accept": "application/json"}).status_code == 401
    login(web)
    for _ in range(48):  # busy all day: every 10 minutes for 8 hours
        clock.advance(minutes=10)
        status = web.get("/api/me", headers={"Accept": "application/json"}).status_code
    assert status == 401


def test_page_without_session_redirects_to_login(web: TestClient) -> None:
    answer = web.get("/audit?actor=a", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=%2Faudit%3Factor%3Da"
    assert web.get("/api/me", headers={"Accept": "application/json"}).status_code == 401


def test_disabled_or_new_password_ends_sessions(web: TestClient, console_settings: Settings, clock: Clock) -> None:
    store = UserStore(console_settings.console_dir / "users.json")
    login(web)
    assert web.get("/api/me").status_code == 200
    store.set_disabled("ann", True)  # as `socflow users disable` in another process does
    assert web.get("/api/me", headers={"Accept": "application/json"}).status_code == 401
    store.set_disabled("ann", False)
    assert login(web).status_code == 303
    clock.advance(seconds=2)
    store.set_password("ann", "another long password", now=clock.now)
    assert web.get("/api/me", headers={"Accept": "application/json"}).status_code == 401
    assert login(web, password="another long password").status_code == 303


def test_logout_needs_the_csrf_token(web: TestClient) -> None:
    login(web)
    csrf = web.get("/api/me").json()["csrf_token"]
    assert web.post("/logout", data={"csrf_token": "forged"}, follow_redirects=False).status_code == 403
    assert web.get("/api/me").status_code == 200
    answer = web.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert web.get("/api/me", headers={"Accept": "application/json"}).status_code == 401
    assert [r["action"] for r in audit(web)] == ["login_success", "logout"]


def test_security_headers_everywhere(web: TestClient) -> None:
    for path in ("/login", "/healthz", "/openapi.json", "/static/console.css", "/api/me", "/nope"):
        headers = web.get(path).headers
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in headers
    assert web.get("/login").headers["Cache-Control"] == "no-store"
    assert web.get("/docs").status_code == 404  # Swagger UI needs inline script: off


def test_tls_cookies_and_hsts(console_settings: Settings, tmp_path: Any) -> None:
    tls = console_settings.model_copy(update={"console": console_settings.console.model_copy(
        update={"tls_cert": tmp_path / "c.pem", "tls_key": tmp_path / "k.pem"})})
    make_user(tls, "ann", "analyst")
    with TestClient(create_app(tls), base_url="https://testserver") as client:
        client.get("/login")
        token = client.cookies.get("__Host-socflow_login")
        answer = client.post("/login", data={"username": "ann", "password": PASSWORD, "login_token": token},
                             follow_redirects=False)
        cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("__Host-socflow_session="))
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert client.get("/api/me").json()["name"] == "ann"


def test_large_bodies_are_refused_unread(web: TestClient) -> None:
    answer = web.post("/api/users", content=b"[" + b"1," * 1_000_000 + b"1]",
                      headers={"Content-Type": "application/json", "Accept": "application/json"})
    assert answer.status_code == 413


def test_metrics_for_auditors(web: TestClient, console_settings: Settings) -> None:
    make_user(console_settings, "aud", "auditor")
    login(web, password="wrong password!")
    answer = web.get("/metrics", headers=bearer(console_settings, "aud"))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    assert 'socflow_console_logins_total{outcome="failure"}' in answer.text
    assert "socflow_audit_records_total" in answer.text
    assert web.get("/metrics", headers={**bearer(console_settings, "ann"), "Accept": "text/plain"}).status_code == 403
