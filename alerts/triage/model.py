"""The pure core of triage: an alert's triage state, the actions on it, incidents and deadlines.

No I/O and no clock: every function takes the actor and ``now`` and returns a new value, so
the API, the CLI and the tests apply exactly the same rules. An alert's triage lives in its
document as ``socflow.alert.status`` / ``socflow.alert.assignee`` (the fields the indexer has
always kept across alert versions) and ``socflow.triage`` (verdict, reason, comments, history,
incident, suppression), which the indexer keeps whole.

Statuses move forward, open -> acknowledged -> investigating -> closed (steps may be skipped:
a false positive is closed straight from the queue); a closed alert can only be reopened.
Closing needs a verdict and a reason.

The first time an alert leaves ``open`` (acknowledged, or straight to investigating or closed)
is its first response: ``acknowledged_at``/``acknowledged_by`` and ``ack_seconds`` (whole
seconds since the alert's ``@timestamp``, the instant the reports' time to close also counts
from) are set then and never again, so a reopened and re-acknowledged alert keeps its first
response. The duration is stored because Elasticsearch cannot subtract two fields without a
script: the reports aggregate ``ack_seconds`` directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from alerts.triage.errors import TriageError
from ingest.schema import format_timestamp, parse_timestamp

STATUSES = ("open", "acknowledged", "investigating", "closed")
VERDICTS = ("true_positive", "benign", "false_positive")
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "open": frozenset({"acknowledged", "investigating", "closed"}),
    "acknowledged": frozenset({"investigating", "closed"}),
    "investigating": frozenset({"closed"}),
    "closed": frozenset({"open"}),
}
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MAX_COMMENT = 10_000
MAX_REASON = 2_000
MAX_TITLE = 300
INCIDENT_STATUSES = ("open", "investigating", "contained", "closed")
SEVERITIES = ("low", "medium", "high", "critical")
LEVEL_ORDER = ("informational", "low", "medium", "high", "critical")


def _text(value: str | None, what: str, limit: int, *, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise TriageError(f"{what} is required")
    if len(text) > limit:
        raise TriageError(f"{what} is longer than {limit} characters")
    return text


def check_user_name(name: str) -> str:
    """A user name as the console's users have them (letters, digits, . _ @ -, up to 64)."""
    if not USER_NAME.match(name or ""):
        raise TriageError(f"not a user name: {name[:80]!r}")
    return name


@dataclass(frozen=True)
class Triage:
    """The part of an alert analysts change."""

    status: str = "open"
    assignee: str | None = None
    verdict: str | None = None
    reason: str | None = None
    incident: str | None = None
    suppression: str | None = None
    closed_at: str | None = None
    closed_by: str | None = None
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None
    ack_seconds: int | None = None
    updated_at: str | None = None
    updated_by: str | None = None
    comments: tuple[Mapping[str, Any], ...] = ()
    history: tuple[Mapping[str, Any], ...] = ()
    # The alert's own time (its ``@timestamp``): read, never written; first response counts from it.
    raised_at: str | None = None

    @classmethod
    def from_source(cls, source: Mapping[str, Any]) -> Triage:
        socflow = source.get("socflow") or {}
        alert = socflow.get("alert") or {}
        triage = socflow.get("triage") or {}
        status = alert.get("status") or "open"
        return cls(
            status=status if status in STATUSES else "open",
            assignee=alert.get("assignee"),
            verdict=triage.get("verdict"), reason=triage.get("reason"), incident=triage.get("incident"),
            suppression=triage.get("suppression"), closed_at=triage.get("closed_at"),
            closed_by=triage.get("closed_by"), acknowledged_at=triage.get("acknowledged_at"),
            acknowledged_by=triage.get("acknowledged_by"), ack_seconds=triage.get("ack_seconds"),
            updated_at=triage.get("updated_at"), updated_by=triage.get("updated_by"),
            comments=tuple(triage.get("comments") or ()), history=tuple(triage.get("history") or ()),
            raised_at=source.get("@timestamp"),
        )

    def fields(self) -> dict[str, Any]:
        """The partial document that writes this state (``socflow.alert`` + ``socflow.triage``)."""
        return {"socflow": {
            "alert": {"status": self.status, "assignee": self.assignee},
            "triage": {
                "verdict": self.verdict, "reason": self.reason, "incident": self.incident,
                "suppression": self.suppression, "closed_at": self.closed_at, "closed_by": self.closed_by,
                "acknowledged_at": self.acknowledged_at, "acknowledged_by": self.acknowledged_by,
                "ack_seconds": self.ack_seconds, "updated_at": self.updated_at, "updated_by": self.updated_by,
                "comments": [dict(item) for item in self.comments],
                "history": [dict(item) for item in self.history],
            },
        }}

    def summary(self) -> dict[str, Any]:
        """What the audit trail records as before/after (comments by count, the newest in full)."""
        return {
            "status": self.status, "assignee": self.assignee, "verdict": self.verdict, "reason": self.reason,
            "incident": self.incident, "suppression": self.suppression, "comments": len(self.comments),
            "last_comment": dict(self.comments[-1]) if self.comments else None,
        }

    def _touched(self, actor: str, now: datetime, action: str, **details: Any) -> Triage:
        stamp = format_timestamp(now)
        entry = {"at": stamp, "by": actor, "action": action, **{k: v for k, v in details.items() if v is not None}}
        return replace(self, updated_at=stamp, updated_by=actor, history=(*self.history, entry))

    def _responded(self, before: Triage, actor: str, now: datetime) -> Triage:
        """Stamp the first response when this change takes the alert out of ``open`` for the first
        time; a later transition (or a reopened alert acknowledged again) leaves it as it was."""
        if before.status != "open" or self.status == "open" or before.acknowledged_at is not None:
            return self
        seconds = None
        if self.raised_at:
            # Whole seconds, never negative (an alert's time may be a little ahead of the console's clock).
            seconds = max(0, int((now - parse_timestamp(str(self.raised_at))).total_seconds()))
        return replace(self, acknowledged_at=format_timestamp(now), acknowledged_by=actor, ack_seconds=seconds)


