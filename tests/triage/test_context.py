"""What an alert page shows beside the alert: the entity's events from the event store (real
Elasticsearch), the rule from its file, the node from the inventory."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from elasticsearch import Elasticsearch

from alerts.triage.context import NodeDirectory, RuleCatalogue, entity_events

REPO = Path(__file__).resolve().parents[2]
ALERT = {"@timestamp": "2026-11-20T09:00:04.000Z", "host": {"name": "portal-web01"}, "source": {"ip": "192.0.2.77"},
         "rule": {"id": "ba086327-6135-4c19-8d22-8b67a99e1610", "name": "stored name", "level": "high"},
         "socflow": {"node": {"id": "dc-portal"}, "alert": {"first_seen": "2026-11-20T09:00:00.000Z",
                                                           "last_seen": "2026-11-20T09:00:04.000Z"}}}


def test_entity_events_from_the_event_store(elasticsearch_url: str) -> None:
    client = Elasticsearch(elasticsearch_url)
    alias = f"t-triage-ev-{uuid.uuid4().hex[:8]}"
    ticks = iter(range(0, 10_000, 100))  # each look at the clock 100 s later: past the probe's 30 s cache

    def clock() -> float:
        return float(next(ticks))

    assert entity_events(client, alias, ALERT, around=timedelta(minutes=30), clock=clock).stored is False
    index = f"{alias}-2026.11.20"
    # The event store's contract (contracts.md): daily indices behind the alias, keyword entities.
    client.indices.create(index=index, aliases={alias: {}}, mappings={"dynamic": False, "properties": {
        "@timestamp": {"type": "date"}, "host": {"properties": {"name": {"type": "keyword"}}},
        "user": {"properties": {"name": {"type": "keyword"}}}, "source": {"properties": {"ip": {"type": "ip"}}}}})
    try:
        events = [("e1", "2026-11-20T08:45:00.000Z", {"host": {"name": "portal-web01"}}),
                  ("e2", "2026-11-20T09:10:00.000Z", {"source": {"ip": "192.0.2.77"}, "host": {"name": "other"}}),
                  ("e3", "2026-11-20T09:10:00.000Z", {"host": {"name": "other"}}),
                  ("e4", "2026-11-20T11:00:00.000Z", {"host": {"name": "portal-web01"}})]
        for event_id, stamp, fields in events:
            client.index(index=index, id=event_id, document={"@timestamp": stamp, "event": {"id": event_id}, **fields})
        client.indices.refresh(index=index)
        found = entity_events(client, alias, ALERT, around=timedelta(minutes=30), clock=clock)
        assert found.stored and found.error is None
        assert [event["event"]["id"] for event in found.events] == ["e1", "e2"]  # oldest first, in the window
    finally:
        client.indices.delete(index=index)


def test_rule_from_its_file_and_node_from_the_inventory() -> None:
    rules = RuleCatalogue.load([REPO / "rules"])
    rule = rules.rule_of(ALERT)
    assert rule.title == "SQL Injection Attempt Against a Web Application"  # the file, not the stored name
    assert rule.falsepositives and rule.references[0].startswith("https://owasp.org/")
    assert rule.techniques == [("T1190", "https://attack.mitre.org/techniques/T1190/")]
    gone = rules.rule_of({"rule": {"id": "deleted-rule", "name": "Old rule", "level": "low", "tags": ["attack.t1046"]}})
    assert (gone.title, gone.level, gone.techniques[0][0]) == ("Old rule", "low", "T1046")
    node = NodeDirectory.load(REPO / "config" / "assets.yaml").node_of(ALERT)
    assert (node.id, node.security_level, node.data_center, node.known) == ("dc-portal", 4, True, True)
    assert node.agency_name and node.district_name == "Thành phố Hòa Giang"
    unknown = NodeDirectory.load(REPO / "config" / "assets.yaml").node_of({"socflow": {"node": {"id": "zz"}}})
    assert not unknown.known and unknown.security_level is None
