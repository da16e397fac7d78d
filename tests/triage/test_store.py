"""Triage service on a real Elasticsearch: conflicts, transitions, filters, paging, groups,
incidents, saved filters, and the indexer keeping analysts' work across alert versions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.indexer import Indexer
from alerts.settings import load_settings
from alerts.triage import model
from alerts.triage.errors import ConflictError, NotFoundError, TriageError
from alerts.triage.queue import QueueFilter
from alerts.triage.store import TriageStore
from detectors.model import Detection
from tests.triage.alertdata import Indexed, RecordingAudit, detections, drop, index_alerts, make_store

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
COUNT = 24


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, elasticsearch_url: str) -> Iterator[Indexed]:
    data = index_alerts(tmp_path_factory.mktemp("triage"), elasticsearch_url, COUNT)
    yield data
    drop(data)


@pytest.fixture
def audit() -> RecordingAudit:
    return RecordingAudit()


@pytest.fixture
def store(indexed: Indexed, audit: RecordingAudit) -> TriageStore:
    return make_store(indexed, audit)


def test_second_analyst_gets_a_conflict_with_the_fresh_state(indexed: Indexed, store: TriageStore,
                                                             audit: RecordingAudit) -> None:
    alert_id = indexed.ids["a1"]
    seen = store.get(alert_id).version  # both analysts opened the alert page
    first = store.set_status(alert_id, "acknowledged", actor="lan", now=NOW, expected=seen)
    with pytest.raises(ConflictError) as conflict:
        store.assign(alert_id, "binh", actor="binh", now=NOW, expected=seen)
    fresh = conflict.value.current
    assert fresh is not None
    assert fresh["socflow"]["alert"]["status"] == "acknowledged"
    assert fresh["_version"] == first.version
    assert store.get(alert_id).source["socflow"]["alert"]["assignee"] is None  # nothing overwritten
    assert [record["action"] for record in audit.records] == ["alert.acknowledged"]
    assert audit.records[0]["before"]["status"] == "open"
    assert audit.records[0]["after"]["status"] == "acknowledged"
    # With the fresh version the second analyst's change goes through.
    done = store.assign(alert_id, "binh", actor="binh", now=NOW, expected=fresh["_version"])
    assert done.source["socflow"]["alert"]["assignee"] == "binh"


def test_a_write_between_read_and_write_is_a_conflict(indexed: Indexed, store: TriageStore) -> None:
    """The CLI passes no version: the store's own read is the condition (the indexer or another
    analyst writing meanwhile gives a conflict, not a lost update)."""
    alert_id = indexed.ids["a2"]
    current = store.get(alert_id)

    def racing(state: model.Triage) -> model.Triage:
        indexed.client.update(index=current.index, id=alert_id, doc={"socflow": {"alert": {"assignee": "other"}}})
        return model.comment(state, "mine", actor="lan", now=NOW)

    with pytest.raises(ConflictError) as conflict:
        store.act(alert_id, racing, action="comment", actor="lan", now=NOW)
    assert conflict.value.current is not None
    assert conflict.value.current["socflow"]["alert"]["assignee"] == "other"
    assert not store.get(alert_id).source["socflow"].get("triage", {}).get("comments")


def test_a_comment_that_lost_a_race_is_retried_on_the_fresh_state(indexed: Indexed, store: TriageStore,
                                                                  audit: RecordingAudit) -> None:
    """Comments decide nothing from what they read: two analysts commenting at once both land
    (the other write is kept), and one audit record is written for the comment."""
    alert_id = indexed.ids["a4"]
    current = store.get(alert_id)
    raced: list[int] = []

    def racing_once(state: model.Triage) -> model.Triage:
        if not raced:
            raced.append(1)
            indexed.client.update(index=current.index, id=alert_id,
                                  doc={"socflow": {"alert": {"assignee": "other"}}})
        return model.comment(state, "mine", actor="lan", now=NOW)

    written = store.act(alert_id, racing_once, action="comment", actor="lan", now=NOW, additive=True)
    stored = store.get(alert_id).source["socflow"]
    assert stored["alert"]["assignee"] == "other"
    assert [comment["text"] for comment in stored["triage"]["comments"]] == ["mine"]
    assert written.version == store.get(alert_id).version
    assert [record["action"] for record in audit.records] == ["alert.comment"]


def test_transitions_and_close_with_verdict(indexed: Indexed, store: TriageStore) -> None:
    alert_id = indexed.ids["a3"]
    store.set_status(alert_id, "acknowledged", actor="lan", now=NOW)
    store.set_status(alert_id, "investigating", actor="lan", now=NOW)
    with pytest.raises(TriageError, match="verdict"):
        store.set_status(alert_id, "closed", actor="lan", now=NOW, reason="x")
    with pytest.raises(TriageError, match="reason"):
        store.set_status(alert_id, "closed", actor="lan", now=NOW, verdict="false_positive", reason="  ")
    closed = store.set_status(alert_id, "closed", actor="lan", now=NOW, verdict="false_positive",
                              reason="the agency's backup job")
    triage = closed.source["socflow"]["triage"]
    assert (triage["verdict"], triage["reason"], triage["closed_by"]) == ("false_positive", "the agency's backup job",
                                                                           "lan")
    with pytest.raises(TriageError, match="cannot go from closed to acknowledged"):
        store.set_status(alert_id, "acknowledged", actor="lan", now=NOW)
    reopened = store.set_status(alert_id, "open", actor="lan", now=NOW)
    assert reopened.source["socflow"]["triage"]["verdict"] is None
    stored = store.get(alert_id).source["socflow"]["triage"]
    assert [entry["action"] for entry in stored["history"]] == ["status", "status", "close", "reopen"]


def test_filters(indexed: Indexed, store: TriageStore) -> None:
    def ids(**kwargs: object) -> set[str]:
        page = store.page(QueueFilter(**kwargs), NOW, size=200)  # type: ignore[arg-type]
        return {record.id for record in page.alerts}

    labels = {label: alert_id for label, alert_id in indexed.ids.items() if label != "hostile"}
    by_number = {int(label[1:]): alert_id for label, alert_id in labels.items()}
    assert ids(level=("critical",)) == {by_number[n] for n in range(COUNT) if n % 4 == 1}
    assert ids(rule=("r-sqli",)) == {by_number[n] for n in range(COUNT) if n % 4 == 0} | {indexed.ids["hostile"]}
    assert ids(rule=("Encoded PowerShell",)) == ids(level=("critical",))
    assert ids(technique=("T1059",)) == ids(level=("critical",))  # the sub-technique T1059.001 matches
    assert ids(tactic=("Credential Access",)) == {by_number[n] for n in range(COUNT) if n % 4 == 2}
    assert ids(node=("cp-001",)) == {by_number[n] for n in range(COUNT) if n % 4 == 2}
    assert ids(agency=("ag-cds",)) == {by_number[n] for n in range(COUNT) if n % 4 in (0, 1)} | {indexed.ids["hostile"]}
    assert ids(district=("d01",)) >= ids(node=("cp-001",))
    assert ids(security_level=(3,)) >= ids(node=("cp-001",))
    assert ids(text="portal-web01") == {indexed.ids["hostile"]}
    assert ids(text="host-3") == {by_number[n] for n in range(COUNT) if n % 5 == 3}
    assert ids(since="2026-11-20T11:00:00Z", until="2026-11-20T11:30:00Z") == {by_number[18], by_number[19],
                                                                              by_number[20], by_number[21]}
    assert ids(since="28h") == ids()  # relative to NOW: from 08:00 on the 20th, the first alert
    assert ids(since="25h") == {by_number[n] for n in range(18, COUNT)}
    store.assign(by_number[5], "lan", actor="lan", now=NOW)
    assert ids(assignee=("lan",)) == {by_number[5]}
    assert by_number[5] not in ids(assignee=("-",))
    assert by_number[6] in ids(assignee=("-",))
    store.set_status(by_number[7], "acknowledged", actor="lan", now=NOW)
    assert by_number[7] in ids(status=("acknowledged",))
    assert by_number[7] not in ids(status=("open",))
    with pytest.raises(TriageError):
        QueueFilter(status=("solved",))


def test_search_after_paging_walks_every_alert_once(indexed: Indexed, store: TriageStore) -> None:
    for order in ("newest", "risk"):
        seen: list[str] = []
        previous = None
        cursor = None
        pages = 0
        while True:
            page = store.page(QueueFilter(order=order), NOW, size=7, after=cursor)
            pages += 1
            seen.extend(record.id for record in page.alerts)
            keys = [(record.source["socflow"]["alert"]["risk"], record.source["@timestamp"]) if order == "risk"
                    else record.source["@timestamp"] for record in page.alerts]
            assert keys == sorted(keys, reverse=True)
            if previous is not None and keys:
                assert previous >= keys[0]
            previous = keys[-1] if keys else previous
            cursor = page.cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(indexed.ids.values()), order
        assert pages == 4
    with pytest.raises(TriageError, match="cursor"):
        store.page(QueueFilter(), NOW, size=7, after="bm90IGEgY3Vyc29y")


def test_risk_is_level_times_security_level_plus_data_center(indexed: Indexed, store: TriageStore) -> None:
    from alerts.model import LEVEL_WEIGHT

    alerts = [record.source for record in store.page(QueueFilter(order="risk"), NOW, size=200).alerts]
    for alert in alerts:
        node = alert["socflow"]["node"]
        bonus = 5 if node["kind"] == "data-center" else 0
        weight = LEVEL_WEIGHT[alert["rule"]["level"]]
        assert alert["socflow"]["alert"]["risk"] == weight * node["security_level"] + bonus
    # dc-portal (level 4, data center) with a high rule (4 x 4 + 5) outranks dc-mail (level 3) with a
    # critical one (5 x 3 + 5)
    assert (alerts[0]["rule"]["level"], alerts[0]["socflow"]["node"]["id"]) == ("high", "dc-portal")
    assert alerts[0]["socflow"]["alert"]["risk"] == 21


def test_groups_by_rule_and_entity(indexed: Indexed, store: TriageStore) -> None:
    groups, missing, total = store.groups(QueueFilter(), NOW, "rule")
    counts = {group.key: group.count for group in groups}
    assert counts == {"SQL Injection Attempt": 7, "Encoded PowerShell": 6, "Mail Login Failed": 6,
                      "Scanner User Agent": 6}
    assert (missing, total) == (0, COUNT + 1)
    hosts, _, _ = store.groups(QueueFilter(level=("critical",)), NOW, "host")
    assert sum(group.count for group in hosts) == 6
    assert all(group.max_risk is not None for group in hosts)
    with pytest.raises(TriageError):
        store.groups(QueueFilter(), NOW, "colour")


def test_bulk_reports_each_alert(indexed: Indexed, store: TriageStore) -> None:
    targets = [indexed.ids["a8"], indexed.ids["a9"], indexed.ids["a10"]]
    stale = store.get(targets[1]).version
    store.comment(targets[1], "someone else first", actor="binh", now=NOW)
    store.set_status(targets[2], "closed", actor="binh", now=NOW, verdict="benign", reason="known")
    result = store.bulk({targets[0]: None, targets[1]: stale, targets[2]: None, "no-such-alert": None},
                        lambda state: model.transition(state, "acknowledged", actor="lan", now=NOW),
                        action="acknowledged", actor="lan", now=NOW)
    assert result.done == [targets[0]]
    assert list(result.conflicts) == [targets[1]]
    assert set(result.refused) == {targets[2], "no-such-alert"}


def test_incident_groups_alerts_with_deadline(indexed: Indexed, store: TriageStore, audit: RecordingAudit) -> None:
    alert_ids = [indexed.ids["a12"], indexed.ids["a13"]]
    versions = {alert_id: store.get(alert_id).version for alert_id in alert_ids}
    incident, linked = store.create_incident("inc-1", versions, title="Portal attack", severity=None, actor="lan",
                                             now=NOW)
    assert linked.done == alert_ids
    doc = incident.source
    assert doc["severity"] == "critical"  # a13 is an Encoded PowerShell alert
    assert doc["nodes"] == ["dc-portal", "dc-mail"] and doc["agencies"] == ["ag-cds"]
    for alert_id in alert_ids:
        triage = store.get(alert_id).source["socflow"]
        assert triage["triage"]["incident"] == "inc-1" and triage["alert"]["status"] == "investigating"
    due = model.deadline(doc, hours=120, now=NOW)
    assert due.deadline == datetime(2026, 11, 20, 10, 0, tzinfo=UTC) + timedelta(hours=120)
    assert not due.overdue and model.describe_left(due.left) == "3 d 22 h left"
    late = model.deadline(doc, hours=120, now=NOW + timedelta(days=5))
    assert late.overdue and late.left < timedelta(0)

    seen = incident.version
    store.change_incident("inc-1", lambda d: model.update_incident(d, actor="lan", now=NOW, status="investigating"),
                          action="update", actor="lan", now=NOW, expected=seen)
    with pytest.raises(ConflictError) as conflict:
        store.change_incident("inc-1", lambda d: model.update_incident(d, actor="binh", now=NOW, owner="binh"),
                              action="update", actor="binh", now=NOW, expected=seen)
    assert conflict.value.current is not None and conflict.value.current["status"] == "investigating"
    reported = store.change_incident(
        "inc-1", lambda d: model.update_incident(d, actor="lan", now=NOW, reported=True, comment_text="sent to VNCERT"),
        action="update", actor="lan", now=NOW)
    assert model.deadline(reported.source, hours=120, now=NOW + timedelta(days=9)).overdue is False
    assert [entry["action"] for entry in reported.source["timeline"]] == ["create", "status", "reported", "comment"]
    assert [record["action"] for record in audit.records if record["target"] == "incident:inc-1"] == [
        "incident.create", "incident.update", "incident.update"]
    assert [record.id for record in store.incidents_list(status=("investigating",))] == ["inc-1"]


def test_saved_filters_are_per_user(indexed: Indexed, store: TriageStore) -> None:
    store.save_filter("lan", "portal", QueueFilter(node=("dc-portal",), level=("high", "critical")), now=NOW)
    store.save_filter("binh", "mine", QueueFilter(assignee=("binh",)), now=NOW)
    [saved] = store.saved_filters("lan")
    assert saved["name"] == "portal"
    from urllib.parse import parse_qs
    assert QueueFilter.from_params(parse_qs(saved["params"])) == QueueFilter(node=("dc-portal",),
                                                                            level=("high", "critical"))
    store.delete_filter("lan", "portal")
    assert store.saved_filters("lan") == []
    with pytest.raises(NotFoundError):
        store.delete_filter("lan", "portal")


def test_unknown_alert_is_not_found(store: TriageStore) -> None:
    with pytest.raises(NotFoundError):
        store.get("no-such-alert")


def test_indexer_keeps_triage_across_a_newer_version(tmp_path: Path, indexed: Indexed, store: TriageStore,
                                                     elasticsearch_url: str) -> None:
    """An alert acknowledged, assigned, commented and escalated keeps all of it when the job
    sends a newer version (one more event): the indexer merges it, conditional on _seq_no."""
    label, detection = next(item for item in detections(COUNT) if item[0] == "a20")
    alert_id = indexed.ids[label]
    store.set_status(alert_id, "acknowledged", actor="lan", now=NOW)
    store.assign(alert_id, "lan", actor="lan", now=NOW)
    store.comment(alert_id, "called the agency", actor="lan", now=NOW)
    before = store.get(alert_id).source
    newer = Detection.from_record({**detection.as_record(), "count": 2})
    settings = load_settings(elasticsearch={"url": elasticsearch_url, "index_prefix": indexed.prefix})
    stream = tmp_path / "stream"
    stream.mkdir()
    (stream / "alerts-1-0.jsonl").write_text(json.dumps(newer.as_record()) + "\n", encoding="utf-8")
    stats = Indexer(indexed.client, stream, tmp_path / "state", settings.elasticsearch, settings.indexer).run_once()
    assert stats.indexed == 1
    after = store.get(alert_id).source
    assert after["socflow"]["alert"]["version"] == 2
    assert after["socflow"]["alert"]["status"] == "acknowledged"
    assert after["socflow"]["alert"]["assignee"] == "lan"
    assert after["socflow"]["triage"] == before["socflow"]["triage"]
    assert after["socflow"]["alert"]["risk"] == before["socflow"]["alert"]["risk"]


def test_bulk_is_visible_to_the_queue_at_once(indexed: Indexed, audit: RecordingAudit) -> None:
    """Single actions answer without waiting for a refresh; a bulk action refreshes once, so the
    queue an analyst returns to already shows every change."""
    store = make_store(indexed, audit, refresh=False)
    targets = {indexed.ids["a16"]: None, indexed.ids["a17"]: None}
    result = store.bulk(targets, lambda state: model.transition(state, "investigating", actor="lan", now=NOW),
                        action="investigating", actor="lan", now=NOW)
    assert sorted(result.done) == sorted(targets)
    shown = {record.id for record in store.page(QueueFilter(status=("investigating",)), NOW, size=200).alerts}
    assert set(targets) <= shown
