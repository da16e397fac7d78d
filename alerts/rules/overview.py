"""What the console's rules page shows: the active rule set, each rule's hits, verdicts and tuning.

The active rule set is the version the ``current`` pointer of the published rule sets names
(``socflow rules publish``: what a running job judges with); before anything is published,
the job's ``rule_dirs`` as they are. A published version never changes, so its parsed rules are
cached by version. Rules the tuning disabled are not in the set; they are listed too, marked
disabled, from the rule store's current release, so they can be enabled again.

Hits and verdicts come from one Elasticsearch search over the alerts alias: a terms
aggregation on ``rule.id`` (only the listed ids) over the window, with per rule the sum of
``socflow.alert.count`` (events) and, among closed alerts, the verdicts. The false-positive
rate is false positives / closed alerts with a verdict; no closed alert, no rate. Nothing is
pulled into Python but the buckets.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from elasticsearch import Elasticsearch, NotFoundError

from alerts.rules.tuning import job_rule_dirs, rule_tuning
from alerts.settings import Settings
from detectors.ruletools.store import LEVEL_ORDER, RuleStore

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_RULE_TEXT = 200_000
CACHED_VERSIONS = 4
SORTS = ("hits", "events", "fp_rate", "closed", "title", "level", "id", "status")
VERDICTS = ("true_positive", "benign", "false_positive")


@dataclass(frozen=True)
class RuleDoc:
    """One rule of a rule set, as its file says."""

    id: str
    title: str
    level: str
    status: str
    kind: str  # sigma, correlation
    logsource: dict[str, str]
    tags: tuple[str, ...]
    description: str
    name: str | None
    path: Path

    @property
    def attack(self) -> list[str]:
        return [tag.removeprefix("attack.") for tag in self.tags if tag.startswith("attack.")]


@dataclass
class ActiveSet:
    version: str | None  # None: nothing published; the job's rule_dirs are shown
    published: bool
    rules: dict[str, RuleDoc]
    sources: list[str]


@dataclass
class RuleStats:
    hits: int = 0
    events: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)

    @property
    def closed(self) -> int:
        return sum(self.verdicts.values())

    @property
    def fp_rate(self) -> float | None:
        return self.verdicts.get("false_positive", 0) / self.closed if self.closed else None


@dataclass
class RuleRow:
    rule: RuleDoc
    stats: RuleStats
    tuning: dict[str, Any]
    tunable: bool
    release_level: str | None  # the level the release gives (differs when overridden)

    @property
    def disabled(self) -> bool:
        return self.tuning.get("disabled") is not None

    def to_json(self) -> dict[str, Any]:
        rule = self.rule
        return {"id": rule.id, "title": rule.title, "level": rule.level, "release_level": self.release_level,
                "status": rule.status, "kind": rule.kind, "logsource": rule.logsource, "tags": list(rule.tags),
                "attack": rule.attack, "enabled": not self.disabled, "tunable": self.tunable, "tuning": self.tuning,
                "hits": self.stats.hits, "events": self.stats.events, "verdicts": self.stats.verdicts,
                "closed": self.stats.closed, "fp_rate": self.stats.fp_rate}


_CACHE: dict[str, ActiveSet] = {}
_CACHE_LOCK = threading.Lock()


def active_rule_set(settings: Settings) -> ActiveSet:
    from detectors.ruleset import RULES_DIR, current_version

    store = settings.ruleset_store_dir
    version = current_version(store)
    if version is not None and (store / version / RULES_DIR).is_dir():
        key = f"{store.resolve()}:{version}"
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
        if cached is None:
            cached = ActiveSet(version, True, read_rules([store / version / RULES_DIR]), [str(store / version)])
            with _CACHE_LOCK:
                while len(_CACHE) >= CACHED_VERSIONS:  # the oldest first (dicts keep insertion order)
                    _CACHE.pop(next(iter(_CACHE)))
                _CACHE[key] = cached
        return cached
    roots = job_rule_dirs(settings)
    return ActiveSet(None, False, read_rules(roots), [str(root) for root in roots])


def read_rules(roots: Sequence[Path]) -> dict[str, RuleDoc]:
    """Detection and correlation rules under ``roots`` by id (filters, tests and unreadable files left out:
    the publish that made the set loaded every rule, and ``socflow rules validate`` names failures)."""
    rules: dict[str, RuleDoc] = {}
    for root in roots:
        files = sorted(root.rglob("*.y*ml")) if root.is_dir() else [root] if root.is_file() else []
        for path in files:
            if path.name.endswith((".tests.yml", ".tests.yaml")) or path.suffix not in (".yml", ".yaml"):
                continue
            try:
                documents = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_LOADER))
            except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
                continue
            for document in documents:
                doc = _rule_doc(document, path)
                if doc is not None:
                    rules.setdefault(doc.id, doc)
    return rules


def _rule_doc(document: object, path: Path) -> RuleDoc | None:
    if not isinstance(document, Mapping) or not document.get("id") or "filter" in document:
        return None
    if "detection" not in document and "correlation" not in document:
        return None
    source = document.get("logsource")
    logsource = {str(k): str(v) for k, v in source.items() if k in ("product", "category", "service")} \
        if isinstance(source, Mapping) else {}
    tags = document.get("tags")
    return RuleDoc(id=str(document["id"]), title=str(document.get("title") or ""),
                   level=str(document.get("level") or "medium"), status=str(document.get("status") or ""),
                   kind="correlation" if "correlation" in document else "sigma", logsource=logsource,
                   tags=tuple(str(tag) for tag in tags) if isinstance(tags, list) else (),
                   description=str(document.get("description") or ""),
                   name=str(document["name"]) if document.get("name") else None, path=path)


def rule_stats(client: Elasticsearch, index: str, ids: Sequence[str], *, now: datetime,
               days: int) -> dict[str, RuleStats]:
    """Alerts, events and closed verdicts per rule id over the ``days`` before ``now``."""
    if not ids:
        return {}
    since = (now - timedelta(days=days)).isoformat()
    try:
        answer = client.search(
            index=index, size=0, track_total_hits=False,
            query={"bool": {"filter": [{"terms": {"rule.id": list(ids)}},
                                       {"range": {"@timestamp": {"gte": since, "lte": now.isoformat()}}}]}},
            aggs={"rules": {"terms": {"field": "rule.id", "size": len(ids)},
                            "aggs": {"events": {"sum": {"field": "socflow.alert.count", "missing": 1}},
                                     "closed": {"filter": {"term": {"socflow.alert.status": "closed"}},
                                                "aggs": {"verdicts": {"terms": {"field": "socflow.triage.verdict",
                                                                                "size": 10}}}}}}},
        )
    except NotFoundError:
        return {}  # no alert index yet: no hits
    stats: dict[str, RuleStats] = {}
    for bucket in answer["aggregations"]["rules"]["buckets"]:
        verdicts = {str(item["key"]): int(item["doc_count"])
                    for item in bucket["closed"]["verdicts"]["buckets"] if item["key"] in VERDICTS}
        stats[str(bucket["key"])] = RuleStats(int(bucket["doc_count"]), int(bucket["events"]["value"] or 0), verdicts)
    return stats


@dataclass
class RuleTable:
    active: ActiveSet
    rows: list[RuleRow]
    days: int
    sort: str
    descending: bool
    release: str | None  # the rule store's current release (None: no store)

    @property
    def noisiest(self) -> list[RuleRow]:
        return sorted((row for row in self.rows if row.stats.hits), key=lambda row: -row.stats.hits)[:5]

    def to_json(self) -> dict[str, Any]:
        return {"version": self.active.version, "published": self.active.published, "sources": self.active.sources,
                "release": self.release, "days": self.days, "sort": self.sort,
                "order": "desc" if self.descending else "asc",
                "noisiest": [row.rule.id for row in self.noisiest], "rules": [row.to_json() for row in self.rows]}


def _sort_key(sort: str) -> Any:
    def key(row: RuleRow) -> tuple[Any, ...]:
        stats = row.stats
        values: dict[str, Any] = {
            "hits": stats.hits, "events": stats.events, "closed": stats.closed,
            "fp_rate": -1.0 if stats.fp_rate is None else stats.fp_rate,
            "title": row.rule.title.casefold(), "id": row.rule.id, "status": row.rule.status,
            "level": LEVEL_ORDER.index(row.rule.level) if row.rule.level in LEVEL_ORDER else -1,
        }
        return (values[sort], row.rule.title.casefold(), row.rule.id)

    return key


def rule_rows(settings: Settings, client: Elasticsearch, *, now: datetime, days: int = 7,
              only: str | None = None) -> tuple[ActiveSet, list[RuleRow], str | None]:
    """Every rule of the active set, and the disabled ones of the rule store, with stats and tuning
    (``only``: just that rule, if it is one of them)."""
    active = active_rule_set(settings)
    store = RuleStore(settings.rule_store_dir)
    manifest = store.manifest() if store.current else None
    release_rules: Mapping[str, Any] = manifest["rules"] if manifest else {}
    tuning = store.tuning()
    docs = dict(active.rules)
    for rule_id in tuning["disabled"]:
        entry = release_rules.get(rule_id)
        if rule_id not in docs and entry is not None and manifest is not None:
            # Not in the active set: the release's file says what the rule is.
            path = store.releases / str(manifest["name"]) / entry["path"]
            docs[rule_id] = read_rules([path]).get(rule_id) or RuleDoc(
                id=rule_id, title=str(entry.get("title") or ""), level=str(entry.get("level") or "medium"),
                status=str(entry.get("status") or ""), kind="sigma", logsource=dict(entry.get("logsource") or {}),
                tags=(), description="", name=entry.get("name"), path=path)
    if only is not None:
        docs = {only: docs[only]} if only in docs else {}
    stats = rule_stats(client, settings.elasticsearch.index_prefix, sorted(docs), now=now, days=days)
    rows = []
    for rule_id, doc in docs.items():
        entry = release_rules.get(rule_id)
        rows.append(RuleRow(doc, stats.get(rule_id, RuleStats()), rule_tuning(tuning, rule_id, doc.name),
                            tunable=entry is not None, release_level=str(entry.get("level")) if entry else None))
    return active, rows, manifest["name"] if manifest else None


def rule_table(settings: Settings, client: Elasticsearch, *, now: datetime, days: int = 7, sort: str = "hits",
               descending: bool = True) -> RuleTable:
    active, rows, release = rule_rows(settings, client, now=now, days=days)
    rows.sort(key=_sort_key(sort if sort in SORTS else "hits"), reverse=descending)
    return RuleTable(active, rows, days, sort, descending, release)


def rule_detail(settings: Settings, client: Elasticsearch, rule_id: str, *, now: datetime,
                days: int = 7) -> tuple[RuleRow, str, dict[str, str]] | None:
    """The rule's row, its YAML (as the active set has it) and the text of each filter on it."""
    _active, rows, _release = rule_rows(settings, client, now=now, days=days, only=rule_id)
    found = rows[0] if rows else None
    if found is None:
        return None
    try:
        text = found.rule.path.read_text(encoding="utf-8")[:MAX_RULE_TEXT]
    except (OSError, UnicodeDecodeError) as error:
        text = f"(the rule file cannot be read: {error})"
    filters = RuleStore(settings.rule_store_dir).tuning()["filters"]
    return found, text, {name: filters[name]["text"] for name in found.tuning["filters"] if name in filters}


def rule_history(client: Elasticsearch, audit_index: str, rule_id: str, *, size: int = 50) -> list[dict[str, Any]]:
    """The rule's audit records (``rule:<id>``), newest first."""
    try:
        client.indices.refresh(index=audit_index)
        answer = client.search(index=audit_index, size=size, sort=[{"seq": "desc"}],
                               query={"term": {"target": f"rule:{rule_id}"}})
    except NotFoundError:
        return []
    return [hit["_source"] for hit in answer["hits"]["hits"]]
