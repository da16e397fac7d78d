"""Integrity: the audit trail's hash chain checked (``socflow audit verify``'s code) when the
report is made, and the digests by which this report itself can be checked later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from alerts.reports.sections.base import Context, section


def verify_trail(client: Elasticsearch | None, index: str, head_file: Path) -> dict[str, Any]:
    """The chain's verdict, or why there is none (the trail's code and index may be absent)."""
    try:
        from alerts.audit.trail import AuditError, AuditTrail  # the console's hash-chained trail
    except ImportError:
        return {"status": "not_available", "reason": "this build has no hash-chained audit trail (alerts.audit)"}
    if client is None:
        return {"status": "not_available", "reason": "no Elasticsearch client"}
    try:
        verdict = AuditTrail(client, index, head_file).verify()
    except (ApiError, TransportError, OSError, AuditError) as error:
        return {"status": "not_available", "reason": f"audit trail unreadable: {error}"}
    problem = getattr(verdict, "problem", None)
    last = getattr(verdict, "last", None)
    return {"status": "ok" if problem is None else "failed", "records": int(verdict.records),
            "last_seq": getattr(last, "seq", None), "problem": None if problem is None else str(problem)}


def build(ctx: Context) -> dict[str, Any]:
    verdict = dict(ctx.audit_verdict or {"status": "not_available", "reason": "not checked"})
    status = {"ok": "ok", "failed": "ok"}.get(verdict.get("status", ""), "not_available")
    return section(status, [{"command": "socflow audit verify", "index": ctx.settings.audit_index}],
                   audit_chain=verdict, scope="the whole chain up to the report's making (it includes the period)",
                   report_digest="SHA-256 of each issued file: <data-dir>/reports/index.json and the audit record "
                                 "report.issue")
