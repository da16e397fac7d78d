"""Asset inventory: which node of the government network an event came from.

The inventory (``config/assets.yaml``) lists nodes with address ranges, host names and host
name patterns. Lookup order: the most specific network holding an address of the event
(``host.ip``, then ``source.ip`` for events a node *received*), then an exact host name, then
the first matching host pattern. Unknown sources get the inventory's ``unknown_node`` entry so
that they are tagged, never dropped.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any

import yaml

from ingest.errors import ConfigError
from ingest.schema import Event, get_field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_WILDCARD = re.compile(r"[*?\[]")  # where a host pattern stops being literal text
# libyaml's C loader when PyYAML has it: the inventory is large and read by every collector.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Node:
    """One node of the inventory, as it is attached to events under ``socflow.node``."""

    id: str
    name: str
    agency: str
    district: str
    security_level: int
    kind: str = "unknown"
    role: str = "unknown"
    networks: tuple[IPNetwork, ...] = ()
    hostnames: tuple[str, ...] = ()
    host_patterns: tuple[str, ...] = ()

    def as_event_field(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "agency": self.agency,
            "district": self.district,
            "security_level": self.security_level,
            "kind": self.kind,
            "role": self.role,
        }


@dataclass
class AssetInventory:
    """Nodes and the indexes that find them; build with :meth:`load` or :meth:`from_mapping`."""

    nodes: tuple[Node, ...]
    unknown: Node
    agencies: dict[str, dict[str, Any]] = field(default_factory=dict)
    _by_network: list[tuple[IPNetwork, Node]] = field(default_factory=list, repr=False)
    _by_hostname: dict[str, Node] = field(default_factory=dict, repr=False)
    _by_pattern: list[tuple[str, Node]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        pairs = [(net, node) for node in self.nodes for net in node.networks]
        # Most specific prefix first, so the first containing network is the answer.
        self._by_network = sorted(pairs, key=lambda pair: -pair[0].prefixlen)
        tables: dict[tuple[int, int], dict[int, Node]] = {}
        for network, node in self._by_network:
            table = tables.setdefault((network.version, network.prefixlen), {})
            table.setdefault(int(network.network_address) >> (network.max_prefixlen - network.prefixlen), node)
        self._by_prefix = sorted(((v, p, t) for (v, p), t in tables.items()), key=lambda item: -item[1])
        self._by_hostname = {name.lower(): node for node in self.nodes for name in node.hostnames}
        # Longest pattern first: "d03-c04-*" (a commune) must win over "d03-*" (its district).
        self._by_pattern = sorted(
            ((pattern, node) for node in self.nodes for pattern in node.host_patterns), key=lambda pair: -len(pair[0])
        )
        # Patterns by their literal start: a name is tried only against patterns it starts like
        # (an unknown name tested every one of ~200 patterns, 0.2 ms).
        self._patterns_by_start: dict[str, list[tuple[int, str, Node]]] = {}
        for order, (pattern, node) in enumerate(self._by_pattern):
            start = _WILDCARD.split(pattern, maxsplit=1)[0]
            self._patterns_by_start.setdefault(start, []).append((order, pattern, node))
        self._pattern_start_lengths = sorted({len(start) for start in self._patterns_by_start})
        self._lookup_ip = lru_cache(maxsize=65536)(self._lookup_ip_uncached)
        self._lookup_host = lru_cache(maxsize=65536)(self._lookup_host_uncached)
        # The answer of node_for by the values it reads: events of one host repeat them all.
        self._by_fields: dict[tuple[Any, ...], tuple[Node, dict[str, Any]]] = {}

    @classmethod
    def load(cls, path: Path) -> AssetInventory:
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"cannot read asset inventory: {error}", source=str(path)) from error
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "<inventory>") -> AssetInventory:
        if not isinstance(data, Mapping) or not isinstance(data.get("nodes"), list):
            raise ConfigError("an inventory needs a 'nodes' list", source=source)
        nodes = tuple(_node(entry, f"{source}: node {index}") for index, entry in enumerate(data["nodes"]))
        seen: set[str] = set()
        for node in nodes:
            if node.id in seen:
                raise ConfigError(f"duplicate node id {node.id!r}", source=source)
            seen.add(node.id)
        unknown = _node(
            data.get("unknown_node")
            or {"id": "unknown", "name": "Unknown source", "agency": "unknown", "district": "unknown"},
            f"{source}: unknown_node",
        )
        agencies = {entry["id"]: dict(entry) for entry in data.get("agencies") or []}
        return cls(nodes=nodes, unknown=unknown, agencies=agencies)

    def _lookup_ip_uncached(self, text: str) -> Node | None:
        parsed = _parse_address(text)
        if parsed is None:
            return None
        # One dict probe per prefix length in use (most specific first) instead of testing
        # every network: a sensor meets tens of thousands of distinct addresses.
        value, address_version, bits = parsed
        for version, prefixlen, table in self._by_prefix:
            if version == address_version:
                node = table.get(value >> (bits - prefixlen))
                if node is not None:
                    return node
        return None

    def _lookup_host_uncached(self, name: str) -> Node | None:
        lowered = name.lower()
        short = lowered.split(".", 1)[0]
        node = self._by_hostname.get(lowered) or self._by_hostname.get(short)
        if node:
            return node
        candidates = [entry for length in self._pattern_start_lengths if length <= len(short)
                      for entry in self._patterns_by_start.get(short[:length], ())]
        for _, pattern, candidate in sorted(candidates, key=itemgetter(0)):  # in _by_pattern's order
            if fnmatch.fnmatchcase(short, pattern):
                return candidate
        return None

    def node_for(self, event: Event) -> Node:
        """The node an event belongs to; ``unknown`` when nothing in the inventory matches."""
        return self._node_and_field(event)[0]

    def _node_and_field(self, event: Event) -> tuple[Node, dict[str, Any]]:
        values = _node_fields(event)
        try:
            # Only values of _KEYABLE types are stored, and only such values equal them: a hit
            # needs no type check.
            found = self._by_fields.get(values)
        except TypeError:  # a list or dict among the values
            found = None
        if found is None:
            node = self._node_for_fields(values)
            found = node, node.as_event_field()
            if all(map(_KEYABLE.__contains__, map(type, values))):
                if len(self._by_fields) >= _MAX_CACHED_FIELDS:
                    self._by_fields.clear()
                self._by_fields[values] = found
        return found

    def _node_for_fields(self, values: tuple[Any, ...]) -> Node:
        """The node of the values of _NODE_PATHS."""
        host_ip, observer_ip, *names, source_ip = values
        # The reporting host first; the peer address (source.ip) only when nothing names the
        # host, as for flows seen by a network sensor: a mail server's log of a client's
        # login belongs to the mail server, not to the client's network.
        for addresses in (host_ip, observer_ip):
            node = self._node_for_addresses(addresses)
            if node:
                return node
        for name in names:
            if isinstance(name, str) and name:
                node = self._lookup_host(name)
                if node:
                    return node
        return self._node_for_addresses(source_ip) or self.unknown

    def _node_for_addresses(self, value: Any) -> Node | None:
        for address in _as_list(value):
            node = self._lookup_ip(str(address))
            if node:
                return node
        return None

    def enrich(self, event: Event) -> Event:
        """Attach ``socflow.node`` (in place) and return the event."""
        socflow = event.setdefault("socflow", {})
        socflow["node"] = dict(self._node_and_field(event)[1])  # a copy: events are changed in place downstream
        return event


# What node_for reads, in its order of precedence (see _node_for_fields).
_NODE_PATHS = ("host.ip", "observer.ip", "host.name", "host.hostname", "winlog.computer_name", "observer.hostname",
               "source.ip")
_FLAT_NODE_PATHS = frozenset(_NODE_PATHS)
# Types whose equal values are the same text to node_for (1 == 1.0 == True, yet their str() differ).
_KEYABLE = frozenset({str, type(None)})
_MAX_CACHED_FIELDS = 65536
_EMPTY: Mapping[str, Any] = {}


def _node_fields(event: Event) -> tuple[Any, ...]:
    """``get_field`` of each of _NODE_PATHS, without its general walk unless a flat dotted key is there."""
    if not _FLAT_NODE_PATHS.isdisjoint(event):
        return tuple(get_field(event, path) for path in _NODE_PATHS)
    host, observer = _mapping(event.get("host")), _mapping(event.get("observer"))
    return (host.get("ip"), observer.get("ip"), host.get("name"), host.get("hostname"),
            _mapping(event.get("winlog")).get("computer_name"), observer.get("hostname"),
            _mapping(event.get("source")).get("ip"))


def _mapping(value: Any) -> Mapping[str, Any]:
    # ``type(...) is dict`` and ``is None`` first: the ABC check alone costs more than the lookups.
    if type(value) is dict:
        return value
    return _EMPTY if value is None or not isinstance(value, Mapping) else value


def _parse_address(text: str) -> tuple[int, int, int] | None:
    """``(integer value, IP version, bits)`` of an address, or None if it is not one.

    ``inet_pton`` first: it is many times faster than ``ipaddress.ip_address``, which stays
    as the fallback for the forms only it accepts (an IPv6 zone suffix such as ``%eth0``).
    """
    for family, version, bits in ((socket.AF_INET, 4, 32), (socket.AF_INET6, 6, 128)):
        try:
            return int.from_bytes(socket.inet_pton(family, text), "big"), version, bits
        except (OSError, ValueError):
            continue
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return int(address), address.version, address.max_prefixlen


def _as_list(value: Any) -> Iterable[Any]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return value
    return (value,)


def _node(entry: Any, where: str) -> Node:
    if not isinstance(entry, Mapping):
        raise ConfigError("a node must be a mapping", source=where)
    try:
        level = int(entry.get("security_level", 3))
        if not 1 <= level <= 5:
            raise ValueError(f"security_level {level} is outside 1-5")
        return Node(
            id=str(entry["id"]),
            name=str(entry.get("name", entry["id"])),
            agency=str(entry.get("agency", "unknown")),
            district=str(entry.get("district", "unknown")),
            security_level=level,
            kind=str(entry.get("kind", "unknown")),
            role=str(entry.get("role", "unknown")),
            networks=tuple(ipaddress.ip_network(net, strict=False) for net in entry.get("networks") or ()),
            hostnames=tuple(str(name).lower() for name in entry.get("hostnames") or ()),
            host_patterns=tuple(str(pattern).lower() for pattern in entry.get("host_patterns") or ()),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise ConfigError(f"invalid node: {error}", source=where) from error
