"""The alert queue as an Elasticsearch query: filters, order, ``search_after`` paging, groups.

A :class:`QueueFilter` is what the console's filter bar and the CLI's options hold; it goes to
and from URL query parameters unchanged (saved filters store those parameters), and becomes
one ``bool`` filter query. Pages follow each other with ``search_after`` on the sort values of
the last hit (an opaque cursor), never with deep ``from`` offsets: page 2,000 costs what page 1
costs. The sort always ends on ``event.id`` (the alert's id, a keyword), so equal timestamps
or risks still give a total order and no alert is skipped or shown twice between pages.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from alerts.triage.errors import TriageError
from alerts.triage.model import LEVEL_ORDER, STATUSES
from ingest.schema import format_timestamp, parse_timestamp

ORDERS = ("newest", "risk")
UNASSIGNED = "-"
# Fields a group can be made on, by the name the console shows.
GROUP_FIELDS = {
    "rule": "rule.name", "host": "host.name", "source": "source.ip", "user": "user.name",
    "node": "socflow.node.id", "agency": "socflow.node.agency", "district": "socflow.node.district",
    "tactic": "threat.tactic.name", "technique": "threat.technique.id",
}
TEXT_FIELDS = (
    "rule.name.text^3", "rule.description", "url.original.text", "process.command_line.text",
    "rule.name", "host.name", "user.name", "source.ip", "destination.ip", "event.id", "rule.id",
    "socflow.node.id", "socflow.node.name",
)
# What a queue row shows (``alert_summary``): a page reads only these from ``_source`` (its
# events, URLs, command lines, tags and triage history stay in the index: 46 KB for a page of
# bench/console.py's alerts instead of 71 KB). tests/triage/test_model.py keeps the two in step.
ROW_SOURCE = (
    "@timestamp", "socflow.alert", "socflow.node", "socflow.triage.verdict", "socflow.triage.incident",
    "rule.id", "rule.name", "rule.level", "host.name", "user.name", "source.ip",
    "threat.technique.id", "threat.tactic.name",
)
RELATIVE = re.compile(r"^(\d{1,4})([mhd])$")
MAX_PAGE = 200


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows; empty fields do not filter. Tuples hold alternatives (OR)."""

    since: str | None = None  # RFC 3339 time, or relative to now: 15m, 24h, 7d
    until: str | None = None
    status: tuple[str, ...] = ()
    level: tuple[str, ...] = ()
    rule: tuple[str, ...] = ()  # rule id or name
    tactic: tuple[str, ...] = ()
    technique: tuple[str, ...] = ()  # T1059 also matches its sub-techniques (T1059.001)
    node: tuple[str, ...] = ()
    agency: tuple[str, ...] = ()
    district: tuple[str, ...] = ()
    security_level: tuple[int, ...] = ()
    assignee: tuple[str, ...] = ()  # "-" is "unassigned"
    text: str = ""
    order: str = "newest"

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise TriageError(f"unknown order {self.order!r}; one of {', '.join(ORDERS)}")
        for status in self.status:
            if status not in STATUSES:
                raise TriageError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        for level in self.level:
            if level not in LEVEL_ORDER:
                raise TriageError(f"unknown level {level!r}; one of {', '.join(LEVEL_ORDER)}")
        for security in self.security_level:
            if not 1 <= security <= 5:
                raise TriageError(f"security level {security} is not 1-5")
        if len(self.text) > 500:
            raise TriageError("free text longer than 500 characters")

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str]]) -> QueueFilter:
        """From query parameters (each name may repeat; commas also separate values)."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            given = [part.strip() for raw in params.get(item.name, ()) for part in str(raw).split(",")]
            given = [part for part in given if part]
            if not given:
                continue
            if item.name in ("since", "until", "text", "order"):
                values[item.name] = ",".join(given) if item.name == "text" else given[-1]
            elif item.name == "security_level":
                try:
                    values[item.name] = tuple(int(part) for part in given)
                except ValueError as error:
                    raise TriageError(f"security level must be a number 1-5: {error}") from error
            else:
                values[item.name] = tuple(given)
        return cls(**values)

    def to_params(self) -> dict[str, str]:
        """Query parameters that give this filter back (empty fields left out)."""
        params: dict[str, str] = {}
        for name, value in asdict(self).items():
            if name == "order" and value == "newest":
                continue
            if isinstance(value, list | tuple):
                if value:
                    params[name] = ",".join(str(part) for part in value)
            elif value:
                params[name] = str(value)
        return params

    def query_string(self) -> str:
        return urlencode(self.to_params())


def _moment(value: str, now: datetime) -> str:
    relative = RELATIVE.match(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        delta = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[unit]
        return format_timestamp(now - delta)
    try:
        return format_timestamp(parse_timestamp(value))
    except ValueError as error:
        raise TriageError(f"not a time: {value[:60]!r} (RFC 3339, or 15m / 24h / 7d)") from error


def build_query(queue: QueueFilter, now: datetime) -> dict[str, Any]:
    """The Elasticsearch query of a queue filter (only filter clauses: cacheable, no scoring)."""
    clauses: list[dict[str, Any]] = []
    if queue.since or queue.until:
        window: dict[str, str] = {}
        if queue.since:
            window["gte"] = _moment(queue.since, now)
        if queue.until:
            window["lte"] = _moment(queue.until, now)
        clauses.append({"range": {"@timestamp": window}})
    for name, field_name in (("status", "socflow.alert.status"), ("level", "rule.level"),
                             ("tactic", "threat.tactic.name"), ("node", "socflow.node.id"),
                             ("agency", "socflow.node.agency"), ("district", "socflow.node.district"),
                             ("security_level", "socflow.node.security_level")):
        values = list(getattr(queue, name))
        if values:
            clauses.append({"terms": {field_name: values}})
    if queue.rule:
        clauses.append({"bool": {"should": [{"terms": {"rule.id": list(queue.rule)}},
                                            {"terms": {"rule.name": list(queue.rule)}}], "minimum_should_match": 1}})
    if queue.technique:
        should: list[dict[str, Any]] = []
        for technique in queue.technique:
            wanted = technique.upper()
            should += [{"term": {"threat.technique.id": wanted}}, {"prefix": {"threat.technique.id": wanted + "."}}]
        clauses.append({"bool": {"should": should, "minimum_should_match": 1}})
    if queue.assignee:
        named = [name for name in queue.assignee if name != UNASSIGNED]
        should = [{"terms": {"socflow.alert.assignee": named}}] if named else []
        if UNASSIGNED in queue.assignee:
            should.append({"bool": {"must_not": {"exists": {"field": "socflow.alert.assignee"}}}})
        clauses.append({"bool": {"should": should, "minimum_should_match": 1}})
    if queue.text:
        clauses.append({"simple_query_string": {"query": queue.text, "fields": list(TEXT_FIELDS),
                                                "default_operator": "and", "lenient": True}})
    return {"bool": {"filter": clauses}} if clauses else {"match_all": {}}


def sort_of(order: str) -> list[dict[str, Any]]:
    """Newest first, or riskiest first (newest among equals); ``event.id`` breaks every tie."""
    newest = [{"@timestamp": {"order": "desc"}}, {"event.id": {"order": "asc"}}]
    if order == "risk":
        return [{"socflow.alert.risk": {"order": "desc", "missing": "_last"}}, *newest]
    return newest


def encode_cursor(sort_values: Sequence[Any]) -> str:
    raw = json.dumps(list(sort_values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, order: str) -> list[Any]:
    """The ``search_after`` values of a cursor; a cursor of another order or a forged one is refused."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error) as error:
        raise TriageError("not a queue cursor") from error
    if (not isinstance(values, list) or len(values) != len(sort_of(order))
            or not all(isinstance(value, str | int | float) and not isinstance(value, bool) for value in values)):
        raise TriageError("not a queue cursor for this order")
    return values


