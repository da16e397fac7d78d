"""The node of an alert whose events do not name one: anomaly-detector alerts.

A detector builds its alert's events from its state (``@timestamp`` and ``event.id`` only),
so they carry no ``socflow.node``; the entity in the detection's group names the node instead,
through the asset inventory the collectors tag events with (``collector.assets_path``). Without
this the alert said node ``unknown`` and retention kept it for the default security level
rather than its node's.

What a group can name, first match wins (each detector's group holds at most one of them):

- ``socflow.node.id`` (volume_node): the node of that id;
- ``host.name`` (new_process): the node owning the host name, as for an event of that host;
- ``source.ip`` (portscan, hostscan, spray, beacon, new_admin_source): the node owning the
  address range, as the collectors assign an event that has only a source address;
- ``sources`` (bruteforce's failure alert): the node owning every one of those addresses;
- ``socflow.node.agency`` (volume_agency): see :meth:`NodeResolver._agency`.

Anything else (``user.name`` alone, ``dns.registered_domain``, an address or name outside the
inventory) resolves to None, and the alert stays ``{"id": "unknown"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest.assets import AssetInventory, Node
from ingest.normalize import resolve_config_path
from ingest.settings import CollectorSettings


class NodeResolver:
    """``socflow.node`` of a detection group, or None; load once per indexer or replay run."""

    def __init__(self, inventory: AssetInventory) -> None:
        self.inventory = inventory
        self._by_id = {node.id: node for node in inventory.nodes}
        self._by_agency: dict[str, list[Node]] = {}
        for node in inventory.nodes:
            self._by_agency.setdefault(node.agency, []).append(node)

    @classmethod
    def load(cls, settings: CollectorSettings) -> NodeResolver:
        """The resolver of the inventory the collectors load (same path resolution)."""
        return cls(AssetInventory.load(resolve_config_path(settings.assets_path)))

    def __call__(self, group: Mapping[str, Any]) -> dict[str, Any] | None:
        if "socflow.node.id" in group:
            node = self._by_id.get(str(group["socflow.node.id"]))
        elif "host.name" in group:
            node = self._known(self.inventory.node_for({"host": {"name": str(group["host.name"])}}))
        elif "source.ip" in group:
            node = self._address(group["source.ip"])
        elif "sources" in group:
            found = {self._address(address) for address in group["sources"] or ()}
            # Several nodes, or an address outside the inventory: no one node.
            node = found.pop() if len(found) == 1 else None
        elif "socflow.node.agency" in group:
            return self._agency(str(group["socflow.node.agency"]))
        else:
            node = None
        return node.as_event_field() if node is not None else None

    def _address(self, address: Any) -> Node | None:
        return self._known(self.inventory.node_for({"source": {"ip": str(address)}}))

    def _known(self, node: Node) -> Node | None:
        return None if node is self.inventory.unknown else node

    def _agency(self, agency: str) -> dict[str, Any] | None:
        """An agency's volume counts the events of all its nodes. One node: that node. Several
        (the data-center agency has 19): no single node, so the id stays ``unknown`` with the
        agency (and its district when its nodes share one) set for triage; the security level
        is left out rather than guessed from nodes of differing levels, so retention applies
        its default level. An agency the inventory does not know resolves to None."""
        nodes = self._by_agency.get(agency)
        if not nodes:
            return None
        if len(nodes) == 1:
            return nodes[0].as_event_field()
        node: dict[str, Any] = {"id": "unknown", "agency": agency}
        districts = {member.district for member in nodes}
        if len(districts) == 1:
            node["district"] = districts.pop()
        return node
