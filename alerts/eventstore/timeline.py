"""Timelines: the stored events of one entity (host, user or source address) around a time.

The query the triage console runs for an alert's context, and ``socflow events`` prints:
events whose ``host.name`` / ``user.name`` (case-insensitively: Windows and mail write the same
account in several cases) or ``source.ip`` (an address or a CIDR block) is the entity, within
a window centred on a time or on an alert, oldest first, read with a point in time and
``search_after`` (constant cost per page on a month of events, unlike deep ``from``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from alerts.hunt import HuntError
from alerts.hunt.select import time_range
from alerts.hunt.store import events_alias, read_pages, require_store
from alerts.hunt.times import iso
from alerts.settings import Settings
from ingest.schema import get_field, parse_timestamp

EntityKind = Literal["host", "user", "source"]
ENTITY_FIELDS: dict[str, str] = {"host": "host.name", "user": "user.name", "source": "source.ip"}
DEFAULT_LIMIT = 500


@dataclass(frozen=True)
class Entity:
    """What a timeline follows: a host name, a user name or a source address (or block)."""

    kind: EntityKind
    value: str

    def __post_init__(self) -> None:
        if self.kind not in ENTITY_FIELDS:
            raise HuntError(f"unknown entity kind {self.kind!r} (host, user or source)")
        if not self.value.strip():
            raise HuntError(f"empty {self.kind} name")
        if self.kind == "source":
            try:
                ipaddress.ip_network(self.value, strict=False)
            except ValueError:
                raise HuntError(f"not an IP address or CIDR block: {self.value!r}") from None

    @property
    def field(self) -> str:
        return ENTITY_FIELDS[self.kind]

    def query(self) -> dict[str, Any]:
        if self.kind == "source":
            return {"term": {self.field: self.value}}
        return {"term": {self.field: {"value": self.value, "case_insensitive": True}}}


@dataclass
class Timeline:
    """The events found (oldest first), the window searched, and whether ``limit`` cut it."""

    entity: Entity
    start: datetime
    end: datetime
    events: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False

    def as_record(self) -> dict[str, Any]:
        return {"entity": {"kind": self.entity.kind, "field": self.entity.field, "value": self.entity.value},
                "start": iso(self.start), "end": iso(self.end), "count": len(self.events),
                "truncated": self.truncated, "events": self.events}


def entity_events(client: Elasticsearch, settings: Settings, entity: Entity, at: datetime, window: timedelta,
                  *, limit: int = DEFAULT_LIMIT) -> Timeline:
    """The events of ``entity`` in ``[at - window/2, at + window/2]``, oldest first, at most
    ``limit`` (``Timeline.truncated`` says whether more exist). Raises HuntError without a store."""
    if limit < 1:
        raise HuntError(f"limit must be at least 1, not {limit}")
    alias = events_alias(settings)
    require_store(client, alias)
    start, end = at - window / 2, at + window / 2
    query = {"bool": {"filter": [time_range(start, end), entity.query()]}}
    timeline = Timeline(entity=entity, start=start, end=end)
    # one more than asked: tells whether the window holds more than the limit
    for page in read_pages(client, alias, query, page_size=min(limit + 1, 1000), limit=limit + 1, prefetch=False):
        timeline.events.extend(page)
    if len(timeline.events) > limit:
        timeline.events, timeline.truncated = timeline.events[:limit], True
    return timeline


def find_alert(client: Elasticsearch, alerts_alias: str, alert_id: str) -> dict[str, Any]:
    """The stored alert document with that id (``_id``, the alert's ``event.id``)."""
    try:
        response = client.search(index=alerts_alias, query={"ids": {"values": [alert_id]}}, size=1)
    except NotFoundError as error:
        raise HuntError("no alert store: the alias does not exist", source=alerts_alias) from error
    except (ApiError, TransportError) as error:
        raise HuntError(f"cannot read the alert store: {error}", source=alerts_alias) from error
    hits = response["hits"]["hits"]
    if not hits:
        raise HuntError(f"no alert with id {alert_id!r}", source=alerts_alias)
    return dict(hits[0]["_source"])


def alert_time(alert: dict[str, Any]) -> datetime:
    """The moment a timeline centres on: the alert's time (its last detection)."""
    value = get_field(alert, "@timestamp")
    try:
        return parse_timestamp(str(value))
    except (ValueError, TypeError) as error:
        raise HuntError(f"alert without a usable @timestamp: {value!r}") from error


def alert_entity(alert: dict[str, Any]) -> Entity:
    """The entity an alert names, in the alert grouping's order: source address, host, user."""
    for kind in ("source", "host", "user"):
        value = get_field(alert, ENTITY_FIELDS[kind])
        if isinstance(value, str) and value:
            return Entity(kind, value)
    raise HuntError("the alert names no host, user or source address: give --host, --user or --source")
