"""Event retention on the real test Elasticsearch: daily indices go by the highest level in them, audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from alerts.cli import main
from alerts.eventstore.retention import day_end, plan_deadletter_indices, plan_event_indices
from alerts.eventstore.template import install_event_templates
from alerts.retention import AuditLog, EventRetention, RetentionPolicy, apply_retention, load_policy
from alerts.settings import REPO_ROOT, EventStoreSettings
from tests.eventstore.helpers import drop, unique_settings

NOW = datetime(2027, 6, 15, tzinfo=UTC)
EVENTS = EventRetention(days_by_level={1: 30, 2: 60, 3: 90, 4: 180, 5: 365}, default_level=3)
# day -> (levels of its events (None: no level), deleted at NOW)
DAYS = {
    "2026.06.01": ([5], True),          # past the longest retention (365 days)
    "2026.12.01": ([5, 1], False),      # level 5 keeps it (196 days old)
    "2027.01.10": ([4, 1], False),      # ended 155 days before NOW: level 4 (180 days) keeps it
    "2027.03.01": ([1, None], True),    # no level counts as 3 (90 days): 105 days old
    "2027.04.01": ([2, 1], True),       # 74 days > 60
    "2027.05.20": ([1], False),         # 25 days < 30
}


def test_day_end_only_for_daily_names() -> None:
    assert day_end("socflow-events-2026.12.31", "socflow-events") == datetime(2027, 1, 1, tzinfo=UTC)
    assert day_end("socflow-events-2026.02.30", "socflow-events") is None
    assert day_end("socflow-events-2026.12", "socflow-events") is None
    assert day_end("socflow-events-restored", "socflow-events") is None


def test_the_policy_file_names_event_retention_per_level() -> None:
    policy = load_policy(REPO_ROOT / "config" / "retention.yaml")
    assert policy.events is not None and sorted(policy.events.days_by_level) == [1, 2, 3, 4, 5]
    assert min(policy.events.days_by_level.values()) >= 365  # the Decree 53 floor, applied to every level


@pytest.fixture
def seeded(elasticsearch_url: str) -> Iterator[tuple[Elasticsearch, EventStoreSettings]]:
    client = Elasticsearch(elasticsearch_url, request_timeout=60)
    settings = unique_settings()
    install_event_templates(client, settings)
    operations: list[dict] = []
    for day, (levels, _gone) in DAYS.items():
        stamp = day.replace(".", "-") + "T12:00:00.000Z"
        for number, level in enumerate(levels):
            node = {"id": f"n{number}"} | ({"security_level": level} if level else {})
            operations += [{"create": {"_index": f"{settings.index_prefix}-{day}", "_id": f"{day}-{number}"}},
                           {"@timestamp": stamp, "event": {"id": f"{day}-{number}"}, "socflow": {"node": node}}]
    operations += [{"create": {"_index": f"{settings.deadletter_prefix}-2026.05.01", "_id": "old-letter"}},
                   {"@timestamp": "2026-05-01T00:00:00.000Z", "reason": "r"},
                   {"create": {"_index": f"{settings.deadletter_prefix}-2027.03.01", "_id": "letter"}},
                   {"@timestamp": "2027-03-01T00:00:00.000Z", "reason": "r"}]
    assert not client.bulk(operations=operations, refresh=True)["errors"]
    yield client, settings
    drop(client, settings)


@pytest.mark.integration
def test_deletes_daily_indices_by_the_highest_level_in_them(
        tmp_path: Path, seeded: tuple[Elasticsearch, EventStoreSettings]) -> None:
    client, settings = seeded
    policy = RetentionPolicy(days_by_level={1: 30, 2: 60, 3: 90, 4: 180, 5: 365}, audit_index="t-evstore-audit",
                             events=EVENTS)
    planned = {action.index: action for action in plan_event_indices(client, policy, settings.index_prefix, NOW)}
    expected = {f"{settings.index_prefix}-{day}" for day, (_levels, gone) in DAYS.items() if gone}
    assert set(planned) == expected
    assert planned[f"{settings.index_prefix}-2027.03.01"].level == 3  # the event without a level
    assert planned[f"{settings.index_prefix}-2027.04.01"].days == 60
    audit = AuditLog(tmp_path / "audit" / "retention.jsonl", None, "unused", actor="auditor-test")

    report = apply_retention(client, policy, settings.index_prefix, NOW, audit, planner=plan_event_indices)
    letters = apply_retention(client, policy, settings.deadletter_prefix, NOW, audit, planner=plan_deadletter_indices)
    assert sorted(report.deleted_indices) == sorted(expected)
    assert letters.deleted_indices == [f"{settings.deadletter_prefix}-2026.05.01"]
    kept = set(client.indices.get(index=f"{settings.index_prefix}-*"))
    assert kept == {f"{settings.index_prefix}-{day}" for day, (_l, gone) in DAYS.items() if not gone}
    records = [json.loads(line) for line in audit.path.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["socflow"]["retention"]["index"] for r in records) == sorted(
        [*expected, f"{settings.deadletter_prefix}-2026.05.01"])
    assert {r["event"]["outcome"] for r in records} == {"success"}
    assert apply_retention(client, policy, settings.index_prefix, NOW, audit, planner=plan_event_indices).actions == []


@pytest.mark.integration
def test_the_retention_command_deletes_event_indices_too(
        tmp_path: Path, seeded: tuple[Elasticsearch, EventStoreSettings], elasticsearch_url: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    client, settings = seeded
    policy = tmp_path / "retention.yaml"
    body = RetentionPolicy(days_by_level={1: 30, 2: 60, 3: 90, 4: 180, 5: 365}, audit_index="t-evstore-audit",
                           events=EVENTS).model_dump()
    policy.write_text(json.dumps(body), encoding="utf-8")
    monkeypatch.setenv("SOCFLOW_ELASTICSEARCH__URL", elasticsearch_url)
    monkeypatch.setenv("SOCFLOW_ELASTICSEARCH__INDEX_PREFIX", "t-evstore-no-alerts")
    monkeypatch.setenv("SOCFLOW_EVENT_STORE__INDEX_PREFIX", settings.index_prefix)
    monkeypatch.setenv("SOCFLOW_EVENT_STORE__DEADLETTER_PREFIX", settings.deadletter_prefix)
    args = ["--data-dir", str(tmp_path / "data"), "retention", "--policy", str(policy), "--now", "2027-06-15T00:00:00Z"]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would delete index {settings.index_prefix}-2027.04.01: 2 events (level 2 keeps 60 days)" in out
    assert len(client.indices.get(index=f"{settings.index_prefix}-*")) == len(DAYS)
    try:
        assert main(args) == 0
        assert "deleted 5 events in 3 daily indices" in capsys.readouterr().out
    finally:
        if client.indices.exists(index="t-evstore-audit"):
            client.indices.delete(index="t-evstore-audit")
