"""A report as a data model: the sections of its kind over one period and scope.

``build_report`` takes the clock (``now``) and every source as arguments, so the same inputs
give the same JSON byte for byte (``canonical_json``: sorted keys): that is what golden files
compare and what the HTML, CSV and PDF are rendered from.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from alerts.reports import ReportError
from alerts.reports.period import iso
from alerts.reports.scope import scope_section
from alerts.reports.sections import attack, controls, coverage, integrity, monitoring, response, retention, rules
from alerts.reports.sections.base import Context, NotAvailable, concurrently, local_time, search
from alerts.reports.texts import words

KINDS = ("periodic", "operations", "incident")
SECTIONS = {
    "periodic": ("scope", "coverage", "monitoring", "response", "retention", "rules", "attack", "integrity",
                 "controls"),
    "operations": ("scope", "coverage", "monitoring", "response", "rules"),
    "incident": ("incident_detail", "scope", "integrity"),
}
FORMAT_VERSION = 1


def build_report(kind: str, ctx: Context, *, lang: str = "vi", incident_id: str | None = None,
                 previous_inventory: dict[str, list[Any]] | None = None, rule_store: Path | None = None,
                 suppression_files: Sequence[Path] = (), rule_paths: Sequence[Path] = (),
                 project_rules: Path | None = None) -> dict[str, Any]:
    """The report of ``kind`` over ``ctx``'s period and scope."""
    if kind not in KINDS:
        raise ReportError(f"unknown report kind {kind!r}; one of {', '.join(KINDS)}")
    if kind == "incident" and not incident_id:
        raise ReportError("an incident report needs the incident's id")
    text = words(lang)
    sections: dict[str, dict[str, Any]] = {}
    makers: dict[str, Callable[[], dict[str, Any]]] = {
        "scope": lambda: {"status": "ok", "source_queries": [{"path": f"config/{ctx.inventory.path}"}],
                          **scope_section(ctx.inventory, ctx.scope, previous_inventory)},
        "coverage": lambda: coverage.build(ctx),
        "monitoring": lambda: monitoring.build(ctx),
        "response": lambda: response.build(ctx),
        "retention": lambda: retention.build(ctx),
        "rules": lambda: rules.build(ctx, rule_store=rule_store or Path("rules-store"),
                                     suppression_files=suppression_files, project_rules=project_rules),
        "attack": lambda: attack.build(ctx, rule_paths=rule_paths),
        "integrity": lambda: integrity.build(ctx),
        "controls": lambda: controls.build(sections),
        "incident_detail": lambda: incident_detail(ctx, str(incident_id)),
    }
    # Sections are independent but for the control mapping, made from the others once they are done.
    independent = [name for name in SECTIONS[kind] if name != "controls"]
    made = concurrently([makers[name] for name in independent], ctx.settings.concurrency)
    sections.update(zip(independent, made, strict=True))
    if "controls" in SECTIONS[kind]:
        sections["controls"] = makers["controls"]()
    for name, body in sections.items():
        body["title"] = text[name]
    return {
        "format_version": FORMAT_VERSION,
        "report": {"kind": kind, "title": text[kind] + (f" {incident_id}" if incident_id else ""), "lang": lang,
                   "generated_at": iso(ctx.now), "generated_local": local_time(ctx, iso(ctx.now)),
                   "timezone": ctx.settings.timezone, "period": ctx.period.as_dict(ctx.zone),
                   "scope": {"kind": ctx.scope.kind, "id": ctx.scope.id, "label": ctx.scope.label},
                   "inventory_sha256": ctx.inventory.digest},
        "sections": sections,
        "order": list(SECTIONS[kind]),
        "notes": notes(ctx, kind),
    }


def notes(ctx: Context, kind: str) -> list[str]:
    found = [f"Dates and times are in {ctx.settings.timezone}; Elasticsearch queries use UTC (Z)."]
    if ctx.period.kind == "yearly":
        found.append("The yearly period (15 Dec - 14 Dec) follows Decree 09/2019/ND-CP Art. 12(4), which Circular "
                     "12/2022/TT-BTTTT's yearly report uses; the due dates are the setting reports.yearly_due and "
                     "were NOT confirmed against the official text of Circular 12/2022: check them before filing.")
    if kind != "incident":
        found.append("Time to close is computed over 5-minute slots (no scripts in Elasticsearch); time to "
                     "acknowledge from the first-response duration triage stores (socflow.triage.ack_seconds), to "
                     "the minute. Alerts never acknowledged are counted in the open backlog, not in the "
                     "percentiles.")
    return found


