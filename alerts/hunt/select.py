"""The Elasticsearch query that pre-selects a hunt's candidate events.

It must select a superset of the events the Sigma engine could match, never fewer: the engine
confirms every candidate, so a wider query costs time, a narrower one loses alerts. It holds
the time range and, per logsource the rules name, the two ways the engine routes an event
(``detectors.sigma.engine.SigmaEngine.route``):

- a Windows event (``winlog.channel`` text, ``winlog.event_id`` integer) is routed by channel
  and event id through ``config/logsources.yaml``: its service comes from the channel (matched
  case-insensitively, as the table does) and its categories from (service, event id), including
  the conditional ``also`` categories (the engine tests their conditions); the stored
  ``socflow.logsource.category`` holds only the first category, so it cannot be used for them;
- any other event by ``socflow.logsource.product/category/service``, compared exactly (case
  included) by the engine, as a keyword ``term`` does.

A rule that names no logsource at all applies to every event: the query is then the time range.
Pure: the rules' logsources and the table are arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from alerts.hunt.times import iso
from ingest.logsource import LogsourceTable

# Events whose routing fields the index could not hold as the engine reads them: a value over
# the keyword length limit or malformed for its type (listed in _ignored), or a channel with
# non-ASCII letters (Python's lower() folds some of them onto ASCII, case_insensitive does not).
# Rare and hostile: always candidates, the engine decides.
ROUTING_FIELDS = ("winlog.channel", "winlog.event_id", "socflow.logsource.product",
                  "socflow.logsource.category", "socflow.logsource.service")
DOUBTFUL: dict[str, Any] = {"bool": {"should": [
    {"terms": {"_ignored": list(ROUTING_FIELDS)}},
    {"regexp": {"winlog.channel": {"value": ".*[^ -~].*", "flags": "NONE"}}},
], "minimum_should_match": 1}}

Logsource = tuple[str | None, str | None, str | None]  # (product, category, service)


def rule_logsources(rules: Iterable[Any]) -> set[Logsource]:
    """The distinct logsources of rules (``RuleInfo.logsource``: product, category, service)."""
    found: set[Logsource] = set()
    for rule in rules:
        source: Mapping[str, str] = rule.logsource
        found.add((source.get("product") or None, source.get("category") or None, source.get("service") or None))
    return found


def time_range(start: datetime | None, end: datetime | None) -> dict[str, Any]:
    bounds: dict[str, Any] = {"format": "strict_date_optional_time_nanos"}
    if start is not None:
        bounds["gte"] = iso(start)
    if end is not None:
        bounds["lte"] = iso(end)
    return {"range": {"@timestamp": bounds}}


def candidate_query(logsources: Iterable[Logsource], table: LogsourceTable,
                    start: datetime | None, end: datetime | None,
                    restrictions: Mapping[Logsource, dict[str, Any] | None] | None = None) -> dict[str, Any]:
    """``bool`` query: in the time range and in one of the logsources' possible routes.

    The Windows routes of all logsources are merged per service (its channels once, with the
    union of the event ids wanted): case-insensitive terms are automata, and a corpus's
    thousands of rules name dozens of logsources over the same few channels.

    ``restrictions`` (:func:`alerts.hunt.pushdown.rule_restrictions`): per logsource, a query
    its candidates must also satisfy (its rules' literals); such a logsource's routes are not
    merged with the others'."""
    restrictions = restrictions or {}
    clauses: list[dict[str, Any]] = []
    wanted: dict[str, set[int] | None] = {}  # service -> event ids (None: any)
    any_windows = False
    for source in sorted(logsources, key=lambda s: tuple(part or "" for part in s)):
        restriction = restrictions.get(source)
        if restriction is None:
            routes = _routes(source, table, wanted)
            if routes is None:
                return {"bool": {"filter": [time_range(start, end)]}}
            clauses.append(routes[0])
            any_windows = any_windows or routes[1]
            continue
        own: dict[str, set[int] | None] = {}
        routes = _routes(source, table, own)
        if routes is None:  # no logsource: every event, if it has the rules' literals
            clauses.append(restriction)
            continue
        windows = _windows(table, own, any_windows=routes[1])
        alternatives = [routes[0], *([windows] if windows is not None else [])]
        clauses.append({"bool": {"filter": [restriction, {"bool": {"should": alternatives,
                                                                   "minimum_should_match": 1}}]}})
    windows = _windows(table, wanted, any_windows=any_windows)
    if windows is not None:
        clauses.append(windows)
    if clauses:
        clauses.append(DOUBTFUL)
    selection: dict[str, Any] = {"bool": {"should": clauses, "minimum_should_match": 1}} if clauses else {
        "match_none": {}}
    return {"bool": {"filter": [time_range(start, end), selection]}}


def _routes(source: Logsource, table: LogsourceTable,
            wanted: dict[str, set[int] | None]) -> tuple[dict[str, Any], bool] | None:
    """The tagged route of ``source``, and whether it takes every Windows event; its Windows
    routes go into ``wanted``. None: the source names nothing (every event)."""
    product, category, service = source
    if product is None and category is None and service is None:
        return None
    any_windows = False
    if product in (None, "windows"):
        if category is None and service is None:
            any_windows = True
        else:
            _windows_routes(table, category, service, wanted)
    return _tagged(product, category, service), any_windows


def _tagged(product: str | None, category: str | None, service: str | None) -> dict[str, Any]:
    """Events routed by their ``socflow.logsource`` tags."""
    terms = [{"term": {f"socflow.logsource.{name}": value}}
             for name, value in (("product", product), ("category", category), ("service", service)) if value]
    return {"bool": {"filter": terms}}


def _windows_routes(table: LogsourceTable, category: str | None, service: str | None,
                    wanted: dict[str, set[int] | None]) -> None:
    """Add the (service, event ids) a Windows event must have for the engine to route it to
    (category, service): services by channel, categories by (service, event id), including the
    conditional ``also`` ones (the engine tests their conditions)."""
    services = set(table.services.values())
    if category is None:
        if service in services:
            wanted[service] = None
        return
    for (of, code), primary in table.categories.items():
        if primary == category and service in (None, of):
            _want(wanted, of, code)
    for (of, code), extras in table.extra.items():
        if service in (None, of) and any(extra.category == category for extra in extras):
            _want(wanted, of, code)


def _want(wanted: dict[str, set[int] | None], service: str, code: int) -> None:
    if service in wanted and wanted[service] is None:
        return  # any event id of the service already
    wanted.setdefault(service, set()).add(code)  # type: ignore[union-attr]


def _windows(table: LogsourceTable, wanted: dict[str, set[int] | None], *, any_windows: bool) -> dict[str, Any] | None:
    """Windows events of the wanted services and event ids; every Windows event (known
    channel or not) when a rule names product windows alone."""
    has_channel = {"exists": {"field": "winlog.channel"}}
    has_code = {"exists": {"field": "winlog.event_id"}}
    if any_windows:
        return {"bool": {"filter": [has_channel, has_code]}}
    channels: dict[str, list[str]] = {}  # service -> channels (lower case, as the table keys them)
    for channel, of in table.services.items():
        channels.setdefault(of, []).append(channel)
    alternatives = []
    for service in sorted(wanted):
        codes = wanted[service]
        channel_match = [{"term": {"winlog.channel": {"value": channel, "case_insensitive": True}}}
                         for channel in sorted(channels.get(service, ()))]
        if not channel_match:
            continue
        filters: list[dict[str, Any]] = [has_code, {"bool": {"should": channel_match, "minimum_should_match": 1}}]
        if codes is not None:
            filters.append({"terms": {"winlog.event_id": sorted(codes)}})
        alternatives.append({"bool": {"filter": filters}})
    if not alternatives:
        return None
    return {"bool": {"should": alternatives, "minimum_should_match": 1}}
