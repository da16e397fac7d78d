"""Asset inventory: the shipped inventory is consistent and events find their node."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.assets import AssetInventory
from ingest.errors import ConfigError

INVENTORY = Path(__file__).resolve().parents[2] / "config" / "assets.yaml"


@pytest.fixture(scope="module")
def inventory() -> AssetInventory:
    return AssetInventory.load(INVENTORY)


def test_shipped_inventory_describes_the_network(inventory: AssetInventory) -> None:
    connection_points = [n for n in inventory.nodes if n.kind == "connection-point"]
    assert len(connection_points) == 184
    assert len(inventory.agencies) == 270
    assert {n.district for n in inventory.nodes} == {f"d0{i}" for i in range(1, 10)}
    assert all(1 <= n.security_level <= 5 for n in inventory.nodes)
    roles = {n.role for n in inventory.nodes}
    assert {"public-portal", "official-mail", "document-management", "video-conferencing",
            "citizen-hotline", "operations-center"} <= roles
    # Every node's agency exists in the agency list.
    assert all(n.agency in inventory.agencies for n in inventory.nodes)


@pytest.mark.parametrize(
    ("event", "node_id"),
    [
        ({"host": {"ip": "10.10.1.15"}}, "dc-portal"),
        ({"host": {"ip": ["fe80::1", "10.10.3.4"]}}, "dc-mail"),
        ({"host": {"name": "MAIL-WEBMAIL01.hoagiang.gov.vn"}}, "dc-mail"),
        ({"winlog": {"computer_name": "ag-012-pc017.hoagiang.gov.vn"}}, "cp-012"),
        ({"host": {"name": "d03-c04-pc002"}}, "cp-067"),
        ({"source": {"ip": "10.103.14.20"}}, "cp-067"),
        ({"host": {"ip": "8.8.8.8"}}, "unknown"),
        ({"host": {"ip": "not-an-ip"}, "host.name": 5}, "unknown"),
        ({}, "unknown"),
    ],
)
def test_events_find_their_node(inventory: AssetInventory, event: dict, node_id: str) -> None:
    assert inventory.node_for(event).id == node_id


def test_enrich_tags_unknown_sources_instead_of_dropping(inventory: AssetInventory) -> None:
    event = inventory.enrich({"host": {"ip": "192.0.2.1"}})
    assert event["socflow"]["node"]["id"] == "unknown"
    assert event["socflow"]["node"]["security_level"] == 3


def test_most_specific_network_wins() -> None:
    inventory = AssetInventory.from_mapping({"nodes": [
        {"id": "wide", "networks": ["10.0.0.0/8"]},
        {"id": "narrow", "networks": ["10.1.2.0/24"]},
    ]})
    assert inventory.node_for({"host": {"ip": "10.1.2.3"}}).id == "narrow"
    assert inventory.node_for({"host": {"ip": "10.9.9.9"}}).id == "wide"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "nodes"),
        ({"nodes": [{"id": "a"}, {"id": "a"}]}, "duplicate node id"),
        ({"nodes": [{"id": "a", "security_level": 7}]}, "outside 1-5"),
        ({"nodes": [{"id": "a", "networks": ["10.0.0.0/33"]}]}, "invalid node"),
        ({"nodes": [{"name": "no id"}]}, "invalid node"),
    ],
)
def test_invalid_inventories_are_clear_errors(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AssetInventory.from_mapping(data)
