"""Count a backtest's hits: pure, detections in, a :class:`BacktestResult` out.

The caller (``alerts.backtest.run``) hands over every detection the engine makes, suppressed or
not, in the order the engine makes them; the values of the fields a rule uses come from a
function it passes (they depend on the engine's field mappings). Memory: per rule, counters
(bounded by ``MAX_DISTINCT`` values per dimension), the samples, and the hits' event ids (needed
to compare with a baseline and to print them: a few tens of bytes per hit).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from alerts.backtest.model import ZONE_NAME, BacktestResult, BaselineDiff, RuleReport, RuleSpec, Top
from detectors.model import Detection
from ingest.schema import get_field

MAX_DISTINCT = 100_000  # values counted per field and dimension; past it new values are not counted
MAX_VALUE = 200  # characters of a value kept as a counter key
MAX_SAMPLE_IDS = 50  # event ids listed in a correlation hit's sample
PENDING = 10_000  # unmatched baseline hits kept as sample candidates, per rule

ValuesOf = Callable[[RuleSpec, Detection], Mapping[str, Sequence[Any]]]


def hit_key(detection: Detection) -> str:
    """What matches a hit of one rule version with a hit of the other: its event id(s)."""
    return ",".join(sorted(detection.event_ids)) if len(detection.event_ids) != 1 else detection.event_ids[0]


def local_day(timestamp: str, zone: ZoneInfo) -> str:
    """The date (``YYYY-MM-DD``) of an event time in ``zone``; ``unknown`` if it is no time."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        return "unknown"
    if moment.tzinfo is None:
        return "unknown"
    return moment.astimezone(zone).date().isoformat()


def scalars(value: Any) -> Iterable[str]:
    """The countable forms of a field value: a list gives each of its scalars, a mapping none."""
    if value is None or isinstance(value, Mapping):
        return ()
    if isinstance(value, list | tuple):
        return [text for item in value for text in scalars(item)]
    text = value if isinstance(value, str) else str(value)
    return (text[:MAX_VALUE],)


@dataclass
class _Tally:
    """A bounded counter: values past ``MAX_DISTINCT`` are still counted as hits of others."""

    counts: Counter[str] = field(default_factory=Counter)
    overflow: int = 0

    def add(self, value: str) -> None:
        if value in self.counts or len(self.counts) < MAX_DISTINCT:
            self.counts[value] += 1
        else:
            self.overflow += 1

    def top(self, n: int) -> Top:
        ordered = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        shown = tuple(ordered[:n])
        rest = sum(count for _value, count in ordered[n:]) + self.overflow
        return Top(top=shown, distinct=len(ordered), other_hits=rest, capped=self.overflow > 0)


@dataclass
class _RuleState:
    spec: RuleSpec
    hits: int = 0
    suppressed: int = 0
    days: Counter[str] = field(default_factory=Counter)
    nodes: _Tally = field(default_factory=_Tally)
    agencies: _Tally = field(default_factory=_Tally)
    hosts: _Tally = field(default_factory=_Tally)
    fields: dict[str, _Tally] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    # Paired rules: hits the other version has not (yet) made, in the order seen, as samples.
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)


