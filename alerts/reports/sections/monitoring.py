"""Monitoring: alerts by level, rule, ATT&CK tactic, agency, district and security level, over
time; the noisiest rules with their false-positive rate from the analysts' verdicts.

One request, ``size: 0``, terms / date_histogram / filter aggregations only.
"""

from __future__ import annotations

from typing import Any

from alerts.reports.sections.base import Context, NotAvailable, buckets, keyed, search, section, unavailable

LEVELS = ("critical", "high", "medium", "low", "informational")


def body(ctx: Context) -> dict[str, Any]:
    interval = ctx.calendar_interval()
    histogram = {"field": "@timestamp", "calendar_interval": interval, "time_zone": ctx.settings.timezone,
                 "min_doc_count": 0,
                 "extended_bounds": {"min": ctx.period.start.isoformat(), "max": ctx.period.end.isoformat()}}
    # extended_bounds take the period's own instants; the last bucket may start at the end: dropped below.
    return {
        "size": 0, "track_total_hits": True,
        "query": {"bool": {"filter": ctx.period_filter()}},
        "aggs": {
            "level": {"terms": {"field": "rule.level", "size": 10}},
            "tactic": {"terms": {"field": "threat.tactic.name", "size": 50}},
            "agency": {"terms": {"field": "socflow.node.agency", "size": 1000}},
            "district": {"terms": {"field": "socflow.node.district", "size": 100}},
            "security_level": {"terms": {"field": "socflow.node.security_level", "size": 10}},
            "status": {"terms": {"field": "socflow.alert.status", "size": 10}},
            "over_time": {"date_histogram": histogram,
                          "aggs": {"level": {"terms": {"field": "rule.level", "size": 10}}}},
            "agency_week": {"terms": {"field": "socflow.node.agency", "size": 30},
                            "aggs": {"week": {"date_histogram": {**histogram, "calendar_interval": "week"}}}},
            "rules": {"terms": {"field": "rule.name", "size": ctx.settings.top_rules},
                      "aggs": {"level": {"terms": {"field": "rule.level", "size": 1}},
                               "verdict": {"terms": {"field": "socflow.triage.verdict", "size": 5}}}},
            "rule_count": {"cardinality": {"field": "rule.id"}},
        },
    }


def ranked(aggregations: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """A terms aggregation as a list, most alerts first (a JSON object would lose the order)."""
    pairs = keyed(aggregations, name)
    return [{"key": key, "alerts": count} for key, count in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))]


def build(ctx: Context) -> dict[str, Any]:
    queries: list[dict[str, Any]] = []
    try:
        answer = search(ctx, queries, ctx.alerts_index, body(ctx))
    except NotAvailable as missing:
        return unavailable(queries, missing.reason)
    aggs = answer.get("aggregations", {})
    interval = ctx.calendar_interval()
    total = int(answer["hits"]["total"]["value"])
    end_ms = ctx.period.end.timestamp() * 1000
    width = 16 if interval == "hour" else 10  # 2026-11-20T14:00 or 2026-11-20
    over_time = [{"start": bucket["key_as_string"][:width].replace("T", " "), "total": int(bucket["doc_count"]),
                  **{level: keyed(bucket, "level").get(level, 0) for level in LEVELS}}
                 for bucket in buckets(aggs, "over_time") if bucket["key"] < end_ms]
    weeks = sorted({b["key_as_string"][:10] for agency in buckets(aggs, "agency_week")
                    for b in buckets(agency, "week") if b["key"] < end_ms})
    heat = [{"agency": str(agency["key"]),
             "weeks": [{b["key_as_string"][:10]: int(b["doc_count"]) for b in buckets(agency, "week")}.get(w, 0)
                       for w in weeks]}
            for agency in buckets(aggs, "agency_week")]
    rules = []
    for bucket in buckets(aggs, "rules"):
        verdicts = keyed(bucket, "verdict")
        judged = sum(verdicts.values())
        levels = buckets(bucket, "level")
        rules.append({"rule": str(bucket["key"]), "alerts": int(bucket["doc_count"]),
                      "level": str(levels[0]["key"]) if levels else None, "with_verdict": judged,
                      "false_positive": verdicts.get("false_positive", 0),
                      "false_positive_rate": round(verdicts.get("false_positive", 0) / judged, 4) if judged else None})
    return section(
        "ok" if total else "empty", queries, total=total,
        rules_that_fired=int(aggs.get("rule_count", {}).get("value", 0)),
        by_level={level: keyed(aggs, "level").get(level, 0) for level in LEVELS},
        by_tactic=ranked(aggs, "tactic"), by_agency=ranked(aggs, "agency"), by_district=keyed(aggs, "district"),
        by_security_level=keyed(aggs, "security_level"), by_status=keyed(aggs, "status"),
        interval=ctx.calendar_interval(), over_time=over_time,
        heatmap={"weeks": weeks, "rows": heat, "note": "the 30 agencies with most alerts"},
        noisy_rules=rules)
