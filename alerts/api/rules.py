"""The rules API: the active rule set with hits, verdicts and tuning; admins tune and publish.

Reading (``require_read``): ``GET /api/rules`` (every rule of the active set, and the disabled
ones, with hits over ``days``, closed verdicts and the false-positive rate; sorted by ``sort``)
and ``GET /api/rules/{id}`` (the rule, its YAML, its tuning with each filter's text, and its
change history from the audit trail). Changing (``require_admin``): disable, enable, level
override and filter; each goes through ``alerts.rules.tuning.tune_and_publish`` — the tuning
store, the audit record, then the same publish as ``socflow rules publish`` — and answers with
the change, the rule's tuning before and after, and ``publish``: the new rule set version, or
the refusal with the version left running. A refused change answers 404/409/422 with the reason.
The pages (``alerts.web.rules_pages``) call the same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from alerts.api.context import console
from alerts.api.security import AdminUser, ReadUser, client_address
from alerts.rules import overview
from alerts.rules.tuning import Change, TuningRefusedError, filter_change, tune_and_publish

router = APIRouter(prefix="/api/rules", tags=["rules"])
Level = Literal["informational", "low", "medium", "high", "critical"]
Sort = Literal["hits", "events", "fp_rate", "closed", "title", "level", "id", "status"]
RuleId = Annotated[str, Path(min_length=1, max_length=200)]
Days = Annotated[int, Query(ge=1, le=365, description="Hits and verdicts over this many days before now")]
Reason = Annotated[str, Field(min_length=1, max_length=2000, description="Why (kept with the change and audited)")]


class DisableIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


class EnableIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=2000)


class LevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Level
    reason: Reason


class FilterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str = Field(min_length=1, max_length=128, description="Sigma field name, e.g. cs-uri-query or Image")
    operator: Literal["equals", "contains", "startswith", "endswith"]
    values: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(min_length=1, max_length=20)
    reason: Reason


def refused(error: TuningRefusedError) -> JSONResponse:
    return JSONResponse({"detail": error.reason, "reason": "tuning_refused", "reasons": error.reasons},
                        status_code=error.status)


def run_change(request: Request, actor: str, make: Callable[[], Change]) -> Any:
    """Build the change, make it, audit it, publish: the result, or the refusal as an answer."""
    state = console(request)
    try:
        change = make()
        result = tune_and_publish(state.settings, state.audit, change, actor=actor, now=state.clock(),
                                  source_ip=client_address(request))
    except TuningRefusedError as error:
        return refused(error)
    return result.to_json()


@router.get("", summary="The active rule set: hits, verdicts, false-positive rate, tuning")
def list_rules(request: Request, user: ReadUser, days: Days = 7, sort: Sort = "hits",
               order: Literal["asc", "desc"] | None = None) -> Any:
    state = console(request)
    descending = (order or ("asc" if sort in ("title", "id", "status") else "desc")) == "desc"
    return overview.rule_table(state.settings, state.es, now=state.clock(), days=days, sort=sort,
                               descending=descending).to_json()


@router.get("/{rule_id}", summary="One rule: YAML, tuning, hits, verdicts and change history")
def get_rule(request: Request, user: ReadUser, rule_id: RuleId, days: Days = 7) -> Any:
    state = console(request)
    found = overview.rule_detail(state.settings, state.es, rule_id, now=state.clock(), days=days)
    if found is None:
        return JSONResponse({"detail": f"no rule {rule_id} in the active rule set", "reason": "not_found"},
                            status_code=404)
    row, text, filters = found
    return {"rule": row.to_json(), "yaml": text, "filters": filters,
            "history": overview.rule_history(state.es, state.audit.index, rule_id)}


@router.post("/{rule_id}/disable", summary="Disable a rule (admins); published at once")
def disable_rule(request: Request, user: AdminUser, rule_id: RuleId, body: DisableIn) -> Any:
    return run_change(request, user.name, lambda: Change("disable", rule_id, body.reason))


@router.post("/{rule_id}/enable", summary="Enable a disabled rule again (admins); published at once")
def enable_rule(request: Request, user: AdminUser, rule_id: RuleId, body: EnableIn) -> Any:
    return run_change(request, user.name, lambda: Change("enable", rule_id, body.reason))


@router.post("/{rule_id}/level", summary="Override a rule's level (admins); published at once")
def set_rule_level(request: Request, user: AdminUser, rule_id: RuleId, body: LevelIn) -> Any:
    return run_change(request, user.name, lambda: Change("level", rule_id, body.reason, level=body.level))


@router.post("/{rule_id}/filters", summary="Add a Sigma filter to a rule (admins); checked, then published")
def add_rule_filter(request: Request, user: AdminUser, rule_id: RuleId, body: FilterIn) -> Any:
    state = console(request)
    return run_change(request, user.name, lambda: filter_change(
        state.settings, rule_id, field_name=body.field, operator=body.operator, values=body.values,
        reason=body.reason, actor=user.name, now=state.clock()))
