"""Attacker-controlled strings are inert and readable in every page this branch renders.

Unit tests of ``alerts.web.inert`` and of rendered HTML: the audit page showing records whose
actor, target and values hold markup, quotes, control characters, right-to-left overrides and a
100 KB string; the login page echoing a hostile user name; filters echoing hostile values.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from alerts.settings import Settings
from alerts.web.inert import DISPLAY_LIMIT, inert
from tests.console.conftest import bearer, make_user

SCRIPT = "<script>alert('xss')</script>"
IMG = '"><img src=x onerror=alert(1)>'
RLO = "invoice\u202egpj.exe"
ESCAPE = "ok\x1b[2J\x1b]0;pwned\x07\x00end"
HUGE = "A" * 100_000
SQLI = "' OR 1=1; DROP TABLE users; --"


def test_inert_marks_hidden_characters() -> None:
    assert inert(RLO) == "invoice⟨U+202E⟩gpj.exe"
    assert inert(ESCAPE) == "ok⟨U+001B⟩[2J⟨U+001B⟩]0;pwned⟨U+0007⟩⟨U+0000⟩end"
    assert inert("tab\tand\nnewline stay") == "tab\tand\nnewline stay"
    assert inert("zero\u200bwidth\ufeff") == "zero⟨U+200B⟩width⟨U+FEFF⟩"
    assert inert("Nguyễn Văn An — Sở TT&TT") == "Nguyễn Văn An — Sở TT&TT"  # real text untouched


def test_inert_cuts_long_strings_and_says_so() -> None:
    shown = inert(HUGE)
    assert len(shown) < DISPLAY_LIMIT + 100
    assert shown.endswith(f"… [{100_000 - DISPLAY_LIMIT:,} more characters not shown]")


@pytest.fixture
def hostile_trail(console_settings: Settings, client: TestClient) -> dict[str, str]:
    trail = client.app.state.console.audit  # type: ignore[attr-defined]
    now = datetime(2027, 1, 1, tzinfo=UTC)
    trail.append(actor=SCRIPT, action="login_failure", target=IMG, now=now, source_ip="10.0.0.1")
    trail.append(actor="ann", action="alert_comment", target=RLO,
                 before={"comment": ESCAPE}, after={"comment": HUGE, "sql": SQLI, "html": SCRIPT}, now=now)
    make_user(console_settings, "aud", "auditor")
    return bearer(console_settings, "aud")


def test_audit_page_renders_hostile_records_inert(client: TestClient, hostile_trail: dict[str, str]) -> None:
    page = client.get("/audit", headers={**hostile_trail, "Accept": "text/html"})
    assert page.status_code == 200
    html = page.text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "\u202e" not in html and "invoice⟨U+202E⟩gpj.exe" in html
    assert "\x1b" not in html and "\x00" not in html
    assert "ok\\u001b[2J" in html  # JSON values show control characters as JSON escapes
    assert "more characters not shown" in html and HUGE not in html
    assert "&#39; OR 1=1; DROP TABLE users; --" in html
    assert html.count("<script") == 1  # only base.html's own <script src=/static/console.js>
    assert len(html) < 100_000


def test_filters_echo_hostile_values_inert(client: TestClient, hostile_trail: dict[str, str]) -> None:
    page = client.get("/audit", params={"actor": IMG, "action": SCRIPT},
                      headers={**hostile_trail, "Accept": "text/html"})
    assert page.status_code == 200
    assert 'value="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"' in page.text
    assert "<img src=x" not in page.text and "<script>alert" not in page.text
    assert "No records match." in page.text


def test_login_page_echoes_a_hostile_user_name_inert(client: TestClient) -> None:
    client.get("/login")
    answer = client.post("/login", data={"username": IMG + RLO, "password": "x" * 20,
                                         "login_token": client.cookies.get("socflow_login")})
    assert answer.status_code == 401
    assert "<img src=x" not in answer.text and "\u202e" not in answer.text
    assert 'value="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;invoice⟨U+202E⟩gpj.exe"' in answer.text


def test_api_returns_hostile_values_as_data(client: TestClient, hostile_trail: dict[str, str]) -> None:
    answer = client.get("/api/audit", headers=hostile_trail)
    assert answer.headers["content-type"] == "application/json"
    records = answer.json()["records"]
    assert records[1]["actor"] == SCRIPT  # JSON carries the exact value; pages make it inert
    assert records[0]["after"]["comment"] == HUGE
