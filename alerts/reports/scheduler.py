"""Scheduled reports: each entry of ``reports.schedule`` issues the report of its last complete
period once (the archive's index says what was issued), so a scheduler restarted, or run by a
CronJob every hour, issues each report exactly once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from alerts.reports.archive import list_reports
from alerts.reports.period import last_complete
from alerts.reports.service import Request, issue_report
from ingest.logs import log_event

if TYPE_CHECKING:
    from alerts.reports.settings import ScheduleEntry
    from alerts.settings import Settings

LOGGER = logging.getLogger(__name__)


def due(settings: Settings, now: datetime) -> list[tuple[ScheduleEntry, Any]]:
    """(entry, period) of every scheduled report not yet in the archive."""
    issued = {(entry["kind"], entry["period"], entry["scope"]) for entry in list_reports(settings.data_dir / "reports")}
    found = []
    for entry in settings.reports.schedule:
        period = last_complete(settings.reports, entry.period, now)
        scope_label = "province" if entry.scope == "province" else entry.scope.replace(":", " ")
        if (entry.kind, period.label, scope_label) not in issued:
            found.append((entry, period))
    return found


def run_due(settings: Settings, client: Any, now: datetime, *, actor: str = "socflow-scheduler",
            on_issue: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Issue every due report; return the archive entries written."""
    written = []
    for entry, period in due(settings, now):
        scope = None if entry.scope == "province" else entry.scope.replace(":", " ")
        _, archived = issue_report(settings, client, Request(entry.kind, period, scope, entry.lang), entry.formats,
                                   now=now, actor=actor)
        log_event(LOGGER, "report_issued", kind=entry.kind, period=period.label, scope=entry.scope,
                  id=archived["id"])
        written.append(archived)
        if on_issue is not None:
            on_issue(archived)
    return written
