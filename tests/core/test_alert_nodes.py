"""The node of detector alerts, from their group through the asset inventory (alerts.nodes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.model import to_document
from alerts.nodes import NodeResolver
from detectors.anomaly.config import StatefulSettings
from detectors.anomaly.detectors import AgencyVolumeSpike, NewProcess, NodeVolumeSpike, PortScan
from detectors.model import Detection, RuleInfo
from detectors.stateful import StatefulEngine, StatefulPlan
from ingest.assets import AssetInventory
from ingest.schema import format_timestamp
from ingest.settings import CollectorSettings

RESOLVER = NodeResolver(AssetInventory.from_mapping({
    "unknown_node": {"id": "unknown", "name": "Unknown source", "security_level": 3},
    "nodes": [
        {"id": "cp-a", "agency": "ag-a", "district": "d02", "security_level": 2,
         "networks": ["10.20.1.0/24"], "host_patterns": ["ag-a-*"]},
        {"id": "dc-x", "agency": "ag-dc", "district": "d01", "security_level": 5,
         "networks": ["10.10.10.0/24"], "hostnames": ["dc-ad01"]},
        {"id": "dc-y", "agency": "ag-dc", "district": "d01", "security_level": 4, "networks": ["10.10.3.0/24"]},
    ],
}))
RULE = RuleInfo(id="r1", title="Rule one", level="high")


@pytest.mark.parametrize(("group", "node_id"), [
    ({NodeVolumeSpike.group_field: "cp-a", "count": 900}, "cp-a"),
    ({NodeVolumeSpike.group_field: "cp-gone", "count": 900}, None),
    ({NodeVolumeSpike.group_field: "unknown", "count": 900}, None),
    ({PortScan.group_field: "10.20.1.7", "distinct": 30}, "cp-a"),
    ({PortScan.group_field: "10.10.10.2", "destination": "198.51.100.7:443"}, "dc-x"),  # beacon
    ({PortScan.group_field: "198.51.100.23", "accounts": 8}, None),
    ({NewProcess.group_field: "ag-a-pc01", NewProcess.value_field: "/tmp/x"}, "cp-a"),
    ({NewProcess.group_field: "dc-ad01.hoagiang.gov.vn", NewProcess.value_field: "/tmp/x"}, "dc-x"),
    ({NewProcess.group_field: "laptop-7", NewProcess.value_field: "/tmp/x"}, None),
    ({"user.name": "alice", "sources": ["10.20.1.5", "10.20.1.6"]}, "cp-a"),
    ({"user.name": "alice", "sources": ["10.20.1.5", "10.10.3.9"]}, None),
    ({"user.name": "alice", "sources": ["10.20.1.5", "None"]}, None),
    ({"user.name": "alice", "failures": 10}, None),
    ({"dns.registered_domain": "exfil.example", "suspicious": 30}, None),
    ({AgencyVolumeSpike.group_field: "ag-a", "count": 900}, "cp-a"),
    ({AgencyVolumeSpike.group_field: "unknown", "count": 900}, None),
    ({}, None),
])
def test_group_entity_names_its_node(group: dict[str, Any], node_id: str | None) -> None:
    node = RESOLVER(group)
    assert (node["id"] if node else None) == node_id


def test_address_resolves_to_the_full_node_field() -> None:
    assert RESOLVER({"source.ip": "10.20.1.7"}) == {
        "id": "cp-a", "name": "cp-a", "agency": "ag-a", "district": "d02", "security_level": 2,
        "kind": "unknown", "role": "unknown"}


def test_agency_of_several_nodes_stays_unknown_with_the_agency() -> None:
    assert RESOLVER({AgencyVolumeSpike.group_field: "ag-dc"}) == {"id": "unknown", "agency": "ag-dc",
                                                                   "district": "d01"}


def _anomaly(group: dict[str, Any]) -> Detection:
    event = {"@timestamp": "2026-11-20T10:00:00.000Z", "event": {"id": "e1"}}  # as detectors write them
    return Detection.for_events(RULE, [event], kind="anomaly", group={"detector": "x", **group})


def test_document_of_a_detector_alert_names_the_node() -> None:
    document = to_document(_anomaly({"source.ip": "10.10.10.2"}), RESOLVER)
    assert document["socflow"]["node"]["id"] == "dc-x"
    assert document["socflow"]["node"]["security_level"] == 5  # what retention reads


@pytest.mark.parametrize("resolver", [RESOLVER, None])
def test_unresolvable_group_keeps_unknown(resolver: NodeResolver | None) -> None:
    document = to_document(_anomaly({"user.name": "alice", "failures": 10}), resolver)
    assert document["socflow"]["node"] == {"id": "unknown"}


def test_node_of_the_event_wins_over_the_group() -> None:
    event = {"@timestamp": "2026-11-20T10:00:00.000Z", "event": {"id": "e1"},
             "socflow": {"node": {"id": "dc-mail", "security_level": 3}}}
    detection = Detection.for_events(RULE, [event], kind="correlation", group={"source.ip": "10.20.1.7"})
    assert to_document(detection, RESOLVER)["socflow"]["node"] == {"id": "dc-mail", "security_level": 3}


def test_real_detector_alerts_resolve_through_the_shipped_inventory() -> None:
    """The groups the detectors write, resolved with the inventory the collectors load."""
    start = datetime(2026, 3, 2, tzinfo=UTC)

    def at(seconds: float) -> str:
        return format_timestamp(start + timedelta(seconds=seconds))

    scan = [{"@timestamp": at(p * 0.5), "event": {"id": f"p{p}"}, "source": {"ip": "10.20.1.7"},
             "destination": {"ip": "10.10.1.5", "port": 1000 + p}} for p in range(30)]
    spray = [{"@timestamp": at(100 + i * 30), "event": {"id": f"s{i}", "category": ["authentication"],
                                                         "outcome": "failure"},
              "user": {"name": f"user{i}"}, "source": {"ip": "198.51.100.23"}} for i in range(10)]
    engine = StatefulEngine(StatefulPlan.build(StatefulSettings.load("config/detectors.yaml")))
    detections = [d for event in sorted(scan + spray, key=lambda e: e["@timestamp"]) for d in engine.process(event)]
    detections += engine.flush()
    resolver = NodeResolver.load(CollectorSettings())
    nodes = {(d.group["detector"], to_document(d, resolver)["socflow"]["node"]["id"]) for d in detections}
    assert ("portscan", "cp-001") in nodes
    assert ("spray", "unknown") in nodes  # an outside address: no node
