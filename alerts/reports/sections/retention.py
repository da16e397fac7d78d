"""Retention evidence: per security level the policy (config/retention.yaml, alerts and events),
the oldest alert and event still searchable, and every retention deletion of the period from
the hash-chained audit trail: the records ``socflow retention`` appends (``alerts.retention.AuditLog``),
``action`` = ``retention_<delete_index|delete_by_query>``, ``target`` = ``index:<name>``, and the
details (index, documents, level, days, cutoff, dry_run, run_id) under ``after``. The query is
stated in the section's sources like every other.
"""

from __future__ import annotations

from typing import Any

from alerts.reports.period import iso
from alerts.reports.sections.base import Context, NotAvailable, buckets, local_time, search, section

LEVEL_FIELD = "socflow.node.security_level"


def oldest_body(ctx: Context) -> dict[str, Any]:
    return {"size": 0, "query": {"bool": {"filter": ctx.scope.filter()}},
            "aggs": {"level": {"terms": {"field": LEVEL_FIELD, "size": 10, "missing": 0},
                               "aggs": {"oldest": {"min": {"field": "@timestamp"}}}}}}


def deletions_body(ctx: Context) -> dict[str, Any]:
    return {"size": 10_000, "sort": [{"seq": "asc"}],  # the chain's order
            "query": {"bool": {"filter": [{"range": {"@timestamp": {"gte": iso(ctx.period.start),
                                                                    "lt": iso(ctx.period.end)}}},
                                          {"exists": {"field": "seq"}},
                                          {"prefix": {"action": "retention_"}}]}}}


def _oldest(ctx: Context, queries: list[dict[str, Any]], index: str) -> dict[str, Any]:
    try:
        answer = search(ctx, queries, index, oldest_body(ctx))
    except NotAvailable as missing:
        return {"status": "not_available", "reason": missing.reason}
    return {"status": "ok", "by_level": {str(b["key"]): local_time(ctx, b["oldest"]["value"])
                                         for b in buckets(answer.get("aggregations", {}), "level")}}


def _deletion(source: dict[str, Any]) -> dict[str, Any]:
    """One chained audit record of a retention action (``after`` holds what was done)."""
    details = source.get("after")
    details = details if isinstance(details, dict) else {}
    return {"at": source.get("@timestamp"), "seq": source.get("seq"), "action": source.get("action"),
            "actor": source.get("actor"), "outcome": details.get("outcome"), "index": details.get("index"),
            "documents": details.get("documents"), "level": details.get("level"), "days": details.get("days"),
            "dry_run": bool(details.get("dry_run"))}


def build(ctx: Context) -> dict[str, Any]:
    queries: list[dict[str, Any]] = []
    policy = dict(ctx.retention_policy or {})
    alert_days = {str(k): v for k, v in (policy.get("days_by_level") or {}).items()}
    event_days = {str(k): v for k, v in ((policy.get("events") or {}).get("days_by_level") or {}).items()}
    levels = [{"level": str(level), "alert_days": alert_days.get(str(level)), "event_days": event_days.get(str(level))}
              for level in range(1, 6)]
    oldest_alerts = _oldest(ctx, queries, ctx.alerts_index)
    oldest_events = _oldest(ctx, queries, ctx.events_index)
    for row in levels:
        row["oldest_alert"] = oldest_alerts.get("by_level", {}).get(row["level"])
        row["oldest_event"] = oldest_events.get("by_level", {}).get(row["level"])
    try:
        answer = search(ctx, queries, ctx.settings.audit_index, deletions_body(ctx))
        found = [_deletion(hit["_source"]) for hit in answer["hits"]["hits"]]
        deletions: dict[str, Any] = {"status": "ok", "list": found}
        for row in deletions["list"]:
            row["at"] = local_time(ctx, row["at"])
        # Dry runs deleted nothing; a failed action's count is what was planned, not removed.
        deletions["documents"] = sum(int(r["documents"] or 0) for r in deletions["list"]
                                     if not r["dry_run"] and r["outcome"] == "success")
    except NotAvailable as missing:
        deletions = {"status": "not_available", "reason": f"audit trail: {missing.reason}"}
    status = "ok" if policy else "not_available"
    return section(status, queries, policy_file="config/retention.yaml", levels=levels,
                   alerts_store=oldest_alerts.get("status"), events_store=oldest_events.get("status"),
                   events_reason=oldest_events.get("reason"), deletions=deletions,
                   reason=None if policy else "no retention policy file")
