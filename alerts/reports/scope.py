"""What a report covers: the whole province, one agency, one district or one node.

The scope is checked against the asset inventory (an unknown id is a clear error) and becomes
one ``term`` filter on the ``socflow.node.*`` field every alert and event carries. The
inventory's summary (nodes, agencies, districts, security levels), its SHA-256 digest, and the
changes since the inventory of the previous issued report form the scope section.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alerts.reports import ReportError
from ingest.assets import AssetInventory

SCOPE_FIELDS = {"agency": "socflow.node.agency", "district": "socflow.node.district", "node": "socflow.node.id"}


@dataclass(frozen=True)
class Scope:
    kind: str  # province | agency | district | node
    id: str | None = None

    @property
    def label(self) -> str:
        return "province" if self.kind == "province" else f"{self.kind} {self.id}"

    def filter(self) -> list[dict[str, Any]]:
        """The filter clause(s) selecting this scope's documents (none for the province)."""
        if self.kind == "province":
            return []
        return [{"term": {SCOPE_FIELDS[self.kind]: self.id}}]


@dataclass(frozen=True)
class Inventory:
    """The asset inventory with the file's digest."""

    assets: AssetInventory
    digest: str
    path: str
    districts: Mapping[str, str]

    @classmethod
    def load(cls, path: Path) -> Inventory:
        raw = path.read_bytes()
        data = yaml.safe_load(raw)
        districts = {str(entry["id"]): str(entry.get("name", "")) for entry in data.get("districts") or []}
        return cls(AssetInventory.from_mapping(data, source=str(path)), hashlib.sha256(raw).hexdigest(),
                   path.name, districts)

    def snapshot(self) -> dict[str, list[Any]]:
        """node id -> [agency, district, security level]: what the next report compares with."""
        return {node.id: [node.agency, node.district, node.security_level] for node in self.assets.nodes}


def parse_scope(text: str | None, inventory: Inventory) -> Scope:
    """``province`` (default), ``agency ID``/``agency:ID``, ``district ID``, ``node ID``."""
    if not text or text == "province":
        return Scope("province")
    kind, _, ident = text.replace(":", " ").partition(" ")
    ident = ident.strip()
    if kind not in SCOPE_FIELDS or not ident:
        raise ReportError(f"not a scope: {text!r}; use province, agency ID, district ID or node ID")
    known = {"agency": {n.agency for n in inventory.assets.nodes} | set(inventory.assets.agencies),
             "district": {n.district for n in inventory.assets.nodes} | set(inventory.districts),
             "node": {n.id for n in inventory.assets.nodes}}[kind]
    if ident not in known:
        raise ReportError(f"unknown {kind} id {ident!r}: not in the asset inventory {inventory.path}")
    return Scope(kind, ident)


def scope_section(inventory: Inventory, scope: Scope, previous: Mapping[str, list[Any]] | None) -> dict[str, Any]:
    """Nodes, agencies, districts and security levels in scope, and what changed since ``previous``."""
    field = {"agency": "agency", "district": "district", "node": "id"}.get(scope.kind)
    nodes = [n for n in inventory.assets.nodes if field is None or getattr(n, field) == scope.id]
    levels = Counter(node.security_level for node in nodes)
    current = inventory.snapshot()
    changes: list[dict[str, Any]] = []
    if previous is not None:
        for node_id in sorted(set(current) | set(previous)):
            before, after = previous.get(node_id), current.get(node_id)
            if before != after:
                what = "added" if before is None else "removed" if after is None else "changed"
                changes.append({"node": node_id, "change": what, "before": before, "after": after})
    return {
        "inventory_file": inventory.path,
        "inventory_sha256": inventory.digest,
        "nodes": len(nodes),
        "agencies": len({node.agency for node in nodes}),
        "districts": len({node.district for node in nodes}),
        "nodes_by_level": {str(level): levels.get(level, 0) for level in range(1, 6)},
        "node_list": [{"id": n.id, "name": n.name, "agency": n.agency, "district": n.district,
                       "security_level": n.security_level, "kind": n.kind} for n in nodes],
        "changes": changes,
        "changes_compared": previous is not None,
    }
