"""Response: time to acknowledge and to close (median and p90 by level and by security level),
the open backlog and its age, and the incidents with how many were reported within the deadline.

Elasticsearch's percentiles cannot take the difference of two fields without a script, and
socflow uses no scripts. Time to close: one composite aggregation groups the closed alerts by
level, security level, and the 5-minute slots they were raised and closed in, and the
percentiles are taken over those weighted slots (to 5 minutes). Time to acknowledge: triage
stores the first response's duration when it stamps it (``socflow.triage.ack_seconds``, whole
seconds from the alert's ``@timestamp``), so one composite aggregation counts the alerts per
level, security level and minute of that duration, and the nearest-rank percentiles are taken
over the minutes (to 1 minute; not Elasticsearch's ``percentiles``, whose t-digest estimates
would not agree exactly with the audit trail). Alerts never acknowledged are in the backlog,
not in the percentiles. Incidents (``socflow-incidents``, a few a month) are read whole.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from alerts.reports.period import iso
from alerts.reports.sections.base import (
    Context,
    NotAvailable,
    buckets,
    composite_pages,
    keyed,
    local_time,
    search,
    section,
    unavailable,
)

SLOT = "5m"
SLOT_MS = 5 * 60 * 1000
ACK_RESOLUTION_S = 60
ACK_NOTES = (
    "Time to acknowledge counts from the alert's time to its first response: acknowledged, or "
    "straight to investigating or closed (socflow.triage.acknowledged_at, stamped once by triage).",
    "Alerts never acknowledged are counted in the open backlog (never_acknowledged), not in the percentiles.",
    "Alerts first answered before triage stamped the first response have no socflow.triage.ack_seconds "
    "and are left out of the percentiles (the audit trail has their actions).",
)
AGE_RANGES = (("under_1d", 1), ("1d_7d", 7), ("7d_30d", 30))


def close_body(ctx: Context) -> dict[str, Any]:
    histogram = {"fixed_interval": SLOT}
    return {"size": 0, "query": {"bool": {"filter": [*ctx.period_filter(), {"term": {"socflow.alert.status": "closed"}},
                                                     {"exists": {"field": "socflow.triage.closed_at"}}]}},
            "aggs": {"slots": {"composite": {"size": 10_000, "sources": [
                {"level": {"terms": {"field": "rule.level"}}},
                {"security_level": {"terms": {"field": "socflow.node.security_level", "missing_bucket": True}}},
                {"opened": {"date_histogram": {"field": "@timestamp", **histogram}}},
                {"closed": {"date_histogram": {"field": "socflow.triage.closed_at", **histogram}}}]}}}}


def ack_body(ctx: Context) -> dict[str, Any]:
    return {"size": 0, "query": {"bool": {"filter": [*ctx.period_filter(),
                                                     {"exists": {"field": "socflow.triage.ack_seconds"}}]}},
            "aggs": {"durations": {"composite": {"size": 10_000, "sources": [
                {"level": {"terms": {"field": "rule.level"}}},
                {"security_level": {"terms": {"field": "socflow.node.security_level", "missing_bucket": True}}},
                {"seconds": {"histogram": {"field": "socflow.triage.ack_seconds",
                                           "interval": ACK_RESOLUTION_S}}}]}}}}


def backlog_body(ctx: Context) -> dict[str, Any]:
    end = iso(min(ctx.period.end, ctx.now))
    ranges = [{"key": name, "from": f"{end}||-{days}d"} for name, days in AGE_RANGES[:1]]
    ranges += [{"key": name, "from": f"{end}||-{days}d", "to": f"{end}||-{prev}d"}
               for (name, days), (_, prev) in zip(AGE_RANGES[1:], AGE_RANGES, strict=False)]
    ranges.append({"key": "over_30d", "to": f"{end}||-30d"})
    return {"size": 0, "track_total_hits": True,
            "query": {"bool": {"filter": [{"range": {"@timestamp": {"lt": end}}}, *ctx.scope.filter()],
                               "must_not": [{"term": {"socflow.alert.status": "closed"}}]}},
            "aggs": {"age": {"range": {"field": "@timestamp", "keyed": False, "ranges": ranges}},
                     "level": {"terms": {"field": "rule.level", "size": 10}},
                     "never_acknowledged": {"filter": {"bool": {
                         "filter": [{"term": {"socflow.alert.status": "open"}}],
                         "must_not": [{"exists": {"field": "socflow.triage.acknowledged_at"}}]}}},
                     "oldest": {"min": {"field": "@timestamp"}}}}


def incidents_body(ctx: Context) -> dict[str, Any]:
    scope: list[dict[str, Any]] = []
    if ctx.scope.kind == "agency":
        scope = [{"term": {"agencies": ctx.scope.id}}]
    elif ctx.scope.kind == "node":
        scope = [{"term": {"nodes": ctx.scope.id}}]
    elif ctx.scope.kind == "district":
        nodes = [n.id for n in ctx.inventory.assets.nodes if n.district == ctx.scope.id]
        scope = [{"terms": {"nodes": nodes}}]
    return {"size": 1000, "sort": [{"detected_at": "asc"}, {"id": "asc"}],
            "_source": ["id", "title", "severity", "status", "owner", "detected_at", "reported_at", "created_at",
                        "nodes", "agencies", "alerts"],
            "query": {"bool": {"filter": [{"range": {"detected_at": {"gte": iso(ctx.period.start),
                                                                     "lt": iso(ctx.period.end)}}}, *scope]}}}


def percentile(weighted: list[tuple[float, int]], fraction: float) -> float | None:
    """The nearest-rank percentile of (value, count) pairs."""
    total = sum(count for _, count in weighted)
    if not total:
        return None
    rank = max(1, -(-total * fraction // 1))
    seen = 0
    for value, count in sorted(weighted):
        seen += count
        if seen >= rank:
            return value
    return sorted(weighted)[-1][0]


def _stats(counts: Counter[float], label: str = "closed") -> dict[str, Any]:
    weighted = list(counts.items())
    return {label: sum(counts.values()), "median_h": _hours(percentile(weighted, 0.5)),
            "p90_h": _hours(percentile(weighted, 0.9))}


class Durations:
    """Alerts counted per duration (ms), overall, by level and by security level."""

    def __init__(self) -> None:
        self.every: Counter[float] = Counter()
        self.by_level: dict[str, Counter[float]] = defaultdict(Counter)
        self.by_security: dict[str, Counter[float]] = defaultdict(Counter)

    def add(self, level: object, security_level: object, duration: float, count: int) -> None:
        self.every[duration] += count
        self.by_level[str(level)][duration] += count
        self.by_security[str(security_level)][duration] += count

    def figures(self, label: str) -> dict[str, Any]:
        return {"all": _stats(self.every, label),
                "by_level": {k: _stats(v, label) for k, v in sorted(self.by_level.items())},
                "by_security_level": {k: _stats(v, label) for k, v in sorted(self.by_security.items())}}


def _hours(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 3_600_000, 2)


def build(ctx: Context) -> dict[str, Any]:
    queries: list[dict[str, Any]] = []
    try:
        # Counted as pages arrive: memory grows with distinct durations, not with closed alerts.
        closing = Durations()
        seen, cut = 0, False
        for page in composite_pages(ctx, queries, ctx.alerts_index, close_body(ctx), "slots"):
            for slot in page:
                key = slot["key"]
                closing.add(key["level"], key["security_level"], max(0.0, float(key["closed"] - key["opened"])),
                            int(slot["doc_count"]))
            seen += len(page)
            if seen >= ctx.settings.max_response_buckets:
                cut = True
                break
        backlog = search(ctx, queries, ctx.alerts_index, backlog_body(ctx))
        acknowledge = _acknowledge(ctx, queries)
    except NotAvailable as missing:
        alerts_part: dict[str, Any] = unavailable([], missing.reason)
        acknowledge = {"status": "not_available", "reason": missing.reason}
    else:
        aggs = backlog.get("aggregations", {})
        alerts_part = {
            "status": "ok" if closing.every else "empty", "truncated": cut, "resolution": SLOT,
            "time_to_close": closing.figures("closed"),
            "close_distribution_h": _distribution(closing.every),
            "backlog": {"open": int(backlog["hits"]["total"]["value"]),
                        "never_acknowledged": int(aggs.get("never_acknowledged", {}).get("doc_count", 0)),
                        "by_age": {str(b["key"]): int(b["doc_count"]) for b in buckets(aggs, "age")},
                        "by_level": keyed(aggs, "level"),
                        "oldest": local_time(ctx, aggs.get("oldest", {}).get("value"))},
        }
    incidents = _incidents(ctx, queries)
    status = "ok" if alerts_part["status"] == "ok" or incidents.get("total") else (
        "not_available" if alerts_part["status"] == "not_available" else "empty")
    return section(status, queries, alerts=alerts_part, time_to_acknowledge=acknowledge, incidents=incidents)


def _acknowledge(ctx: Context, queries: list[dict[str, Any]]) -> dict[str, Any]:
    """Time to first response from the durations triage stored, per minute of duration."""
    acked = Durations()
    seen, cut = 0, False
    for page in composite_pages(ctx, queries, ctx.alerts_index, ack_body(ctx), "durations"):
        for bucket in page:
            key = bucket["key"]
            acked.add(key["level"], key["security_level"], float(key["seconds"]) * 1000, int(bucket["doc_count"]))
        seen += len(page)
        if seen >= ctx.settings.max_response_buckets:
            cut = True
            break
    return {"status": "ok" if acked.every else "empty", "truncated": cut, "resolution": f"{ACK_RESOLUTION_S // 60}m",
            **acked.figures("acknowledged"), "distribution_h": _distribution(acked.every), "notes": list(ACK_NOTES)}


def _distribution(durations: Counter[float]) -> list[dict[str, Any]]:
    edges = (1, 4, 8, 24, 72, 168)
    counts = [0] * (len(edges) + 1)
    for value, count in durations.items():
        hours = value / 3_600_000
        index = next((i for i, edge in enumerate(edges) if hours < edge), len(edges))
        counts[index] += count
    labels = [f"<{edges[0]}h", *[f"{a}-{b}h" for a, b in itertools.pairwise(edges)], f">={edges[-1]}h"]
    return [{"bucket": label, "alerts": count} for label, count in zip(labels, counts, strict=True)]


def _incidents(ctx: Context, queries: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        answer = search(ctx, queries, ctx.settings.incidents_index, incidents_body(ctx))
    except NotAvailable as missing:
        return {"status": "not_available", "reason": f"incidents: {missing.reason}"}
    deadline_ms = ctx.settings.reporting_deadline_h * 3_600_000
    rows = []
    for hit in answer["hits"]["hits"]:
        source = hit["_source"]
        detected = _ms(source.get("detected_at")) or 0.0
        state = reporting_state(source.get("detected_at"), source.get("reported_at"),
                                ctx.settings.reporting_deadline_h, ctx.now)
        rows.append({"id": source.get("id", hit["_id"]), "title": source.get("title"),
                     "severity": source.get("severity"), "status": source.get("status"),
                     "detected": local_time(ctx, source.get("detected_at")),
                     "reported": local_time(ctx, source.get("reported_at")),
                     "deadline": local_time(ctx, detected + deadline_ms), "reporting": state,
                     "nodes": list(source.get("nodes") or []), "alerts": len(source.get("alerts") or [])})
    counts = {state: sum(1 for row in rows if row["reporting"] == state)
              for state in ("on_time", "late", "overdue", "pending")}
    return {"status": "ok" if rows else "empty", "total": len(rows), "reporting": counts,
            "deadline_hours": ctx.settings.reporting_deadline_h, "list": rows}


def _ms(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp() * 1000


def reporting_state(detected: str | None, reported: str | None, deadline_h: float, now: datetime) -> str:
    """on_time / late (reported after the deadline) / overdue (not reported, deadline passed) / pending."""
    start = _ms(detected)
    if start is None:
        return "unknown"
    deadline_ms = deadline_h * 3_600_000
    done = _ms(reported)
    if done is not None:
        return "on_time" if done - start <= deadline_ms else "late"
    return "overdue" if now.timestamp() * 1000 - start > deadline_ms else "pending"
