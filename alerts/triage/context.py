"""What an alert page shows beside the alert: its rule, its node, its entity's events and
other alerts of the same host, user or source.

- The rule comes from the rule files (``job.rule_dirs``): description, false positives,
  references, ATT&CK tags and level as written there; an alert whose rule file is gone (or a
  detector's alert, which has no file) falls back on what its document carries.
- The node comes from the asset inventory (name, agency and its name, district and its name,
  security level, data-center flag).
- The entity's events around the alert come from the event store (alias ``socflow-events``,
  contract in contracts.md); when the alias does not exist the page says "events not stored".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from elasticsearch import ApiError, Elasticsearch, TransportError

from alerts.triage.store import Record, TriageStore
from ingest.logs import log_event
from ingest.schema import format_timestamp, get_field, parse_timestamp

LOGGER = logging.getLogger(__name__)
ENTITY_FIELDS = ("host.name", "user.name", "source.ip")
ATTACK_URL = "https://attack.mitre.org/techniques/{}/"


@dataclass(frozen=True)
class RuleView:
    """A rule as the alert page shows it."""

    id: str
    title: str
    level: str
    description: str = ""
    falsepositives: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    path: str = ""

    @property
    def techniques(self) -> list[tuple[str, str]]:
        """(technique id, its ATT&CK page) from ``attack.tNNNN[.NNN]`` tags."""
        found = []
        for tag in self.tags:
            if tag.lower().startswith("attack.t") and tag[8:9].isdigit():
                technique = tag[7:].upper()
                found.append((technique, ATTACK_URL.format(technique.replace(".", "/"))))
        return found

    @property
    def tactics(self) -> list[str]:
        return [tag[7:].replace("_", "-") for tag in self.tags
                if tag.lower().startswith("attack.") and tag[7:8].lower() not in ("t", "g", "s")]


class RuleCatalogue:
    """The rules of the rule directories, by id (loaded once; rules change with a deploy)."""

    def __init__(self, rules: Mapping[str, RuleView]) -> None:
        self.rules = dict(rules)

    @classmethod
    def load(cls, directories: Sequence[Path]) -> RuleCatalogue:
        rules: dict[str, RuleView] = {}
        for directory in directories:
            for path in sorted(directory.rglob("*.yml")) if directory.is_dir() else ():
                if path.name.endswith(".tests.yml"):
                    continue
                try:
                    documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
                except (OSError, yaml.YAMLError) as error:  # the rules command reports these; skip here
                    log_event(LOGGER, "rule_file_unreadable", logging.WARNING, path=str(path), error=str(error))
                    continue
                for document in documents:
                    if isinstance(document, Mapping) and document.get("id"):
                        rules[str(document["id"])] = RuleView(
                            id=str(document["id"]), title=str(document.get("title", "")),
                            level=str(document.get("level", "")), description=str(document.get("description", "")),
                            falsepositives=tuple(str(item) for item in document.get("falsepositives") or ()),
                            references=tuple(str(item) for item in document.get("references") or ()),
                            tags=tuple(str(item) for item in document.get("tags") or ()), path=str(path))
        return cls(rules)

    def rule_of(self, alert: Mapping[str, Any]) -> RuleView:
        rule = alert.get("rule") or {}
        known = self.rules.get(str(rule.get("id", "")))
        if known is not None:
            return known
        return RuleView(id=str(rule.get("id", "")), title=str(rule.get("name", "")), level=str(rule.get("level", "")),
                        description=str(rule.get("description") or ""),
                        references=tuple(str(item) for item in rule.get("reference") or ()),
                        tags=tuple(str(item) for item in rule.get("tags") or ()))


@dataclass(frozen=True)
class NodeView:
    id: str
    name: str = ""
    agency: str = ""
    agency_name: str = ""
    district: str = ""
    district_name: str = ""
    security_level: int | None = None
    data_center: bool = False
    known: bool = False


class NodeDirectory:
    """Nodes, agencies and districts of the asset inventory (``collector.assets_path``)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.nodes = {str(node["id"]): node for node in data.get("nodes") or () if isinstance(node, Mapping)}
        self.agencies = {str(item["id"]): item for item in data.get("agencies") or () if isinstance(item, Mapping)}
        self.districts = {str(item["id"]): item for item in data.get("districts") or () if isinstance(item, Mapping)}

    @classmethod
    def load(cls, path: Path) -> NodeDirectory:
        return cls(yaml.safe_load(path.read_text(encoding="utf-8")) or {})

    def node_of(self, alert: Mapping[str, Any]) -> NodeView:
        stored = (alert.get("socflow") or {}).get("node") or {}
        node = self.nodes.get(str(stored.get("id", "")), stored)
        agency = str(node.get("agency") or stored.get("agency") or "")
        district = str(node.get("district") or stored.get("district") or "")
        level = node.get("security_level", stored.get("security_level"))
        return NodeView(
            id=str(stored.get("id") or "unknown"), name=str(node.get("name") or ""), agency=agency,
            agency_name=str(self.agencies.get(agency, {}).get("name", "")), district=district,
            district_name=str(self.districts.get(district, {}).get("name", "")),
            security_level=int(level) if isinstance(level, int) else None,
            data_center=node.get("kind") == "data-center", known=str(stored.get("id", "")) in self.nodes)


