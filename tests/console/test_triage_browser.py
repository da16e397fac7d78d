"""The triage console end to end in Debian's Chromium (Playwright), on the real Elasticsearch.

An analyst logs in, filters the queue, opens an alert with the keyboard, sees its context,
acknowledges, assigns, comments and closes it as a false positive; escalates two alerts into an
incident; an admin suppresses "alerts like this" and the job's suppression stage then drops
such a detection; an auditor is refused every change; two browser sessions editing one alert
get the conflict; hostile strings and the demo's SQL injection lines run no script. Every page
must run under the strict CSP without a console error. Screenshots go to
tests/console/screenshots/ (queue, alert, incident).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from alerts.api.app import create_app
from alerts.settings import Settings
from tests.console.conftest import PASSWORD, LiveConsole, free_port, make_user, serve_in_thread
from tests.console.triage_fixtures import drop_all, triage_settings
from tests.triage.alertdata import HOSTILE, Indexed, detections

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)  # the console's clock: the alerts are from this morning


@pytest.fixture(scope="module")
def triage_live(tmp_path_factory: pytest.TempPathFactory, elasticsearch_url: str,
                ) -> Iterator[tuple[LiveConsole, Indexed]]:
    settings, indexed = triage_settings(tmp_path_factory.mktemp("triage-browser"), elasticsearch_url)
    for name, role in (("ann", "analyst"), ("binh", "analyst"), ("root", "admin"), ("kiem", "auditor")):
        make_user(settings, name, role)
    app = create_app(settings, clock=lambda: NOW)
    port = free_port()
    stop = serve_in_thread(app, port)
    try:
        yield LiveConsole(f"http://127.0.0.1:{port}", settings, app), indexed
    finally:
        stop()
        drop_all(indexed)


def login(page: Any, live: LiveConsole, name: str, target: str = "/queue") -> None:
    page.goto(live.url + target)
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live.url + target)


def audit_actions(settings: Settings, target: str) -> list[tuple[str, str]]:
    client = Elasticsearch(settings.elasticsearch.url)
    client.indices.refresh(index=settings.console.audit_index)
    hits = client.search(index=settings.console.audit_index, size=200, sort=[{"seq": "asc"}],
                         query={"term": {"target": target}})["hits"]["hits"]
    return [(hit["_source"]["actor"], hit["_source"]["action"]) for hit in hits]


def test_analyst_works_an_alert(triage_live: tuple[LiveConsole, Indexed], page: Any, screenshot_dir: Path) -> None:
    live, _indexed = triage_live
    login(page, live, "ann")
    assert page.locator("tr.alert-row").count() == 25
    page.get_by_label("critical").check()
    page.get_by_label("Order").select_option("risk")
    page.get_by_role("button", name="Filter", exact=True).click()
    page.wait_for_url("**/queue?**level=critical**")
    rows = page.locator("tr.alert-row")
    assert rows.count() == 6
    assert set(page.locator("tr.alert-row .level").all_inner_texts()) == {"critical"}
    page.screenshot(path=str(screenshot_dir / "triage-queue.png"), full_page=True)

    page.keyboard.press("j")
    first_id = rows.first.get_attribute("data-id")
    assert page.evaluate("document.activeElement.dataset.id") == first_id
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/alerts/{first_id}")
    assert page.get_by_role("heading", name="Encoded PowerShell").is_visible()
    assert page.locator("#node-title + dl").inner_text().count("dc-mail") == 1
    assert page.locator("#events-not-stored").is_visible()
    assert page.locator("#related tbody tr").count() >= 1
    assert "T1059.001" in page.locator("#rule-title + dl").inner_text()

    page.keyboard.press("a")  # acknowledge from the keyboard
    page.wait_for_url("**?done=acknowledged")
    assert page.locator("#alert-status").inner_text() == "acknowledged"
    page.get_by_label("Assign to (empty: nobody)").fill("ann")
    page.get_by_role("button", name="Assign").click()
    page.wait_for_url("**?done=assign")
    assert page.locator("#alert-assignee").inner_text() == "ann"
    page.get_by_label("Comment", exact=True).fill("Macro from a phishing mail; the agency's admin re-imaged the PC.")
    page.get_by_role("button", name="Add comment").click()
    page.wait_for_url("**?done=comment")
    assert "re-imaged the PC" in page.locator("#comments").inner_text()
    page.get_by_label("Close with verdict").select_option("false_positive")
    page.locator("#reason").fill("Approved admin script run by the agency")
    page.get_by_role("button", name="Close", exact=True).click()
    page.wait_for_url("**?done=closed")
    assert page.locator("#alert-status").inner_text() == "closed"
    assert "false positive" in page.locator("main").inner_text()
    page.screenshot(path=str(screenshot_dir / "triage-alert.png"), full_page=True)
    assert audit_actions(live.settings, f"alert:{first_id}") == [
        ("ann", "alert.acknowledged"), ("ann", "alert.assign"), ("ann", "alert.comment"), ("ann", "alert.close")]
    assert not page.console_errors, page.console_errors


def test_analyst_escalates_into_an_incident(triage_live: tuple[LiveConsole, Indexed], page: Any,
                                            screenshot_dir: Path) -> None:
    live, _indexed = triage_live
    login(page, live, "ann", "/queue?node=dc-portal")
    page.keyboard.press("j")
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    assert page.locator("#selected-count").inner_text() == "2 selected"
    page.get_by_label("Action", exact=True).select_option("escalate")
    page.get_by_label("Incident title").fill("SQL injection against the public service portal")
    page.get_by_role("button", name="Apply to selected").click()
    page.wait_for_url("**/incidents/INC-*")
    assert page.get_by_role("heading", name="SQL injection against the public service portal").is_visible()
    assert "dc-portal" in page.locator("main").inner_text()
    deadline = page.locator("#deadline").inner_text()
    assert "120 h" in deadline and "left" in deadline and "OVERDUE" not in deadline
    page.get_by_label("Comment", exact=True).fill("Reported by phone to the provincial CERT; written report follows.")
    page.get_by_label("Status").select_option("investigating")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**?done=1")
    assert "provincial CERT" in page.locator("main").inner_text()
    page.screenshot(path=str(screenshot_dir / "triage-incident.png"), full_page=True)
    page.goto(live.url + "/incidents")
    assert page.locator("#incidents-table tbody tr").count() >= 1
    page.screenshot(path=str(screenshot_dir / "triage-incidents.png"))
    assert not page.console_errors, page.console_errors


def test_admin_suppresses_alerts_like_this(triage_live: tuple[LiveConsole, Indexed], page: Any) -> None:
    from alerts.commands.replay import group_alerts

    live, indexed = triage_live
    alert_id = indexed.ids["a11"]
    login(page, live, "root", f"/alerts/{alert_id}")
    page.get_by_label("source.ip = 198.51.100.4").check()
    page.locator("#suppress-reason").fill("Vulnerability scanner of the agency (ticket SOC-2026-412)")
    page.get_by_role("button", name="Suppress").click()
    page.wait_for_url("**?done=suppress")
    assert "suppressed by console-" in page.locator("main").inner_text()
    page.goto(live.url + "/suppressions")
    assert "SOC-2026-412" in page.locator("#suppressions-table").inner_text()
    # The job's suppression stage (replay's, the same Suppressor the Flink job loads) now drops it.
    labelled = dict(detections(24))
    kept, suppressed = group_alerts([labelled["a11"], labelled["a12"]], live.settings)
    assert [d.events[-1]["source"]["ip"] for d in kept] == ["198.51.100.5"]  # a12's; a11's is dropped
    assert sum(suppressed.values()) == 1
    assert not page.console_errors, page.console_errors


def test_auditor_is_refused_every_change(triage_live: tuple[LiveConsole, Indexed], page: Any) -> None:
    live, indexed = triage_live
    alert_id = indexed.ids["a13"]
    login(page, live, "kiem")
    assert page.locator('input[name="sel"]').count() == 0 and page.locator(".bulkbar").count() == 0
    page.goto(f"{live.url}/alerts/{alert_id}")
    assert "cannot change them" in page.locator("#actions").inner_text()
    assert page.locator("#actions form").count() == 0
    page.keyboard.press("a")
    statuses = page.evaluate("""async (id) => {
        const token = document.querySelector('meta[name="csrf-token"]').content;
        const post = (url, body, type) => fetch(url, {method: 'POST', credentials: 'same-origin',
            headers: {'X-CSRF-Token': token, 'Content-Type': type, 'Accept': 'application/json'}, body});
        const json = (url, body) => post(url, JSON.stringify(body), 'application/json').then(r => r.status);
        const form = (url, body) => post(url, body, 'application/x-www-form-urlencoded').then(r => r.status);
        return [
          await json(`/api/alerts/${id}/status`, {status: 'acknowledged'}),
          await json(`/api/alerts/${id}/assign`, {assignee: 'kiem'}),
          await json(`/api/alerts/${id}/comments`, {text: 'x'}),
          await json(`/api/alerts/${id}/suppress`, {reason: 'x'}),
          await json('/api/alerts/bulk', {action: 'acknowledged', alerts: {[id]: null}}),
          await json('/api/incidents', {title: 't', alerts: {[id]: null}}),
          await form(`/alerts/${id}/act`, 'action=acknowledged'),
          await form(`/alerts/${id}/suppress`, 'reason=x'),
          await form('/queue/bulk', `action=acknowledged&sel=${id}`),
          await form('/queue/filters', 'name=x'),
        ];
    }""", alert_id)
    assert statuses == [403] * 10
    page.reload()
    assert page.locator("#alert-status").inner_text() == "open"
    assert audit_actions(live.settings, f"alert:{alert_id}") == []


def test_two_sessions_get_the_conflict(triage_live: tuple[LiveConsole, Indexed], browser: Any) -> None:
    live, indexed = triage_live
    alert_id = indexed.ids["a14"]
    pages = []
    for name in ("ann", "binh"):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        login(page, live, name, f"/alerts/{alert_id}")
        pages.append(page)
    ann, binh = pages
    try:
        ann.get_by_role("button", name="Acknowledge").click()
        ann.wait_for_url("**?done=acknowledged")
        binh.get_by_label("Comment", exact=True).fill("binh's note written on the old state")
        binh.get_by_role("button", name="Add comment").click()
        conflict = binh.locator("#conflict")
        conflict.wait_for()
        assert "ann changed this alert" in conflict.inner_text()
        assert binh.locator("#alert-status").inner_text() == "acknowledged"  # the fresh state
        assert "binh's note" not in binh.locator("#comments").inner_text()
        binh.get_by_label("Comment", exact=True).fill("binh's note, after reading ann's change")
        binh.get_by_role("button", name="Add comment").click()
        binh.wait_for_url("**?done=comment")
        assert "after reading" in binh.locator("#comments").inner_text()
    finally:
        for page in pages:
            page.context.close()


def test_hostile_strings_and_the_demos_attack_run_no_script(triage_live: tuple[LiveConsole, Indexed], page: Any,
                                                            tmp_path: Path, screenshot_dir: Path) -> None:
    from alerts.commands.replay import alert_documents, replay
    from alerts.scenario import generate

    live, indexed = triage_live
    # The demo's own attack (SQL injection probes, encoded PowerShell...) next to the test alerts.
    files = generate(tmp_path / "inputs", datetime(2026, 11, 20, 7, 30, tzinfo=UTC))
    demo = replay([Path(__file__).resolve().parents[2] / "rules"], [files.mail, files.portal, files.windows],
                  live.settings.model_copy(update={"data_dir": tmp_path / "replay"}))
    client = Elasticsearch(live.settings.elasticsearch.url)
    index = f"{indexed.prefix}-demo{uuid.uuid4().hex[:6]}"
    helpers.bulk(client, ({"_index": index, "_id": doc.pop("_id"), "_source": {k: v for k, v in doc.items()
                                                                                if k != "_index"}}
                          for doc in alert_documents(demo.detections, indexed.prefix)), refresh="wait_for")
    login(page, live, "ann", "/queue?text=192.0.2.77")
    assert page.locator("tr.alert-row").count() >= 2  # the demo's scanner and the hostile test alert
    page.goto(f"{live.url}/alerts/{indexed.ids['hostile']}")
    text = page.locator("main").inner_text()
    assert HOSTILE["script"] in text  # shown as text
    assert "invoice⟨U+202E⟩gpj.exe" in text  # the direction override made visible, not obeyed
    assert "line1\\u001b[31mred" in text  # the terminal escape shown as an escape, not sent
    assert "more characters" in text  # the 100 KB value cut, saying so
    assert "1' OR '1'='1" in text
    page.screenshot(path=str(screenshot_dir / "triage-hostile.png"), full_page=True)
    sqli = client.search(index=index, query={"term": {"rule.name": "SQL Injection Attempt Against a Web Application"}},
                         size=1)["hits"]["hits"][0]["_id"]
    page.goto(f"{live.url}/alerts/{sqli}")
    assert "UNION SELECT" in page.locator("main").inner_text() or "OR '1'='1" in page.locator("main").inner_text()
    assert page.evaluate("window.__pwned === undefined")
    assert page.locator("img[src=x]").count() == 0 and page.locator("main script").count() == 0
    assert not page.console_errors, page.console_errors


def test_queue_keyboard_and_live_updates(triage_live: tuple[LiveConsole, Indexed], page: Any) -> None:
    """a and c act on the current row through the API; another analyst's change and a new alert
    reach the open queue without a reload (it polls every 2 s here)."""
    from alerts.triage.store import TriageStore
    from tests.triage.alertdata import RecordingAudit, make_store

    live, indexed = triage_live
    login(page, live, "ann", "/queue?node=cp-002")
    rows = page.locator("tr.alert-row")
    count = rows.count()
    assert count >= 4
    page.keyboard.press("j")
    page.keyboard.press("a")
    page.locator("tr.alert-row.current [data-field=status]").filter(has_text="acknowledged").wait_for()
    page.keyboard.press("j")
    page.keyboard.press("c")
    page.get_by_role("dialog", name="Close the alert").get_by_label("Verdict").select_option("benign")
    page.locator("#close-reason").fill("planned maintenance")
    page.get_by_role("button", name="Close the alert").click()
    page.locator("tr.alert-row.current [data-field=status]").filter(has_text="closed").wait_for()
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")

    third = rows.nth(2).get_attribute("data-id")
    store: TriageStore = make_store(indexed, RecordingAudit())
    store.assign(str(third), "binh", actor="binh", now=NOW)
    page.locator(f'tr.alert-row[data-id="{third}"] [data-field=assignee]').filter(has_text="binh").wait_for()
    assert page.locator("#live-banner").is_hidden()

    source = dict(store.get(str(third)).source)
    source["@timestamp"] = "2026-11-20T13:59:00.000Z"
    source["event"] = {**source["event"], "id": "live-new-alert"}
    index = store.get(str(third)).index
    indexed.client.index(index=index, id="live-new-alert", document=source, refresh="wait_for")
    page.locator("#live-banner").wait_for(state="visible")
    assert "1 new alert" in page.locator("#live-text").inner_text()
    page.keyboard.press("r")
    page.locator("#live-banner").wait_for(state="hidden")  # the new page
    page.locator("tr.alert-row").nth(count).wait_for()
    assert page.locator("tr.alert-row").count() == count + 1
    assert page.url.endswith("/queue?node=cp-002")
    assert not page.console_errors, page.console_errors


def test_the_demos_alerts_in_the_console(tmp_path: Path, elasticsearch_url: str, page: Any,
                                          screenshot_dir: Path) -> None:
    """The demo's own alerts (replayed from its scenario, indexed like the indexer does) in the
    queue by risk, one alert page and an incident: the screenshots the README shows."""
    from alerts.commands.replay import alert_documents, replay
    from alerts.indexer import install_template
    from alerts.scenario import generate
    from tests.console.conftest import settings_for

    prefix = f"t-triage-demo-{uuid.uuid4().hex[:8]}"
    base = settings_for(tmp_path / "data", elasticsearch_url)
    settings = base.model_copy(update={
        "elasticsearch": base.elasticsearch.model_copy(update={"index_prefix": prefix}),
        "triage": base.triage.model_copy(update={"incidents_index": f"{prefix}_incidents",
                                                 "filters_index": f"{prefix}_filters",
                                                 "events_alias": f"{prefix}_events", "refresh_on_write": True})})
    client = Elasticsearch(elasticsearch_url)
    install_template(client, prefix)
    files = generate(tmp_path / "inputs", datetime(2026, 11, 20, 7, 30, tzinfo=UTC))
    result = replay([Path(__file__).resolve().parents[2] / "rules"], [files.mail, files.portal, files.windows],
                    settings)
    helpers.bulk(client, ({"_index": doc.pop("_index"), "_id": doc.pop("_id"), "_source": doc}
                          for doc in alert_documents(result.detections, prefix)), refresh="wait_for")
    make_user(settings, "lan.pham", "analyst")
    stop = None
    try:
        app = create_app(settings, clock=lambda: datetime(2026, 11, 20, 11, 0, tzinfo=UTC))
        port = free_port()
        stop = serve_in_thread(app, port)
        live = LiveConsole(f"http://127.0.0.1:{port}", settings, app)
        login(page, live, "lan.pham", "/queue?order=risk")
        assert page.locator("tr.alert-row").count() == len(result.detections)
        page.screenshot(path=str(screenshot_dir / "demo-queue.png"))
        page.locator("tr.alert-row").first.locator("a.open-link").click()
        page.wait_for_url("**/alerts/*")
        page.get_by_role("button", name="Acknowledge").click()
        page.wait_for_url("**?done=acknowledged")
        page.get_by_label("Comment", exact=True).fill("Scanner from 192.0.2.77; asked the portal team to block it.")
        page.get_by_role("button", name="Add comment").click()
        page.wait_for_url("**?done=comment")
        page.screenshot(path=str(screenshot_dir / "demo-alert.png"))
        page.get_by_label("Escalate into a new incident").fill("Attack on the public service portal")
        page.get_by_role("button", name="Escalate").click()
        page.wait_for_url("**/incidents/INC-*")
        page.screenshot(path=str(screenshot_dir / "demo-incident.png"))
        assert not page.console_errors, page.console_errors
    finally:
        if stop is not None:
            stop()
        for name in client.indices.get(index=f"{prefix}*", allow_no_indices=True):
            client.indices.delete(index=name)
        client.indices.delete_index_template(name=prefix)
        client.indices.delete(index=settings.console.audit_index, ignore_unavailable=True)
