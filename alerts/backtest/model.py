"""The typed result of a backtest, and its JSON form (canonical key order, no clock in it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ZONE_NAME = "Asia/Ho_Chi_Minh"  # days are the province's days, not UTC's
RuleSource = tuple[str | None, str | None, str | None]  # (product, category, service)
Role = Literal["candidate", "baseline"]


@dataclass(frozen=True)
class RuleSpec:
    """A rule under test: what the result names it by, and the fields its detection uses.

    ``fields`` are Sigma field names as the rule writes them (for a correlation: its group-by
    fields and the field it counts). A baseline rule is loaded under an id of its own
    (``id``); ``pair`` is the id of the candidate it is compared with, and the id it had.
    """

    id: str
    title: str
    level: str = "medium"
    kind: str = "sigma"  # sigma | correlation
    path: str = ""
    fields: tuple[str, ...] = ()
    source: RuleSource = (None, None, None)
    role: Role = "candidate"
    pair: str = ""

    def as_dict(self) -> dict[str, Any]:
        shown = {"id": self.pair if self.role == "baseline" else self.id, "title": self.title,
                 "level": self.level, "kind": self.kind, "path": self.path, "role": self.role,
                 "fields": list(self.fields)}
        return shown


@dataclass(frozen=True)
class Top:
    """The most frequent values of one dimension: ``(value, hits)`` most first, how many
    distinct values there were, and the hits of those not shown."""

    top: tuple[tuple[str, int], ...] = ()
    distinct: int = 0
    other_hits: int = 0
    capped: bool = False  # more distinct values than were counted (see aggregate.MAX_DISTINCT)

    def as_dict(self) -> dict[str, Any]:
        return {"top": [{"value": value, "hits": hits} for value, hits in self.top], "distinct": self.distinct,
                "other_hits": self.other_hits, "capped": self.capped}


@dataclass
class RuleReport:
    """One rule's hits. A hit is one detection: one event for a Sigma rule, one correlation
    alert (its events) for a correlation rule; suppressed ones are counted apart."""

    spec: RuleSpec
    hits: int = 0
    suppressed: int = 0
    alerts: int = 0  # after grouping, as replay and the job would index them
    days: tuple[tuple[str, int], ...] = ()
    nodes: Top = field(default_factory=Top)
    agencies: Top = field(default_factory=Top)
    hosts: Top = field(default_factory=Top)
    fields: dict[str, Top] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    keys: frozenset[str] = frozenset()  # the hits' event ids (a correlation: its ids joined by ",")

    def as_dict(self, *, ids: bool = False) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "rule": self.spec.as_dict(), "hits": self.hits, "suppressed": self.suppressed, "alerts": self.alerts,
            "days": [{"day": day, "hits": hits} for day, hits in self.days],
            "nodes": self.nodes.as_dict(), "agencies": self.agencies.as_dict(), "hosts": self.hosts.as_dict(),
            "fields": {name: top.as_dict() for name, top in self.fields.items()},
            "samples": self.samples,
        }
        if ids:  # every event id of the hits (a correlation's hit has several)
            shown["event_ids"] = sorted({ident for key in self.keys for ident in key.split(",")})
        return shown


@dataclass
class BaselineDiff:
    """A candidate against an older version of it: hits only the new one has (added), only the
    old one has (removed), matched on event id, with samples of each."""

    rule_id: str
    title: str
    new_path: str
    old_path: str
    new_hits: int = 0
    old_hits: int = 0
    unchanged: int = 0
    added: int = 0
    removed: int = 0
    added_samples: list[dict[str, Any]] = field(default_factory=list)
    removed_samples: list[dict[str, Any]] = field(default_factory=list)
    added_keys: frozenset[str] = frozenset()
    removed_keys: frozenset[str] = frozenset()

    def as_dict(self, *, ids: bool = False) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "rule_id": self.rule_id, "title": self.title, "new_path": self.new_path, "old_path": self.old_path,
            "new_hits": self.new_hits, "old_hits": self.old_hits, "unchanged": self.unchanged,
            "added": self.added, "removed": self.removed,
            "added_samples": self.added_samples, "removed_samples": self.removed_samples,
        }
        if ids:
            shown["added_event_ids"] = sorted(self.added_keys)
            shown["removed_event_ids"] = sorted(self.removed_keys)
        return shown


@dataclass
class BacktestResult:
    """Everything a backtest found; ``as_dict`` is the JSON output (and the golden files')."""

    source: str
    start: str | None = None
    end: str | None = None
    timezone: str = ZONE_NAME
    events_read: int = 0
    candidates: int | None = None  # events the store's pre-selection chose (None: files)
    dead_letters: int = 0
    rules: list[RuleReport] = field(default_factory=list)
    baselines: list[BaselineDiff] = field(default_factory=list)

    def as_dict(self, *, ids: bool = False) -> dict[str, Any]:
        return {
            "source": self.source, "from": self.start, "to": self.end, "timezone": self.timezone,
            "events_read": self.events_read, "candidates": self.candidates, "dead_letters": self.dead_letters,
            "rules": [rule.as_dict(ids=ids) for rule in self.rules],
            "baselines": [diff.as_dict(ids=ids) for diff in self.baselines],
        }
