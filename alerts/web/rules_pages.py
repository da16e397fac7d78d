"""The rules pages: the active rule set by noise (``/rules``) and one rule (``/rules/{id}``).

Every role reads them; admins get forms to disable, enable, override the level and add a
filter, posted with the session's ``csrf_token`` and handled by the same service as the API
(``alerts.api.rules.run_change`` → ``alerts.rules.tuning``). The answer is the rule's page with
what happened: the published rule set version, or the publish refusal with the version kept,
or why the change was refused. Sorting is by links (no script needed); ``/static/triage.js``
adds the queue's keyboard operation (j/k, Enter, ?).

Titles, descriptions and filter values can come from imported rules or from logs: the templates
escape and make inert every value, and the rule's YAML is shown as text.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from alerts.api.context import console
from alerts.api.security import AdminUser, ReadUser, client_address
from alerts.rules import overview
from alerts.rules.tuning import OPERATORS, Change, TuningRefusedError, filter_change, level_choices, tune_and_publish
from alerts.users.store import User
from alerts.web.render import render

router = APIRouter(include_in_schema=False)
WINDOWS = (1, 7, 30, 90)
COLUMNS = (("title", "Rule"), ("level", "Level"), ("status", "Status"), ("hits", "Alerts"), ("events", "Events"),
           ("closed", "Closed"), ("fp_rate", "False positives"))
TEXT_SORTS = ("title", "id", "status")
ACTION_TEXT = {"rule.disable": "disabled", "rule.enable": "enabled", "rule.level": "level overridden",
               "rule.filter": "filter added"}


def _order(sort: str, order: str | None) -> bool:
    """Descending? Numbers sort largest first by default, text A to Z."""
    return (order or ("asc" if sort in TEXT_SORTS else "desc")) == "desc"


@router.get("/rules")
def rules_page(request: Request, user: ReadUser, days: Annotated[int, Query(ge=1, le=365)] = 7,
               sort: Annotated[str, Query(pattern="^(" + "|".join(overview.SORTS) + ")$")] = "hits",
               order: Annotated[str | None, Query(pattern="^(asc|desc)$")] = None) -> Response:
    state = console(request)
    descending = _order(sort, order)
    table = overview.rule_table(state.settings, state.es, now=state.clock(), days=days, sort=sort,
                                descending=descending)
    headers = []
    for key, label in COLUMNS:
        # A click on the sorted column flips it; on another column sorts it its natural way.
        flip = "asc" if descending else "desc"
        next_order = flip if key == sort else ("asc" if key in TEXT_SORTS else "desc")
        headers.append({"key": key, "label": label, "href": "/rules?" + urlencode(
            {"days": days, "sort": key, "order": next_order}),
            "aria": ("descending" if descending else "ascending") if key == sort else None})
    return render(request, "rules.html", {
        "title": "Rules", "table": table, "headers": headers, "windows": WINDOWS, "days": days,
        "enabled": sum(1 for row in table.rows if not row.disabled),
        "disabled": sum(1 for row in table.rows if row.disabled)})


def _rule_page(request: Request, user: User, rule_id: str, *, days: int = 7, result: dict[str, Any] | None = None,
               error: TuningRefusedError | None = None, form: dict[str, str] | None = None) -> Response:
    state = console(request)
    found = overview.rule_detail(state.settings, state.es, rule_id, now=state.clock(), days=days)
    if found is None:
        return render(request, "error.html", {"title": "Not found", "heading": "Not found",
                                              "detail": f"No rule {rule_id} in the active rule set."},
                      status_code=404)
    row, text, filters = found
    return render(request, "rule.html", {
        "title": row.rule.title or row.rule.id, "row": row, "yaml": text, "filters": filters, "days": days,
        "history": overview.rule_history(state.es, state.audit.index, rule_id), "action_text": ACTION_TEXT,
        "can_tune": user.role == "admin" and row.tunable, "levels": level_choices(), "operators": list(OPERATORS),
        "result": result, "error": error, "form": form or {}},
        status_code=error.status if error is not None else 200)


@router.get("/rules/{rule_id}")
def rule_page(request: Request, user: ReadUser, rule_id: str,
              days: Annotated[int, Query(ge=1, le=365)] = 7) -> Response:
    return _rule_page(request, user, rule_id, days=days)


def _post(request: Request, user: User, rule_id: str, make: Any, form: dict[str, str]) -> Response:
    state = console(request)
    try:
        result = tune_and_publish(state.settings, state.audit, make(), actor=user.name, now=state.clock(),
                                  source_ip=client_address(request))
    except TuningRefusedError as error:
        return _rule_page(request, user, rule_id, error=error, form=form)
    return _rule_page(request, user, rule_id, result=result.to_json())


FormText = Annotated[str, Form(max_length=2000)]


@router.post("/rules/{rule_id}/disable")
def rule_disable(request: Request, user: AdminUser, rule_id: str, reason: FormText = "") -> Response:
    return _post(request, user, rule_id, lambda: Change("disable", rule_id, reason), {"disable_reason": reason})


@router.post("/rules/{rule_id}/enable")
def rule_enable(request: Request, user: AdminUser, rule_id: str, reason: FormText = "") -> Response:
    return _post(request, user, rule_id, lambda: Change("enable", rule_id, reason), {})


@router.post("/rules/{rule_id}/level")
def rule_level(request: Request, user: AdminUser, rule_id: str, *, level: Annotated[str, Form(max_length=20)] = "",
               reason: FormText = "") -> Response:
    return _post(request, user, rule_id, lambda: Change("level", rule_id, reason, level=level),
                 {"level_reason": reason})


@router.post("/rules/{rule_id}/filters")
def rule_filter(request: Request, user: AdminUser, rule_id: str, *, field: Annotated[str, Form(max_length=128)] = "",
                operator: Annotated[str, Form(max_length=20)] = "equals",
                values: Annotated[str, Form(max_length=25_000)] = "", reason: FormText = "") -> Response:
    state = console(request)
    form = {"field": field, "operator": operator, "values": values, "filter_reason": reason}
    return _post(request, user, rule_id, lambda: filter_change(
        state.settings, rule_id, field_name=field.strip(), operator=operator, values=values.splitlines(),
        reason=reason, actor=user.name, now=state.clock()), form)
