"""Routing of events to the anomaly detectors and their keyed logic.

``extract`` pulls the dozen fields detectors use out of an event once; each enabled detector
turns them into ``(group, item)``; the key is ``"0|a|<detector>|<group>"`` so each source,
account, domain or host is its own Flink key and load spreads by group value. The counting
(volume) detectors, whose groups are many per batch, are sharded instead: key
``"0|a|<detector>|#<shard>"`` with the group in the item (``detectors.anomaly.sharded``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
        value = node.get(tail)
        return value if value is not None else node.get(tail) if tail in node else None
    if node is None:
        return event.get(f"{head}.{tail}")
    return get_field(event, f"{head}.{tail}")


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # ``type(...) is dict`` first: the ABC check alone costs more than the lookups it guards.
    return type(value) is dict or isinstance(value, Mapping)


def _outcome(event: Mapping[str, Any]) -> str | None:
    outcome = _at(event, "event", "outcome")
    if outcome in ("failure", "success"):
        category = _at(event, "event", "category")
        categories = category if isinstance(category, list) else [category]
        if "authentication" in categories:
            return str(outcome)
    winlog = event.get("winlog")
    code = winlog.get("event_id") if _is_mapping(winlog) else None
    if code == 4625:
        return "failure"
    if code == 4624:
        return "success"
    return None


def _winlog(event: Mapping[str, Any], name: str) -> Any:
    winlog = event.get("winlog")
    if not _is_mapping(winlog):
        return None
    data = winlog.get("event_data")
    return data.get(name) if _is_mapping(data) else None


def extract(event: Mapping[str, Any], moment: int) -> dict[str, Any]:
    """The fields detectors need, read once per event (ECS first, Windows EventData second)."""
    node = event.get("socflow")
    node = node.get("node") if _is_mapping(node) else None
    if not _is_mapping(node):
        node = {"id": get_field(event, "socflow.node.id"), "agency": get_field(event, "socflow.node.agency")}
    process = event.get("process")
    dns = event.get("dns")
    question = dns.get("question") if _is_mapping(dns) else None
    return {
        "t": moment,
        "id": event_id(event),
        "src": _at(event, "source", "ip") or _winlog(event, "IpAddress"),
        "dst": _at(event, "destination", "ip"),
        "port": _at(event, "destination", "port"),
        "user": _at(event, "user", "name") or _winlog(event, "TargetUserName"),
        "outcome": _outcome(event),
        "dns": question.get("name") if _is_mapping(question) else get_field(event, "dns.question.name"),
        "node": node.get("id"),
        "agency": node.get("agency"),
        "host": _at(event, "host", "name") or get_field(event, "winlog.computer_name"),
        "process": (process.get("executable") or process.get("name")) if _is_mapping(process)
        else (get_field(event, "process.executable") or get_field(event, "process.name")),
    }


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
    # (name, detector, key prefix) per enabled detector: route runs for every event.
    _routes: list[tuple[str, Detector[Any], str]] = field(init=False, repr=False)
    _shards: dict[str, str] = field(init=False, repr=False)

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
        self._routes = [(name, detector, f"0|a|{name}|") for name, detector in self.detectors.items()]
        self._shards = {}  # group -> shard: few groups (nodes, agencies), hashed once each

    def route(self, event: Mapping[str, Any], moment: int) -> list[KeyedItem]:
        if not self.detectors:
            return []
        fields = extract(event, moment)
        pairs: list[KeyedItem] = []
        for name, detector, prefix in self._routes:
            sharded = name in self._sharded
            for group, item in detector.route(fields):
                if not detector.worth_sending(group, item):
                    continue
                if sharded:
                    shard = self._shards.get(group)
                    if shard is None:
                        if len(self._shards) >= 65_536:
                            self._shards.clear()
                        shard = self._shards[group] = shard_of(group)
                    item["g"] = group  # the item is the detector's own, made for this event
                    pairs.append((prefix + shard, item))
                else:
                    pairs.append((prefix + group, item))
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
