"""In Debian's Chromium: log in, see the home page, log out; a wrong password shows an error.

The page must run under the strict Content-Security-Policy without a single violation (the
browser reports one as a console error), and the keyboard must reach the form (skip link,
labelled fields).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import PASSWORD, LiveConsole, make_user

pytestmark = pytest.mark.integration


def test_login_home_logout(live_console: LiveConsole, page: Any, screenshot_dir: Path) -> None:
    make_user(live_console.settings, "ann", "analyst")
    page.goto(live_console.url + "/")
    assert page.url.startswith(live_console.url + "/login?next=")
    assert page.evaluate("document.activeElement.id") == "username"  # autofocus
    page.get_by_label("User name").fill("ann")
    page.get_by_label("Password").fill(PASSWORD)
    page.screenshot(path=str(screenshot_dir / "login.png"))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_console.url + "/")
    assert page.get_by_role("heading", name="Welcome, ann").is_visible()
    assert "analyst" in page.locator(".whoami").inner_text()
    assert page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert page.locator("#es-banner").is_hidden()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").is_visible()  # shown when focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.screenshot(path=str(screenshot_dir / "home-analyst.png"), full_page=True)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(live_console.url + "/login")
    page.goto(live_console.url + "/")
    assert "/login" in page.url  # the session is gone
    assert not page.console_errors, page.console_errors


def test_wrong_password_shows_an_error(live_console: LiveConsole, page: Any, screenshot_dir: Path) -> None:
    make_user(live_console.settings, "ann", "analyst")
    page.goto(live_console.url + "/login")
    page.get_by_label("User name").fill("ann")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    error = page.get_by_role("alert").filter(has_text="Wrong user name or password")
    error.wait_for()
    assert "/login" in page.url
    page.screenshot(path=str(screenshot_dir / "login-failed.png"))
    assert not page.console_errors, page.console_errors
