"""Retention: per-level deletion of alerts, whole old monthly indices by name, and the audit trail.

The planning helpers are checked without a service; the policy itself runs on the real test
Elasticsearch (fixture ``elasticsearch_url``) at a fixed ``now``, through the library and
through ``socflow retention``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from alerts.audit.trail import AuditTrail
from alerts.cli import main
from alerts.indexer import install_template
from alerts.retention import (
    AuditLog,
    RetentionError,
    RetentionPolicy,
    apply_retention,
    load_policy,
    month_end,
)
from alerts.settings import REPO_ROOT

PREFIX = "socflow-rt-alerts"
AUDIT = "socflow-rt-audit"
NOW = datetime(2027, 1, 15, tzinfo=UTC)
POLICY = RetentionPolicy(days_by_level={1: 30, 2: 60, 3: 90, 4: 180, 5: 365}, default_level=3, audit_index=AUDIT)
# id -> (@timestamp, security level or None, kept at NOW under POLICY)
ALERTS = {
    "old-month-l5": ("2025-12-10T00:00:00Z", 5, False),   # whole index 2025.12 ended > 365 days ago
    "mar-l5": ("2026-03-01T00:00:00Z", 5, True),
    "mar-l1": ("2026-03-01T00:00:00Z", 1, False),
    "dec-l1-new": ("2026-12-20T00:00:00Z", 1, True),       # level-1 cutoff is 2026-12-16
    "dec-l1-old": ("2026-12-10T00:00:00Z", 1, False),
    "oct-l3-old": ("2026-10-10T00:00:00Z", 3, False),      # level-3 cutoff is 2026-10-17
    "oct-l3-new": ("2026-10-20T00:00:00Z", 3, True),
    "oct-nolevel": ("2026-10-10T00:00:00Z", None, False),  # default level 3
    "oct-l4": ("2026-10-10T00:00:00Z", 4, True),
    "oct-l2": ("2026-10-10T00:00:00Z", 2, False),          # level-2 cutoff is 2026-11-16
}


def test_month_end_only_for_monthly_names() -> None:
    assert month_end("socflow-alerts-2026.12", "socflow-alerts") == datetime(2027, 1, 1, tzinfo=UTC)
    assert month_end("socflow-alerts-2026.03", "socflow-alerts") == datetime(2026, 4, 1, tzinfo=UTC)
    assert month_end("socflow-alerts-restored", "socflow-alerts") is None
    assert month_end("socflow-alerts-2026.13", "socflow-alerts") is None
    assert month_end("socflow-audit", "socflow-alerts") is None


def test_policy_file_names_every_level(tmp_path: Path) -> None:
    policy = load_policy(REPO_ROOT / "config" / "retention.yaml")
    assert sorted(policy.days_by_level) == [1, 2, 3, 4, 5]
    assert policy.longest_days == policy.days_by_level[5]
    bad = tmp_path / "bad.yaml"
    bad.write_text("days_by_level: {1: 10, 2: 20}\n", encoding="utf-8")
    with pytest.raises(RetentionError, match="levels 1-5"):
        load_policy(bad)


def _seed(client: Elasticsearch) -> None:
    for name in client.indices.get(index=f"{PREFIX}-*,{AUDIT}", allow_no_indices=True, ignore_unavailable=True):
        client.indices.delete(index=name)  # destructive_requires_name: by exact name
    install_template(client, PREFIX)
    operations: list[dict] = []
    for alert_id, (timestamp, level, _kept) in ALERTS.items():
        node = {"id": "n"} if level is None else {"id": "n", "security_level": level}
        operations += [{"create": {"_index": f"{PREFIX}-{timestamp[:4]}.{timestamp[5:7]}", "_id": alert_id}},
                       {"@timestamp": timestamp, "socflow": {"node": node}}]
    # An index outside the monthly naming is never touched, however old its alerts.
    operations += [{"create": {"_index": f"{PREFIX}-restored", "_id": "restored"}},
                   {"@timestamp": "2020-01-01T00:00:00Z", "socflow": {"node": {"security_level": 1}}}]
    response = client.bulk(operations=operations, refresh=True)
    assert not response["errors"], response


def _ids(client: Elasticsearch) -> set[str]:
    client.indices.refresh(index=f"{PREFIX}-*")
    hits = client.search(index=f"{PREFIX}-*", size=100, query={"match_all": {}})["hits"]["hits"]
    return {hit["_id"] for hit in hits}


@pytest.mark.integration
def test_retention_deletes_per_level_and_audits(tmp_path: Path, elasticsearch_url: str) -> None:
    client = Elasticsearch(elasticsearch_url)
    _seed(client)
    audit_path = tmp_path / "audit" / "retention.jsonl"
    audit = AuditLog(audit_path, client, AUDIT, actor="auditor-test")

    dry = apply_retention(client, POLICY, PREFIX, NOW, audit, dry_run=True)
    assert _ids(client) == set(ALERTS) | {"restored"}  # a dry run deletes nothing
    assert dry.deleted_indices == [f"{PREFIX}-2025.12"]
    expected_gone = {alert_id for alert_id, (_t, _l, kept) in ALERTS.items() if not kept}
    assert dry.documents == len(expected_gone)

    done = apply_retention(client, POLICY, PREFIX, NOW, audit)
    assert done.documents == len(expected_gone)
    assert _ids(client) == {alert_id for alert_id, (_t, _l, kept) in ALERTS.items() if kept} | {"restored"}
    assert not client.indices.exists(index=f"{PREFIX}-2025.12")

    records = [json.loads(line) for line in audit_path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(dry.actions) + len(done.actions)
    assert {r["event"]["outcome"] for r in records[:len(dry.actions)]} == {"dry_run"}
    assert {r["event"]["outcome"] for r in records[len(dry.actions):]} == {"success"}
    assert all(r["user"]["name"] == "auditor-test" and r["@timestamp"].startswith("2027-01-15") for r in records)
    level_one = [r["socflow"]["retention"] for r in records[len(dry.actions):]
                 if r["socflow"]["retention"].get("level") == 1]
    # mar-l1 and dec-l1-old: one delete-by-query action per index holding expired level-1 alerts
    assert sorted((r["index"], r["documents"]) for r in level_one) == [(f"{PREFIX}-2026.03", 1),
                                                                      (f"{PREFIX}-2026.12", 1)]
    client.indices.refresh(index=AUDIT)
    assert client.count(index=AUDIT)["count"] == len(records)
    # The same records, hash-chained with the console's (alerts.audit.trail), verify.
    trail = AuditTrail(client, AUDIT, tmp_path / "audit" / "chain-head")
    chained = [record for _, record in trail.records()]
    assert [r["after"]["record_id"] for r in chained] == [r["event"]["id"] for r in records]
    assert {(r["actor"], r["action"]) for r in chained} == {("auditor-test", "retention_delete_index"),
                                                            ("auditor-test", "retention_delete_by_query")}
    assert trail.verify().ok

    again = apply_retention(client, POLICY, PREFIX, NOW, audit)
    assert again.actions == []


@pytest.mark.integration
def test_retention_command(tmp_path: Path, elasticsearch_url: str, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    client = Elasticsearch(elasticsearch_url)
    _seed(client)
    policy = tmp_path / "retention.yaml"
    policy.write_text(json.dumps(POLICY.model_dump()), encoding="utf-8")  # JSON is YAML
    monkeypatch.setenv("SOCFLOW_ELASTICSEARCH__URL", elasticsearch_url)
    monkeypatch.setenv("SOCFLOW_ELASTICSEARCH__INDEX_PREFIX", PREFIX)
    args = ["--data-dir", str(tmp_path / "data"), "retention", "--policy", str(policy), "--now", "2027-01-15T00:00:00Z"]
    assert main([*args, "--dry-run"]) == 0
    assert "would delete 6 alerts in" in capsys.readouterr().out
    assert main(args) == 0
    assert f"deleted index {PREFIX}-2025.12: 1 alerts" in capsys.readouterr().out
    assert (tmp_path / "data" / "audit" / "retention.jsonl").exists()
    assert len(_ids(client)) == 5
