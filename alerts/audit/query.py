"""Read the audit trail for people: filters (actor, action, time) and newest-first pages by seq."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError


def _utc(moment: datetime) -> str:
    """ISO 8601 in UTC: Elasticsearch refuses offsets beyond ±18:00, which ISO input may carry."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # year 1 minus an offset, or 9999 plus one
        moment = datetime.min.replace(tzinfo=UTC) if moment.year < 5000 else datetime.max.replace(tzinfo=UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")  # years < 1000 zero-padded


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def query(self) -> dict[str, Any]:
        filters: list[dict[str, Any]] = [{"exists": {"field": "seq"}}]
        if self.actor:
            filters.append({"term": {"actor": self.actor}})
        if self.action:
            # "login" finds login_success, login_failure, login_throttled; an exact name finds itself.
            filters.append({"bool": {"should": [{"term": {"action": self.action}},
                                                {"prefix": {"action": self.action + "_"}}],
                                     "minimum_should_match": 1}})
        if self.since or self.until:
            bounds: dict[str, str] = {}
            if self.since:
                bounds["gte"] = _utc(self.since)
            if self.until:
                bounds["lt"] = _utc(self.until)
            filters.append({"range": {"@timestamp": bounds}})
        return {"bool": {"filter": filters}}


@dataclass(frozen=True)
class AuditPage:
    records: list[dict[str, Any]]
    total: int
    next_before: int | None  # pass as ``before`` for the next (older) page


def search(client: Elasticsearch, index: str, flt: AuditFilter, *, before: int | None = None,
           size: int = 50) -> AuditPage:
    """Newest first; ``before``: only records with a smaller seq (the last seq of the previous page)."""
    query = flt.query()
    if before is not None:
        query["bool"]["filter"].append({"range": {"seq": {"lt": before}}})
    try:
        client.indices.refresh(index=index)
        answer = client.search(index=index, query=query, size=size, sort=[{"seq": "desc"}],
                               track_total_hits=True)
    except NotFoundError:
        return AuditPage([], 0, None)
    hits = answer["hits"]["hits"]
    records = [hit["_source"] for hit in hits]
    more = len(hits) == size
    return AuditPage(records, int(answer["hits"]["total"]["value"]),
                     int(records[-1]["seq"]) if more and records else None)


def actions(client: Elasticsearch, index: str) -> list[str]:
    """The action names present, for the filter's choices."""
    try:
        answer = client.search(index=index, size=0, aggs={"a": {"terms": {"field": "action", "size": 200}}})
    except NotFoundError:
        return []
    return sorted(bucket["key"] for bucket in answer["aggregations"]["a"]["buckets"])
