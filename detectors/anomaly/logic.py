"""Routing of events to the anomaly detectors and their keyed logic.

``extract`` pulls the dozen fields detectors use out of an event once; each enabled detector
turns them into ``(group, item)``; the key is ``"0|a|<detector>|<group>"`` so each source,
account, domain or node is its own Flink key and load spreads by group value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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


def _first(event: Mapping[str, Any], *paths: str) -> Any:
    for path in paths:
        value = get_field(event, path)
        if value not in (None, ""):
            return value
    return None


def _outcome(event: Mapping[str, Any]) -> str | None:
    outcome = get_field(event, "event.outcome")
    if outcome in ("failure", "success"):
        category = get_field(event, "event.category")
        categories = category if isinstance(category, list) else [category]
        if "authentication" in categories:
            return str(outcome)
    code = get_field(event, "winlog.event_id")
    if code == 4625:
        return "failure"
    if code == 4624:
        return "success"
    return None


def extract(event: Mapping[str, Any], moment: int) -> dict[str, Any]:
    """The fields detectors need, read once per event (ECS first, Windows EventData second)."""
    return {
        "t": moment,
        "id": event_id(event),
        "src": _first(event, "source.ip", "winlog.event_data.IpAddress"),
        "dst": get_field(event, "destination.ip"),
        "port": get_field(event, "destination.port"),
        "user": _first(event, "user.name", "winlog.event_data.TargetUserName"),
        "outcome": _outcome(event),
        "dns": get_field(event, "dns.question.name"),
        "node": get_field(event, "socflow.node.id"),
        "agency": get_field(event, "socflow.node.agency"),
        "host": _first(event, "host.name", "winlog.computer_name"),
        "process": _first(event, "process.executable", "process.name"),
    }


@dataclass
class AnomalyLogic:
    """The enabled detectors, their routing and their per-key ``step`` / ``on_timer``."""

    settings: DetectorSettings
    detectors: dict[str, Detector[Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.detectors = {}
        for name, cls in _CLASSES.items():
            section = getattr(self.settings, name)
            if section.enabled:
                self.detectors[name] = cls(section, detector_rule(name, section.level))

    def route(self, event: Mapping[str, Any], moment: int) -> list[KeyedItem]:
        if not self.detectors:
            return []
        fields = extract(event, moment)
        pairs: list[KeyedItem] = []
        for name, detector in self.detectors.items():
            for group, item in detector.route(fields):
                pairs.append((f"0|a|{name}|{group}", item))
        return pairs

    def _parse(self, key: str) -> tuple[Detector[Any], str]:
        _level, _kind, name, group = key.split("|", 3)
        return self.detectors[name], group

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
