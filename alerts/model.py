"""Alert documents: a detection shaped as an ECS alert for Elasticsearch.

The document follows the Elastic Common Schema so Kibana and other ECS tools read it as it
is: ``event.kind: alert``, ``rule.*``, ``threat.*`` (MITRE ATT&CK from the rule's tags), the
entity fields of the triggering event (``host``, ``source``, ``destination``, ``user``,
``process``, ``url``, ``log``, ``winlog.record_id``), plus ``socflow.node`` and the triage
fields under ``socflow.alert`` (status, assignee, first/last seen, count, risk: see
:func:`risk_score`) and the analysts' work under ``socflow.triage`` (alerts.triage).

Its ``_id`` is the detection id, and it lands in a monthly index chosen by the alert's event
time, so the same detection always goes to the same index under the same id: a replay or a
retry overwrites, never duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from detectors.model import Detection
from ingest.schema import get_field, parse_timestamp, set_field

# ECS top-level objects copied from the (last) triggering event into the alert.
ENTITY_FIELDS = ("host", "source", "destination", "user", "process", "url", "dns", "network", "log", "file")
SEVERITY = {"informational": 21, "low": 21, "medium": 47, "high": 73, "critical": 99}
# Risk = rule level weight x the node's security level (1-5), plus a bonus for data-center
# systems (what the whole province depends on): 1..30, stored so the queue sorts on it cheaply.
LEVEL_WEIGHT = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
DEFAULT_SECURITY_LEVEL = 3  # the inventory's unknown_node level
DATA_CENTER_BONUS = 5
# ``socflow.node`` of a detection group, or None (alerts.nodes.NodeResolver).
NodeOfGroup = Callable[[Mapping[str, Any]], dict[str, Any] | None]


def index_name(prefix: str, timestamp: str) -> str:
    """Monthly index for an alert's event time, e.g. ``socflow-alerts-2026.11``."""
    moment = parse_timestamp(timestamp)
    return f"{prefix}-{moment:%Y.%m}"


_ATTACK_ID = re.compile(r"^attack\.[tgs]\d", re.IGNORECASE)


def _threat(tags: tuple[str, ...]) -> dict[str, Any]:
    techniques = [tag[7:].upper() for tag in tags if _ATTACK_ID.match(tag) and tag[7:8].lower() == "t"]
    # Tactics are names (``attack.stealth``); techniques, groups and software are ids (t1027, g0016, s0002).
    tactics = [
        tag[7:].replace("_", " ").replace("-", " ").title()
        for tag in tags
        if tag.lower().startswith("attack.") and not _ATTACK_ID.match(tag)
    ]
    threat: dict[str, Any] = {"framework": "MITRE ATT&CK"}
    if techniques:
        threat["technique"] = {"id": techniques}
    if tactics:
        threat["tactic"] = {"name": tactics}
    return threat


def risk_score(level: str, node: Mapping[str, Any] | None) -> int:
    """The alert's triage risk: level weight x security level (+5 on a data-center node)."""
    node = node or {}
    try:
        security = int(node.get("security_level") or DEFAULT_SECURITY_LEVEL)
    except (TypeError, ValueError):
        security = DEFAULT_SECURITY_LEVEL
    security = min(max(security, 1), 5)
    bonus = DATA_CENTER_BONUS if node.get("kind") == "data-center" else 0
    return LEVEL_WEIGHT.get(level, LEVEL_WEIGHT["medium"]) * security + bonus


def to_document(detection: Detection, node_of_group: NodeOfGroup | None = None) -> dict[str, Any]:
    """The ECS alert document of a detection (without ``_id``/``_index``).

    ``node_of_group`` names the node when the last event has none (detector alerts, whose
    events are only ids and times); without it, or when it finds none, the node is ``unknown``.
    """
    rule = detection.rule
    last = detection.events[-1] if detection.events else {}
    node = get_field(last, "socflow.node")
    if not node and node_of_group is not None:
        node = node_of_group(detection.group)
    first_time = str(get_field(detection.events[0], "@timestamp", detection.timestamp)) if detection.events else ""
    node = node or {"id": "unknown"}
    document: dict[str, Any] = {
        "@timestamp": detection.timestamp,
        "event": {
            "kind": "alert",
            "id": detection.id,
            "severity": SEVERITY.get(rule.level, 47),
            "dataset": get_field(last, "event.dataset"),
            "original_ids": list(detection.event_ids),
        },
        "rule": {
            "id": rule.id,
            "name": rule.title,
            "description": rule.description,
            "level": rule.level,
            "tags": list(rule.tags),
            "author": rule.author,
            "reference": list(rule.references),
            "ruleset": detection.kind,
        },
        "threat": _threat(rule.tags),
        "socflow": {
            "node": node,
            "logsource": get_field(last, "socflow.logsource") or {},
            "alert": {
                "kind": detection.kind,
                "status": "open",
                "assignee": None,
                "first_seen": detection.first_seen or first_time or detection.timestamp,
                "last_seen": detection.timestamp,
                "count": detection.count or len(detection.events) or 1,
                "version": detection.count or 1,
                "risk": risk_score(rule.level, node),
                "group": dict(detection.group),
            },
        },
        "events": [_trim(event) for event in detection.events],
    }
    if rule.version:
        document["rule"]["version"] = rule.version
    if rule.ruleset_version:
        document["socflow"]["ruleset"] = {"version": rule.ruleset_version}
    for name in ENTITY_FIELDS:
        value = last.get(name) if isinstance(last, Mapping) else None
        if value:
            document[name] = value
    # Correlation and detector alerts carry their entity in the group ("source.ip": ...):
    # put it where analysts and ECS tools look for it.
    for name, value in detection.group.items():
        if "." in name and name.split(".", 1)[0] in ENTITY_FIELDS and get_field(document, name) is None:
            set_field(document, name, value)
    record_id = get_field(last, "winlog.record_id")
    if record_id is not None:
        document["winlog"] = {
            "record_id": record_id,
            "channel": get_field(last, "winlog.channel"),
            "event_id": get_field(last, "winlog.event_id"),
            "computer_name": get_field(last, "winlog.computer_name"),
        }
    return document


def _trim(event: Mapping[str, Any]) -> dict[str, Any]:
    """The triggering event as stored inside the alert (``socflow`` bookkeeping removed)."""
    return {key: value for key, value in event.items() if key != "socflow"}
