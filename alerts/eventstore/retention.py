"""Event retention: whole daily event indices deleted once no node in them needs them any more.

Daily indices ``<prefix>-YYYY.MM.DD`` hold the events of nodes of every security level. An index
is deleted, by its exact name, once its day ended more days ago than the longest retention any
node in it needs (``events.days_by_level`` of ``config/retention.yaml``, at the highest
``socflow.node.security_level`` found in the index; an event without a readable level counts as
``default_level``). Why not per level: deleting one level's events out of a daily index is a
delete-by-query over millions of documents (and the minimal distribution has no
``_delete_by_query``: a search + bulk delete per page), which costs more than the disk it frees
while every level keeps at least 365 days by default; dropping a whole index by name costs
nothing. The price is that events of a lower level may be kept longer than their level needs,
never shorter: a minimum retention is met. Routing events into per-level indices would give each
level exactly its days, at five times the indices and shards; not worth it with these figures.

Dead-letter indices (``<deadletter_prefix>-YYYY.MM.DD``, no level) are kept as long as the
longest event retention. Each deletion goes through ``alerts.retention.apply_retention``, so
it is audited like an alert deletion (JSONL file, then the audit index).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from elasticsearch import Elasticsearch

from alerts.retention import LEVEL_FIELD, Action, RetentionPolicy


def day_end(index: str, prefix: str) -> datetime | None:
    """The first instant after the day an index ``<prefix>-YYYY.MM.DD`` holds; None for other names."""
    match = re.fullmatch(re.escape(prefix) + r"-(\d{4})\.(\d{2})\.(\d{2})", index)
    if not match:
        return None
    try:
        day = datetime(int(match.group(1)), int(match.group(2)), int(match.group(3)), tzinfo=UTC)
    except ValueError:
        return None
    return day + timedelta(days=1)


def highest_level(client: Elasticsearch, index: str, default_level: int) -> int:
    """The highest security level of the events in an index (events without one: ``default_level``)."""
    response = client.search(index=index, size=0, track_total_hits=True, aggs={
        "highest": {"max": {"field": LEVEL_FIELD}},
        "without": {"missing": {"field": LEVEL_FIELD}}})
    aggregations = response["aggregations"]
    found = aggregations["highest"].get("value")
    levels = [int(found)] if found is not None else []
    if aggregations["without"]["doc_count"]:
        levels.append(default_level)
    return max(levels, default=default_level)


def plan_event_indices(client: Elasticsearch, policy: RetentionPolicy, prefix: str, now: datetime) -> Iterator[Action]:
    """The daily event indices due for deletion at ``now`` (a planner for ``apply_retention``)."""
    events = policy.events
    if events is None:
        return
    longest_cutoff = now - timedelta(days=events.longest_days)
    shortest_cutoff = now - timedelta(days=min(events.days_by_level.values()))
    for name in sorted(client.indices.get(index=f"{prefix}-*", allow_no_indices=True, expand_wildcards="open")):
        end = day_end(name, prefix)
        if end is None or end > shortest_cutoff:
            continue  # not a daily index, or no level's retention has passed yet
        if end <= longest_cutoff:
            level = None  # past every level: no need to look inside
            days = events.longest_days
        else:
            level = highest_level(client, name, events.default_level)
            days = events.days_by_level[level]
            if end > now - timedelta(days=days):
                continue
        yield Action("delete_index", name, int(client.count(index=name)["count"]), level=level, days=days,
                     cutoff=_iso(now - timedelta(days=days)))


def plan_deadletter_indices(client: Elasticsearch, policy: RetentionPolicy, prefix: str,
                            now: datetime) -> Iterator[Action]:
    """Daily dead-letter indices older than the longest event retention."""
    if policy.events is None:
        return
    cutoff = now - timedelta(days=policy.events.longest_days)
    for name in sorted(client.indices.get(index=f"{prefix}-*", allow_no_indices=True, expand_wildcards="open")):
        end = day_end(name, prefix)
        if end is not None and end <= cutoff:
            yield Action("delete_index", name, int(client.count(index=name)["count"]),
                         days=policy.events.longest_days, cutoff=_iso(cutoff))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
