"""Triage on Elasticsearch: read the queue, act on alerts, keep incidents and saved filters.

Every write is conditional on the document's ``_seq_no``/``_primary_term`` (its *version*,
shown to clients as ``"<seq_no>:<primary_term>"``). A caller that passes the version it saw
gets :class:`ConflictError` with the document's fresh state when anyone (another analyst, the
indexer writing a newer alert version) changed it since; a caller that passes none (the CLI)
is still protected between this store's read and its write. Nothing is overwritten silently.

Each action is appended to the audit trail (``AuditSink``: console-core's
``alerts.audit.trail.AuditTrail``) with the triage state before and after, once Elasticsearch
acknowledged the write.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch import ConflictError as EsConflictError
from elasticsearch import NotFoundError as EsNotFoundError

from alerts.settings import Settings
from alerts.triage import model
from alerts.triage.errors import ConflictError, NotFoundError, StoreUnavailableError, TriageError
from alerts.triage.model import BulkResult, Triage
from alerts.triage.queue import QueueFilter, groups_body, search_body
from alerts.triage.suppressions import SuppressionFile, build_entry
from ingest.logs import log_event
from ingest.schema import format_timestamp, get_field

LOGGER = logging.getLogger(__name__)

INCIDENTS_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "id": {"type": "keyword"}, "title": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
        "severity": {"type": "keyword"}, "status": {"type": "keyword"}, "owner": {"type": "keyword"},
        "created_at": {"type": "date"}, "created_by": {"type": "keyword"}, "detected_at": {"type": "date"},
        "updated_at": {"type": "date"}, "reported_at": {"type": "date"}, "alerts": {"type": "keyword"},
        "nodes": {"type": "keyword"}, "agencies": {"type": "keyword"},
        "timeline": {"type": "object", "enabled": False},
    },
}
FILTERS_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {"owner": {"type": "keyword"}, "name": {"type": "keyword"}, "params": {"type": "keyword"},
                   "created_at": {"type": "date"}},
}


class AuditSink(Protocol):
    """Where actions are recorded (alerts.audit.trail.AuditTrail has this method)."""

    def append(self, *, actor: str, action: str, target: str, before: object = None, after: object = None,
               now: datetime, source_ip: str | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Record:
    """A stored document with the version a conditional write needs."""

    id: str
    index: str
    seq_no: int
    primary_term: int
    source: dict[str, Any]

    @property
    def version(self) -> str:
        return f"{self.seq_no}:{self.primary_term}"

    @classmethod
    def from_hit(cls, hit: Mapping[str, Any]) -> Record:
        return cls(id=hit["_id"], index=hit["_index"], seq_no=int(hit["_seq_no"]),
                   primary_term=int(hit["_primary_term"]), source=dict(hit.get("_source") or {}))

    def as_dict(self) -> dict[str, Any]:
        """The JSON the API answers with: the document plus ``_id``, ``_index``, ``_version``."""
        return {"_id": self.id, "_index": self.index, "_version": self.version, **self.source}


@dataclass(frozen=True)
class Page:
    """One page of the queue; ``cursor`` fetches the next (None: this was the last)."""

    alerts: list[Record]
    total: int
    total_is_exact: bool
    cursor: str | None


@dataclass(frozen=True)
class Group:
    key: str
    count: int
    open: int
    max_risk: int | None


def alert_summary(record: Record) -> dict[str, Any]:
    """One queue row: what an analyst decides on, and the version to act with."""
    source = record.source
    alert = (source.get("socflow") or {}).get("alert") or {}
    triage = (source.get("socflow") or {}).get("triage") or {}
    node = (source.get("socflow") or {}).get("node") or {}
    return {
        "id": record.id, "version": record.version, "timestamp": source.get("@timestamp"),
        "first_seen": alert.get("first_seen"), "last_seen": alert.get("last_seen"), "count": alert.get("count"),
        "risk": alert.get("risk"), "status": alert.get("status") or "open", "assignee": alert.get("assignee"),
        "rule": {key: (source.get("rule") or {}).get(key) for key in ("id", "name", "level")},
        "node": {key: node.get(key) for key in ("id", "name", "agency", "district", "security_level", "kind")},
        "host": get_field(source, "host.name"), "user": get_field(source, "user.name"),
        "source": get_field(source, "source.ip"),
        "techniques": get_field(source, "threat.technique.id") or [],
        "tactics": get_field(source, "threat.tactic.name") or [],
        "verdict": triage.get("verdict"), "incident": triage.get("incident"),
    }


# Re-reads of an alert whose additive change (a comment) lost a race before the race is the caller's.
CONFLICT_RETRIES = 3


def parse_version(version: str) -> tuple[int, int]:
    try:
        seq_no, term = version.split(":")
        return int(seq_no), int(term)
    except ValueError as error:
        raise TriageError(f"not a document version: {version[:40]!r} (expected <seq_no>:<primary_term>)") from error


@contextmanager
def _reachable(what: str) -> Iterator[None]:
    """Elasticsearch down or refusing: one clear error (the API answers 503), never a 500."""
    try:
        yield
    except (EsNotFoundError, EsConflictError):
        raise
    except (TransportError, ApiError) as error:
        log_event(LOGGER, "triage_store_unavailable", logging.WARNING, what=what, error=str(error)[:300])
        raise StoreUnavailableError(f"Elasticsearch could not {what}: {str(error)[:200]}") from error


class TriageStore:
    """Alerts (``alerts`` alias), incidents and saved filters in Elasticsearch."""

    def __init__(self, client: Elasticsearch, *, alerts: str, incidents: str, filters: str,
                 audit: AuditSink, refresh: bool = False) -> None:
        """``refresh``: make each write visible to searches before answering (tests, the demo);
        the alert page reads in real time either way."""
        self.client = client
        self.alerts = alerts
        self.incidents = incidents
        self.filters = filters
        self.audit = audit
        self.refresh: bool | str = "wait_for" if refresh else False
        self._index_of: OrderedDict[str, str] = OrderedDict()  # alert id -> index: it never moves

    def install(self) -> None:
        """Create the incidents and saved-filters indices (idempotent)."""
        for name, mapping in ((self.incidents, INCIDENTS_MAPPING), (self.filters, FILTERS_MAPPING)):
            with _reachable(f"create index {name}"):
                if not self.client.indices.exists(index=name):
                    try:
                        self.client.indices.create(index=name, mappings=mapping,
                                                   settings={"number_of_shards": 1, "number_of_replicas": 0})
                    except ApiError as error:
                        if "resource_already_exists" not in str(error):
                            raise

    # --- reading alerts ----------------------------------------------------------------------

    def get(self, alert_id: str) -> Record:
        """The alert, read in real time (not waiting for a refresh)."""
        index = self._locate(alert_id)
        try:
            with _reachable(f"read alert {alert_id}"):
                found = self.client.get(index=index, id=alert_id)
        except EsNotFoundError as error:
            self._index_of.pop(alert_id, None)
            raise NotFoundError(f"no alert {alert_id}") from error
        return Record.from_hit(found.body)

    def _locate(self, alert_id: str) -> str:
        if not alert_id or len(alert_id) > 512:
            raise NotFoundError("no such alert")
        known = self._index_of.get(alert_id)
        if known is not None:
            return known
        with _reachable(f"find alert {alert_id}"):
            try:
                response = self.client.search(index=self.alerts, query={"ids": {"values": [alert_id]}}, size=1,
                                              source=False)
            except EsNotFoundError as error:
                raise NotFoundError(f"no alert {alert_id} (no alert index {self.alerts})") from error
        hits = response["hits"]["hits"]
        if not hits:
            raise NotFoundError(f"no alert {alert_id}")
        self._index_of[alert_id] = hits[0]["_index"]
        if len(self._index_of) > 100_000:
            self._index_of.popitem(last=False)
        return str(hits[0]["_index"])

    def page(self, queue: QueueFilter, now: datetime, *, size: int = 50, after: str | None = None) -> Page:
        """One page of the queue, in its order, after the cursor ``after``."""
        from alerts.triage.queue import encode_cursor

        body = search_body(queue, now, size=size, after=after)
        with _reachable("search the alert queue"):
            try:
                response = self.client.search(index=self.alerts, **body)
            except EsNotFoundError:
                return Page([], 0, True, None)
        hits = response["hits"]["hits"]
        total = response["hits"]["total"]
        cursor = encode_cursor(hits[-1]["sort"]) if len(hits) == size else None
        return Page([Record.from_hit(hit) for hit in hits], int(total["value"]), total["relation"] == "eq", cursor)

    def groups(self, queue: QueueFilter, now: datetime, by: str, *, size: int = 50) -> tuple[list[Group], int, int]:
        """Groups of the filtered queue by rule or entity: (groups, alerts without the field, total)."""
        body = groups_body(queue, now, by, size=size)
        with _reachable("group the alert queue"):
            try:
                response = self.client.search(index=self.alerts, **body)
            except EsNotFoundError:
                return [], 0, 0
        aggregations = response["aggregations"]
        groups = [Group(key=str(bucket.get("key_as_string", bucket["key"])), count=int(bucket["doc_count"]),
                        open=int(bucket["open"]["doc_count"]),
                        max_risk=None if bucket["risk"]["value"] is None else int(bucket["risk"]["value"]))
                  for bucket in aggregations["groups"]["buckets"]]
        return groups, int(aggregations["missing"]["doc_count"]), int(response["hits"]["total"]["value"])

    def search(self, query: Mapping[str, Any], *, size: int, sort: Sequence[Mapping[str, Any]]) -> list[Record]:
        """Alerts matching a raw query (the alert page's related alerts)."""
        with _reachable("search alerts"):
            try:
                response = self.client.search(index=self.alerts, query=dict(query), size=size, sort=list(sort),
                                              seq_no_primary_term=True,
                                              source_excludes=["events", "socflow.triage"])
            except EsNotFoundError:
                return []
        return [Record.from_hit(hit) for hit in response["hits"]["hits"]]

    # --- acting on alerts --------------------------------------------------------------------

    def act(self, alert_id: str, change: Callable[[Triage], Triage], *, action: str, actor: str, now: datetime,
            expected: str | None = None, source_ip: str | None = None, additive: bool = False) -> Record:
        """Apply ``change`` to the alert's triage, conditionally on ``expected`` (or on what was
        read), audit it, and return the alert as written.

        An ``additive`` change (a comment) decides nothing from the state it reads, so without
        ``expected`` a write that lost a race is read again and retried: two analysts commenting
        at once both land. Any other lost race is the caller's conflict (409)."""
        for attempt in range(CONFLICT_RETRIES + 1):
            current = self.get(alert_id)
            if expected is not None and expected != current.version:
                parse_version(expected)
                raise ConflictError(f"alert {alert_id} changed since you read it (version {expected}, now "
                                    f"{current.version}): reload and decide again", current=current.as_dict())
            before = Triage.from_source(current.source)
            after = change(before)
            partial = after.fields()
            try:
                with _reachable(f"write alert {alert_id}"):
                    response = self.client.update(index=current.index, id=alert_id, doc=partial,
                                                  if_seq_no=current.seq_no, if_primary_term=current.primary_term,
                                                  refresh=self.refresh)
                break
            except EsConflictError as error:
                if additive and expected is None and attempt < CONFLICT_RETRIES:
                    continue
                fresh = self.get(alert_id)
                raise ConflictError(f"alert {alert_id} changed while you acted on it: reload and decide again",
                                    current=fresh.as_dict()) from error
        source = dict(current.source)
        source["socflow"] = {**source.get("socflow", {}),
                             "alert": {**source.get("socflow", {}).get("alert", {}), **partial["socflow"]["alert"]},
                             "triage": partial["socflow"]["triage"]}
        written = Record(alert_id, current.index, int(response["_seq_no"]), int(response["_primary_term"]), source)
        self.audit.append(actor=actor, action=f"alert.{action}", target=f"alert:{alert_id}",
                          before=before.summary(), after=after.summary(), now=now, source_ip=source_ip)
        log_event(LOGGER, "alert_triaged", alert=alert_id, action=action, actor=actor)
        return written

    def set_status(self, alert_id: str, status: str, *, actor: str, now: datetime, expected: str | None = None,
                   verdict: str | None = None, reason: str | None = None, source_ip: str | None = None) -> Record:
        return self.act(alert_id, lambda state: model.transition(state, status, actor=actor, now=now,
                                                                 verdict=verdict, reason=reason),
                        action="close" if status == "closed" else status, actor=actor, now=now, expected=expected,
                        source_ip=source_ip)

    def assign(self, alert_id: str, assignee: str | None, *, actor: str, now: datetime, expected: str | None = None,
               source_ip: str | None = None) -> Record:
        return self.act(alert_id, lambda state: model.assign(state, assignee, actor=actor, now=now),
                        action="assign", actor=actor, now=now, expected=expected, source_ip=source_ip)

    def comment(self, alert_id: str, text: str, *, actor: str, now: datetime, expected: str | None = None,
                source_ip: str | None = None) -> Record:
        return self.act(alert_id, lambda state: model.comment(state, text, actor=actor, now=now),
                        action="comment", actor=actor, now=now, expected=expected, source_ip=source_ip,
                        additive=True)

    def bulk(self, versions: Mapping[str, str | None], change: Callable[[Triage], Triage], *, action: str,
             actor: str, now: datetime, source_ip: str | None = None) -> BulkResult:
        """One action on many alerts, each conditional on its own version; one conflict or refusal
        does not stop the others, and each is reported."""
        result = BulkResult()
        for alert_id, expected in versions.items():
            try:
                self.act(alert_id, change, action=action, actor=actor, now=now, expected=expected,
                         source_ip=source_ip)
                result.done.append(alert_id)
            except ConflictError as error:
                result.conflicts[alert_id] = error.current
            except TriageError as error:
                result.refused[alert_id] = error.reason
        if result.done and not self.refresh:
            # One refresh for the whole batch: the queue the analyst returns to shows every change.
            with _reachable("refresh the alert index"):
                self.client.indices.refresh(index=self.alerts)
        return result

    def suppress(self, alert_id: str, suppressions: SuppressionFile, *, fields: Sequence[str], reason: str,
                 until: datetime, actor: str, now: datetime, expected: str | None = None,
                 source_ip: str | None = None) -> tuple[dict[str, Any], Record]:
        """'Suppress alerts like this' (admins): a suppression of the alert's rule and chosen
        field values, written where the job reads it, audited; the alert is marked with its name."""
        current = self.get(alert_id)
        if expected is not None and expected != current.version:
            raise ConflictError(f"alert {alert_id} changed since you read it: reload and decide again",
                                current=current.as_dict())
        name = f"console-{now:%Y%m%d-%H%M%S}-{hashlib.sha256(alert_id.encode()).hexdigest()[:8]}"
        entry = build_entry(current.source, alert_id=alert_id, name=name, fields=fields, reason=reason, until=until,
                            actor=actor, now=now)
        suppressions.add(entry)
        self.audit.append(actor=actor, action="suppression.create", target=f"suppression:{name}", before=None,
                          after=entry, now=now, source_ip=source_ip)
        record = self.act(alert_id, lambda state: model.mark_suppressed(state, name, actor=actor, now=now),
                          action="suppress", actor=actor, now=now, source_ip=source_ip)
        return entry, record

    # --- incidents -----------------------------------------------------------------------------

    def create_incident(self, incident_id: str, alert_versions: Mapping[str, str | None], *, title: str,
                        severity: str | None, actor: str, now: datetime, owner: str | None = None,
                        source_ip: str | None = None) -> tuple[Record, BulkResult]:
        """Escalate alerts into a new incident: every alert must still be as the caller saw it
        (else ConflictError, nothing created); each is then linked to the incident."""
        if not alert_versions:
            raise TriageError("an incident needs at least one alert")
        alerts = self._as_seen(alert_versions)
        levels = [str(alert.get("rule", {}).get("level", "")) for alert in alerts]
        document = model.new_incident(incident_id, title=title, severity=severity or model.severity_of(levels),
                                      alerts=alerts, actor=actor, now=now, owner=owner)
        with _reachable("create the incident"):
            response = self.client.index(index=self.incidents, id=incident_id, document=document, op_type="create",
                                         refresh=self.refresh)
        record = Record(incident_id, self.incidents, int(response["_seq_no"]), int(response["_primary_term"]),
                        document)
        self.audit.append(actor=actor, action="incident.create", target=f"incident:{incident_id}", before=None,
                          after=_incident_summary(document), now=now, source_ip=source_ip)
        linked = self.bulk({alert_id: None for alert_id in alert_versions},
                           lambda state: model.link_incident(state, incident_id, actor=actor, now=now),
                           action="escalate", actor=actor, now=now, source_ip=source_ip)
        return record, linked

    def _as_seen(self, alert_versions: Mapping[str, str | None]) -> list[dict[str, Any]]:
        """The alerts (``_source`` with ``_id``), each still at the version the caller saw (or any
        version where none was given); else ConflictError with the changed one's fresh state."""
        alerts = []
        for alert_id, seen in alert_versions.items():
            current = self.get(alert_id)
            if seen is not None and seen != current.version:
                raise ConflictError(f"alert {alert_id} changed since you read it: reload and decide again",
                                    current=current.as_dict())
            alerts.append({"_id": alert_id, **current.source})
        return alerts

    def get_incident(self, incident_id: str) -> Record:
        try:
            with _reachable(f"read incident {incident_id}"):
                found = self.client.get(index=self.incidents, id=incident_id)
        except EsNotFoundError as error:
            raise NotFoundError(f"no incident {incident_id}") from error
        return Record.from_hit(found.body)

    def incidents_list(self, *, status: Sequence[str] = (), size: int = 100) -> list[Record]:
        query: dict[str, Any] = {"terms": {"status": list(status)}} if status else {"match_all": {}}
        with _reachable("list incidents"):
            try:
                response = self.client.search(index=self.incidents, query=query, size=size,
                                              sort=[{"created_at": "desc"}, {"id": "asc"}], seq_no_primary_term=True)
            except EsNotFoundError:
                return []
        return [Record.from_hit(hit) for hit in response["hits"]["hits"]]

    def change_incident(self, incident_id: str, change: Callable[[dict[str, Any]], dict[str, Any]], *, action: str,
                        actor: str, now: datetime, expected: str | None = None,
                        source_ip: str | None = None) -> Record:
        """Apply ``change`` to the incident, conditional on its version, audited."""
        current = self.get_incident(incident_id)
        if expected is not None and expected != current.version:
            raise ConflictError(f"incident {incident_id} changed since you read it: reload and decide again",
                                current=current.as_dict())
        updated = change(dict(current.source))
        try:
            with _reachable(f"write incident {incident_id}"):
                response = self.client.index(index=self.incidents, id=incident_id, document=updated,
                                             if_seq_no=current.seq_no, if_primary_term=current.primary_term,
                                             refresh=self.refresh)
        except EsConflictError as error:
            raise ConflictError(f"incident {incident_id} changed while you acted on it: reload and decide again",
                                current=self.get_incident(incident_id).as_dict()) from error
        self.audit.append(actor=actor, action=f"incident.{action}", target=f"incident:{incident_id}",
                          before=_incident_summary(current.source), after=_incident_summary(updated), now=now,
                          source_ip=source_ip)
        return Record(incident_id, self.incidents, int(response["_seq_no"]), int(response["_primary_term"]), updated)

    def add_to_incident(self, incident_id: str, alert_versions: Mapping[str, str | None], *, actor: str,
                        now: datetime, expected: str | None = None, source_ip: str | None = None,
                        ) -> tuple[Record, BulkResult]:
        alerts = self._as_seen(alert_versions)
        record = self.change_incident(incident_id, lambda doc: model.add_alerts(doc, alerts, actor=actor, now=now),
                                      action="add_alerts", actor=actor, now=now, expected=expected,
                                      source_ip=source_ip)
        linked = self.bulk({alert_id: None for alert_id in alert_versions},
                           lambda state: model.link_incident(state, incident_id, actor=actor, now=now),
                           action="escalate", actor=actor, now=now, source_ip=source_ip)
        return record, linked

    # --- saved filters ---------------------------------------------------------------------------

    def save_filter(self, owner: str, name: str, queue: QueueFilter, *, now: datetime) -> dict[str, Any]:
        label = (name or "").strip()
        if not label or len(label) > 100:
            raise TriageError("a saved filter needs a name of 1-100 characters")
        document = {"owner": owner, "name": label, "params": queue.query_string(), "created_at": format_timestamp(now)}
        with _reachable("save the filter"):
            self.client.index(index=self.filters, id=_filter_id(owner, label), document=document, refresh="wait_for")
        return document

    def saved_filters(self, owner: str) -> list[dict[str, Any]]:
        with _reachable("read saved filters"):
            try:
                response = self.client.search(index=self.filters, query={"term": {"owner": owner}}, size=100,
                                              sort=[{"name": "asc"}])
            except EsNotFoundError:
                return []
        return [hit["_source"] for hit in response["hits"]["hits"]]

    def delete_filter(self, owner: str, name: str) -> None:
        try:
            with _reachable("delete the filter"):
                self.client.delete(index=self.filters, id=_filter_id(owner, name), refresh="wait_for")
        except EsNotFoundError as error:
            raise NotFoundError(f"no saved filter {name!r}") from error


def _filter_id(owner: str, name: str) -> str:
    return hashlib.sha256(f"{owner}\0{name}".encode()).hexdigest()[:32]


def _incident_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("title", "severity", "status", "owner", "alerts", "reported_at")
    summary = {key: document.get(key) for key in keys}
    timeline = document.get("timeline") or []
    summary["last_entry"] = timeline[-1] if timeline else None
    return summary


def open_store(settings: Settings, audit: AuditSink, client: Elasticsearch | None = None) -> TriageStore:
    """The store of socflow's settings (alerts alias, incidents and filters indices)."""
    from alerts.indexer import connect

    return TriageStore(client or connect(settings.elasticsearch), alerts=settings.elasticsearch.index_prefix,
                       incidents=settings.triage.incidents_index, filters=settings.triage.filters_index,
                       audit=audit, refresh=settings.triage.refresh_on_write)
