"""Log-source coverage: per node, which sources sent events in the period, how many a day,
when last seen; the silent sources (seen before, quiet for ``reports.silent_after_h`` or more
at the period's end) with the longest gap first.

One composite aggregation over the event store (``socflow-events`` alias) up to the period's
end, keyed by node and logsource, each bucket with its last event ever and its in-period count:
a source that fell silent before the period began is still found.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from alerts.reports.period import iso
from alerts.reports.sections.base import (
    Context,
    NotAvailable,
    buckets,
    composite_all,
    local_day,
    local_time,
    search,
    section,
    unavailable,
)

SOURCE_FIELDS = ("socflow.logsource.product", "socflow.logsource.category", "socflow.logsource.service")


def body(ctx: Context) -> dict[str, Any]:
    sources = [{"node": {"terms": {"field": "socflow.node.id", "missing_bucket": True}}}]
    sources += [{name.rsplit(".", 1)[1]: {"terms": {"field": name, "missing_bucket": True}}} for name in SOURCE_FIELDS]
    return {
        "size": 0,
        "query": {"bool": {"filter": [{"range": {"@timestamp": {"lt": iso(ctx.period.end)}}}, *ctx.scope.filter()]}},
        "aggs": {"sources": {
            "composite": {"size": 1000, "sources": sources},
            "aggs": {"last": {"max": {"field": "@timestamp"}},
                     "in_period": {"filter": {"range": {"@timestamp": {"gte": iso(ctx.period.start)}}},
                                   "aggs": {"first": {"min": {"field": "@timestamp"}}}}}}},
    }


def daily_body(ctx: Context) -> dict[str, Any]:
    return {"size": 0, "query": {"bool": {"filter": ctx.period_filter()}},
            "aggs": {"day": {"date_histogram": {"field": "@timestamp", "calendar_interval": "day",
                                                "time_zone": ctx.settings.timezone, "min_doc_count": 0}}}}


def _name(key: dict[str, Any]) -> str:
    return "/".join(str(key[part]) for part in ("product", "category", "service") if key.get(part)) or "(none)"


def build(ctx: Context) -> dict[str, Any]:
    queries: list[dict[str, Any]] = []
    try:
        found, _ = composite_all(ctx, queries, ctx.events_index, body(ctx), "sources")
        daily = search(ctx, queries, ctx.events_index, daily_body(ctx))
    except NotAvailable as missing:
        return unavailable(queries, f"event store: {missing.reason}")
    end_ms = min(ctx.period.end, ctx.now).timestamp() * 1000
    threshold_ms = ctx.settings.silent_after_h * 3600 * 1000
    per_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    silent = []
    for bucket in found:
        key = bucket["key"]
        node = str(key["node"] or "(no node)")
        count = int(bucket["in_period"]["doc_count"])
        last = bucket["last"]["value"]
        first = bucket["in_period"]["first"]["value"]
        # Per day since the source's first event of the period (a store that keeps 10 days of a
        # yearly period must not show a tenth of the rate).
        days = max(1.0, (end_ms - first) / 86_400_000) if first is not None else 1.0
        row = {"source": _name(key), "events": count, "per_day": round(count / days, 2),
               "first_seen": local_time(ctx, bucket["in_period"]["first"]["value"]), "last_seen": local_time(ctx, last)}
        per_node[node].append(row)
        if last is not None and end_ms - last >= threshold_ms:
            silent.append({"node": node, "source": row["source"], "last_seen": row["last_seen"],
                           "gap_hours": round((end_ms - last) / 3_600_000, 1)})
    silent.sort(key=lambda item: (-item["gap_hours"], item["node"], item["source"]))
    nodes = [{"node": node, "sources": sorted(rows, key=lambda r: r["source"]),
              "events": sum(r["events"] for r in rows)} for node, rows in sorted(per_node.items())]
    in_scope = {n["id"] for n in _scope_nodes(ctx)}
    never = sorted(in_scope - set(per_node))
    per_day = [{"day": local_day(ctx, b["key"]), "events": int(b["doc_count"])}
               for b in buckets(daily.get("aggregations", {}), "day")]
    total = sum(n["events"] for n in nodes)
    return section("ok" if total else "empty", queries, events=total, nodes_reporting=len(nodes),
                   nodes_in_scope=len(in_scope), nodes_never_seen=never, nodes=nodes, silent=silent,
                   silent_after_hours=ctx.settings.silent_after_h, per_day=per_day)


def _scope_nodes(ctx: Context) -> list[dict[str, Any]]:
    from alerts.reports.scope import scope_section

    return list(scope_section(ctx.inventory, ctx.scope, None)["node_list"])
