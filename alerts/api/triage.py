"""The triage API: the alert queue, an alert with its context, triage actions, bulk actions,
saved filters, incidents and 'suppress alerts like this' (JSON under ``/api/``).

Every route declares its role (``alerts.api.security``): reading is ``require_read``, changing
alerts and incidents ``require_triage``, suppressing ``require_admin``. Every change names the
version of the document the client saw (``version``, ``"<seq_no>:<primary_term>"`` as each
answer gives it); when the document changed since, the answer is 409 with ``current``, the
fresh state, and nothing is written. A client that sends no version acts on the state the
server reads (still never overwriting a concurrent write). Each change is audited
(``AuditTrail.append``, before and after).

The web pages (``alerts.web.triage_pages``) call the same service through :func:`triage_of`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from alerts.api.context import console
from alerts.api.security import AdminUser, ReadUser, TriageUser, client_address
from alerts.settings import Settings
from alerts.triage import model
from alerts.triage.context import (
    EntityEvents,
    NodeDirectory,
    RuleCatalogue,
    entity_events,
    related_alerts,
)
from alerts.triage.errors import ConflictError, NotFoundError, StoreUnavailableError, TriageError
from alerts.triage.queue import GROUP_FIELDS, QueueFilter
from alerts.triage.store import Record, TriageStore, alert_summary
from alerts.triage.suppressions import SuppressionFile, candidate_fields
from ingest.normalize import resolve_config_path

router = APIRouter(prefix="/api", tags=["triage"])
T = TypeVar("T")
GROUP_PATTERN = "^(" + "|".join(GROUP_FIELDS) + ")$"
VERSION = Annotated[str | None, Field(None, max_length=40, pattern=r"^\d{1,19}:\d{1,19}$",
                                      description="The version you saw ('<seq_no>:<primary_term>').")]
AlertVersions = Annotated[dict[str, str | None], Field(min_length=1, max_length=200,
                                                        description="Alert id -> the version you saw (or null).")]


@dataclass
class TriageApp:
    """What the triage routes share in one console process."""

    store: TriageStore
    rules: RuleCatalogue
    nodes: NodeDirectory
    suppressions: SuppressionFile
    settings: Settings


_LOCK = threading.Lock()


def triage_of(request: Request) -> TriageApp:
    """The triage service of this app (built on first use from the console's settings, client and audit)."""
    found: TriageApp | None = getattr(request.app.state, "triage", None)
    if found is not None:
        return found
    with _LOCK:
        found = getattr(request.app.state, "triage", None)
        if found is None:
            state = console(request)
            settings = state.settings
            store = TriageStore(state.es, alerts=settings.elasticsearch.index_prefix,
                                incidents=settings.triage.incidents_index, filters=settings.triage.filters_index,
                                audit=state.audit, refresh=settings.triage.refresh_on_write)
            paths = settings.suppression_paths
            found = TriageApp(
                store=store, rules=RuleCatalogue.load([settings.resolve(path) for path in settings.job.rule_dirs]),
                nodes=NodeDirectory.load(resolve_config_path(settings.collector.assets_path)),
                suppressions=SuppressionFile(paths[-1], others=paths[:-1]), settings=settings)
            request.app.state.triage = found
    return found


def installed(request: Request) -> TriageApp:
    """The service with its indices created (once per process, on the first change)."""
    app = triage_of(request)
    if not getattr(request.app.state, "triage_installed", False):
        try:
            app.store.install()
            request.app.state.triage_installed = True
        except StoreUnavailableError:
            pass  # the action itself fails the same way and says so (503); try again next time
    return app


def answer(call: Callable[[], T]) -> T | JSONResponse:
    """Run a service call; its errors become the API's answers (never a 500)."""
    try:
        return call()
    except ConflictError as error:
        return JSONResponse({"detail": error.reason, "reason": "conflict", "current": error.current}, status_code=409)
    except NotFoundError as error:
        return JSONResponse({"detail": error.reason, "reason": "not_found"}, status_code=404)
    except StoreUnavailableError as error:
        return JSONResponse({"detail": error.reason, "reason": "elasticsearch_unavailable"}, status_code=503,
                            headers={"Retry-After": "5"})
    except TriageError as error:
        return JSONResponse({"detail": error.reason, "reason": "invalid"}, status_code=400)


def queue_filter(
    *,
    since: Annotated[str | None, Query(max_length=40, description="RFC 3339, or 15m / 24h / 7d ago")] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[list[str], Query(max_length=200)] = [],  # noqa: B006 - FastAPI copies defaults
    level: Annotated[list[str], Query(max_length=200)] = [],  # noqa: B006
    rule: Annotated[list[str], Query(max_length=500)] = [],  # noqa: B006
    tactic: Annotated[list[str], Query(max_length=200)] = [],  # noqa: B006
    technique: Annotated[list[str], Query(max_length=200)] = [],  # noqa: B006
    node: Annotated[list[str], Query(max_length=200)] = [],  # noqa: B006
    agency: Annotated[list[str], Query(max_length=200)] = [],  # noqa: B006
    district: Annotated[list[str], Query(max_length=200)] = [],  # noqa: B006
    security_level: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    assignee: Annotated[list[str], Query(max_length=200, description="'-' is unassigned")] = [],  # noqa: B006
    text: Annotated[str | None, Query(max_length=500)] = None,
    order: Annotated[Literal["newest", "risk"], Query()] = "newest",
) -> QueueFilter:
    """The queue filter of a request's query parameters (each may repeat or hold commas)."""
    params: dict[str, list[str]] = {
        "status": status, "level": level, "rule": rule, "tactic": tactic, "technique": technique, "node": node,
        "agency": agency, "district": district, "security_level": security_level, "assignee": assignee,
        "order": [order]}
    for name, value in (("since", since), ("until", until), ("text", text)):
        if value:
            params[name] = [value]
    try:
        return QueueFilter.from_params(params)
    except TriageError as error:
        raise HTTPException(status_code=400, detail=error.reason) from error


def parse_filter(items: list[tuple[str, str]]) -> QueueFilter:
    params: dict[str, list[str]] = {}
    for name, value in items:
        params.setdefault(name, []).append(value)
    return QueueFilter.from_params(params)


# --- what the API answers with -------------------------------------------------------------------


@dataclass
class AlertView:
    """Everything the alert page shows."""

    record: Record
    rule: Any
    node: Any
    related: list[Record]
    events: EntityEvents
    suppressible: dict[str, str]


def alert_view(app: TriageApp, alert_id: str) -> AlertView:
    record = app.store.get(alert_id)
    settings = app.settings.triage
    return AlertView(
        record=record, rule=app.rules.rule_of(record.source), node=app.nodes.node_of(record.source),
        related=related_alerts(app.store, record, window=timedelta(hours=settings.related_hours)),
        events=entity_events(app.store.client, settings.events_alias, record.source,
                             around=timedelta(minutes=settings.context_minutes)),
        suppressible=candidate_fields(record.source))


def view_json(view: AlertView) -> dict[str, Any]:
    rule = asdict(view.rule)
    rule["techniques"] = [{"id": technique, "url": url} for technique, url in view.rule.techniques]
    rule["tactics"] = view.rule.tactics
    return {
        "alert": view.record.as_dict(), "summary": alert_summary(view.record), "rule": rule,
        "node": asdict(view.node), "related": [alert_summary(record) for record in view.related],
        "events": {"stored": view.events.stored, "error": view.events.error, "events": view.events.events},
        "suppressible": view.suppressible,
    }


def incident_json(record: Record, app: TriageApp, now: datetime) -> dict[str, Any]:
    due = model.deadline(record.source, hours=app.settings.triage.reporting_deadline_h, now=now)
    return {**record.as_dict(), "deadline": {
        "due": due.deadline.isoformat(), "left_s": int(due.left.total_seconds()), "overdue": due.overdue,
        "reported": due.reported, "text": "reported" if due.reported else model.describe_left(due.left),
        "hours": app.settings.triage.reporting_deadline_h}}


# --- request bodies ------------------------------------------------------------------------------


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatusChange(Body):
    status: Literal["open", "acknowledged", "investigating", "closed"]
    verdict: Literal["true_positive", "benign", "false_positive"] | None = None
    reason: str | None = Field(None, max_length=model.MAX_REASON)
    version: VERSION = None


class Assignment(Body):
    assignee: str | None = Field(None, max_length=64, description="A user name; null unassigns.")
    version: VERSION = None


class CommentIn(Body):
    text: str = Field(min_length=1, max_length=model.MAX_COMMENT)
    version: VERSION = None


class SuppressIn(Body):
    fields: list[str] = Field(default_factory=list, max_length=8,
                              description="Alert fields whose values the suppression matches (besides the rule).")
    reason: str = Field(min_length=1, max_length=model.MAX_REASON)
    days: int = Field(30, ge=1, le=366, description="Expiry, in days from now.")
    version: VERSION = None


class BulkIn(Body):
    action: Literal["acknowledged", "investigating", "closed", "open", "assign"]
    alerts: AlertVersions
    verdict: Literal["true_positive", "benign", "false_positive"] | None = None
    reason: str | None = Field(None, max_length=model.MAX_REASON)
    assignee: str | None = Field(None, max_length=64)


class IncidentIn(Body):
    title: str = Field(min_length=1, max_length=model.MAX_TITLE)
    severity: Literal["low", "medium", "high", "critical"] | None = None
    owner: str | None = Field(None, max_length=64)
    alerts: AlertVersions


class IncidentChange(Body):
    status: Literal["open", "investigating", "contained", "closed"] | None = None
    owner: str | None = Field(None, max_length=64)
    severity: Literal["low", "medium", "high", "critical"] | None = None
    comment: str | None = Field(None, max_length=model.MAX_COMMENT)
    reported: bool = False
    version: VERSION = None


class IncidentAlerts(Body):
    alerts: AlertVersions
    version: VERSION = None


class SavedFilterIn(Body):
    name: str = Field(min_length=1, max_length=100)
    params: str = Field("", max_length=4000, description="The queue's query string.")


def bulk_change(body: BulkIn, *, actor: str, now: datetime) -> Callable[[model.Triage], model.Triage]:
    if body.action == "assign":
        return lambda state: model.assign(state, body.assignee or None, actor=actor, now=now)
    return lambda state: model.transition(state, body.action, actor=actor, now=now, verdict=body.verdict,
                                          reason=body.reason)


def new_incident_id(now: datetime) -> str:
    return f"INC-{now:%Y%m%d}-{uuid.uuid4().hex[:6].upper()}"


# --- routes --------------------------------------------------------------------------------------


@router.get("/alerts", summary="The alert queue, one page")
def list_alerts(request: Request, user: ReadUser, queue: Annotated[QueueFilter, Depends(queue_filter)],
                after: Annotated[str | None, Query(max_length=400, description="Cursor of the next page")] = None,
                size: Annotated[int, Query(ge=1, le=200)] = 50) -> Any:
    app = triage_of(request)
    now = console(request).clock()

    def run() -> dict[str, Any]:
        page = app.store.page(queue, now, size=size, after=after)
        return {"alerts": [alert_summary(record) for record in page.alerts], "total": page.total,
                "total_exact": page.total_is_exact, "cursor": page.cursor, "filter": queue.to_params()}

    return answer(run)


@router.get("/alerts/groups", summary="The filtered queue grouped by rule or entity, with counts")
def group_alerts(request: Request, user: ReadUser, queue: Annotated[QueueFilter, Depends(queue_filter)],
                 by: Annotated[str, Query(pattern=GROUP_PATTERN, description=", ".join(GROUP_FIELDS))] = "rule",
                 size: Annotated[int, Query(ge=1, le=500)] = 50) -> Any:
    app = triage_of(request)
    now = console(request).clock()

    def run() -> dict[str, Any]:
        groups, missing, total = app.store.groups(queue, now, by, size=size)
        return {"by": by, "groups": [asdict(group) for group in groups], "missing": missing, "total": total}

    return answer(run)


@router.get("/alerts/{alert_id}", summary="An alert with its rule, node, entity events and related alerts")
def get_alert(request: Request, user: ReadUser, alert_id: str) -> Any:
    app = triage_of(request)
    return answer(lambda: view_json(alert_view(app, alert_id)))


@router.post("/alerts/{alert_id}/status", summary="Acknowledge, investigate, close (verdict, reason) or reopen")
def change_status(request: Request, user: TriageUser, alert_id: str, body: StatusChange) -> Any:
    app = installed(request)
    now = console(request).clock()
    return answer(lambda: alert_summary(app.store.set_status(
        alert_id, body.status, actor=user.name, now=now, expected=body.version, verdict=body.verdict,
        reason=body.reason, source_ip=client_address(request))))


@router.post("/alerts/{alert_id}/assign", summary="Assign to a user (null: unassign)")
def assign_alert(request: Request, user: TriageUser, alert_id: str, body: Assignment) -> Any:
    app = installed(request)
    now = console(request).clock()
    return answer(lambda: alert_summary(app.store.assign(
        alert_id, body.assignee or None, actor=user.name, now=now, expected=body.version,
        source_ip=client_address(request))))


@router.post("/alerts/{alert_id}/comments", summary="Add a comment")
def comment_alert(request: Request, user: TriageUser, alert_id: str, body: CommentIn) -> Any:
    app = installed(request)
    now = console(request).clock()
    return answer(lambda: alert_summary(app.store.comment(
        alert_id, body.text, actor=user.name, now=now, expected=body.version, source_ip=client_address(request))))


@router.post("/alerts/{alert_id}/suppress", summary="Suppress alerts like this one (admins)")
def suppress_alert(request: Request, user: AdminUser, alert_id: str, body: SuppressIn) -> Any:
    app = installed(request)
    now = console(request).clock()

    def run() -> dict[str, Any]:
        entry, record = app.store.suppress(alert_id, app.suppressions, fields=body.fields, reason=body.reason,
                                           until=now + timedelta(days=body.days), actor=user.name, now=now,
                                           expected=body.version, source_ip=client_address(request))
        return {"suppression": entry, "alert": alert_summary(record)}

    return answer(run)


@router.post("/alerts/bulk", summary="One action on many alerts, each conditional on its version")
def bulk_alerts(request: Request, user: TriageUser, body: BulkIn) -> Any:
    app = installed(request)
    now = console(request).clock()

    def run() -> dict[str, Any]:
        result = app.store.bulk(body.alerts, bulk_change(body, actor=user.name, now=now),
                                action="assign" if body.action == "assign" else body.action, actor=user.name,
                                now=now, source_ip=client_address(request))
        return asdict(result)

    return answer(run)


@router.get("/saved-filters", summary="Your saved queue filters")
def list_saved_filters(request: Request, user: ReadUser) -> Any:
    return answer(lambda: {"filters": triage_of(request).store.saved_filters(user.name)})


@router.post("/saved-filters", summary="Save a queue filter under a name (yours only)")
def save_filter(request: Request, user: TriageUser, body: SavedFilterIn) -> Any:
    app = installed(request)
    now = console(request).clock()
    return answer(lambda: app.store.save_filter(user.name, body.name, parse_filter(_pairs(body.params)), now=now))


@router.delete("/saved-filters/{name}", summary="Delete one of your saved filters")
def delete_saved_filter(request: Request, user: TriageUser, name: str) -> Any:
    app = installed(request)

    def run() -> dict[str, str]:
        app.store.delete_filter(user.name, name)
        return {"deleted": name}

    return answer(run)


def _pairs(query_string: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query_string.lstrip("?"), keep_blank_values=False)


@router.get("/incidents", summary="Incidents, newest first, with their reporting deadlines")
def list_incidents(request: Request, user: ReadUser,
                   status: Annotated[list[Literal["open", "investigating", "contained", "closed"]], Query()] = [],  # noqa: B006
                   ) -> Any:
    app = triage_of(request)
    now = console(request).clock()
    return answer(lambda: {"incidents": [incident_json(record, app, now)
                                         for record in app.store.incidents_list(status=status)]})


@router.post("/incidents", summary="Escalate alerts into a new incident")
def create_incident(request: Request, user: TriageUser, body: IncidentIn) -> Any:
    app = installed(request)
    now = console(request).clock()

    def run() -> dict[str, Any]:
        record, linked = app.store.create_incident(new_incident_id(now), body.alerts, title=body.title,
                                                   severity=body.severity, actor=user.name, now=now,
                                                   owner=body.owner or None, source_ip=client_address(request))
        return {"incident": incident_json(record, app, now), "alerts": asdict(linked)}

    return answer(run)


@router.get("/incidents/{incident_id}", summary="An incident with its timeline and deadline")
def get_incident(request: Request, user: ReadUser, incident_id: str) -> Any:
    app = triage_of(request)
    now = console(request).clock()
    return answer(lambda: incident_json(app.store.get_incident(incident_id), app, now))


@router.post("/incidents/{incident_id}", summary="Change an incident's status, owner or severity, comment, report")
def change_incident(request: Request, user: TriageUser, incident_id: str, body: IncidentChange) -> Any:
    app = installed(request)
    now = console(request).clock()

    def run() -> dict[str, Any]:
        record = app.store.change_incident(
            incident_id, lambda doc: model.update_incident(
                doc, actor=user.name, now=now, status=body.status, owner=body.owner or None, severity=body.severity,
                comment_text=body.comment, reported=body.reported),
            action="update", actor=user.name, now=now, expected=body.version, source_ip=client_address(request))
        return incident_json(record, app, now)

    return answer(run)


@router.post("/incidents/{incident_id}/alerts", summary="Add alerts to an incident")
def add_incident_alerts(request: Request, user: TriageUser, incident_id: str, body: IncidentAlerts) -> Any:
    app = installed(request)
    now = console(request).clock()

    def run() -> dict[str, Any]:
        record, linked = app.store.add_to_incident(incident_id, body.alerts, actor=user.name, now=now,
                                                   expected=body.version, source_ip=client_address(request))
        return {"incident": incident_json(record, app, now), "alerts": asdict(linked)}

    return answer(run)

