"""``socflow alerts list|show|ack|close|assign|comment`` on the real Elasticsearch: the same
filters and transitions as the console, conflicts exit 3 with the fresh state, every change in
the audit trail as the acting user, hostile strings printed inert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from alerts.cli import main
from tests.triage.alertdata import Indexed, drop, index_alerts

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, elasticsearch_url: str) -> Iterator[Indexed]:
    data = index_alerts(tmp_path_factory.mktemp("triage-cli"), elasticsearch_url, 12)
    yield data
    drop(data)
    for name in data.client.indices.get(index=f"{data.prefix}_*", allow_no_indices=True):
        data.client.indices.delete(index=name)


@pytest.fixture
def env(indexed: Indexed, elasticsearch_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("SOCFLOW_ELASTICSEARCH__URL", elasticsearch_url)
    monkeypatch.setenv("SOCFLOW_ELASTICSEARCH__INDEX_PREFIX", indexed.prefix)
    monkeypatch.setenv("SOCFLOW_CONSOLE__AUDIT_INDEX", f"{indexed.prefix}_audit")
    monkeypatch.setenv("SOCFLOW_TRIAGE__INCIDENTS_INDEX", f"{indexed.prefix}_incidents")
    monkeypatch.setenv("SOCFLOW_TRIAGE__FILTERS_INDEX", f"{indexed.prefix}_filters")
    return ["--data-dir", str(tmp_path / "data"), "alerts"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_filters_and_pages(env: list[str], capsys: pytest.CaptureFixture[str], indexed: Indexed) -> None:
    code, out, _ = run(capsys, *env, "list", "--level", "critical", "--json")
    assert code == 0
    listed = json.loads(out)
    assert {alert["rule"]["level"] for alert in listed["alerts"]} == {"critical"} and listed["total"] == 3
    code, out, _ = run(capsys, *env, "list", "--order", "risk", "--limit", "5", "--json")
    first = json.loads(out)
    code, out, _ = run(capsys, *env, "list", "--order", "risk", "--limit", "5", "--after", first["cursor"], "--json")
    second = json.loads(out)
    assert not {a["id"] for a in first["alerts"]} & {a["id"] for a in second["alerts"]}
    code, out, _ = run(capsys, *env, "list", "--text", "portal-web01")
    assert code == 0 and "⟨U+202E⟩" not in out  # the table shows the user, quotes and all, inert
    assert "SQL Injection" in out and indexed.ids["hostile"] in out
    code, _, err = run(capsys, *env, "list", "--level", "severe")
    assert code == 2 and "unknown level" in err


def test_actions_conflict_and_audit(env: list[str], capsys: pytest.CaptureFixture[str], indexed: Indexed,
                                    elasticsearch_url: str) -> None:
    alert_id = indexed.ids["a2"]
    code, out, _ = run(capsys, *env, "show", alert_id, "--json")
    seen = json.loads(out)["_version"]
    code, out, _ = run(capsys, *env, "ack", alert_id, "--version", seen, "--as", "lan")
    assert code == 0 and json.loads(out)["status"] == "acknowledged"
    code, _, err = run(capsys, *env, "assign", alert_id, "binh", "--version", seen, "--as", "binh")
    assert code == 3 and "conflict" in err and '"status": "acknowledged"' in err
    code, out, _ = run(capsys, *env, "assign", alert_id, "binh", "--as", "binh")
    assert code == 0 and json.loads(out)["assignee"] == "binh"
    code, out, _ = run(capsys, *env, "comment", alert_id, "looked at it \x1b[31m", "--as", "binh")
    assert code == 0
    code, out, _ = run(capsys, *env, "close", alert_id, "--verdict", "benign", "--reason", "lab test", "--as", "lan")
    assert code == 0 and json.loads(out)["verdict"] == "benign"
    code, _, err = run(capsys, *env, "ack", alert_id, "--as", "lan")
    assert code == 2 and "cannot go from closed to acknowledged" in err
    code, out, _ = run(capsys, *env, "show", alert_id)
    assert "⟨U+001B⟩" in out and "\x1b" not in out
    client = Elasticsearch(elasticsearch_url)
    client.indices.refresh(index=f"{indexed.prefix}_audit")
    hits = client.search(index=f"{indexed.prefix}_audit", query={"term": {"target": f"alert:{alert_id}"}},
                         sort=[{"seq": "asc"}])["hits"]["hits"]
    assert [(h["_source"]["actor"], h["_source"]["action"]) for h in hits] == [
        ("lan", "alert.acknowledged"), ("binh", "alert.assign"), ("binh", "alert.comment"), ("lan", "alert.close")]
