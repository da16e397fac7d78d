"""Index templates of the event store: ``<prefix>-YYYY.MM.DD`` behind the alias ``<prefix>``.

Core Elasticsearch only (the integ-test-zip distribution runs it): no scripts, no ingest
pipelines, no analysis-common, no data streams, no ILM.

The mapping indexes what analysts search and aggregate on, and nothing else:

- a fixed list of ECS fields (``KEYWORDS``, ``LONGS``, ``IPS`` below): ``keyword`` for
  identifiers (``event.*`` but ``event.original``, ``host.*``, ``user.*``, ``process.*`` names,
  paths and command lines, ``source.*``/``destination.*``, ``url.*``, ``dns.*``, ``network.*``,
  ``winlog.channel``, ``socflow.node.*``, ``socflow.logsource.*``), ``ip`` for addresses,
  ``long`` for ports, pids, byte counts, ``winlog.event_id`` and ``winlog.record_id``, ``date``
  for ``@timestamp``, ``text`` (no norms) for ``message``;
- ``dynamic: false`` everywhere: any other field (``winlog.event_data``, ``event.original``,
  whatever a hostile log invents) stays in ``_source``, comes back with the event, is not
  indexed and never reaches the mapping. The mapping of every daily index is the same, whatever
  the events: ten thousand invented keys cost bytes, not mapping entries, and cannot fill
  ``index.mapping.total_fields.limit`` (set all the same, as a second fence, with
  ``ignore_dynamic_beyond_limit``: fields past it would be kept unindexed, never refused);
- what happens to a value that does not fit (the event is always stored):
  a keyword longer than ``ignore_above`` (1024) is stored but not indexed; a value that does
  not parse as its field's type (``source.ip: "n/a"``, ``source.port: "http"``, a bad date) is
  left unindexed (``index.mapping.ignore_malformed``) and its field named in ``_ignored``;
  an object where the mapping has a value (``host.name: {...}``) makes Elasticsearch refuse the
  document, and the writer stores it again with that field moved under ``socflow.store.moved``
  (unindexed) and named in ``socflow.store.moved_fields`` (see ``alerts.eventstore.documents``);
  an event larger than ``max_event_bytes`` is stored with its long strings truncated.
- deep nesting: unmapped objects are not parsed into the mapping at all, so no depth limit
  applies to them; mapped objects are at most four levels deep.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from alerts.settings import EventStoreSettings

KEYWORD: dict[str, Any] = {"type": "keyword", "ignore_above": 1024}
LONG: dict[str, Any] = {"type": "long"}
IP: dict[str, Any] = {"type": "ip"}
DATE: dict[str, Any] = {"type": "date"}
UNINDEXED: dict[str, Any] = {"type": "object", "enabled": False}

# The indexed fields, by type; every other field stays in _source only. ECS names (plus the
# ones socflow's collectors write); a collector that adds a field people search on adds it here.
_ENDPOINT = ("address", "domain", "mac", "user.name", "user.id", "user.domain",
             "geo.country_iso_code", "as.organization.name")
KEYWORDS: tuple[str, ...] = (
    *(f"event.{name}" for name in ("id", "kind", "category", "type", "action", "outcome", "code", "dataset",
                                   "module", "provider", "reason", "timezone", "hash", "agent_id_status")),
    *(f"host.{name}" for name in ("name", "hostname", "id", "domain", "mac", "type", "architecture",
                                  "os.name", "os.family", "os.platform", "os.version", "os.kernel", "os.type")),
    *(f"user.{name}" for name in ("name", "id", "domain", "email", "full_name", "identifier", "roles",
                                  "group.name", "group.id", "target.name", "target.id", "target.domain",
                                  "effective.name", "effective.id")),
    *(f"process.{name}" for name in ("name", "executable", "command_line", "entity_id", "working_directory",
                                     "args", "title", "hash.md5", "hash.sha1", "hash.sha256", "user.name",
                                     "parent.name", "parent.executable", "parent.command_line",
                                     "parent.entity_id")),
    *(f"source.{name}" for name in _ENDPOINT),
    *(f"destination.{name}" for name in _ENDPOINT),
    *(f"url.{name}" for name in ("original", "full", "domain", "path", "query", "scheme", "username", "extension",
                                 "fragment", "registered_domain")),
    *(f"dns.{name}" for name in ("question.name", "question.type", "question.class", "question.registered_domain",
                                 "response_code", "type", "id", "op_code", "header_flags")),
    *(f"network.{name}" for name in ("protocol", "transport", "type", "direction", "community_id",
                                     "application", "iana_number", "name")),
    "winlog.channel", "winlog.provider_name", "winlog.computer_name",
    "http.request.method", "tls.client.server_name",
    "log.file.path",
    *(f"socflow.node.{name}" for name in ("id", "name", "agency", "district", "kind", "role")),
    *(f"socflow.logsource.{name}" for name in ("product", "category", "service")),
    *(f"socflow.collector.{name}" for name in ("name", "input")),
    "socflow.store.truncated", "socflow.store.moved_fields",
)
LONGS: tuple[str, ...] = (
    "event.severity", "event.sequence", "source.port", "destination.port", "source.bytes", "destination.bytes",
    "source.packets", "destination.packets", "network.bytes", "network.packets", "url.port", "process.pid",
    "process.parent.pid", "winlog.event_id", "winlog.record_id", "http.response.status_code",
    "socflow.store.original_bytes", "source.nat.port", "destination.nat.port",
)
IPS: tuple[str, ...] = ("source.ip", "destination.ip", "host.ip", "dns.resolved_ip", "source.nat.ip",
                        "destination.nat.ip")


def _place(properties: dict[str, Any], path: str, mapping: dict[str, Any]) -> None:
    node = properties
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {"type": "object", "dynamic": False, "properties": {}})["properties"]
    node[parts[-1]] = dict(mapping)


def event_mappings() -> dict[str, Any]:
    """The chosen mapping of event indices (see the module docstring)."""
    properties: dict[str, Any] = {"@timestamp": dict(DATE), "message": {"type": "text", "norms": False}}
    for path in KEYWORDS:
        _place(properties, path, KEYWORD)
    for path in LONGS:
        _place(properties, path, LONG)
    for path in IPS:
        _place(properties, path, IP)
    _place(properties, "socflow.node.security_level", {"type": "byte"})
    _place(properties, "socflow.store.moved", UNINDEXED)
    return {"dynamic": False, "date_detection": False, "numeric_detection": False, "properties": properties}


def event_index_settings(settings: EventStoreSettings) -> dict[str, Any]:
    return {
        "number_of_shards": settings.number_of_shards,
        "number_of_replicas": settings.number_of_replicas,
        "refresh_interval": settings.refresh_interval,
        "codec": settings.codec,
        "mapping": {
            "ignore_malformed": True,
            "total_fields": {"limit": settings.total_fields_limit, "ignore_dynamic_beyond_limit": True},
            "depth": {"limit": 20},
        },
    }


def event_template(settings: EventStoreSettings) -> dict[str, Any]:
    """The index template body of ``<index_prefix>-*``."""
    prefix = settings.index_prefix
    return {
        "index_patterns": [f"{prefix}-*"],
        "priority": 200,
        "_meta": {"description": "socflow normalized events (ECS); see alerts/eventstore/template.py"},
        "template": {
            "settings": event_index_settings(settings),
            "aliases": {prefix: {}},
            "mappings": event_mappings(),
        },
    }


def deadletter_template(settings: EventStoreSettings) -> dict[str, Any]:
    """The index template body of ``<deadletter_prefix>-*``: the reason indexed, the raw record kept."""
    prefix = settings.deadletter_prefix
    return {
        "index_patterns": [f"{prefix}-*"],
        "priority": 200,
        "_meta": {"description": "socflow dead letters: records a collector or the event writer could not store"},
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": settings.number_of_replicas,
                         "refresh_interval": settings.refresh_interval, "mapping": {"ignore_malformed": True}},
            "aliases": {prefix: {}},
            "mappings": {
                "dynamic": False,
                "properties": {
                    "@timestamp": {"type": "date"},
                    "reason": {"type": "keyword", "ignore_above": 1024, "fields": {"text": {"type": "text"}}},
                    "source": KEYWORD,
                    "stage": KEYWORD,
                    "event": {"type": "object", "dynamic": False, "properties": {"id": KEYWORD}},
                    "socflow": {"type": "object", "dynamic": False, "properties": {
                        "spool": {"type": "object", "dynamic": False, "properties": {
                            "file": KEYWORD, "line": LONG}}}},
                },
            },
        },
    }


def install_event_templates(client: Elasticsearch, settings: EventStoreSettings) -> None:
    """Create or update the templates of the event and dead-letter indices (idempotent)."""
    client.indices.put_index_template(name=settings.index_prefix, **event_template(settings))
    client.indices.put_index_template(name=settings.deadletter_prefix, **deadletter_template(settings))


def daily_index(prefix: str, timestamp: str) -> str:
    """``<prefix>-YYYY.MM.DD`` of a canonical ``@timestamp`` (``2026-11-20T07:30:00.000Z``)."""
    return f"{prefix}-{timestamp[0:4]}.{timestamp[5:7]}.{timestamp[8:10]}"
