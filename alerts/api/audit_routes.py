"""The audit trail, read-only, for auditors and admins: filtered pages and a chain check."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from alerts.api.context import console
from alerts.api.security import AuditUser
from alerts.audit.query import AuditFilter, search

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("")
def audit_records(request: Request, user: AuditUser, *,
                  actor: Annotated[str | None, Query(max_length=200)] = None,
                  action: Annotated[str | None, Query(max_length=100)] = None,
                  since: datetime | None = None, until: datetime | None = None,
                  before: Annotated[int | None, Query(ge=1)] = None,
                  size: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    """Records newest first (by seq); ``before``=the ``next_before`` of the previous answer."""
    state = console(request)
    page = search(state.es, state.audit.index, AuditFilter(actor, action, since, until), before=before, size=size)
    return {"total": page.total, "records": page.records, "next_before": page.next_before}


@router.get("/verify")
def audit_verify(request: Request, user: AuditUser) -> dict[str, Any]:
    """Re-walk the whole chain (as ``socflow audit verify``)."""
    verdict = console(request).audit.verify()
    return {"ok": verdict.ok, "records": verdict.records, "last_seq": verdict.last.seq,
            "problem": str(verdict.problem) if verdict.problem else None}
