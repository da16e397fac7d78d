"""In Chromium: the auditor's trail with filters, hostile records shown inert; an admin adds a user.

A dialog (``alert()``) opened by any record would fail the test: the page must run no script but
its own. Screenshots go to tests/console/screenshots/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import PASSWORD, LiveConsole, make_user

pytestmark = pytest.mark.integration
NOW = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)


def log_in(page: Any, console: LiveConsole, name: str) -> None:
    page.goto(console.url + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(console.url + "/")


def test_auditor_reads_and_filters_the_trail(live_console: LiveConsole, page: Any, screenshot_dir: Path) -> None:
    make_user(live_console.settings, "aud", "auditor")
    trail = live_console.app.state.console.audit
    trail.append(actor="ann", action="alert_ack", target="alert:4f1c", before={"status": "open"},
                 after={"status": "acknowledged"}, now=NOW, source_ip="10.20.0.7")
    trail.append(actor="ann", action="alert_comment", target="alert:4f1c",
                 after={"comment": "<script>alert('xss')</script> user agent \u202egpj.exe", "sql": "' OR 1=1 --"},
                 now=NOW + timedelta(minutes=2), source_ip="10.20.0.7")
    trail.append(actor="bob", action="alert_close", target="alert:77aa", before={"status": "investigating"},
                 after={"status": "closed", "verdict": "false_positive", "reason": "backup job"},
                 now=NOW + timedelta(minutes=5), source_ip="10.20.0.9")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, live_console, "aud")
    page.get_by_role("link", name="Audit trail").first.click()
    page.wait_for_url(live_console.url + "/audit")
    rows = page.locator("table.data tbody tr")
    assert rows.count() == 4  # three records and aud's own login, newest first
    assert "login_success" in rows.nth(0).inner_text()
    assert "<script>alert('xss')</script>" in page.locator("table.data").inner_text()  # shown as text
    assert "⟨U+202E⟩gpj.exe" in page.locator("table.data").inner_text()
    page.screenshot(path=str(screenshot_dir / "audit-trail.png"), full_page=True)
    page.get_by_label("Actor").fill("ann")
    page.get_by_label("Action").fill("alert_comment")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/audit?actor=ann&action=alert_comment**")
    assert rows.count() == 1 and "alert_comment" in rows.nth(0).inner_text()
    page.get_by_role("link", name="Verify the chain").click()
    assert "The chain is intact: 4 records" in page.get_by_role("status").inner_text()
    assert not dialogs, dialogs
    assert not page.console_errors, page.console_errors


def test_analyst_is_refused_the_trail(live_console: LiveConsole, page: Any) -> None:
    make_user(live_console.settings, "ann", "analyst")
    log_in(page, live_console, "ann")
    assert page.get_by_role("link", name="Audit trail").count() == 0
    answer = page.goto(live_console.url + "/audit")
    assert answer.status == 403
    assert "may not read the audit trail" in page.get_by_role("alert").inner_text()


def test_admin_adds_a_user(live_console: LiveConsole, page: Any, screenshot_dir: Path) -> None:
    make_user(live_console.settings, "root", "admin")
    log_in(page, live_console, "root")
    page.get_by_role("link", name="Users").first.click()
    page.get_by_label("User name").fill("carol")
    page.get_by_label("Role", exact=True).select_option("auditor")
    page.get_by_label("Password", exact=True).fill("a long enough password")
    page.get_by_role("button", name="Add user").click()
    assert "User carol added as auditor." in page.get_by_role("status").first.inner_text()
    page.get_by_role("row", name="carol").get_by_role("button", name="New token").click()
    token = page.get_by_label("API token (shown once)").input_value()
    assert token.startswith("sfc_")
    page.screenshot(path=str(screenshot_dir / "admin-users.png"), full_page=True)
    actions = [r["action"] for _, r in live_console.app.state.console.audit.records()]
    assert actions == ["login_success", "user_add", "user_token_add"]
    assert not page.console_errors, page.console_errors