def incident_detail(ctx: Context, incident_id: str) -> dict[str, Any]:
    """One incident in the fields of the notification form: what, when detected and reported,
    systems and their levels, impact, actions taken, status."""
    queries: list[dict[str, Any]] = []
    body = {"size": 1, "query": {"ids": {"values": [incident_id]}}}
    try:
        hits = search(ctx, queries, ctx.settings.incidents_index, body)["hits"]["hits"]
    except NotAvailable as missing:
        raise ReportError(f"incident {incident_id}: {missing.reason}") from missing
    if not hits:
        raise ReportError(f"unknown incident {incident_id!r} (not in {ctx.settings.incidents_index})")
    source = hits[0]["_source"]
    by_id = {node.id: node for node in ctx.inventory.assets.nodes}
    systems = [{"node": node_id, "name": by_id[node_id].name if node_id in by_id else None,
                "agency": by_id[node_id].agency if node_id in by_id else None,
                "security_level": by_id[node_id].security_level if node_id in by_id else None}
               for node_id in source.get("nodes") or []]
    impact: dict[str, Any] = {"alerts": len(source.get("alerts") or [])}
    alert_ids = list(source.get("alerts") or [])
    if alert_ids:
        impact_body = {"size": 0, "query": {"ids": {"values": alert_ids}},
                       "aggs": {"level": {"terms": {"field": "rule.level"}}, "rule": {"terms": {"field": "rule.name"}},
                                "first": {"min": {"field": "@timestamp"}}, "last": {"max": {"field": "@timestamp"}}}}
        try:
            aggs = search(ctx, queries, ctx.alerts_index, impact_body).get("aggregations", {})
            impact.update({"by_level": {b["key"]: b["doc_count"] for b in aggs["level"]["buckets"]},
                           "rules": [b["key"] for b in aggs["rule"]["buckets"]],
                           "first_alert": local_time(ctx, aggs["first"]["value"]),
                           "last_alert": local_time(ctx, aggs["last"]["value"])})
        except NotAvailable as missing:
            impact["reason"] = missing.reason
    actions: list[dict[str, Any]] = [{"at": local_time(ctx, item.get("at")), "by": item.get("by"),
                                      "action": item.get("action"), "text": item.get("text")}
                                     for item in source.get("timeline") or []]
    audit_body = {"size": 1000, "sort": [{"@timestamp": "asc"}],
                  "query": {"terms": {"target": [f"incident:{incident_id}", *(f"alert:{a}" for a in alert_ids)]}}}
    try:
        for hit in search(ctx, queries, ctx.settings.audit_index, audit_body)["hits"]["hits"]:
            record = hit["_source"]
            actions.append({"at": local_time(ctx, record.get("@timestamp")), "by": record.get("actor"),
                            "action": record.get("action"), "text": record.get("target")})
        audit_status = "ok"
    except NotAvailable as missing:
        audit_status = f"not available: {missing.reason}"
    detected, reported = source.get("detected_at"), source.get("reported_at")
    deadline_h = ctx.settings.reporting_deadline_h
    state = response.reporting_state(detected, reported, deadline_h, ctx.now)
    return {"status": "ok", "source_queries": queries, "id": incident_id, "what": source.get("title"),
            "severity": source.get("severity"), "incident_status": source.get("status"), "owner": source.get("owner"),
            "detected": local_time(ctx, detected), "reported": local_time(ctx, reported),
            "deadline_hours": deadline_h, "reporting": state, "systems": systems, "impact": impact,
            "actions": sorted(actions, key=lambda a: (a["at"] or "", a["action"] or "")), "audit_trail": audit_status}


def canonical_json(report: dict[str, Any]) -> str:
    """The JSON form: sorted keys, UTF-8 kept, one trailing newline."""
    return json.dumps(report, sort_keys=True, ensure_ascii=False, indent=1) + "\n"