def transition(state: Triage, to: str, *, actor: str, now: datetime, verdict: str | None = None,
               reason: str | None = None) -> Triage:
    """Move to status ``to``; closing needs a verdict and a reason, reopening clears them."""
    if to not in STATUSES:
        raise TriageError(f"unknown status {to!r}; one of {', '.join(STATUSES)}")
    if to not in TRANSITIONS[state.status]:
        allowed = ", ".join(sorted(TRANSITIONS[state.status]))
        raise TriageError(f"cannot go from {state.status} to {to} (allowed: {allowed})")
    if to == "closed":
        if verdict not in VERDICTS:
            raise TriageError(f"closing needs a verdict: one of {', '.join(VERDICTS)}")
        text = _text(reason, "a reason for closing", MAX_REASON)
        moved = replace(state, status=to, verdict=verdict, reason=text, closed_at=format_timestamp(now),
                        closed_by=actor)._responded(state, actor, now)
        return moved._touched(actor, now, "close", **{"from": state.status, "to": to, "verdict": verdict})
    if to == "open":  # reopened: the verdict no longer holds
        moved = replace(state, status=to, verdict=None, reason=None, closed_at=None, closed_by=None)
        return moved._touched(actor, now, "reopen", **{"from": state.status, "to": to})
    moved = replace(state, status=to)._responded(state, actor, now)
    return moved._touched(actor, now, "status", **{"from": state.status, "to": to})


def assign(state: Triage, assignee: str | None, *, actor: str, now: datetime) -> Triage:
    """Assign to a user (None: unassign)."""
    if assignee is not None:
        check_user_name(assignee)
    if assignee == state.assignee:
        raise TriageError(f"already assigned to {assignee}" if assignee else "not assigned")
    moved = replace(state, assignee=assignee)
    return moved._touched(actor, now, "assign", **{"from": state.assignee, "to": assignee})


def comment(state: Triage, text: str, *, actor: str, now: datetime) -> Triage:
    body = _text(text, "a comment", MAX_COMMENT)
    moved = replace(state, comments=(*state.comments, {"at": format_timestamp(now), "by": actor, "text": body}))
    return moved._touched(actor, now, "comment")


def link_incident(state: Triage, incident_id: str, *, actor: str, now: datetime) -> Triage:
    """Escalated into an incident: linked, and under investigation unless already closed."""
    if state.incident == incident_id:
        raise TriageError(f"already part of incident {incident_id}")
    status = "investigating" if state.status in ("open", "acknowledged") else state.status
    moved = replace(state, incident=incident_id, status=status)._responded(state, actor, now)
    return moved._touched(actor, now, "escalate", incident=incident_id, **{"from": state.status, "to": status})


def mark_suppressed(state: Triage, name: str, *, actor: str, now: datetime) -> Triage:
    return replace(state, suppression=name)._touched(actor, now, "suppress", suppression=name)


# --- incidents -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadlineState:
    """An incident's reporting deadline as the console shows it."""

    deadline: datetime
    left: timedelta
    overdue: bool
    reported: bool


def severity_of(levels: Sequence[str]) -> str:
    """An incident's default severity: its most severe alert's level (informational -> low)."""
    ranks = [LEVEL_ORDER.index(level) for level in levels if level in LEVEL_ORDER]
    top = LEVEL_ORDER[max(ranks)] if ranks else "medium"
    return "low" if top == "informational" else top