def search_body(queue: QueueFilter, now: datetime, *, size: int, after: str | None = None) -> dict[str, Any]:
    """The search request of one queue page (``size`` capped at 200)."""
    if not 1 <= size <= MAX_PAGE:
        raise TriageError(f"page size must be 1-{MAX_PAGE}")
    body: dict[str, Any] = {
        "query": build_query(queue, now), "sort": sort_of(queue.order), "size": size,
        "track_total_hits": 10_000,  # "10,000+" is enough for a queue and keeps counting cheap
        "_source": {"includes": list(ROW_SOURCE)},
        "seq_no_primary_term": True,
    }
    if after:
        body["search_after"] = decode_cursor(after, queue.order)
    return body


def groups_body(queue: QueueFilter, now: datetime, by: str, *, size: int = 50) -> dict[str, Any]:
    """A terms aggregation of the queue by rule or entity, with each group's highest risk."""
    if by not in GROUP_FIELDS:
        raise TriageError(f"cannot group by {by!r}; one of {', '.join(GROUP_FIELDS)}")
    return {
        "query": build_query(queue, now), "size": 0, "track_total_hits": True,
        "aggs": {"groups": {
            "terms": {"field": GROUP_FIELDS[by], "size": size, "order": {"_count": "desc"}},
            "aggs": {"risk": {"max": {"field": "socflow.alert.risk"}},
                     "open": {"filter": {"term": {"socflow.alert.status": "open"}}}},
        }, "missing": {"missing": {"field": GROUP_FIELDS[by]}}},
    }
