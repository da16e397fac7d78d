"""The triage pages: the queue, an alert, incidents, suppressions.

Pages are rendered on the server and work without script: filters are a GET form, actions are
POST forms with the session's ``csrf_token`` and the ``version`` of the document the page
showed; a change answers with a redirect back (post/redirect/get), a conflict with the page
re-rendered on the fresh state and a 409 that says who changed what. ``/static/triage.js`` adds
keyboard operation, live updates and row selection on top (``?`` shows the keys).

Everything shown from an alert came from a log: templates escape it (autoescape) and make it
inert (``alerts.web.inert``: control and direction characters visible); this module also cuts
long values for tables and event views (:func:`clip`), saying how much was left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from alerts.api.context import console
from alerts.api.security import AdminUser, ReadUser, TriageUser, client_address
from alerts.api.triage import (
    AlertView,
    TriageApp,
    alert_view,
    installed,
    new_incident_id,
    triage_of,
)
from alerts.triage import model
from alerts.triage.errors import ConflictError, NotFoundError, StoreUnavailableError, TriageError
from alerts.triage.queue import GROUP_FIELDS, QueueFilter
from alerts.triage.store import Record, alert_summary
from alerts.web.render import render
from ingest.schema import format_timestamp, get_field

router = APIRouter(include_in_schema=False)
CELL_LIMIT = 160
EVENT_VALUE_LIMIT = 2_000
VERDICT_TEXT = {"true_positive": "true positive", "benign": "benign", "false_positive": "false positive"}
# The queue filter a group's link sets (host, source and user have no filter of their own: search).
GROUP_FILTER = {"rule": "rule", "node": "node", "agency": "agency", "district": "district", "tactic": "tactic",
                "technique": "technique"}
ACTION_TEXT = {"acknowledged": "Acknowledged", "investigating": "Investigating", "closed": "Closed",
               "open": "Reopened", "assign": "Assigned", "comment": "Comment added", "escalate": "Escalated",
               "suppress": "Suppression created",
               "status": "Status"}


def clip(value: Any, limit: int = CELL_LIMIT) -> str:
    """``value`` as text of at most ``limit`` characters, saying how many more there were."""
    text = "" if value is None else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters]"


def clip_strings(value: Any, limit: int = EVENT_VALUE_LIMIT) -> Any:
    """Every string inside ``value`` (events, nested) clipped to ``limit``."""
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, Mapping):
        return {str(key)[:200]: clip_strings(item, limit) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clip_strings(item, limit) for item in value[:200]]
    return value


def row(record: Record) -> dict[str, Any]:
    """A queue row: the API's summary with every log-borne value clipped for the table."""
    summary = alert_summary(record)
    for key in ("host", "user", "source"):
        summary[key] = clip(summary[key])
    summary["rule"] = {key: clip(value) for key, value in summary["rule"].items()}
    summary["node"] = {key: clip(value) for key, value in summary["node"].items()}
    summary["techniques"] = [clip(item, 20) for item in summary["techniques"][:6]]
    return summary


def _filter_of(request: Request) -> QueueFilter:
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).append(value)
    return QueueFilter.from_params(params)


def _page_error(request: Request, status: int, heading: str, detail: str) -> Response:
    return render(request, "error.html", {"title": heading, "heading": heading, "detail": detail},
                  status_code=status)


def _guard(request: Request, call: Callable[[], Response]) -> Response:
    """Service errors on a page: a page saying so, with the right status."""
    try:
        return call()
    except ConflictError as error:
        return _page_error(request, 409, "Changed meanwhile", error.reason)
    except NotFoundError as error:
        return _page_error(request, 404, "Not found", error.reason)
    except StoreUnavailableError as error:
        return _page_error(request, 503, "Elasticsearch is unavailable", error.reason)
    except TriageError as error:
        return _page_error(request, 400, "Cannot show that", error.reason)


# --- the queue ----------------------------------------------------------------------------------


