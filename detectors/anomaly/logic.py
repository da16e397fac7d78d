"""Routing of events to the anomaly detectors and their keyed logic.

Routing runs for every event of the job, and most events concern a few detectors only (a
process creation: the volume ones and new_process). So the few fields that decide which
detectors can route an event (``GATES``) are read first; the detectors whose ``needs`` the
event lacks are skipped, and of the other fields only those the remaining detectors read are
looked up. Each routed detector turns the fields into ``(group, item)``; the key is
``"0|a|<detector>|<group>"`` so each source, account, domain or host is its own Flink key and
load spreads by group value. The counting (volume) detectors, whose groups are many per
batch, are sharded instead: key ``"0|a|<detector>|#<shard>"`` with the group in the item
(``detectors.anomaly.sharded``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from detectors.anomaly.config import DetectorSettings
from detectors.anomaly.detectors import (
    AgencyVolumeSpike,
    Beacon,
    BruteForce,
    Detector,
    DnsTunnel,
    HostScan,
    NewAdminSource,
    NewProcess,
    NodeVolumeSpike,
    PortScan,
    Spray,
)
from detectors.anomaly.sharded import SHARD_PREFIX, Sharded, shard_of
from detectors.correlation.engine import event_time_ms
from detectors.model import Detection, RuleInfo, event_id
from ingest.schema import get_field, stable_id

KeyedItem = tuple[str, dict[str, Any]]

# Rule descriptions of the detectors (ATT&CK tags where one technique fits).
_RULES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "portscan": ("Port scan from one source", ("attack.discovery", "attack.t1046"),
                 "One source reached many distinct destination ports within a window."),
    "hostscan": ("Host sweep across the intranet", ("attack.discovery", "attack.t1018"),
                 "One source reached many distinct internal hosts within a window."),
    "bruteforce": ("Brute force on one account", ("attack.credential-access", "attack.t1110.001"),
                   "Many failed logons of one account within a window."),
    "spray": ("Password spraying from one source", ("attack.credential-access", "attack.t1110.003"),
              "Failed logons over many distinct accounts from one source."),
    "beacon": ("Beaconing to a remote host", ("attack.command-and-control", "attack.t1071"),
               "Connections from a source to a destination at regular intervals."),
    "dns_tunnel": ("DNS tunneling or exfiltration over DNS", ("attack.exfiltration", "attack.t1048.003",
                                                              "attack.t1071.004"),
                   "Many long, high-entropy subdomain labels or subdomains of one domain."),
    "volume_node": ("Event volume spike on a node", (), "Events per bucket far above the node's baseline."),
    "volume_agency": ("Event volume spike in an agency", (), "Events per bucket far above the agency's baseline."),
    "new_process": ("Process never seen before on this host", ("attack.execution",),
                    "A process that the host had not run during or since its learning period."),
    "new_admin_source": ("New logon source for an admin account", ("attack.lateral-movement", "attack.t1078"),
                         "An admin account logged on from an address it had not used before."),
}

_CLASSES: dict[str, type[Detector[Any]]] = {
    "portscan": PortScan,
    "hostscan": HostScan,
    "bruteforce": BruteForce,
    "spray": Spray,
    "beacon": Beacon,
    "dns_tunnel": DnsTunnel,
    "volume_node": NodeVolumeSpike,
    "volume_agency": AgencyVolumeSpike,
    "new_process": NewProcess,
    "new_admin_source": NewAdminSource,
}


def detector_rule(name: str, level: str) -> RuleInfo:
    title, tags, description = _RULES[name]
    return RuleInfo(
        id=stable_id("socflow-anomaly", name),
        title=title,
        level=level,
        tags=tags,
        description=description,
        author="socflow",
        name=f"socflow_{name}",
    )


def _at(event: Mapping[str, Any], head: str, tail: str) -> Any:
    """``event[head][tail]`` fast, else the general dotted lookup (flat dotted keys)."""
    node = event.get(head)
    if node.__class__ is dict:
        return node.get(tail)
    if node is None:
        return event.get(f"{head}.{tail}")
    return get_field(event, f"{head}.{tail}")


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # ``type(...) is dict`` first: the ABC check alone costs more than the lookups it guards.
    return type(value) is dict or isinstance(value, Mapping)


def _authentication(event: Mapping[str, Any], outcome: Any) -> str | None:
    """The ECS outcome of a logon event (``event.category`` holding authentication)."""
    if outcome in ("failure", "success"):
        category = _at(event, "event", "category")
        categories = category if isinstance(category, list) else [category]
        if "authentication" in categories:
            return str(outcome)
    return None


def _winlog(event: Mapping[str, Any], name: str) -> Any:
    winlog = event.get("winlog")
    if not _is_mapping(winlog):
        return None
    data = winlog.get("event_data")
    return data.get(name) if _is_mapping(data) else None


# ``_at`` inlined for the nested dict: these run per routed event, and a call costs more
# than the lookups.
def _source(event: Mapping[str, Any]) -> Any:
    node = event.get("source")
    return (node.get("ip") if node.__class__ is dict else _at(event, "source", "ip")) or _winlog(event, "IpAddress")


def _user(event: Mapping[str, Any]) -> Any:
    node = event.get("user")
    return (node.get("name") if node.__class__ is dict else _at(event, "user", "name")) or _winlog(
        event, "TargetUserName")


def _host(event: Mapping[str, Any]) -> Any:
    node = event.get("host")
    return (node.get("name") if node.__class__ is dict else _at(event, "host", "name")) or get_field(
        event, "winlog.computer_name")


def _gates(event: Mapping[str, Any]) -> tuple[Any, Any, Any, Any, Any, Any, Any]:
    """The ``GATES`` fields of an event: nested dicts read directly (what normalized events
    hold), the general lookups for other shapes."""
    destination = event.get("destination")
    if destination.__class__ is dict:
        dst, port = destination.get("ip"), destination.get("port")
    elif destination is None:
        dst, port = event.get("destination.ip"), event.get("destination.port")
    else:
        dst, port = _at(event, "destination", "ip"), _at(event, "destination", "port")
    meta = event.get("event")
    outcome = meta.get("outcome") if meta.__class__ is dict else _at(event, "event", "outcome")
    if outcome is not None:
        outcome = _authentication(event, outcome)
    if outcome is None:  # Windows logons: 4624 succeeded, 4625 failed
        winlog = event.get("winlog")
        code = winlog.get("event_id") if winlog.__class__ is dict or _is_mapping(winlog) else None
        outcome = "failure" if code == 4625 else "success" if code == 4624 else None
    dns = event.get("dns")
    if dns is None:
        name = event.get("dns.question.name")  # what get_field finds without a nested "dns"
    else:
        question = dns.get("question") if _is_mapping(dns) else None
        name = question.get("name") if _is_mapping(question) else get_field(event, "dns.question.name")
    node = event.get("socflow")
    node = node.get("node") if node.__class__ is dict or _is_mapping(node) else None
    if node.__class__ is dict or _is_mapping(node):
        node_id, agency = node.get("id"), node.get("agency")
    else:
        node_id, agency = get_field(event, "socflow.node.id"), get_field(event, "socflow.node.agency")
    process = event.get("process")
    if process is None:  # what get_field finds without a nested "process"
        process = event.get("process.executable") or event.get("process.name")
    elif process.__class__ is dict or _is_mapping(process):
        process = process.get("executable") or process.get("name")
    else:
        process = get_field(event, "process.executable") or get_field(event, "process.name")
    return dst, port, outcome, name, node_id, agency, process


# The fields read first (``_gates``): which of them an event lacks decides which detectors can
# route it. Their order is the bit order of ``AnomalyLogic.route``'s mask.
GATES = ("dst", "port", "outcome", "dns", "node", "agency", "process")
# The other fields, read only for the detectors that route the event (ECS first, Windows
# EventData second).
_READERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {"src": _source, "user": _user, "host": _host}


def _shard_key(shard_keys: dict[str, str], prefix: str, group: str) -> str:
    if len(shard_keys) >= 65_536:
        shard_keys.clear()
    key = shard_keys[group] = prefix + shard_of(group)
    return key


Selection = tuple[tuple[tuple[Detector[Any], str, dict[str, str] | None], ...],
                  tuple[tuple[str, Callable[[Mapping[str, Any]], Any]], ...]]


# Detectors that only count items: a batch's items are compacted to one per second.
COUNTING = ("volume_node", "volume_agency")


def is_counting_key(key: str) -> bool:
    return key.split("|", 3)[2] in COUNTING if key.count("|") >= 3 else False


def compact_counts(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One item per group and second of event time: the latest (time, id), the summed count."""
    by_second: dict[tuple[int, str], dict[str, Any]] = {}
    for item in items:
        group = str(item.get("g", ""))
        second = (int(item["t"]) // 1000, group)
        count = int(item.get("c", 1))
        kept = by_second.get(second)
        if kept is None:
            by_second[second] = {"t": int(item["t"]), "id": item["id"], "c": count}
            if "g" in item:
                by_second[second]["g"] = group
            continue
        kept["c"] += count
        if (int(item["t"]), str(item["id"])) > (kept["t"], str(kept["id"])):
            kept["t"], kept["id"] = int(item["t"]), item["id"]
    return [by_second[second] for second in sorted(by_second)]


@dataclass
class AnomalyLogic:
    """The enabled detectors, their routing and their per-key ``step`` / ``on_timer``."""

    settings: DetectorSettings
    detectors: dict[str, Detector[Any]] = field(init=False)
    _keys: dict[str, tuple[Detector[Any], str]] = field(init=False, repr=False)
    _sharded: dict[str, Sharded] = field(init=False, repr=False)
    # Per set of gate fields an event lacks (a bit mask over GATES): (detector, key prefix,
    # its shard keys when sharded) of the detectors that can route it, and the other fields
    # they read.
    _selections: dict[int, Selection] = field(init=False, repr=False)
    # group -> key of its shard, per sharded detector: few groups (nodes, agencies), hashed once each
    _shard_keys: dict[str, dict[str, str]] = field(init=False, repr=False)
    _moments: dict[str, int] = field(init=False, repr=False)  # @timestamp text -> epoch ms

    def __post_init__(self) -> None:
        self.detectors = {}
        for name, cls in _CLASSES.items():
            section = getattr(self.settings, name)
            if section.enabled:
                self.detectors[name] = cls(section, detector_rule(name, section.level))
        self._sharded = {name: Sharded(detector) for name, detector in self.detectors.items() if name in COUNTING}
        # Keys are parsed on every step and timer: a bounded cache saves the splitting
        # (a plain dict, so the logic still pickles into Flink operators).
        self._keys = {}
        self._selections = {}  # at most 2 ** len(GATES), filled as events show them
        self._shard_keys = {name: {} for name in self._sharded}
        self._moments = {}

    def event_time(self, event: Mapping[str, Any]) -> int | None:
        """``event_time_ms`` of an event, each ``@timestamp`` text parsed once while it recurs:
        many events share one (a collector's burst, a millisecond of a busy source)."""
        stamp = event.get("@timestamp")
        if stamp.__class__ is not str:
            return event_time_ms(event)
        moment = self._moments.get(stamp)
        if moment is None:
            moment = event_time_ms(event)
            if moment is not None:
                if len(self._moments) >= 4096:
                    self._moments.clear()
                self._moments[stamp] = moment
        return moment

    def _select(self, lacking: int) -> Selection:
        absent = {gate for bit, gate in enumerate(GATES) if lacking >> bit & 1}
        routes = tuple((detector, f"0|a|{name}|", self._shard_keys[name] if name in self._sharded else None)
                       for name, detector in self.detectors.items() if absent.isdisjoint(detector.needs))
        wanted = {name for detector, _prefix, _keys in routes for name in detector.reads}
        selection = routes, tuple((name, reader) for name, reader in _READERS.items() if name in wanted)
        self._selections[lacking] = selection
        return selection

    def route(self, event: Mapping[str, Any], moment: int) -> list[KeyedItem]:
        dst, port, outcome, name, node_id, agency, process = _gates(event)
        lacking = ((dst is None) | (port is None) << 1 | (outcome is None) << 2 | (name is None) << 3
                   | (node_id is None) << 4 | (agency is None) << 5 | (process is None) << 6)
        routes, readers = self._selections.get(lacking) or self._select(lacking)
        if not routes:
            return []
        meta = event.get("event")
        # A flat "event.id" key is what event_id's general lookup would find first.
        ident = meta.get("id") if meta.__class__ is dict and "event.id" not in event else None
        if ident.__class__ is not str or not ident:
            ident = event_id(event)
        fields = {"t": moment, "id": ident, "dst": dst, "port": port, "outcome": outcome, "dns": name,
                  "node": node_id, "agency": agency, "process": process}
        for field_name, reader in readers:
            fields[field_name] = reader(event)
        pairs: list[KeyedItem] = []
        for detector, prefix, shard_keys in routes:
            routed = detector.route(fields)
            if routed is None:
                continue
            group, item = routed
            if shard_keys is None:
                pairs.append((prefix + group, item))
                continue
            key = shard_keys.get(group) or _shard_key(shard_keys, prefix, group)
            item["g"] = group  # the item is the detector's own, made for this event
            pairs.append((key, item))
        return pairs

    def _parse(self, key: str) -> tuple[Detector[Any], str]:
        found = self._keys.get(key)
        if found is None:
            _level, _kind, name, group = key.split("|", 3)
            if len(self._keys) >= 65_536:
                self._keys.clear()
            detector = self._sharded[name] if group.startswith(SHARD_PREFIX) else self.detectors[name]
            found = self._keys[key] = (detector, group)
        return found


    def new_state(self, key: str) -> Any:
        return self._parse(key)[0].new_state()

    def step(self, key: str, state: Any, item: Mapping[str, Any]) -> tuple[Any, list[Detection], list[KeyedItem]]:
        detector, group = self._parse(key)
        state, detections = detector.step(state, item, group)
        return state, detections, []

    def on_timer(self, key: str, state: Any, now: int) -> tuple[Any, list[Detection], list[KeyedItem]]:
        detector, group = self._parse(key)
        state, detections = detector.on_timer(state, now, group)
        return state, detections, []

    def next_timer(self, key: str, state: Any) -> int | None:
        return self._parse(key)[0].next_timer(state)

    def is_empty(self, key: str, state: Any) -> bool:
        return state is None

    def encode(self, key: str, state: Any) -> dict[str, Any]:
        return state.to_snapshot()

    def decode(self, key: str, snapshot: Mapping[str, Any]) -> Any:
        return self._parse(key)[0].decode(snapshot)
