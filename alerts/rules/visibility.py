"""Which Sigma logsources the event store has seen lately (for ``socflow rules coverage --by-source``).

One composite aggregation over ``socflow.logsource.product/category/service`` of the events
index (the ``socflow-events`` alias) in the last N days, paged with ``after_key``; a missing
part is a bucket of its own (``missing_bucket``), so ``{category: webserver}`` stays distinct
from ``{product: linux, category: webserver}``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from alerts.errors import AlertsError

PARTS = ("product", "category", "service")
Logsource = tuple[str | None, str | None, str | None]


class EventStoreUnavailableError(AlertsError):
    """The event store cannot answer (down, no events index, or a mapping it cannot aggregate)."""


def seen_logsources(client: Elasticsearch, index: str, *, days: int, now: datetime,
                    page: int = 500) -> dict[Logsource, int]:
    """Logsource -> number of events in ``index`` over the ``days`` before ``now``."""
    if days < 1:
        raise ValueError("days must be at least 1")
    since = (now - timedelta(days=days)).isoformat()
    seen: dict[Logsource, int] = {}
    after: dict[str, Any] | None = None
    suffix = ""
    while True:
        sources = [{part: {"terms": {"field": f"socflow.logsource.{part}{suffix}", "missing_bucket": True}}}
                   for part in PARTS]
        composite: dict[str, Any] = {"size": page, "sources": sources}
        if after is not None:
            composite["after"] = after
        try:
            response = client.search(index=index, size=0, query={"range": {"@timestamp": {"gte": since}}},
                                     aggregations={"sources": {"composite": composite}})
        except NotFoundError as error:
            raise EventStoreUnavailableError("no events index (is the event store set up?)", source=index) from error
        except ApiError as error:
            if not suffix and error.meta.status == 400 and after is None:
                suffix = ".keyword"  # a dynamic mapping made them text with a keyword sub-field
                continue
            raise EventStoreUnavailableError(f"the event store refused the query: {error}", source=index) from error
        except TransportError as error:
            raise EventStoreUnavailableError(f"the event store is not reachable: {error}", source=index) from error
        aggregation = response["aggregations"]["sources"]
        for bucket in aggregation["buckets"]:
            key = bucket["key"]
            product, category, service = (str(key[part]) if key.get(part) is not None else None for part in PARTS)
            source = (product, category, service)
            seen[source] = seen.get(source, 0) + int(bucket["doc_count"])
        after = aggregation.get("after_key")
        if not aggregation["buckets"] or after is None:
            return seen