def new_incident(incident_id: str, *, title: str, severity: str, alerts: Sequence[Mapping[str, Any]],
                 actor: str, now: datetime, owner: str | None = None) -> dict[str, Any]:
    """An incident document grouping ``alerts`` (their ``_source`` with ``_id``)."""
    if severity not in SEVERITIES:
        raise TriageError(f"unknown severity {severity!r}; one of {', '.join(SEVERITIES)}")
    if owner is not None:
        check_user_name(owner)
    stamp = format_timestamp(now)
    detected = min((str(alert.get("socflow", {}).get("alert", {}).get("first_seen") or alert.get("@timestamp"))
                    for alert in alerts), default=stamp)
    incident: dict[str, Any] = {
        "id": incident_id, "title": _text(title, "a title", MAX_TITLE), "severity": severity,
        "status": "open", "owner": owner or actor, "created_at": stamp, "created_by": actor,
        # The regulation counts from discovery: the console's first sight of the incident's
        # alerts is when the SOC could know, so the deadline runs from the earliest of them.
        "detected_at": detected, "updated_at": stamp, "reported_at": None,
        "alerts": [], "nodes": [], "agencies": [], "timeline": [],
    }
    incident["timeline"].append({"at": stamp, "by": actor, "action": "create", "text": incident["title"]})
    return add_alerts(incident, alerts, actor=actor, now=now, record=False)


def add_alerts(incident: Mapping[str, Any], alerts: Sequence[Mapping[str, Any]], *, actor: str, now: datetime,
               record: bool = True) -> dict[str, Any]:
    """The incident with these alerts (and their nodes and agencies) added."""
    updated = {**incident, "alerts": list(incident.get("alerts") or ()), "nodes": list(incident.get("nodes") or ()),
               "agencies": list(incident.get("agencies") or ()), "timeline": list(incident.get("timeline") or ())}
    added = []
    for alert in alerts:
        if alert["_id"] in updated["alerts"]:
            continue
        updated["alerts"].append(alert["_id"])
        added.append(alert["_id"])
        node = alert.get("socflow", {}).get("node") or {}
        if node.get("id") and node["id"] not in updated["nodes"]:
            updated["nodes"].append(node["id"])
        if node.get("agency") and node["agency"] not in updated["agencies"]:
            updated["agencies"].append(node["agency"])
    if not added and record:
        raise TriageError("every alert given is already part of this incident")
    if record:
        updated["timeline"].append({"at": format_timestamp(now), "by": actor, "action": "add_alerts",
                                    "alerts": added})
        updated["updated_at"] = format_timestamp(now)
    return updated


def update_incident(incident: Mapping[str, Any], *, actor: str, now: datetime, status: str | None = None,
                    owner: str | None = None, severity: str | None = None, comment_text: str | None = None,
                    reported: bool = False) -> dict[str, Any]:
    """The incident after one change from the console (status, owner, severity, a comment, or
    marking it reported to the coordinating authority), each recorded on its timeline."""
    updated = {**incident, "timeline": list(incident.get("timeline") or ())}
    stamp = format_timestamp(now)
    changes: list[dict[str, Any]] = []
    if status is not None and status != incident.get("status"):
        if status not in INCIDENT_STATUSES:
            raise TriageError(f"unknown incident status {status!r}; one of {', '.join(INCIDENT_STATUSES)}")
        changes.append({"action": "status", "from": incident.get("status"), "to": status})
        updated["status"] = status
    if owner is not None and owner != incident.get("owner"):
        check_user_name(owner)
        changes.append({"action": "owner", "from": incident.get("owner"), "to": owner})
        updated["owner"] = owner
    if severity is not None and severity != incident.get("severity"):
        if severity not in SEVERITIES:
            raise TriageError(f"unknown severity {severity!r}; one of {', '.join(SEVERITIES)}")
        changes.append({"action": "severity", "from": incident.get("severity"), "to": severity})
        updated["severity"] = severity
    if reported:
        if incident.get("reported_at"):
            raise TriageError("already reported")
        changes.append({"action": "reported"})
        updated["reported_at"] = stamp
    if comment_text is not None:
        changes.append({"action": "comment", "text": _text(comment_text, "a comment", MAX_COMMENT)})
    if not changes:
        raise TriageError("nothing to change")
    updated["timeline"].extend({"at": stamp, "by": actor, **change} for change in changes)
    updated["updated_at"] = stamp
    return updated


def deadline(incident: Mapping[str, Any], *, hours: float, now: datetime) -> DeadlineState:
    """When the incident must be reported (``hours`` after its detection) and how long is left."""
    due = parse_timestamp(str(incident["detected_at"])) + timedelta(hours=hours)
    reported = bool(incident.get("reported_at"))
    left = due - now
    return DeadlineState(deadline=due, left=left, overdue=not reported and left.total_seconds() < 0,
                         reported=reported)


def describe_left(left: timedelta) -> str:
    """'2 d 3 h left' / '5 h 10 min overdue' (whole minutes)."""
    minutes = int(abs(left.total_seconds()) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = ([f"{days} d"] if days else []) + ([f"{hours} h"] if hours else []) + ([f"{mins} min"] if not days else [])
    return f"{' '.join(parts) or '0 min'} {'left' if left.total_seconds() >= 0 else 'overdue'}"


@dataclass
class BulkResult:
    """Per-alert outcome of a bulk action: done, conflicts (fresh state) and refusals (reason)."""

    done: list[str] = field(default_factory=list)
    conflicts: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
