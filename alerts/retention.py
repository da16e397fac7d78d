"""Alert retention: delete what the policy no longer keeps, and tell the auditors what was done.

Alerts live in monthly indices ``<prefix>-YYYY.MM`` (by event time) that hold alerts of nodes
of every security level, so one index cannot simply be dropped when the shortest retention
has passed. The policy (``config/retention.yaml``) maps each level 1-5 to days, and a run:

1. deletes each monthly index whose month ended before the cutoff of the *longest* retention,
   by its exact name (clusters run with ``action.destructive_requires_name``; nothing in such
   an index can still be kept);
2. for each level, deletes by query the alerts of that level whose ``@timestamp`` is older
   than the level's cutoff (a plain ``term`` + ``range`` query, no scripts; where the cluster
   lacks ``_delete_by_query`` — the minimal distribution deploy/ runs has no ``reindex``
   module — the same query drives search + bulk delete); alerts without a level count as
   ``default_level``;
3. writes one audit record per action — who, when, what, how many, dry run or not — first to
   ``<data-dir>/audit/retention.jsonl`` (fsynced, so the trail survives an Elasticsearch that
   fails half-way), then to the ``socflow-audit`` index.

``now`` is an argument (the command passes the wall clock, tests a fixed moment). With
``dry_run`` nothing is deleted: counts say what would be, and the audit says it was a dry run.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from elasticsearch import ApiError, Elasticsearch, TransportError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alerts.errors import AlertsError
from ingest.logs import log_event

LOGGER = logging.getLogger(__name__)
LEVELS = (1, 2, 3, 4, 5)
LEVEL_FIELD = "socflow.node.security_level"


class RetentionError(AlertsError):
    """The policy is invalid, or Elasticsearch refused a retention action."""


class LevelDays(BaseModel):
    """Days kept per security level 1-5, and the level of what carries none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days_by_level: dict[int, int] = Field(description="Security level (1-5) -> days kept.")
    default_level: int = Field(3, ge=1, le=5, description="Level assumed for documents without one.")

    @field_validator("days_by_level")
    @classmethod
    def _every_level(cls, value: dict[int, int]) -> dict[int, int]:
        if sorted(value) != list(LEVELS):
            raise ValueError(f"days_by_level must name exactly the levels 1-5, got {sorted(value)}")
        if any(days < 1 for days in value.values()):
            raise ValueError("retention days must be at least 1")
        return value

    @property
    def longest_days(self) -> int:
        return max(self.days_by_level.values())


class EventRetention(LevelDays):
    """Days the events of a node are kept, per its security level (see alerts.eventstore.retention)."""


class RetentionPolicy(LevelDays):
    """Days an alert is kept, per security level of its node (and, under ``events``, an event)."""

    version: int = Field(1, description="Policy file format version.")
    audit_index: str = Field("socflow-audit", description="Elasticsearch index of the audit trail.")
    events: EventRetention | None = Field(None, description="Retention of stored events; none: kept for good.")

    def cutoff(self, level: int, now: datetime) -> datetime:
        return now - timedelta(days=self.days_by_level[level])


