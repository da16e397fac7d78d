"""Deduplication and suppression of detections: one alert per rule, entity and window.

Analysts lose hours to alert storms: the same rule firing on the same host a hundred times is
one incident. Detections of one rule on one entity within a tumbling window of event time
become one alert whose ``count``, ``first_seen`` and ``last_seen`` grow as detections arrive.

- The alert id is ``stable_id(rule, entity, window start)``: it does not depend on the order
  in which detections arrive, so a replay or a restored job builds the same alerts.
- Each update is emitted with ``version`` = number of distinct detections folded in; the
  indexer writes with external versioning, so Elasticsearch keeps the newest version and a
  retry of an older one is a no-op.
- A detection already folded in (same detection id, e.g. after a restore) changes nothing.

Suppressions (``config/suppressions.yaml``) drop detections an admin has decided are expected
(per rule, host, or field value, each with an expiry) and are counted per suppression.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from detectors.errors import DetectorError
from detectors.model import Detection
from ingest.logs import log_event
from ingest.schema import get_field, parse_timestamp, stable_id

LOGGER = logging.getLogger(__name__)

SNAPSHOT_VERSION = 1
MAX_EVENTS = 10  # events kept in the alert document: the first and the most recent ones
MAX_IDS = 500  # detection ids remembered for idempotence; beyond this, counts may repeat

# libyaml's safe loader when built: the same documents, read at every start-up 10x as fast.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class DedupPolicy:
    """How detections group into alerts."""

    window_s: int = 3600
    # Sigma single-event detections: the first of these fields present names the entity.
    entity_fields: tuple[str, ...] = ("source.ip", "host.name", "user.name")

    def key(self, detection: Detection) -> tuple[str, str, int]:
        """``(state key, alert id, window start ms)`` of a detection."""
        if detection.group:
            entity = ",".join(f"{k}={detection.group[k]}" for k in sorted(detection.group))
        else:
            event = detection.events[-1] if detection.events else {}
            entity = next((f"{name}={value}" for name in self.entity_fields
                           if (value := get_field(event, name)) not in (None, "")), "-")
        moment = int(parse_timestamp(detection.timestamp).timestamp() * 1000)
        start = moment - moment % (self.window_s * 1000)
        alert_id = stable_id("alert", detection.rule.id, entity, start)
        return f"{detection.rule.id}|{entity}|{start}", alert_id, start


@dataclass(slots=True)
class AlertState:
    """The growing alert of one (rule, entity, window)."""

    alert_id: str
    first_seen: str
    last_seen: str
    count: int = 0
    seen: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)

    def to_snapshot(self) -> dict[str, Any]:
        return {"v": SNAPSHOT_VERSION, "alert_id": self.alert_id, "first_seen": self.first_seen,
                "last_seen": self.last_seen, "count": self.count, "seen": self.seen, "events": self.events,
                "event_ids": self.event_ids}

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> AlertState:
        if snapshot.get("v") != SNAPSHOT_VERSION:
            raise DetectorError(f"unknown alert-state snapshot version {snapshot.get('v')!r}")
        return cls(alert_id=snapshot["alert_id"], first_seen=snapshot["first_seen"],
                   last_seen=snapshot["last_seen"], count=snapshot["count"], seen=list(snapshot["seen"]),
                   events=list(snapshot["events"]), event_ids=list(snapshot["event_ids"]))


def step(state: AlertState | None, detection: Detection, alert_id: str) -> tuple[AlertState, Detection | None]:
    """Fold one detection into its alert; return the new state and the updated alert (or None)."""
    if state is None:
        state = AlertState(alert_id=alert_id, first_seen=detection.timestamp, last_seen=detection.timestamp)
    if detection.id in state.seen:
        return state, None  # replayed after a restore: already counted
    state.count += 1
    if len(state.seen) < MAX_IDS:
        state.seen.append(detection.id)
    state.first_seen = min(state.first_seen, detection.timestamp)
    state.last_seen = max(state.last_seen, detection.timestamp)
    # Kept in event-time order whatever the arrival order, so replay and Flink agree: the
    # first events show how it started, the last ones how it goes on.
    merged = sorted([*state.events, *detection.events], key=_event_order)
    half = MAX_EVENTS // 2
    state.events = merged if len(merged) <= MAX_EVENTS else [*merged[:half], *merged[-half:]]
    state.event_ids = sorted({*state.event_ids, *detection.event_ids})[:MAX_IDS]
    alert = Detection(rule=detection.rule, events=tuple(state.events), timestamp=state.last_seen,
                      kind=detection.kind, group=detection.group, event_ids=tuple(state.event_ids),
                      id=state.alert_id, count=state.count, first_seen=state.first_seen)
    return state, alert


def _event_order(event: Mapping[str, Any]) -> tuple[str, int, str]:
    """Event time, then position in its source, then id: a total order that replays agree on."""
    offset = get_field(event, "log.offset")
    return (str(get_field(event, "@timestamp", "")), offset if isinstance(offset, int) else -1,
            str(get_field(event, "event.id", "")))


class Deduplicator:
    """Runs :func:`step` over a stream of detections without Flink (replay, tests)."""

    def __init__(self, policy: DedupPolicy) -> None:
        self.policy = policy
        self.states: dict[str, AlertState] = {}
        self.latest: dict[str, Detection] = {}

    def add(self, detection: Detection) -> Detection | None:
        key, alert_id, _start = self.policy.key(detection)
        state, alert = step(self.states.get(key), detection, alert_id)
        self.states[key] = state
        if alert is not None:
            self.latest[alert.id] = alert
        return alert

    def alerts(self) -> list[Detection]:
        """The newest version of every alert (what Elasticsearch ends up holding)."""
        return sorted(self.latest.values(), key=lambda alert: (alert.first_seen, alert.rule.id, alert.id))


@dataclass(frozen=True)
class Suppression:
    """One admin decision: detections matching all given conditions are expected until ``until``."""

    name: str
    reason: str
    until: datetime
    rule_id: str | None = None
    host: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)

    def matches(self, detection: Detection) -> bool:
        if self.rule_id and self.rule_id != detection.rule.id:
            return False
        moment = parse_timestamp(detection.timestamp)
        if moment >= self.until:
            return False  # expired: the decision must be renewed, not silently kept
        event = detection.events[-1] if detection.events else {}
        if self.host and str(get_field(event, "host.name", "")).lower() != self.host.lower():
            return False
        return all(str(get_field(event, name, "")).lower() == str(value).lower() for name, value in self.fields.items())


@dataclass
class Suppressor:
    """Applies suppressions and counts what each one dropped."""

    suppressions: Sequence[Suppression] = ()
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Suppressor:
        if not path.exists():
            return cls()
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}  # noqa: S506 - a safe loader
            entries = data.get("suppressions") or []
            suppressions = [
                Suppression(
                    name=str(entry["name"]), reason=str(entry["reason"]),
                    until=_aware(entry["until"]), rule_id=entry.get("rule"), host=entry.get("host"),
                    fields={str(k): str(v) for k, v in (entry.get("fields") or {}).items()},
                )
                for entry in entries
            ]
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as error:
            raise DetectorError(f"invalid suppressions: {error!r}", source=str(path)) from error
        return cls(suppressions=suppressions)

    @classmethod
    def load_all(cls, paths: Sequence[Path]) -> Suppressor:
        """The suppressions of several files, in order (the configured file, then the console's
        ``<data-dir>/suppressions.yaml``); a missing file has none; a name used twice is an error."""
        suppressions: list[Suppression] = []
        for path in paths:
            for suppression in cls.load(path).suppressions:
                if any(known.name == suppression.name for known in suppressions):
                    raise DetectorError(f"suppression name {suppression.name!r} is used twice", source=str(path))
                suppressions.append(suppression)
        return cls(suppressions=suppressions)

    def suppressed_by(self, detection: Detection) -> str | None:
        for suppression in self.suppressions:
            if suppression.matches(detection):
                self.counts[suppression.name] = self.counts.get(suppression.name, 0) + 1
                return suppression.name
        return None


class ReloadingSuppressor:
    """A :class:`Suppressor` over files, loaded again when one of them changes, so a suppression
    an admin adds in the console applies in a running job, not only from its next start.

    ``refresh(now)`` looks at the files' modification stamps at most every ``interval_s`` of
    ``now`` (a monotonic clock the caller passes). A file that no longer loads keeps the
    suppressions in force and is reported once per change (``last_error``); counts carry over.
    """

    def __init__(self, paths: Sequence[Path], *, interval_s: float = 10.0) -> None:
        self.paths = tuple(paths)
        self.interval_s = interval_s
        self.suppressor = Suppressor.load_all(self.paths)
        self.last_error: str | None = None
        self._stamp = self._stamps()
        self._checked = float("-inf")

    def _stamps(self) -> tuple[tuple[int, int] | None, ...]:
        stamps: list[tuple[int, int] | None] = []
        for path in self.paths:
            try:
                stat = path.stat()
            except OSError:
                stamps.append(None)
                continue
            stamps.append((stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)

    def refresh(self, now: float) -> bool:
        """Reload if a file changed; True when the suppressions in force changed."""
        if now - self._checked < self.interval_s:
            return False
        self._checked = now
        stamp = self._stamps()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            loaded = Suppressor.load_all(self.paths)
        except DetectorError as error:
            self.last_error = str(error)
            log_event(LOGGER, "suppressions_not_reloaded", logging.WARNING, error=self.last_error)
            return False
        self.last_error = None
        loaded.counts = self.suppressor.counts
        self.suppressor = loaded
        log_event(LOGGER, "suppressions_reloaded", count=len(loaded.suppressions))
        return True


def _aware(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else parse_timestamp(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
