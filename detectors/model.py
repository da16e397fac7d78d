"""What the detection core emits: rule descriptions and detections.

A :class:`Detection` is one record of the alert stream. Its ``id`` is deterministic (derived
from the rule and the event ids that built it), so a replay, a retry or a restored Flink job
produces the same id again and the indexer overwrites instead of duplicating. The
``alerts`` package turns detections into ECS alert documents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ingest.schema import Event, get_field, stable_id

DetectionKind = Literal["sigma", "correlation", "anomaly"]


@dataclass(frozen=True)
class RuleInfo:
    """The description of a rule (Sigma rule, correlation rule or detector) that fired."""

    id: str
    title: str
    level: str = "medium"
    tags: tuple[str, ...] = ()
    status: str = "experimental"
    description: str = ""
    author: str = ""
    references: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()
    path: str = ""
    logsource: Mapping[str, str] = field(default_factory=dict)
    # Sigma's optional rule ``name`` (correlation rules reference rules by it or by id).
    name: str = ""
    # False for rules that only feed correlations (Sigma ``generate: false`` semantics).
    generate: bool = True
    # The rule's version (its file's digest) and the rule set version it judged with
    # (detectors.ruleset); empty where the rule did not come from a versioned rule set.
    version: str = ""
    ruleset_version: str = ""

    @property
    def attack_techniques(self) -> tuple[str, ...]:
        """ATT&CK technique ids from ``attack.tNNNN[.NNN]`` tags, upper-cased."""
        return tuple(tag[7:].upper() for tag in self.tags if tag.lower().startswith("attack.t"))

    @property
    def attack_tactics(self) -> tuple[str, ...]:
        """ATT&CK tactic names from ``attack.<tactic>`` tags (not technique ids or groups)."""
        return tuple(
            tag[7:]
            for tag in self.tags
            if tag.lower().startswith("attack.") and tag[7:8].lower() not in ("t", "g", "s")
        )

    def as_record(self) -> dict[str, Any]:
        record = {
            "id": self.id,
            "name": self.title,
            "level": self.level,
            "tags": list(self.tags),
            "status": self.status,
            "description": self.description,
            "author": self.author,
            "references": list(self.references),
            "falsepositives": list(self.falsepositives),
            "path": self.path,
            "logsource": dict(self.logsource),
            "sigma_name": self.name,
        }
        # Only when set: records (and golden files) of unversioned rules keep their shape.
        if self.version:
            record["version"] = self.version
        if self.ruleset_version:
            record["ruleset_version"] = self.ruleset_version
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RuleInfo:
        return cls(
            id=record["id"],
            title=record.get("name", record["id"]),
            level=record.get("level", "medium"),
            tags=tuple(record.get("tags", ())),
            status=record.get("status", "experimental"),
            description=record.get("description", ""),
            author=record.get("author", ""),
            references=tuple(record.get("references", ())),
            falsepositives=tuple(record.get("falsepositives", ())),
            path=record.get("path", ""),
            logsource=dict(record.get("logsource", {})),
            name=record.get("sigma_name", ""),
            version=record.get("version", ""),
            ruleset_version=record.get("ruleset_version", ""),
        )


def event_id(event: Mapping[str, Any]) -> str:
    """The event's own deterministic id, or a hash of its content when a source gave none."""
    given = get_field(event, "event.id")
    if isinstance(given, str) and given:
        return given
    from ingest.schema import canonical_json  # local: only needed for id-less events

    return stable_id("content", canonical_json(event))


@dataclass(frozen=True)
class Detection:
    """One alert-stream record: a rule fired on one event (or, for correlations, on many)."""

    rule: RuleInfo
    events: tuple[Event, ...]
    timestamp: str
    kind: DetectionKind = "sigma"
    group: Mapping[str, Any] = field(default_factory=dict)
    event_ids: tuple[str, ...] = ()
    id: str = ""
    # Set once detections are grouped into an alert (detectors.dedup): how many, since when.
    count: int = 0
    first_seen: str = ""

    @classmethod
    def for_events(
        cls,
        rule: RuleInfo,
        events: Sequence[Event],
        *,
        kind: DetectionKind = "sigma",
        group: Mapping[str, Any] | None = None,
        timestamp: str | None = None,
    ) -> Detection:
        ids = tuple(event_id(event) for event in events)
        moment = timestamp or str(get_field(events[-1], "@timestamp", ""))
        return cls(
            rule=rule,
            events=tuple(events),
            timestamp=moment,
            kind=kind,
            group=dict(group or {}),
            event_ids=ids,
            id=stable_id(kind, rule.id, *ids),
        )

    def as_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "@timestamp": self.timestamp,
            "rule": self.rule.as_record(),
            "group": dict(self.group),
            "event_ids": list(self.event_ids),
            "events": list(self.events),
            "count": self.count,
            "first_seen": self.first_seen,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Detection:
        return cls(
            rule=RuleInfo.from_record(record["rule"]),
            events=tuple(record.get("events", ())),
            timestamp=record["@timestamp"],
            kind=record.get("kind", "sigma"),
            group=dict(record.get("group", {})),
            event_ids=tuple(record.get("event_ids", ())),
            id=record["id"],
            count=int(record.get("count", 0)),
            first_seen=record.get("first_seen", ""),
        )