def entities(alert: Mapping[str, Any]) -> dict[str, str]:
    """The alert's host, user and source (those it has)."""
    found = {}
    for name in ENTITY_FIELDS:
        value = get_field(alert, name)
        if isinstance(value, str | int) and str(value):
            found[name] = str(value)
    return found


def _alert_window(alert: Mapping[str, Any]) -> tuple[datetime, datetime]:
    triage = (alert.get("socflow") or {}).get("alert") or {}
    last = parse_timestamp(str(triage.get("last_seen") or alert["@timestamp"]))
    first = parse_timestamp(str(triage.get("first_seen") or alert["@timestamp"]))
    return min(first, last), last


@dataclass
class EntityEvents:
    """The entity's events around the alert; ``stored`` False: there is no event store."""

    stored: bool
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


_PROBED: dict[str, tuple[float, bool]] = {}
PROBE_TTL_S = 30.0


def _store_exists(client: Elasticsearch, alias: str, clock: Callable[[], float] = time.monotonic) -> bool:
    """Whether the event store's alias (or an index of that name) exists, asked at most every
    30 s per alias: every alert page needs the answer, and it changes only on a deployment."""
    checked = _PROBED.get(alias)
    if checked is not None and clock() - checked[0] < PROBE_TTL_S:
        return checked[1]
    exists = bool(client.indices.exists_alias(name=alias)) or bool(client.indices.exists(index=alias))
    _PROBED[alias] = (clock(), exists)
    return exists


def entity_events(client: Elasticsearch, alias: str, alert: Mapping[str, Any], *, around: timedelta,
                  size: int = 50, clock: Callable[[], float] = time.monotonic) -> EntityEvents:
    """Events of the alert's host, user or source from ``around`` before its first sighting to
    ``around`` after its last, oldest first (from the event store's alias)."""
    found = entities(alert)
    try:
        if not _store_exists(client, alias, clock):
            return EntityEvents(stored=False)
        if not found:
            return EntityEvents(stored=True)
        first, last = _alert_window(alert)
        query = {"bool": {
            "filter": [{"range": {"@timestamp": {"gte": format_timestamp(first - around),
                                                 "lte": format_timestamp(last + around)}}}],
            "should": [{"term": {name: value}} for name, value in found.items()], "minimum_should_match": 1}}
        response = client.search(index=alias, query=query, size=size, sort=[{"@timestamp": "asc"}],
                                 ignore_unavailable=True)
    except (TransportError, ApiError) as error:
        log_event(LOGGER, "event_store_unavailable", logging.WARNING, error=str(error)[:300])
        return EntityEvents(stored=True, error=f"the event store could not be read: {str(error)[:200]}")
    return EntityEvents(stored=True, events=[hit["_source"] for hit in response["hits"]["hits"]])


def related_alerts(store: TriageStore, alert: Record, *, window: timedelta = timedelta(hours=24),
                   size: int = 20) -> list[Record]:
    """Other alerts of the same host, user or source within ``window`` of this one, newest first."""
    found = entities(alert.source)
    if not found:
        return []
    first, last = _alert_window(alert.source)
    query = {"bool": {
        "filter": [{"range": {"@timestamp": {"gte": format_timestamp(first - window),
                                             "lte": format_timestamp(last + window)}}}],
        "should": [{"term": {name: value}} for name, value in found.items()], "minimum_should_match": 1,
        "must_not": [{"ids": {"values": [alert.id]}}]}}
    return store.search(query, size=size, sort=[{"@timestamp": "desc"}, {"event.id": "asc"}])
