"""The triage API route by route, on the real Elasticsearch with the real audit trail.

Each route: what it answers, what it refuses (auditors change nothing, only admins suppress),
the 409 with the fresh state when two analysts edit one alert, and bad input as 4xx (never 500).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from alerts.api.app import create_app
from alerts.settings import Settings
from tests.console.conftest import bearer, make_user
from tests.console.triage_fixtures import drop_all, triage_settings
from tests.triage.alertdata import HOSTILE, Indexed

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def triage_env(tmp_path_factory: pytest.TempPathFactory, elasticsearch_url: str) -> Iterator[tuple[Settings, Indexed]]:
    settings, indexed = triage_settings(tmp_path_factory.mktemp("triage-api"), elasticsearch_url)
    for name, role in (("lan", "analyst"), ("binh", "analyst"), ("root", "admin"), ("kiem", "auditor")):
        make_user(settings, name, role)
    yield settings, indexed
    drop_all(indexed)


@pytest.fixture(scope="module")
def api(triage_env: tuple[Settings, Indexed]) -> Iterator[TestClient]:
    with TestClient(create_app(triage_env[0])) as client:
        yield client


@pytest.fixture(scope="module")
def auth(triage_env: tuple[Settings, Indexed]) -> dict[str, dict[str, str]]:
    settings = triage_env[0]
    return {name: {**bearer(settings, name), "Accept": "application/json"} for name in ("lan", "binh", "root", "kiem")}


def _ids(answer: Any) -> list[str]:
    return [alert["id"] for alert in answer.json()["alerts"]]


def _audit(settings: Settings, api: TestClient, auth: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    from elasticsearch import Elasticsearch

    client = Elasticsearch(settings.elasticsearch.url)
    client.indices.refresh(index=settings.console.audit_index)
    hits = client.search(index=settings.console.audit_index, size=500, sort=[{"seq": "asc"}])["hits"]["hits"]
    return [hit["_source"] for hit in hits]


def test_queue_filters_pages_and_groups(api: TestClient, auth: dict[str, dict[str, str]],
                                        triage_env: tuple[Settings, Indexed]) -> None:
    everything = api.get("/api/alerts", params={"size": 200}, headers=auth["kiem"])
    assert everything.status_code == 200
    assert everything.json()["total"] == 25 and everything.json()["cursor"] is None
    first = api.get("/api/alerts", params={"size": 10, "order": "risk"}, headers=auth["kiem"]).json()
    second = api.get("/api/alerts", params={"size": 10, "order": "risk", "after": first["cursor"]},
                     headers=auth["kiem"]).json()
    assert not set(_ids_of(first)) & set(_ids_of(second))
    assert first["alerts"][0]["risk"] >= second["alerts"][0]["risk"]
    critical = api.get("/api/alerts", params=[("level", "critical"), ("node", "dc-mail")], headers=auth["lan"])
    assert {alert["rule"]["level"] for alert in critical.json()["alerts"]} == {"critical"}
    assert critical.json()["filter"] == {"level": "critical", "node": "dc-mail"}
    groups = api.get("/api/alerts/groups", params={"by": "rule"}, headers=auth["lan"]).json()
    assert sum(group["count"] for group in groups["groups"]) == 25
    for bad in ({"level": "severe"}, {"since": "yesterday"}, {"after": "garbage!"}, {"security_level": "9"},
                {"order": "random"}, {"size": 0}):
        answer = api.get("/api/alerts", params=bad, headers=auth["lan"])
        assert answer.status_code in (400, 422), (bad, answer.status_code, answer.text)
    assert api.get("/api/alerts/groups", params={"by": "colour"}, headers=auth["lan"]).status_code == 422


def _ids_of(page: dict[str, Any]) -> list[str]:
    return [alert["id"] for alert in page["alerts"]]


def test_alert_with_context(api: TestClient, auth: dict[str, dict[str, str]],
                            triage_env: tuple[Settings, Indexed]) -> None:
    indexed = triage_env[1]
    answer = api.get(f"/api/alerts/{indexed.ids['hostile']}", headers=auth["kiem"])
    assert answer.status_code == 200
    body = answer.json()
    assert body["node"]["id"] == "dc-portal" and body["node"]["data_center"] is True
    assert body["node"]["agency_name"] and body["node"]["district_name"]
    assert body["rule"]["techniques"] == [{"id": "T1190", "url": "https://attack.mitre.org/techniques/T1190/"}]
    assert body["events"] == {"stored": False, "error": None, "events": []}  # no event store alias here
    assert HOSTILE["script"] in body["alert"]["url"]["original"]  # JSON carries it as data
    assert body["related"] == []  # nobody else has its host, user or source
    related = {alert["id"] for alert in api.get(f"/api/alerts/{indexed.ids['a0']}", headers=auth["kiem"])
               .json()["related"]}
    # a0: host-0, user.0, 198.51.100.0; a5 shares the host, a3 the user, a7 the source; a1 nothing
    assert {indexed.ids["a5"], indexed.ids["a3"], indexed.ids["a7"]} <= related
    assert indexed.ids["a1"] not in related and indexed.ids["a0"] not in related
    assert api.get("/api/alerts/no-such-alert", headers=auth["lan"]).status_code == 404


def test_two_analysts_get_a_conflict(api: TestClient, auth: dict[str, dict[str, str]],
                                     triage_env: tuple[Settings, Indexed]) -> None:
    settings, indexed = triage_env
    alert_id = indexed.ids["a4"]
    seen = api.get(f"/api/alerts/{alert_id}", headers=auth["lan"]).json()["summary"]["version"]
    first = api.post(f"/api/alerts/{alert_id}/status", json={"status": "acknowledged", "version": seen},
                     headers=auth["lan"])
    assert first.status_code == 200 and first.json()["status"] == "acknowledged"
    second = api.post(f"/api/alerts/{alert_id}/assign", json={"assignee": "binh", "version": seen},
                      headers=auth["binh"])
    assert second.status_code == 409
    body = second.json()
    assert body["reason"] == "conflict"
    assert body["current"]["socflow"]["alert"]["status"] == "acknowledged"
    assert body["current"]["_version"] == first.json()["version"]
    fresh = body["current"]["_version"]
    retry = api.post(f"/api/alerts/{alert_id}/assign", json={"assignee": "binh", "version": fresh},
                     headers=auth["binh"])
    assert retry.status_code == 200 and retry.json()["assignee"] == "binh"
    records = [r for r in _audit(settings, api, auth) if r["target"] == f"alert:{alert_id}"]
    assert [(r["actor"], r["action"]) for r in records] == [("lan", "alert.acknowledged"), ("binh", "alert.assign")]
    assert records[0]["before"]["status"] == "open" and records[0]["after"]["status"] == "acknowledged"
    assert records[1]["after"]["assignee"] == "binh"


def test_actions_comment_close_and_refusals(api: TestClient, auth: dict[str, dict[str, str]],
                                            triage_env: tuple[Settings, Indexed]) -> None:
    indexed = triage_env[1]
    alert_id = indexed.ids["a5"]
    url = f"/api/alerts/{alert_id}"
    assert api.post(f"{url}/comments", json={"text": "checked with the agency"}, headers=auth["lan"]).status_code == 200
    missing = api.post(f"{url}/status", json={"status": "closed", "verdict": "false_positive"}, headers=auth["lan"])
    assert missing.status_code == 400 and "reason" in missing.json()["detail"]
    closed = api.post(f"{url}/status", json={"status": "closed", "verdict": "false_positive", "reason": "backup job"},
                      headers=auth["lan"])
    assert closed.status_code == 200 and closed.json()["verdict"] == "false_positive"
    again = api.post(f"{url}/status", json={"status": "acknowledged"}, headers=auth["lan"])
    assert again.status_code == 400
    assert api.post(f"{url}/status", json={"status": "done"}, headers=auth["lan"]).status_code == 422
    assert api.post(f"{url}/status", json={"status": "open", "version": "x"}, headers=auth["lan"]).status_code == 422
    assert api.post(f"{url}/assign", json={"assignee": "<script>"}, headers=auth["lan"]).status_code == 400
    changes = [("post", f"{url}/status", {"status": "open"}), ("post", f"{url}/assign", {"assignee": "kiem"}),
               ("post", f"{url}/comments", {"text": "x"}), ("post", f"{url}/suppress", {"reason": "x"}),
               ("post", "/api/alerts/bulk", {"action": "acknowledged", "alerts": {alert_id: None}}),
               ("post", "/api/incidents", {"title": "t", "alerts": {alert_id: None}}),
               ("post", "/api/saved-filters", {"name": "n"}), ("delete", "/api/saved-filters/n", None)]
    for method, path, body in changes:
        answer = api.request(method.upper(), path, json=body, headers=auth["kiem"])
        assert answer.status_code == 403, (path, answer.status_code)
    refused = api.post(f"{url}/suppress", json={"reason": "x"}, headers=auth["lan"])
    assert refused.status_code == 403  # analysts do not suppress


def test_admin_suppresses_alerts_like_this(api: TestClient, auth: dict[str, dict[str, str]],
                                           triage_env: tuple[Settings, Indexed]) -> None:
    settings, indexed = triage_env
    alert_id = indexed.ids["a6"]
    answer = api.post(f"/api/alerts/{alert_id}/suppress",
                      json={"fields": ["source.ip"], "reason": "agency's vulnerability scanner", "days": 14},
                      headers=auth["root"])
    assert answer.status_code == 200, answer.text
    entry = answer.json()["suppression"]
    stored = yaml.safe_load((settings.data_dir / "suppressions.yaml").read_text(encoding="utf-8"))
    assert stored["suppressions"] == [entry]
    assert entry["fields"] == {"source.ip": "198.51.100.6"} and entry["created_by"] == "root"
    bad = api.post(f"/api/alerts/{alert_id}/suppress", json={"fields": ["user.email"], "reason": "x"},
                   headers=auth["root"])
    assert bad.status_code == 400
    actions = [r["action"] for r in _audit(settings, api, auth) if r["actor"] == "root"]
    assert "suppression.create" in actions and "alert.suppress" in actions


def test_bulk_incidents_and_saved_filters(api: TestClient, auth: dict[str, dict[str, str]],
                                          triage_env: tuple[Settings, Indexed]) -> None:
    indexed = triage_env[1]
    ids = [indexed.ids["a8"], indexed.ids["a9"]]
    versions = {alert_id: api.get(f"/api/alerts/{alert_id}", headers=auth["lan"]).json()["summary"]["version"]
                for alert_id in ids}
    bulk = api.post("/api/alerts/bulk", json={"action": "assign", "assignee": "lan", "alerts": versions},
                    headers=auth["lan"])
    assert bulk.status_code == 200 and bulk.json()["done"] == ids
    stale = api.post("/api/alerts/bulk", json={"action": "acknowledged", "alerts": versions}, headers=auth["lan"])
    assert set(stale.json()["conflicts"]) == set(ids)  # the versions changed with the assignment

    created = api.post("/api/incidents", json={"title": "Portal probing", "alerts": {ids[0]: None}},
                       headers=auth["lan"])
    assert created.status_code == 200, created.text
    incident = created.json()["incident"]
    assert incident["deadline"]["hours"] == 120 and incident["deadline"]["overdue"] is True  # detected Nov 2026
    got = api.get(f"/api/incidents/{incident['id']}", headers=auth["kiem"]).json()
    assert got["alerts"] == [ids[0]]
    added = api.post(f"/api/incidents/{incident['id']}/alerts", json={"alerts": {ids[1]: None}}, headers=auth["lan"])
    assert added.status_code == 200 and added.json()["incident"]["alerts"] == ids
    version = added.json()["incident"]["_version"]
    report = api.post(f"/api/incidents/{incident['id']}", json={"reported": True, "version": version},
                      headers=auth["lan"])
    assert report.status_code == 200 and report.json()["deadline"]["reported"] is True
    late = api.post(f"/api/incidents/{incident['id']}", json={"owner": "binh", "version": version},
                    headers=auth["binh"])
    assert late.status_code == 409
    listed = api.get("/api/incidents", headers=auth["kiem"]).json()["incidents"]
    assert [item["id"] for item in listed] == [incident["id"]]
    assert api.get("/api/incidents/INC-none", headers=auth["kiem"]).status_code == 404

    saved = api.post("/api/saved-filters", json={"name": "critical DC", "params": "level=critical&node=dc-mail"},
                     headers=auth["lan"])
    assert saved.status_code == 200
    assert [f["name"] for f in api.get("/api/saved-filters", headers=auth["lan"]).json()["filters"]] == ["critical DC"]
    assert api.get("/api/saved-filters", headers=auth["binh"]).json()["filters"] == []
    assert api.delete("/api/saved-filters/critical DC", headers=auth["lan"]).status_code == 200
    assert api.delete("/api/saved-filters/critical DC", headers=auth["lan"]).status_code == 404


def test_unreachable_elasticsearch_is_a_503(tmp_path: Path, triage_env: tuple[Settings, Indexed]) -> None:
    settings = triage_env[0].model_copy(update={"elasticsearch": triage_env[0].elasticsearch.model_copy(
        update={"url": "http://127.0.0.1:1", "request_timeout_s": 2.0})})
    with TestClient(create_app(settings)) as client:
        headers = {**bearer(settings, "lan"), "Accept": "application/json"}
        answer = client.get("/api/alerts", headers=headers)
        assert answer.status_code == 503 and answer.json()["reason"] == "elasticsearch_unavailable"
        write = client.post("/api/alerts/x/comments", json={"text": "hello"}, headers=headers)
        assert write.status_code == 503
