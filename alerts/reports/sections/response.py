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

Speed: a composite aggregation visits every matching alert for each page it returns, so one
composite over a year's 250,000 closed alerts (one bucket each) visited them 25 times. A first
request counts the closed and acknowledged alerts per day; the period is cut into chunks of
consecutive days holding at most ``CHUNK_ALERTS`` of them (one page each, mostly; the
acknowledgement's buckets are minutes shared by many alerts, so its chunks are larger), and the
chunks' composites, the backlog and the incidents run concurrently (``reports.concurrency``).
Every alert is in exactly one chunk and the counts are summed per duration: the figures are
those of one composite over the whole period. A period that fits one chunk makes exactly the
requests it made before chunking. Each composite is recorded once, as written for the whole
period (what its figures equal), with the chunks it ran in.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from alerts.reports.period import iso
from alerts.reports.sections.base import (
    Context,
    NotAvailable,
    buckets,
    composite_pages,
    concurrently,
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
CHUNK_ALERTS = 10_000  # closed alerts: about one composite bucket each, so one page a chunk
ACK_CHUNK_ALERTS = 50_000  # acknowledged: buckets are minutes, shared by many alerts
PAGE = 10_000
CLOSED = ({"term": {"socflow.alert.status": "closed"}}, {"exists": {"field": "socflow.triage.closed_at"}})
ACKNOWLEDGED = ({"exists": {"field": "socflow.triage.ack_seconds"}},)
Window = tuple[str | None, str | None]  # a chunk of the period: [from, to) of @timestamp, None = the period's own


def _window_filter(window: Window) -> list[dict[str, Any]]:
    start, end = window
    bounds = {key: value for key, value in (("gte", start), ("lt", end)) if value is not None}
    return [{"range": {"@timestamp": bounds}}] if bounds else []


def days_body(ctx: Context) -> dict[str, Any]:
    """Closed and acknowledged alerts per UTC day: where to cut the period into chunks."""
    day = {"date_histogram": {"field": "@timestamp", "fixed_interval": "1d", "min_doc_count": 1}}
    return {"size": 0, "query": {"bool": {"filter": ctx.period_filter()}},
            "aggs": {"closed": {"filter": {"bool": {"filter": list(CLOSED)}}, "aggs": {"day": day}},
                     "acknowledged": {"filter": {"bool": {"filter": list(ACKNOWLEDGED)}}, "aggs": {"day": day}}}}


def chunks(days: list[dict[str, Any]], limit: int) -> list[Window]:
    """Consecutive days holding at most ``limit`` alerts each (a day holding more is a chunk of its
    own); the first chunk is open at the start, the last at the end: together, the period."""
    cuts: list[str] = []
    held = 0
    for bucket in days:
        count = int(bucket["doc_count"])
        if held and held + count > limit:
            cuts.append(iso_ms(bucket["key"]))
            held = 0
        held += count
    bounds: list[str | None] = [None, *cuts, None]
    return list(itertools.pairwise(bounds))


def iso_ms(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def close_body(ctx: Context, window: Window = (None, None)) -> dict[str, Any]:
    histogram = {"fixed_interval": SLOT}
    return {"size": 0, "query": {"bool": {"filter": [*ctx.period_filter(), *_window_filter(window), *CLOSED]}},
            "aggs": {"slots": {"composite": {"size": PAGE, "sources": [
                {"level": {"terms": {"field": "rule.level"}}},
                {"security_level": {"terms": {"field": "socflow.node.security_level", "missing_bucket": True}}},
                {"opened": {"date_histogram": {"field": "@timestamp", **histogram}}},
                {"closed": {"date_histogram": {"field": "socflow.triage.closed_at", **histogram}}}]}}}}


def ack_body(ctx: Context, window: Window = (None, None)) -> dict[str, Any]:
    return {"size": 0, "query": {"bool": {"filter": [*ctx.period_filter(), *_window_filter(window), *ACKNOWLEDGED]}},
            "aggs": {"durations": {"composite": {"size": PAGE, "sources": [
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

    def merge(self, other: Durations) -> None:
        self.every.update(other.every)
        for mine, theirs in ((self.by_level, other.by_level), (self.by_security, other.by_security)):
            for key, counts in theirs.items():
                mine[key].update(counts)

    def figures(self, label: str) -> dict[str, Any]:
        return {"all": _stats(self.every, label),
                "by_level": {k: _stats(v, label) for k, v in sorted(self.by_level.items())},
                "by_security_level": {k: _stats(v, label) for k, v in sorted(self.by_security.items())}}


def _hours(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 3_600_000, 2)


class Budget:
    """The buckets every chunk's composite may still read (``reports.max_response_buckets``)."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.cut = False
        self._lock = threading.Lock()

    def spend(self, buckets_read: int) -> bool:
        """Count a page; False once the cap is reached (the caller stops, the section says partly)."""
        with self._lock:
            self.left -= buckets_read
            if self.left <= 0:
                self.cut = True
            return not self.cut


def _durations(ctx: Context, body: dict[str, Any], name: str, budget: Budget,
               duration: Callable[[dict[str, Any]], float]) -> tuple[Durations, list[dict[str, Any]]]:
    """One chunk's composite, page by page (counted as pages arrive: memory grows with distinct
    durations, not with alerts), and the request it recorded."""
    counted = Durations()
    queries: list[dict[str, Any]] = []
    for page in composite_pages(ctx, queries, ctx.alerts_index, body, name):
        for bucket in page:
            key = bucket["key"]
            counted.add(key["level"], key["security_level"], duration(key), int(bucket["doc_count"]))
        if not budget.spend(len(page)):
            break
    return counted, queries


def _close_ms(key: dict[str, Any]) -> float:
    return max(0.0, float(key["closed"] - key["opened"]))


def _ack_ms(key: dict[str, Any]) -> float:
    return float(key["seconds"]) * 1000


def build(ctx: Context) -> dict[str, Any]:
    queries: list[dict[str, Any]] = []
    try:
        days = search(ctx, queries, ctx.alerts_index, days_body(ctx)).get("aggregations", {})
    except NotAvailable as missing:
        days = {}
        failed: str | None = missing.reason
    else:
        failed = None
    close_budget, ack_budget = Budget(ctx.settings.max_response_buckets), Budget(ctx.settings.max_response_buckets)
    close_windows = chunks(buckets(days.get("closed", {}), "day"), CHUNK_ALERTS)
    ack_windows = chunks(buckets(days.get("acknowledged", {}), "day"), ACK_CHUNK_ALERTS)
    calls: list[Callable[[], Any]] = []
    if failed is None:
        calls += [partial(_durations, ctx, close_body(ctx, w), "slots", close_budget, _close_ms) for w in close_windows]
        calls.append(partial(_recorded, ctx, backlog_body(ctx)))
        calls += [partial(_durations, ctx, ack_body(ctx, w), "durations", ack_budget, _ack_ms) for w in ack_windows]
    calls.append(partial(_incidents, ctx))
    try:
        results = concurrently(calls, ctx.settings.concurrency)
    except NotAvailable as missing:
        failed, results = missing.reason, [_incidents(ctx)]
    *parts, (incidents, incident_queries) = results
    if failed is None:
        # One entry per composite, as if it ran in one piece (what the figures equal), with its chunks.
        queries.append(_chunked(ctx, close_body(ctx), close_windows))
        queries.extend(parts[len(close_windows)][1])
        queries.append(_chunked(ctx, ack_body(ctx), ack_windows))
    queries.extend(incident_queries)
    if failed is not None:
        alerts_part: dict[str, Any] = unavailable([], failed)
        acknowledge: dict[str, Any] = {"status": "not_available", "reason": failed}
    else:
        closing, acked = Durations(), Durations()
        for counted, _ in parts[:len(close_windows)]:
            closing.merge(counted)
        for counted, _ in parts[len(close_windows) + 1:]:
            acked.merge(counted)
        backlog = parts[len(close_windows)][0]
        aggs = backlog.get("aggregations", {})
        alerts_part = {
            "status": "ok" if closing.every else "empty", "truncated": close_budget.cut, "resolution": SLOT,
            "time_to_close": closing.figures("closed"),
            "close_distribution_h": _distribution(closing.every),
            "backlog": {"open": int(backlog["hits"]["total"]["value"]),
                        "never_acknowledged": int(aggs.get("never_acknowledged", {}).get("doc_count", 0)),
                        "by_age": {str(b["key"]): int(b["doc_count"]) for b in buckets(aggs, "age")},
                        "by_level": keyed(aggs, "level"),
                        "oldest": local_time(ctx, aggs.get("oldest", {}).get("value"))},
        }
        acknowledge = {"status": "ok" if acked.every else "empty", "truncated": ack_budget.cut,
                       "resolution": f"{ACK_RESOLUTION_S // 60}m", **acked.figures("acknowledged"),
                       "distribution_h": _distribution(acked.every), "notes": list(ACK_NOTES)}
    status = "ok" if alerts_part["status"] == "ok" or incidents.get("total") else (
        "not_available" if alerts_part["status"] == "not_available" else "empty")
    return section(status, queries, alerts=alerts_part, time_to_acknowledge=acknowledge, incidents=incidents)


def _chunked(ctx: Context, body: dict[str, Any], windows: list[Window]) -> dict[str, Any]:
    entry: dict[str, Any] = {"index": ctx.alerts_index, "body": body}
    if len(windows) > 1:
        entry["chunks"] = [list(window) for window in windows]
    return entry


def _recorded(ctx: Context, body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    queries: list[dict[str, Any]] = []
    return search(ctx, queries, ctx.alerts_index, body), queries


def _distribution(durations: Counter[float]) -> list[dict[str, Any]]:
    edges = (1, 4, 8, 24, 72, 168)
    counts = [0] * (len(edges) + 1)
    for value, count in durations.items():
        hours = value / 3_600_000
        index = next((i for i, edge in enumerate(edges) if hours < edge), len(edges))
        counts[index] += count
    labels = [f"<{edges[0]}h", *[f"{a}-{b}h" for a, b in itertools.pairwise(edges)], f">={edges[-1]}h"]
    return [{"bucket": label, "alerts": count} for label, count in zip(labels, counts, strict=True)]


def _incidents(ctx: Context) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The incidents' part and the request it recorded."""
    queries: list[dict[str, Any]] = []
    try:
        answer = search(ctx, queries, ctx.settings.incidents_index, incidents_body(ctx))
    except NotAvailable as missing:
        return {"status": "not_available", "reason": f"incidents: {missing.reason}"}, queries
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
            "deadline_hours": ctx.settings.reporting_deadline_h, "list": rows}, queries


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