@router.get("/queue")
def queue_page(request: Request, user: ReadUser,
               after: Annotated[str | None, Query(max_length=400)] = None,
               group: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    app = triage_of(request)
    state = console(request)

    def run() -> Response:
        queue = _filter_of(request)
        now = state.clock()
        size = app.settings.triage.page_size
        page = app.store.page(queue, now, size=size, after=after)
        groups = None
        if group:
            found, missing, total = app.store.groups(queue, now, group)
            groups = {"by": group, "rows": [(clip(g.key), g) for g in found], "missing": missing, "total": total,
                      "field": GROUP_FILTER.get(group, "text")}
        params = queue.to_params()
        notice = _bulk_notice(request)
        return render(request, "queue.html", {
            "title": "Alert queue", "rows": [row(record) for record in page.alerts], "page": page,
            "queue": queue, "params": params, "query": urlencode(params),
            "next_query": urlencode({**params, "after": page.cursor}) if page.cursor else "",
            "first_page": after is None, "groups": groups, "group_fields": list(GROUP_FIELDS),
            "saved": app.store.saved_filters(user.name), "notice": notice,
            "statuses": model.STATUSES, "levels": model.LEVEL_ORDER, "verdicts": VERDICT_TEXT,
            "can_triage": user.role in ("analyst", "admin"), "poll_s": app.settings.triage.poll_interval_s,
            "page_size": size, "now": format_timestamp(now),
            "more_filters": any(key not in ("text", "status", "level", "order", "since") for key in params),
        })

    return _guard(request, run)


def _bulk_notice(request: Request) -> dict[str, int] | None:
    values = {}
    for key in ("done", "conflicts", "refused"):
        text = request.query_params.get(f"bulk_{key}", "")
        if text.isdigit():
            values[key] = int(text)
    return values or None


def _selected(form: FormData) -> dict[str, str | None]:
    """The rows ticked in the queue: ``sel`` values ``<id> <version>``."""
    chosen: dict[str, str | None] = {}
    for value in form.getlist("sel")[:200]:
        alert_id, _, version = str(value).partition(" ")
        if alert_id:
            chosen[alert_id[:512]] = version[:40] or None
    return chosen


@router.post("/queue/bulk")
async def queue_bulk(request: Request, user: TriageUser) -> Response:
    """A bulk action from the queue's form: acknowledge, investigate, close, reopen, assign or escalate."""
    form = await request.form()
    app = installed(request)
    now = console(request).clock()
    chosen = _selected(form)
    if not chosen:
        return _page_error(request, 400, "Nothing selected", "Tick the alerts to act on (x on the keyboard).")
    return _guard(request, lambda: _bulk(request, app, user, form, chosen, now=now))


def _bulk(request: Request, app: TriageApp, user: Any, form: FormData, chosen: dict[str, str | None], *,
          now: datetime) -> Response:
    action = str(form.get("action", ""))
    if action == "escalate":
        record, _ = app.store.create_incident(
            new_incident_id(now), chosen, title=str(form.get("title", "")) or "Escalated from the queue",
            severity=None, actor=user.name, now=now, source_ip=client_address(request))
        return RedirectResponse(f"/incidents/{record.id}", status_code=303)
    if action == "assign":
        assignee = str(form.get("assignee", "")).strip() or None

        def change(state: model.Triage) -> model.Triage:
            return model.assign(state, assignee, actor=user.name, now=now)
    elif action in model.STATUSES:
        verdict = str(form.get("verdict", "")) or None
        reason = str(form.get("reason", "")) or None

        def change(state: model.Triage) -> model.Triage:
            return model.transition(state, action, actor=user.name, now=now, verdict=verdict, reason=reason)
    else:
        raise TriageError("choose an action for the selected alerts")
    result = app.store.bulk(chosen, change, action=action, actor=user.name, now=now,
                            source_ip=client_address(request))
    back = [(key, value) for key, value in parse_qsl(str(form.get("back", ""))[:4000]) if not key.startswith("bulk_")]
    counts = [("bulk_done", str(len(result.done))), ("bulk_conflicts", str(len(result.conflicts))),
              ("bulk_refused", str(len(result.refused)))]
    return RedirectResponse("/queue?" + urlencode(back + counts), status_code=303)


@router.post("/queue/filters")
async def save_queue_filter(request: Request, user: TriageUser, name: Annotated[str, Form(max_length=100)],
                            params: Annotated[str, Form(max_length=4000)] = "") -> Response:
    app = installed(request)
    now = console(request).clock()

    def run() -> Response:
        queue = QueueFilter.from_params(_multi(params))
        app.store.save_filter(user.name, name, queue, now=now)
        return RedirectResponse("/queue?" + queue.query_string(), status_code=303)

    return _guard(request, run)


@router.post("/queue/filters/delete")
async def delete_queue_filter(request: Request, user: TriageUser,
                              name: Annotated[str, Form(max_length=100)]) -> Response:
    app = installed(request)

    def run() -> Response:
        app.store.delete_filter(user.name, name)
        return RedirectResponse("/queue", status_code=303)

    return _guard(request, run)


def _multi(query: str) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(query.lstrip("?")):
        params.setdefault(key, []).append(value)
    return params


# --- an alert -----------------------------------------------------------------------------------


def _alert_context(view: AlertView, app: TriageApp, user: Any) -> dict[str, Any]:
    source = view.record.source
    triage = model.Triage.from_source(source)
    summary = row(view.record)
    return {
        "title": clip(summary["rule"]["name"], 80) or "Alert", "a": summary, "triage": triage,
        "rule": view.rule, "node": view.node, "events_stored": view.events.stored,
        "events_error": view.events.error,
        "context_events": [_event_row(event) for event in view.events.events],
        "alert_events": [clip_strings(event) for event in (source.get("events") or [])[:50]],
        "related": [row(record) for record in view.related],
        "details": clip_strings({key: source.get(key) for key in ("host", "source", "destination", "user", "process",
                                                                 "url", "dns", "file", "winlog") if source.get(key)}),
        "suppressible": {name: clip(value) for name, value in view.suppressible.items()},
        "statuses": model.STATUSES, "next_statuses": sorted(model.TRANSITIONS[triage.status]),
        "verdicts": VERDICT_TEXT, "action_text": ACTION_TEXT,
        "can_triage": user.role in ("analyst", "admin"), "is_admin": user.role == "admin",
        "context_minutes": app.settings.triage.context_minutes, "related_hours": app.settings.triage.related_hours,
        "events_alias": app.settings.triage.events_alias,
        "comments": [clip_strings(dict(item), 10_000) for item in triage.comments],
        "history": [_history_row(entry) for entry in reversed(triage.history[-100:])],
    }


def _history_row(entry: Mapping[str, Any]) -> dict[str, str]:
    what = ACTION_TEXT.get(str(entry.get("action")), str(entry.get("action")))
    if entry.get("to") is not None and entry.get("action") not in ("close", "reopen"):
        what += f" → {entry['to']}"
    if entry.get("action") == "close":
        what = f"Closed as {VERDICT_TEXT.get(str(entry.get('verdict')), entry.get('verdict'))}"
    if entry.get("action") == "reopen":
        what = "Reopened"
    if entry.get("incident"):
        what += f" (incident {entry['incident']})"
    if entry.get("suppression"):
        what += f" ({entry['suppression']})"
    return {"at": clip(entry.get("at"))[:19].replace("T", " "), "by": clip(entry.get("by"), 64), "what": clip(what)}


def _event_row(event: Mapping[str, Any]) -> dict[str, Any]:
    def text(path: str) -> str:
        return clip(get_field(event, path) or "")

    return {"time": text("@timestamp")[:19].replace("T", " "), "dataset": text("event.dataset"),
            "host": text("host.name"), "user": text("user.name"), "source": text("source.ip"),
            "summary": clip(get_field(event, "message") or get_field(event, "url.original")
                            or get_field(event, "event.action") or "event", 120),
            "event": clip_strings(event)}


def _alert_response(request: Request, app: TriageApp, alert_id: str, user: Any, *, status_code: int = 200,
                    conflict: str | None = None, error: str | None = None, notice: str | None = None) -> Response:
    view = alert_view(app, alert_id)
    values = _alert_context(view, app, user)
    values.update(conflict=conflict, error=error, notice=notice)
    return render(request, "alert.html", values, status_code=status_code)


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, user: ReadUser, alert_id: str,
               done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    app = triage_of(request)
    notice = ACTION_TEXT.get(done or "")
    return _guard(request, lambda: _alert_response(request, app, alert_id, user, notice=notice))


@router.post("/alerts/{alert_id}/act")
async def alert_action(request: Request, user: TriageUser, alert_id: str) -> Response:
    """One triage action from the alert page's forms (``action`` names it)."""
    form = await request.form()
    app = installed(request)
    now = console(request).clock()
    action = str(form.get("action", ""))
    version = str(form.get("version", ""))[:40] or None
    address = client_address(request)
    store = app.store

    def act() -> str:
        done = f"/alerts/{alert_id}?done={action}"
        if action in model.STATUSES:
            store.set_status(alert_id, action, actor=user.name, now=now, expected=version,
                             verdict=str(form.get("verdict", "")) or None,
                             reason=str(form.get("reason", "")) or None, source_ip=address)
            return done
        if action == "assign":
            store.assign(alert_id, str(form.get("assignee", "")).strip() or None, actor=user.name, now=now,
                         expected=version, source_ip=address)
            return done
        if action == "comment":
            store.comment(alert_id, str(form.get("text", "")), actor=user.name, now=now, expected=version,
                          source_ip=address)
            return done
        if action == "escalate":
            incident, _ = store.create_incident(new_incident_id(now), {alert_id: version},
                                                title=str(form.get("title", "")), severity=None, actor=user.name,
                                                now=now, source_ip=address)
            return f"/incidents/{incident.id}"
        raise TriageError(f"unknown action {action[:40]!r}")

    return _change(request, act, _alert_rerender(request, app, alert_id, user), _who_changed)


def _who_changed(error: ConflictError) -> str:
    current = error.current or {}
    changed_by = ((current.get("socflow") or {}).get("triage") or {}).get("updated_by")
    return (f"{changed_by or 'Someone'} changed this alert while you were looking at it; nothing of yours was "
            "saved. Below is its current state: decide again.")


def _alert_rerender(request: Request, app: TriageApp, alert_id: str, user: Any) -> Callable[..., Response]:
    return lambda **values: _alert_response(request, app, alert_id, user, **values)


def _change(request: Request, act: Callable[[], str], rerender: Callable[..., Response],
            conflict_text: Callable[[ConflictError], str]) -> Response:
    """A change from a page's form: a redirect to ``act``'s answer; a conflict or a refusal shows
    the page again on the fresh state (409 / 400); Elasticsearch down, a page saying so (503)."""
    try:
        location = act()
    except ConflictError as error:
        message = conflict_text(error)
        return _guard(request, lambda: rerender(status_code=409, conflict=message))
    except StoreUnavailableError as error:
        return _page_error(request, 503, "Elasticsearch is unavailable", f"{error.reason} Nothing was changed.")
    except NotFoundError as error:
        return _page_error(request, 404, "Not found", error.reason)
    except TriageError as error:
        reason = error.reason
        return _guard(request, lambda: rerender(status_code=400, error=reason))
    return RedirectResponse(location, status_code=303)


@router.post("/alerts/{alert_id}/suppress")
async def alert_suppress(request: Request, user: AdminUser, alert_id: str) -> Response:
    """'Suppress alerts like this' (admins): the rule and the ticked fields, a reason, an expiry."""
    form = await request.form()
    app = installed(request)
    now = console(request).clock()
    version = str(form.get("version", ""))[:40] or None
    fields = [str(value) for value in form.getlist("field")][:8]
    days_text = str(form.get("days", "30"))

    def act() -> str:
        if not days_text.isdigit() or not 1 <= int(days_text) <= 366:
            raise TriageError("the expiry must be 1-366 days")
        app.store.suppress(alert_id, app.suppressions, fields=fields, reason=str(form.get("reason", "")),
                           until=now + timedelta(days=int(days_text)), actor=user.name, now=now,
                           expected=version, source_ip=client_address(request))
        return f"/alerts/{alert_id}?done=suppress"

    return _change(request, act, _alert_rerender(request, app, alert_id, user), _who_changed)


# --- incidents ----------------------------------------------------------------------------------


def _incident_row(record: Record, app: TriageApp, now: Any) -> dict[str, Any]:
    due = model.deadline(record.source, hours=app.settings.triage.reporting_deadline_h, now=now)
    return {"id": record.id, "version": record.version, "doc": record.source, "due": due,
            "left": "reported" if due.reported else model.describe_left(due.left)}


@router.get("/incidents")
def incidents_page(request: Request, user: ReadUser,
                   status: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006 - FastAPI copies it
                   ) -> Response:
    app = triage_of(request)
    now = console(request).clock()
    wanted = [value for value in status if value in model.INCIDENT_STATUSES]

    def run() -> Response:
        rows = [_incident_row(record, app, now) for record in app.store.incidents_list(status=wanted)]
        return render(request, "incidents.html", {
            "title": "Incidents", "rows": rows, "statuses": model.INCIDENT_STATUSES, "wanted": wanted,
            "deadline_h": app.settings.triage.reporting_deadline_h})

    return _guard(request, run)


def _incident_response(request: Request, app: TriageApp, incident_id: str, user: Any, *, status_code: int = 200,
                       conflict: str | None = None, error: str | None = None, notice: str | None = None) -> Response:
    now = console(request).clock()
    record = app.store.get_incident(incident_id)
    alerts = []
    for alert_id in record.source.get("alerts", [])[:200]:
        try:
            alerts.append(row(app.store.get(alert_id)))
        except NotFoundError:
            alerts.append({"id": alert_id, "missing": True})
    return render(request, "incident.html", {
        "title": clip(record.source.get("title"), 80), "i": _incident_row(record, app, now), "alerts": alerts,
        "statuses": model.INCIDENT_STATUSES, "severities": model.SEVERITIES,
        "timeline": [clip_strings(dict(entry), 10_000) for entry in reversed(record.source.get("timeline") or [])],
        "can_triage": user.role in ("analyst", "admin"), "deadline_h": app.settings.triage.reporting_deadline_h,
        "conflict": conflict, "error": error, "notice": notice}, status_code=status_code)


@router.get("/incidents/{incident_id}")
def incident_page(request: Request, user: ReadUser, incident_id: str,
                  done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    app = triage_of(request)
    notice = "Saved" if done else None
    return _guard(request, lambda: _incident_response(request, app, incident_id, user, notice=notice))


@router.post("/incidents/{incident_id}")
async def incident_change(request: Request, user: TriageUser, incident_id: str) -> Response:
    form = await request.form()
    app = installed(request)
    now = console(request).clock()
    version = str(form.get("version", ""))[:40] or None

    def text(name: str) -> str | None:
        value = str(form.get(name, "")).strip()
        return value or None

    def act() -> str:
        app.store.change_incident(
            incident_id, lambda doc: model.update_incident(
                doc, actor=user.name, now=now, status=text("status"), owner=text("owner"), severity=text("severity"),
                comment_text=text("comment"), reported=form.get("reported") == "yes"),
            action="update", actor=user.name, now=now, expected=version, source_ip=client_address(request))
        return f"/incidents/{incident_id}?done=1"

    return _change(request, act, lambda **values: _incident_response(request, app, incident_id, user, **values),
                   lambda _: "Someone changed this incident while you were looking at it; nothing of yours was saved.")


# --- suppressions -------------------------------------------------------------------------------


@router.get("/suppressions")
def suppressions_page(request: Request, user: ReadUser) -> Response:
    """The job's suppressions: the reviewed file's and the console's, with expiry."""
    app = triage_of(request)
    now = console(request).clock()

    def run() -> Response:
        from detectors.dedup import Suppressor
        from detectors.errors import DetectorError

        rows = []
        for path in app.settings.suppression_paths:
            try:
                loaded = Suppressor.load(path).suppressions
            except DetectorError as error:
                raise TriageError(f"a suppression file does not load: {error}") from error
            for item in loaded:
                rows.append({"name": item.name, "reason": item.reason, "rule": item.rule_id or "", "host": item.host,
                             "fields": dict(item.fields), "until": format_timestamp(item.until),
                             "expired": item.until <= now, "file": path.name,
                             "console": path == app.suppressions.path})
        return render(request, "suppressions.html", {"title": "Suppressions", "rows": rows})

    return _guard(request, run)

