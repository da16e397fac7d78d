"""What every section shares: the report's context and the one way to ask Elasticsearch.

Each request a section makes is recorded with its index and body (``source_queries``), so an
auditor can re-run exactly what a figure came from. A missing index or an unreachable cluster
becomes :class:`NotAvailable` with the reason; the section then says "not available".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from alerts.reports.period import Period, iso
from alerts.reports.scope import Inventory, Scope
from alerts.reports.settings import ReportSettings


class NotAvailable(Exception):  # noqa: N818 - a section state, not a failure of the report
    """A section's source is absent; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass
class Context:
    """Everything a section reads from; time comes from ``now``, never from the wall clock."""

    client: Elasticsearch | None
    settings: ReportSettings
    period: Period
    scope: Scope
    inventory: Inventory
    now: datetime
    alerts_index: str
    events_index: str
    retention_policy: Mapping[str, Any] | None = None
    audit_verdict: Mapping[str, Any] | None = None
    queries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def period_filter(self, time_field: str = "@timestamp") -> list[dict[str, Any]]:
        window = {"gte": iso(self.period.start), "lt": iso(self.period.end)}
        return [{"range": {time_field: window}}, *self.scope.filter()]

    def calendar_interval(self) -> str:
        return "hour" if self.period.days <= 2 else "day" if self.period.days <= 62 else "week"


def search(ctx: Context, section: list[dict[str, Any]], index: str, body: dict[str, Any]) -> dict[str, Any]:
    """Run one search, record it in ``section`` (the section's source queries), return the answer."""
    section.append({"index": index, "body": json.loads(json.dumps(body))})
    if ctx.client is None:
        raise NotAvailable("no Elasticsearch client (the report was made offline)")
    try:
        response = ctx.client.search(index=index, **body)
    except NotFoundError as error:
        raise NotAvailable(f"index {index} does not exist") from error
    except ApiError as error:
        raise NotAvailable(f"Elasticsearch refused the query on {index}: {error.meta.status} "
                           f"{str(error.body)[:200]}") from error
    except TransportError as error:
        raise NotAvailable(f"Elasticsearch unreachable: {error}") from error
    return dict(response.body)


T = TypeVar("T")


def concurrently(calls: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Each call's result, in the calls' order, running up to ``workers`` at once: a report's
    requests are independent and Elasticsearch works on several while Python reads the answers.
    The first exception (in the calls' order) is raised once every call has finished."""
    if workers <= 1 or len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=min(workers, len(calls)), thread_name_prefix="report") as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def buckets(aggregations: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    return list(aggregations.get(name, {}).get("buckets", []))


def keyed(aggregations: Mapping[str, Any], name: str) -> dict[str, int]:
    """A terms aggregation as {key: doc_count}, keys as strings, in the order Elasticsearch gave."""
    return {str(bucket["key"]): int(bucket["doc_count"]) for bucket in buckets(aggregations, name)}


def composite_all(ctx: Context, queries: list[dict[str, Any]], index: str, body: dict[str, Any], name: str,
                  *, limit: int | None = None) -> tuple[list[dict[str, Any]], bool]:
    """Every bucket of the composite aggregation ``name``; True when ``limit`` cut it."""
    found: list[dict[str, Any]] = []
    for page in composite_pages(ctx, queries, index, body, name):
        found.extend(page)
        if limit is not None and len(found) >= limit:
            return found[:limit], True
    return found, False


def composite_pages(ctx: Context, queries: list[dict[str, Any]], index: str, body: dict[str, Any],
                    name: str) -> Iterator[list[dict[str, Any]]]:
    """The composite aggregation ``name`` page by page (``after``); the first page's request is
    recorded (the next pages differ only by ``after``)."""
    after: dict[str, Any] | None = None
    recorded = False
    while True:
        page = json.loads(json.dumps(body))
        if after is not None:
            page["aggs"][name]["composite"]["after"] = after
        if recorded:
            response = _quiet_search(ctx, index, page)
        else:
            response = search(ctx, queries, index, page)
            recorded = True
        result = response.get("aggregations", {}).get(name, {})
        if result.get("buckets"):
            yield list(result["buckets"])
        after = result.get("after_key")
        if not after or not result.get("buckets"):
            return


def _quiet_search(ctx: Context, index: str, body: dict[str, Any]) -> dict[str, Any]:
    scratch: list[dict[str, Any]] = []
    return search(ctx, scratch, index, body)


def local_day(ctx: Context, epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, ctx.zone).date().isoformat()


def local_time(ctx: Context, text_or_ms: str | int | float | None) -> str | None:
    """A time as local ``YYYY-MM-DD HH:MM`` (the province's zone), or None."""
    if text_or_ms is None:
        return None
    if isinstance(text_or_ms, int | float):
        moment = datetime.fromtimestamp(text_or_ms / 1000, ctx.zone)
    else:
        moment = datetime.fromisoformat(str(text_or_ms).replace("Z", "+00:00")).astimezone(ctx.zone)
    return moment.strftime("%Y-%m-%d %H:%M")


def section(status: str, queries: list[dict[str, Any]], **data: Any) -> dict[str, Any]:
    return {"status": status, "source_queries": queries, **data}


def unavailable(queries: list[dict[str, Any]], reason: str) -> dict[str, Any]:
    return {"status": "not_available", "reason": reason, "source_queries": queries}
