"""The rules page in Debian's Chromium (Playwright), on the real Elasticsearch and a real rule store.

An admin finds the noisiest rules, moves through the table with the queue's keys (j, Enter),
disables a rule with a reason and sees it marked disabled, published as a new rule set
version; an auditor sees the same page with no change controls, and a change posted from the
auditor's own session is refused. No console error (strict CSP) on any page. Screenshots:
tests/console/screenshots/rules.png and rule.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.api.app import create_app
from detectors.ruletools.store import RuleStore
from tests.console.conftest import LiveConsole, free_port, make_user, serve_in_thread
from tests.console.rules_fixtures import NOW, SCANNER_ID, TRAVERSAL, drop_rules, rules_settings
from tests.console.test_triage_browser import login

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rules_live(tmp_path_factory: pytest.TempPathFactory, elasticsearch_url: str) -> Iterator[LiveConsole]:
    console = rules_settings(tmp_path_factory.mktemp("rules-browser"), elasticsearch_url)
    make_user(console.settings, "root", "admin")
    make_user(console.settings, "kiem", "auditor")
    app = create_app(console.settings, clock=lambda: NOW)
    stop = serve_in_thread(app, port := free_port())
    try:
        yield LiveConsole(f"http://127.0.0.1:{port}", console.settings, app)
    finally:
        stop()
        drop_rules(console)


def test_admin_disables_a_rule(rules_live: LiveConsole, page: Any, screenshot_dir: Path) -> None:
    live = rules_live
    login(page, live, "root", "/rules")
    rows = page.locator("tr.rule-row")
    assert rows.count() == 6
    assert rows.first.get_attribute("data-id") == TRAVERSAL  # the noisiest first
    assert "75%" in rows.first.inner_text()
    assert "Path Traversal" in page.locator(".noisiest").inner_text()
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.dataset.id") == SCANNER_ID
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/rules/{SCANNER_ID}?days=7")
    page.get_by_label("Disable: reason").fill("The provincial vulnerability scanner runs every night")
    page.get_by_role("button", name="Disable").click()
    page.wait_for_load_state()
    assert page.locator("#rule-state").inner_text() == "disabled"
    assert "Published rule set" in page.locator("#change-result").inner_text()
    assert "The provincial vulnerability scanner" in page.locator("#tuning").inner_text()
    assert "disabled" in page.locator("#rule-history").inner_text()
    assert page.get_by_role("button", name="Enable").is_visible()
    page.screenshot(path=str(screenshot_dir / "rule.png"), full_page=True)
    assert RuleStore(live.settings.rule_store_dir).tuning()["disabled"] == {
        SCANNER_ID: "The provincial vulnerability scanner runs every night"}

    page.get_by_role("link", name="← Rules").click()
    page.wait_for_url("**/rules?days=7")
    row = page.locator(f'tr.rule-row[data-id="{SCANNER_ID}"]')
    assert "rule-disabled" in (row.get_attribute("class") or "")
    assert row.locator('[data-field="state"]').inner_text() == "disabled"
    page.screenshot(path=str(screenshot_dir / "rules.png"), full_page=True)
    assert not page.console_errors, page.console_errors


def test_auditor_reads_but_cannot_change(rules_live: LiveConsole, page: Any) -> None:
    live = rules_live
    login(page, live, "kiem", "/rules")
    assert page.locator("tr.rule-row").count() == 6
    page.goto(f"{live.url}/rules/{TRAVERSAL}")
    assert page.locator("#rule-yaml").inner_text().startswith("title: Path Traversal")
    assert page.locator("#tuning form").count() == 0 and page.locator("button", has_text="Disable").count() == 0
    statuses = page.evaluate("""async (rule) => {
        const token = document.querySelector('meta[name="csrf-token"]').content;
        const form = new URLSearchParams({csrf_token: token, reason: "auditor tries"});
        const page = await fetch(`/rules/${rule}/disable`, {method: "POST", body: form});
        const api = await fetch(`/api/rules/${rule}/disable`, {method: "POST", body: JSON.stringify({reason: "x"}),
            headers: {"Content-Type": "application/json", "X-CSRF-Token": token}});
        return [page.status, api.status];
    }""", TRAVERSAL)
    assert statuses == [403, 403]
    assert TRAVERSAL not in RuleStore(live.settings.rule_store_dir).tuning()["disabled"]
    page.console_errors.clear()  # the two refused requests are logged as errors by the browser on purpose
