"""The rules API and pages on the real Elasticsearch: hits, verdicts, tuning, audit, publish.

A rule store with the project's web rules is published; alerts with verdicts are indexed. The
table's hits and false-positive rates come from the alerts index; an admin's filter, level
override, disable and enable each land in the tuning store, in the audit trail (before and
after) and in a newly published rule set, and the filtered rule no longer fires on a matching
event run through that published set. Auditors and analysts are refused every change. Hostile
titles, descriptions and filter values are shown escaped. (Grants and denials of every route
for every role: tests/console/test_routes.py, which walks these routes too.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerts.api.app import create_app
from alerts.audit.trail import AuditError
from alerts.rules.tuning import (
    CONFIG_DIR,
    Change,
    TuningRefusedError,
    check_filter,
    require_tunable,
    tune_and_publish,
)
from detectors.ruleset import current_version, load_published
from detectors.ruletools.store import RuleStore
from ingest.schema import format_timestamp
from tests.console.conftest import bearer, make_user
from tests.console.rules_fixtures import (
    HOSTILE_ID,
    NOW,
    SCANNER_ID,
    SQLI_ID,
    TRAVERSAL,
    RulesConsole,
    drop_rules,
    rules_settings,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def rules(tmp_path: Path, elasticsearch_url: str) -> Iterator[tuple[RulesConsole, TestClient, dict[str, Any]]]:
    console = rules_settings(tmp_path, elasticsearch_url)
    for name, role in (("root", "admin"), ("ann", "analyst"), ("kiem", "auditor")):
        make_user(console.settings, name, role)
    tokens = {name: bearer(console.settings, name) for name in ("root", "ann", "kiem")}
    try:
        with TestClient(create_app(console.settings, clock=lambda: NOW)) as client:
            yield console, client, tokens
    finally:
        drop_rules(console)


def audit_records(console: RulesConsole, target: str) -> list[dict[str, Any]]:
    index = console.settings.console.audit_index
    console.client.indices.refresh(index=index)
    hits = console.client.search(index=index, size=100, sort=[{"seq": "asc"}],
                                 query={"term": {"target": target}})["hits"]["hits"]
    return [hit["_source"] for hit in hits]


def traversal_event(query: str) -> dict[str, Any]:
    return {"@timestamp": format_timestamp(NOW), "event": {"id": f"ev-{query}"},
            "socflow": {"logsource": {"category": "webserver"}},
            "url": {"original": f"/tai-lieu?{query}", "path": "/tai-lieu", "query": query}}


def fired(console: RulesConsole, version: str, event: dict[str, Any]) -> set[str]:
    loaded = load_published(console.settings.ruleset_store_dir, version, CONFIG_DIR)
    return {rule.id for rule in loaded.matcher.match(event)}


def test_table_counts_hits_and_false_positive_rates(rules: tuple[RulesConsole, TestClient, dict[str, Any]]) -> None:
    console, client, tokens = rules
    table = client.get("/api/rules", headers=tokens["kiem"]).json()
    assert table["version"] == console.first_version and table["published"] and table["release"] == "web-2026-11"
    by_id = {rule["id"]: rule for rule in table["rules"]}
    assert len(by_id) == 6  # 8 in the release: its experimental and informational rules are not selected
    assert all(rule["enabled"] and rule["tunable"] for rule in by_id.values())
    assert [rule["id"] for rule in table["rules"][:2]] == [TRAVERSAL, SCANNER_ID]  # noisiest first
    traversal = by_id[TRAVERSAL]
    assert (traversal["hits"], traversal["events"], traversal["closed"]) == (10, 20, 4)
    assert traversal["verdicts"] == {"false_positive": 3, "true_positive": 1} and traversal["fp_rate"] == 0.75
    assert traversal["attack"] == ["initial-access", "t1190"] and traversal["logsource"] == {"category": "webserver"}
    assert by_id[SQLI_ID]["hits"] == 0 and by_id[SQLI_ID]["fp_rate"] is None  # 12 days old: outside 7 days
    month = client.get("/api/rules?days=30&sort=hits", headers=tokens["ann"]).json()
    assert month["rules"][0]["id"] == SQLI_ID and month["rules"][0]["hits"] == 20
    by_title = client.get("/api/rules?sort=title", headers=tokens["ann"]).json()["rules"]
    titles = [rule["title"].casefold() for rule in by_title]
    assert titles == sorted(titles)
    assert client.get("/api/rules?days=0", headers=tokens["ann"]).status_code == 422
    detail = client.get(f"/api/rules/{TRAVERSAL}", headers=tokens["kiem"]).json()
    assert "cs-uri-query|contains" in detail["yaml"] and detail["history"] == []
    assert client.get("/api/rules/no-such-rule", headers=tokens["kiem"]).status_code == 404


def test_filter_level_disable_enable_round_trip(rules: tuple[RulesConsole, TestClient, dict[str, Any]]) -> None:
    console, client, tokens = rules
    store = RuleStore(console.settings.rule_store_dir)
    matching, other = traversal_event("file=../../report-archive/2026.pdf"), traversal_event("file=../../etc/passwd")
    assert TRAVERSAL in fired(console, console.first_version, matching)

    # A filter: checked with the engine, saved, audited, published; the rule stops firing on it.
    answer = client.post(f"/api/rules/{TRAVERSAL}/filters", headers=tokens["root"], json={
        "field": "cs-uri-query", "operator": "contains", "values": ["report-archive/"],
        "reason": "the archive viewer climbs one level on purpose"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    publish = result["publish"]
    assert publish["published"] and publish["version"] != console.first_version and publish["warning"] is None
    assert current_version(console.settings.ruleset_store_dir) == publish["version"]
    (name,) = result["after"]["filters"]
    assert result["before"]["filters"] == [] and store.tuning()["filters"][name]["rules"] == [TRAVERSAL]
    assert TRAVERSAL not in fired(console, publish["version"], matching)
    assert TRAVERSAL in fired(console, publish["version"], other)
    (record,) = audit_records(console, f"rule:{TRAVERSAL}")
    assert (record["actor"], record["action"]) == ("root", "rule.filter")
    assert record["before"]["filters"] == [] and record["after"]["filters"] == [name]
    assert "report-archive/" in record["after"]["change"]["filter_text"]
    assert audit_records(console, f"ruleset:{publish['version']}")[0]["action"] == "ruleset.publish"

    # A level override and a disable, each a new version.
    level = client.post(f"/api/rules/{SQLI_ID}/level", headers=tokens["root"],
                        json={"level": "critical", "reason": "the portal's database holds citizen records"}).json()
    assert level["after"]["level"]["level"] == "critical"
    disabled = client.post(f"/api/rules/{SCANNER_ID}/disable", headers=tokens["root"],
                           json={"reason": "the provincial scanner runs nightly"}).json()
    assert disabled["publish"]["published"] and disabled["publish"]["version"] not in (
        level["publish"]["version"], publish["version"])
    assert store.tuning()["disabled"] == {SCANNER_ID: "the provincial scanner runs nightly"}
    loaded = load_published(console.settings.ruleset_store_dir, disabled["publish"]["version"], CONFIG_DIR)
    levels = {rule.id: rule.level for rule in loaded.engine.rules}
    assert SCANNER_ID not in levels and levels[SQLI_ID] == "critical"
    table = {rule["id"]: rule for rule in client.get("/api/rules", headers=tokens["ann"]).json()["rules"]}
    assert not table[SCANNER_ID]["enabled"] and table[SCANNER_ID]["hits"] == 3  # still listed, marked
    assert table[SQLI_ID]["level"] == "critical" and table[SQLI_ID]["release_level"] == "high"
    assert [r["action"] for r in audit_records(console, f"rule:{SCANNER_ID}")] == ["rule.disable"]
    history = client.get(f"/api/rules/{SCANNER_ID}", headers=tokens["kiem"]).json()["history"]
    assert history[0]["before"]["disabled"] is None and history[0]["after"]["disabled"].startswith("the provincial")

    enabled = client.post(f"/api/rules/{SCANNER_ID}/enable", headers=tokens["root"], json={}).json()
    assert enabled["after"]["disabled"] is None and store.tuning()["disabled"] == {}
    again = client.post(f"/api/rules/{SCANNER_ID}/enable", headers=tokens["root"], json={})
    assert again.status_code == 409 and "not disabled" in again.json()["detail"]


def test_refusals_change_nothing(rules: tuple[RulesConsole, TestClient, dict[str, Any]]) -> None:
    console, client, tokens = rules
    body = {"field": "cs-uri-query", "operator": "contains", "values": ["x"], "reason": "r"}
    for who in ("kiem", "ann"):
        assert client.post(f"/api/rules/{TRAVERSAL}/filters", headers=tokens[who], json=body).status_code == 403
        assert client.post(f"/api/rules/{TRAVERSAL}/disable", headers=tokens[who],
                           json={"reason": "r"}).status_code == 403
    bad = client.post(f"/api/rules/{TRAVERSAL}/filters", headers=tokens["root"], json={**body, "field": "a|re"})
    assert bad.status_code == 422 and "Sigma field name" in bad.json()["detail"]
    unknown = client.post("/api/rules/not-imported/disable", headers=tokens["root"], json={"reason": "r"})
    assert unknown.status_code == 404 and "not in the rule store" in unknown.json()["detail"]
    blank = client.post(f"/api/rules/{TRAVERSAL}/disable", headers=tokens["root"], json={"reason": "  "})
    assert blank.status_code == 422 and "reason is required" in blank.json()["detail"]
    assert current_version(console.settings.ruleset_store_dir) == console.first_version
    assert RuleStore(console.settings.rule_store_dir).tuning() == {"levels": {}, "disabled": {}, "filters": {}}

    # The engine's check: a filter whose condition names a missing selection is refused with why.
    store = RuleStore(console.settings.rule_store_dir)
    broken = ("title: t\nid: 0b8e6a57-6f43-4c0e-8d0c-3f6c4b8e2a11\nlogsource: {category: webserver}\nfilter:\n"
              f"  rules: [{TRAVERSAL}]\n  selection: {{cs-uri-query: x}}\n  condition: not nothing_here\n")
    with pytest.raises(TuningRefusedError) as refused:
        check_filter(store, require_tunable(store, TRAVERSAL), broken, config_dir=CONFIG_DIR)
    assert refused.value.status == 422 and refused.value.reasons

    # An audit record that cannot be written undoes the change: no tuning without its record.
    class DownAudit:
        def append(self, **_: Any) -> dict[str, Any]:
            raise AuditError("Elasticsearch is down")

    with pytest.raises(AuditError):
        tune_and_publish(console.settings, DownAudit(), Change("disable", TRAVERSAL, "noisy"), actor="root", now=NOW)
    assert store.tuning()["disabled"] == {} and (store.active / "release" / "web").is_dir()
    assert current_version(console.settings.ruleset_store_dir) == console.first_version


def test_hostile_titles_and_filter_values_are_escaped(rules: tuple[RulesConsole, TestClient, dict[str, Any]],
                                                      ) -> None:
    console, client, tokens = rules
    hostile = "<img src=x onerror=alert(1)>\u202e"
    answer = client.post(f"/api/rules/{HOSTILE_ID}/filters", headers=tokens["root"], json={
        "field": "cs-uri-query", "operator": "equals", "values": [hostile, "key: value\nother: 1"],
        "reason": "<script>alert('reason')</script>"})
    assert answer.status_code == 200 and answer.json()["publish"]["published"], answer.text
    session = {**tokens["kiem"], "Accept": "text/html"}
    for path in ("/rules", f"/rules/{HOSTILE_ID}"):
        page = client.get(path, headers=session)
        assert page.status_code == 200
        html = page.text
        assert "<script>window.__pwned" not in html and "<img src=x" not in html and "<svg/onload" not in html
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
        assert "\u202e" not in html
    detail = client.get(f"/rules/{HOSTILE_ID}", headers=session).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail and "⟨U+202E⟩" in detail
    assert "&lt;script&gt;alert(" in detail  # the reason, in the filter's YAML and in the history
    assert 'id="disable-form"' not in detail  # an auditor gets no change controls
    admin_page = client.get(f"/rules/{HOSTILE_ID}", headers={**tokens["root"], "Accept": "text/html"}).text
    assert 'id="disable-form"' in admin_page and 'id="filter-form"' in admin_page
    # The value stayed a value: the filter's selection has exactly the two strings, no new keys.
    (text,) = (item["text"] for item in RuleStore(console.settings.rule_store_dir).tuning()["filters"].values())
    import yaml

    document = yaml.safe_load(text)
    assert document["filter"]["selection"] == {"cs-uri-query": [hostile, "key: value\nother: 1"]}