def load_policy(path: Path) -> RetentionPolicy:
    """Read and validate a retention policy file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return RetentionPolicy.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise RetentionError(f"invalid retention policy: {error}", source=str(path)) from error


@dataclass
class Action:
    """One retention step: what it targets and how many alerts it removed (or would)."""

    action: str  # "delete_index" | "delete_by_query"
    index: str
    documents: int
    level: int | None = None
    days: int | None = None
    cutoff: str | None = None


@dataclass
class RetentionReport:
    """What a run did (or, dry, would do)."""

    now: str
    dry_run: bool
    actions: list[Action] = field(default_factory=list)

    @property
    def deleted_indices(self) -> list[str]:
        return [a.index for a in self.actions if a.action == "delete_index"]

    @property
    def documents(self) -> int:
        return sum(a.documents for a in self.actions)


def month_end(index: str, prefix: str) -> datetime | None:
    """First instant after the month an index ``<prefix>-YYYY.MM`` holds; None for other names."""
    match = re.fullmatch(re.escape(prefix) + r"-(\d{4})\.(\d{2})", index)
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        return None
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def expired_level_query(level: int, cutoff: datetime, *, is_default: bool) -> dict[str, Any]:
    """Alerts of ``level`` (or without a level, when it is the default) older than ``cutoff``."""
    of_level: dict[str, Any] = {"term": {LEVEL_FIELD: level}}
    if is_default:
        of_level = {"bool": {"should": [of_level, {"bool": {"must_not": {"exists": {"field": LEVEL_FIELD}}}}],
                             "minimum_should_match": 1}}
    return {"bool": {"filter": [of_level, {"range": {"@timestamp": {"lt": _iso(cutoff)}}}]}}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    """Append-only trail of retention actions: a JSONL file, then an Elasticsearch index."""

    def __init__(self, path: Path, client: Elasticsearch | None, index: str, *, actor: str | None = None) -> None:
        self.path = path
        self.client = client
        self.index = index
        self.actor = actor or _current_user()
        self.host = socket.gethostname()

    def record(self, run_id: str, sequence: int, report: RetentionReport, action: Action, *, outcome: str,
               policy_file: str) -> dict[str, Any]:
        record_id = f"{run_id}-{sequence}"
        entry: dict[str, Any] = {
            "@timestamp": report.now,
            "event": {"kind": "event", "category": ["configuration"], "type": ["deletion"],
                      "action": f"retention_{action.action}", "outcome": outcome,
                      "id": record_id},
            "user": {"name": self.actor},
            "host": {"name": self.host},
            "socflow": {"retention": {**{k: v for k, v in asdict(action).items() if v is not None},
                                      "dry_run": report.dry_run, "run_id": run_id,
                                      "policy_file": policy_file}},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if self.client is not None:
            # Deterministic _id: a retried run re-sends the same record without doubling it.
            self.client.index(index=self.index, id=record_id, document=entry, refresh="wait_for")
        return entry


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): the uid is still an answer
        return f"uid:{os.getuid()}"


def plan(client: Elasticsearch, policy: RetentionPolicy, prefix: str, now: datetime) -> Iterator[Action]:
    """The retention actions due at ``now`` with their document counts (nothing deleted)."""
    indices = sorted(client.indices.get(index=f"{prefix}-*", allow_no_indices=True, expand_wildcards="open"))
    longest_cutoff = now - timedelta(days=policy.longest_days)
    kept: list[str] = []
    for name in indices:
        end = month_end(name, prefix)
        if end is None:
            continue  # not a monthly alert index (e.g. a restored copy): never touched
        if end <= longest_cutoff:
            yield Action("delete_index", name, int(client.count(index=name)["count"]))
        else:
            kept.append(name)
    for level in LEVELS:
        cutoff = policy.cutoff(level, now)
        # Only indices whose month began before the cutoff can hold alerts past it.
        candidates = [name for name in kept if _month_start(name, prefix) < cutoff]
        if not candidates:
            continue
        query = expired_level_query(level, cutoff, is_default=level == policy.default_level)
        for name in candidates:
            count = int(client.count(index=name, query=query)["count"])
            if count:
                yield Action("delete_by_query", name, count, level=level, days=policy.days_by_level[level],
                             cutoff=_iso(cutoff))


def _month_start(index: str, prefix: str) -> datetime:
    match = re.fullmatch(re.escape(prefix) + r"-(\d{4})\.(\d{2})", index)
    assert match is not None  # callers pass only names month_end() accepted
    return datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC)


Planner = Callable[[Elasticsearch, RetentionPolicy, str, datetime], Iterator[Action]]


def apply_retention(client: Elasticsearch, policy: RetentionPolicy, prefix: str, now: datetime, audit: AuditLog,
                    *, dry_run: bool = False, policy_file: str = "", planner: Planner | None = None) -> RetentionReport:
    """Run the policy at ``now``; every action (performed or, dry, planned) goes to ``audit``.

    ``planner``: what is due (default: the alerts' ``plan``; the event store passes its own)."""
    if now.tzinfo is None:
        raise RetentionError("now must be timezone-aware")
    report = RetentionReport(now=_iso(now), dry_run=dry_run)
    run_id = hashlib.sha256(f"{report.now}|{prefix}|{dry_run}|{os.getpid()}".encode()).hexdigest()[:16]
    try:
        actions = list((planner or plan)(client, policy, prefix, now))
    except (ApiError, TransportError) as error:
        raise RetentionError(f"could not list indices: {error}", source=prefix) from error
    for sequence, action in enumerate(actions):
        outcome = "unknown"
        try:
            if not dry_run:
                _perform(client, action, policy, now)
            outcome = "success"
        except (ApiError, TransportError) as error:
            outcome = "failure"
            raise RetentionError(f"{action.action} failed: {error}", source=action.index) from error
        finally:
            audit.record(run_id, sequence, report, action, outcome=outcome if not dry_run else "dry_run",
                         policy_file=policy_file)
            log_event(LOGGER, "retention_action", action=action.action, index=action.index, security_level=action.level,
                      documents=action.documents, dry_run=dry_run, outcome=outcome)
        report.actions.append(action)
    if not actions:
        log_event(LOGGER, "retention_nothing_due", prefix=prefix, now=report.now)
    return report


def _perform(client: Elasticsearch, action: Action, policy: RetentionPolicy, now: datetime) -> None:
    if action.action == "delete_index":
        client.indices.delete(index=action.index)  # exact name: destructive_requires_name holds
        return
    assert action.level is not None
    query = expired_level_query(action.level, policy.cutoff(action.level, now),
                                is_default=action.level == policy.default_level)
    try:
        response = client.delete_by_query(index=action.index, query=query, conflicts="proceed", refresh=True,
                                          wait_for_completion=True)
    except ApiError as error:
        # _delete_by_query lives in the `reindex` module, which the minimal distribution (the
        # integ-test zip deploy/ runs) leaves out; production clusters have it.
        if error.status_code != 400 or "no handler found" not in str(error):
            raise
        action.documents = _delete_matching(client, action.index, query)
        return
    # The count was taken just before; report what Elasticsearch actually removed.
    action.documents = int(response.get("deleted", action.documents))


def _delete_matching(client: Elasticsearch, index: str, query: dict[str, Any], page: int = 5000) -> int:
    """Delete-by-query from core APIs only: search a page of ids, bulk-delete them, refresh, repeat."""
    deleted = 0
    while True:
        hits = client.search(index=index, query=query, size=page, source=False, sort=["_doc"])["hits"]["hits"]
        if not hits:
            return deleted
        operations = [{"delete": {"_index": hit["_index"], "_id": hit["_id"]}} for hit in hits]
        response = client.bulk(operations=operations, refresh=True)
        deleted += sum(1 for item in response["items"] if item["delete"].get("status") == 200)
        if response["errors"]:
            raise RetentionError(f"bulk delete refused: {response['items'][0]}", source=index)