class Aggregator:
    """Feed it detections (:meth:`add`); :meth:`result` gives the report.

    ``specs``: the rules to report (detections of other rules, e.g. rules only loaded so that a
    correlation can reference them, are ignored). A baseline spec (``role == "baseline"``,
    ``pair`` = its candidate's id) is compared with that candidate hit for hit.
    """

    def __init__(self, specs: Sequence[RuleSpec], values_of: ValuesOf, *, samples: int = 5, top: int = 10,
                 zone: ZoneInfo | None = None) -> None:
        self.zone = zone or ZoneInfo(ZONE_NAME)
        self.samples, self.top = samples, top
        self.values_of = values_of
        self.states = {spec.id: _RuleState(spec, fields={name: _Tally() for name in spec.fields}) for spec in specs}
        # candidate id -> baseline id, and back
        self.partner: dict[str, str] = {}
        for spec in specs:
            if spec.role == "baseline":
                self.partner[spec.id], self.partner[spec.pair] = spec.pair, spec.id

    def add(self, detection: Detection, *, suppressed: bool = False) -> None:
        state = self.states.get(detection.rule.id)
        if state is None:
            return
        if suppressed:
            state.suppressed += 1
            return
        key = hit_key(detection)
        if key in state.keys:  # the same event twice in the input (a file read twice): one hit
            return
        state.keys.add(key)
        state.hits += 1
        state.days[local_day(detection.timestamp, self.zone)] += 1
        event = detection.events[-1] if detection.events else {}
        state.nodes.add(_text(get_field(event, "socflow.node.id"), "unknown"))
        state.agencies.add(_text(get_field(event, "socflow.node.agency"), "unknown"))
        state.hosts.add(_host(detection, event))
        shown: dict[str, list[str]] = {}
        for name, values in self.values_of(state.spec, detection).items():
            tally = state.fields.get(name)
            if tally is not None:
                shown[name] = [text for value in values for text in scalars(value)]
                for text in shown[name]:
                    tally.add(text)
        sample: dict[str, Any] | None = None
        if len(state.samples) < self.samples:
            sample = _sample(detection, key, shown)
            state.samples.append(sample)
        partner_id = self.partner.get(detection.rule.id)
        if partner_id is not None:
            partner = self.states[partner_id]
            if key in partner.keys:
                partner.pending.pop(key, None)
            elif len(state.pending) < PENDING:
                state.pending[key] = sample or _sample(detection, key, shown)

    def result(self, *, source: str, start: str | None = None, end: str | None = None, events_read: int = 0,
               candidates: int | None = None, dead_letters: int = 0,
               alerts: Mapping[str, int] | None = None) -> BacktestResult:
        reports = [self._report(state, (alerts or {}).get(rule_id, 0)) for rule_id, state in self.states.items()]
        diffs = [self._diff(self.states[spec.pair], self.states[spec.id])
                 for spec in (state.spec for state in self.states.values()) if spec.role == "baseline"]
        return BacktestResult(source=source, start=start, end=end, timezone=str(self.zone.key),
                              events_read=events_read, candidates=candidates, dead_letters=dead_letters,
                              rules=reports, baselines=diffs)

    def _report(self, state: _RuleState, alerts: int) -> RuleReport:
        return RuleReport(spec=state.spec, hits=state.hits, suppressed=state.suppressed, alerts=alerts,
                          days=tuple(sorted(state.days.items())), nodes=state.nodes.top(self.top),
                          agencies=state.agencies.top(self.top), hosts=state.hosts.top(self.top),
                          fields={name: tally.top(self.top) for name, tally in state.fields.items()},
                          samples=list(state.samples), keys=frozenset(state.keys))

    def _diff(self, new: _RuleState, old: _RuleState) -> BaselineDiff:
        added, removed = new.keys - old.keys, old.keys - new.keys
        return BaselineDiff(
            rule_id=new.spec.id, title=new.spec.title, new_path=new.spec.path, old_path=old.spec.path,
            new_hits=new.hits, old_hits=old.hits, unchanged=len(new.keys & old.keys),
            added=len(added), removed=len(removed),
            added_samples=[s for k, s in new.pending.items() if k in added][:self.samples],
            removed_samples=[s for k, s in old.pending.items() if k in removed][:self.samples],
            added_keys=frozenset(added), removed_keys=frozenset(removed))


def _text(value: Any, default: str) -> str:
    found = list(scalars(value))
    return found[0] if found else default


def _host(detection: Detection, event: Mapping[str, Any]) -> str:
    """The event's host, or the host a correlation grouped by (its events are stubs)."""
    return _text(get_field(event, "host.name"), "") or _text(detection.group.get("host.name"), "-")


def _sample(detection: Detection, key: str, fields: Mapping[str, list[str]]) -> dict[str, Any]:
    """A hit as shown: its time, event id(s), the values of the rule's fields and the (last)
    event it fired on, as stored."""
    event = detection.events[-1] if detection.events else {}
    ids = list(detection.event_ids)
    sample: dict[str, Any] = {"time": detection.timestamp, "event_id": key if len(ids) == 1 else None,
                              "node": _text(get_field(event, "socflow.node.id"), "unknown"),
                              "host": _host(detection, event), "fields": dict(fields), "event": event}
    if len(ids) != 1:
        sample["event_ids"] = ids[:MAX_SAMPLE_IDS]
        sample["events"] = len(ids)
    if detection.group:
        sample["group"] = dict(detection.group)
    return sample
