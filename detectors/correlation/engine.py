"""Correlation routing and keyed logic, plus a pure event-time driver (replay without Flink).

Three layers:

- :class:`CorrelationLogic` — the keyed logic of all correlation rules: which keys an event
  feeds (``route``), and per key ``step`` / ``on_timer`` over a :class:`CorrelationState`.
  Keys are ``"<level>|c|<correlation id>|<group values as JSON>"`` so that each group of each
  rule is its own Flink key (load spreads over parallel tasks by group value).
- :class:`EventTimeDriver` — what Flink does for a keyed operator, in plain Python: buffer
  items until the watermark (max event time − out-of-orderness − 1 ms, Flink's formula) passes
  them, then process them per key in (time, event id) order; fire event-time timers; count
  late items and handle them deliberately (see below). ``detectors.flink.stateful`` does the
  same with Flink state and timers, so both give the same alerts.
- :class:`CorrelationEngine` — the driver over :class:`CorrelationLogic`: ``process(event,
  matched)`` and ``flush()`` for ``socflow replay`` and the rule tests.

Late items: an item is late when its key has already processed event time at or past the
item's time (the key's *horizon*: the last timer that fired for it), so it can no longer be
placed in order. Late items are counted; within ``allowed_lateness_ms`` of the horizon they
are applied at once, in arrival order, to whatever state the key still holds (an alert may
still come, with a deterministic id); older ones are dropped and counted as dropped. Either
way nothing disappears unnoticed. The horizon is part of the key's state, so — unlike
Flink's operator watermark, which restarts from nothing after a restore — lateness is judged
the same before and after a failure. A key whose state has emptied keeps its horizon for the
allowed lateness (an event-time timer), then forgets it; an item behind the watermark whose
key remembers nothing is not late: it is buffered and processed at the next watermark, in
order, like any other.

Chained correlations (a correlation referencing another) run one level per keyed stage: a
detection of a level-N correlation is forwarded as an item to the keys of the level-N+1
correlations referencing it, with the event ids that built it. Lateness is judged once, on
the events: a forwarded detection that comes late to its level is applied at once (counted
as late), never dropped. In Flink the next level's watermark can overtake a forward still on
its way (when the stage resumes after its inputs were idle, the direct path may wake up
first), so dropping it would make the alerts depend on timing; temporal_ordered therefore
checks the order of its rows by event time, not by arrival.
"""

from __future__ import annotations

import heapq
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from detectors.correlation import core
from detectors.correlation.core import CorrelationState
from detectors.correlation.spec import CorrelationSpec, specs_from_sigma
from detectors.errors import DetectorError
from detectors.model import Detection, RuleInfo, event_id
from ingest.schema import Event, canonical_json, get_field, parse_timestamp

KeyedItem = tuple[str, dict[str, Any]]
NEVER = -(2**63)
FOREVER = 2**63 - 1


def event_time_ms(event: Mapping[str, Any]) -> int | None:
    """The event's ``@timestamp`` in epoch milliseconds, or None when absent/unparsable."""
    stamp = get_field(event, "@timestamp")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        return int(stamp)
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return int(parse_timestamp(stamp).timestamp() * 1000)
    except ValueError:
        return None


def key_level(key: str) -> int:
    return int(key[: key.index("|")])


def timer_at(moment: int, resolution_ms: int) -> int:
    """The event-time timer serving ``moment``: rounded up to the timer resolution.

    Coalescing timers (one per second of event time per key for releasing buffered items,
    one per minute for window closes and expiry) keeps timer work small; items released
    together are still applied in (time, event id) order, and a step closes an expired
    window or prunes old items itself before applying a later item, so the resolutions only
    move work in time, never change alerts.
    """
    if resolution_ms <= 1:
        return moment
    return -(-moment // resolution_ms) * resolution_ms


class KeyedLogic(Protocol):
    """What a keyed stage runs per key (correlations, anomaly detectors or both)."""

    def new_state(self, key: str) -> Any: ...

    def step(self, key: str, state: Any, item: Mapping[str, Any]) -> tuple[Any, list[Detection], list[KeyedItem]]:
        """Apply one item; return the state, detections to emit and items forwarded to other keys."""
        ...

    def on_timer(self, key: str, state: Any, now: int) -> tuple[Any, list[Detection], list[KeyedItem]]: ...

    def next_timer(self, key: str, state: Any) -> int | None: ...

    def is_empty(self, key: str, state: Any) -> bool: ...

    def encode(self, key: str, state: Any) -> dict[str, Any]: ...

    def decode(self, key: str, snapshot: Mapping[str, Any]) -> Any: ...


@dataclass
class CorrelationLogic:
    """Routing and per-key evaluation of a set of correlation rules."""

    specs: Sequence[CorrelationSpec]
    max_items: int = 10_000
    # Also emit detections of correlations that only feed others (generate: false semantics
    # silence them in production); rule tests use it to check such a rule on its own.
    include_silenced: bool = False
    by_id: dict[str, CorrelationSpec] = field(init=False)
    # rule id or name -> correlations referencing it (base rules and correlations alike)
    consumers: dict[str, list[CorrelationSpec]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {spec.rule.id: spec for spec in self.specs}
        self.consumers = defaultdict(list)
        for spec in self.specs:
            for ref in dict.fromkeys(spec.refs):
                self.consumers[ref].append(spec)
        self.consumers = dict(self.consumers)

    @property
    def levels(self) -> int:
        return 1 + max((spec.level for spec in self.specs), default=0)

    def _key(self, spec: CorrelationSpec, values: Sequence[Any]) -> str:
        return f"{spec.level}|c|{spec.rule.id}|{canonical_json(list(values))}"

    def route(self, event: Mapping[str, Any], matched: Sequence[RuleInfo]) -> list[KeyedItem]:
        """Keyed items for the correlations that reference any of the ``matched`` rules."""
        if not self.consumers:
            return []
        pairs: list[KeyedItem] = []
        moment: int | None = None
        node: Any = None
        for rule in matched:
            ref = rule.id if rule.id in self.consumers else rule.name
            specs = self.consumers.get(ref)
            if not specs:
                continue
            if moment is None:
                moment = event_time_ms(event)
                if moment is None:
                    raise DetectorError("event without a usable @timestamp", source=event_id(event))
                node = get_field(event, "socflow.node")
            for spec in specs:
                values = [get_field(event, spec.field_for(ref, name)) for name in spec.group_by]
                item: dict[str, Any] = {
                    "t": moment,
                    "@": str(get_field(event, "@timestamp")),
                    "id": event_id(event),
                    "r": ref,
                }
                if spec.value_field:
                    item["v"] = get_field(event, spec.field_for(ref, spec.value_field))
                if node is not None:
                    item["n"] = node
                pairs.append((self._key(spec, values), item))
        return pairs

    def _parse(self, key: str) -> tuple[CorrelationSpec, dict[str, Any]]:
        _level, _kind, ident, values = key.split("|", 3)
        spec = self.by_id[ident]
        return spec, dict(zip(spec.group_by, json.loads(values), strict=False))

    def _outputs(self, spec: CorrelationSpec, detections: list[Detection]) -> tuple[list[Detection], list[KeyedItem]]:
        emitted = [detection for detection in detections if spec.generate or self.include_silenced]
        forwards: list[KeyedItem] = []
        for detection in detections:
            for parent in self.consumers.get(spec.rule.id, ()):
                values = [detection.group.get(parent.field_for(spec.rule.id, name)) for name in parent.group_by]
                last = max(detection.events, key=lambda ev: str(ev.get("@timestamp", "")))
                moment = event_time_ms(last)
                item = {
                    "t": moment if moment is not None else 0,
                    "@": detection.timestamp,
                    "id": detection.id,
                    "r": spec.rule.id,
                    "ids": list(detection.event_ids),
                }
                if (node := get_field(last, "socflow.node")) is not None:
                    item["n"] = node
                forwards.append((self._key(parent, values), item))
        return emitted, forwards

    def new_state(self, key: str) -> CorrelationState:
        return CorrelationState()

    def step(
        self, key: str, state: CorrelationState, item: Mapping[str, Any]
    ) -> tuple[Any, list[Detection], list[KeyedItem]]:
        spec, group = self._parse(key)
        state, detections = core.step(spec, state, item, group, self.max_items)
        return (state, *self._outputs(spec, detections))

    def on_timer(self, key: str, state: CorrelationState, now: int) -> tuple[Any, list[Detection], list[KeyedItem]]:
        spec, group = self._parse(key)
        state, detections = core.on_timer(spec, state, now, group)
        return (state, *self._outputs(spec, detections))

    def next_timer(self, key: str, state: CorrelationState) -> int | None:
        return core.next_timer(self._parse(key)[0], state)

    def is_empty(self, key: str, state: CorrelationState) -> bool:
        return core.is_empty(state)

    def encode(self, key: str, state: CorrelationState) -> dict[str, Any]:
        return state.to_snapshot()

    def decode(self, key: str, snapshot: Mapping[str, Any]) -> CorrelationState:
        return CorrelationState.from_snapshot(snapshot)


def is_forwarded(item: Mapping[str, Any]) -> bool:
    """True for a chained correlation's detection forwarded to the next level (it names its events)."""
    return "ids" in item


def item_order(item: Mapping[str, Any]) -> tuple[int, str, str]:
    """Processing order of buffered items: event time, then event id (arrival order never counts)."""
    return (int(item["t"]), str(item.get("id", "")), str(item.get("r", "")))


@dataclass
class DriverStats:
    items: int = 0
    late: int = 0
    late_dropped: int = 0
    timers: int = 0


class EventTimeDriver:
    """Flink's keyed event-time processing, in plain Python (see the module docstring)."""

    def __init__(
        self,
        logic: KeyedLogic,
        *,
        levels: int = 1,
        out_of_orderness_ms: int = 5_000,
        allowed_lateness_ms: int = 60_000,
        timer_resolution_ms: int = 1_000,
        expiry_resolution_ms: int = 60_000,
    ) -> None:
        self.logic = logic
        self.levels = levels
        self.resolution = timer_resolution_ms
        self.expiry_resolution = max(expiry_resolution_ms, timer_resolution_ms)
        self.out_of_orderness_ms = out_of_orderness_ms
        self.allowed_lateness_ms = allowed_lateness_ms
        self.states: dict[str, Any] = {}
        self.pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.timers: dict[int, list[tuple[int, str]]] = defaultdict(list)  # level -> heap
        # (key, time) of every pending timer, deduplicated like Flink's timer service.
        self.registered: set[tuple[str, int]] = set()
        # Per key: the event time up to which its items were processed in order (last timer).
        self.horizons: dict[str, int] = {}
        self.watermarks: dict[int, int] = defaultdict(lambda: NEVER)
        self.max_time = NEVER
        self.stats = DriverStats()

    @property
    def watermark(self) -> int:
        return self.watermarks[0]

    def _register(self, key: str, when: int, resolution: int | None = None) -> None:
        when = timer_at(when, resolution or self.resolution)
        if (key, when) not in self.registered:
            self.registered.add((key, when))
            heapq.heappush(self.timers[key_level(key)], (when, key))

    def submit(self, key: str, item: dict[str, Any]) -> list[Detection]:
        """Hand one keyed item to the stage; returns detections of late items applied at once."""
        self.stats.items += 1
        moment = int(item["t"])
        horizon = self.horizons.get(key, NEVER)
        if moment <= horizon:
            self.stats.late += 1
            if moment <= horizon - self.allowed_lateness_ms and not is_forwarded(item):
                self.stats.late_dropped += 1
                return []
            return self._apply(key, [item], None)
        self.pending[key].append(item)
        self._register(key, moment)
        return []

    def observe(self, moment: int) -> None:
        """Note an event time seen at the source (drives the watermark, like Flink's generator)."""
        self.max_time = max(self.max_time, moment)

    def advance(self, watermark: int | None = None) -> list[Detection]:
        """Move the watermark (default: max event time − out-of-orderness − 1) and fire timers."""
        if watermark is None:
            if self.max_time == NEVER:
                return []
            watermark = self.max_time - self.out_of_orderness_ms - 1
        out: list[Detection] = []
        # Level by level, as watermarks flow through chained operators: a level's forwards
        # reach the next level before its watermark moves.
        for level in range(self.levels):
            out.extend(self._advance_level(level, watermark))
        return out

    def _advance_level(self, level: int, watermark: int) -> list[Detection]:
        if watermark <= self.watermarks[level]:
            return []
        heap = self.timers[level]
        out: list[Detection] = []
        while heap and heap[0][0] <= watermark:
            when, key = heapq.heappop(heap)
            self.registered.discard((key, when))
            self.stats.timers += 1
            out.extend(self._apply(key, None, when))
        self.watermarks[level] = watermark
        return out

    def _take_ready(self, key: str, when: int | None) -> list[dict[str, Any]]:
        """Remove and return the key's buffered items up to ``when``, in processing order."""
        assert when is not None
        waiting = self.pending.get(key, [])
        ready = sorted((item for item in waiting if int(item["t"]) <= when), key=item_order)
        rest = [item for item in waiting if int(item["t"]) > when]
        if rest:
            self.pending[key] = rest
        else:
            self.pending.pop(key, None)
        return ready

    def _apply(self, key: str, late: list[dict[str, Any]] | None, when: int | None) -> list[Detection]:
        state = self.states.get(key)
        batch = late if late is not None else self._take_ready(key, when)
        if state is None and not batch:
            # A key without state keeps its horizon for the allowed lateness, then forgets it.
            horizon = self.horizons.get(key)
            expired = horizon is not None and when is not None and when >= horizon + self.allowed_lateness_ms
            if expired and key not in self.pending:
                del self.horizons[key]
            return []
        if state is None:
            state = self.logic.new_state(key)
        out: list[Detection] = []
        forwards: list[KeyedItem] = []
        for item in batch:
            state, detections, forwarded = self.logic.step(key, state, item)
            out.extend(detections)
            forwards.extend(forwarded)
        if when is not None:
            state, detections, forwarded = self.logic.on_timer(key, state, when)
            out.extend(detections)
            forwards.extend(forwarded)
            self.horizons[key] = max(self.horizons.get(key, NEVER), when)
        if self.logic.is_empty(key, state):
            self.states.pop(key, None)
            horizon = self.horizons.get(key)
            if horizon is not None:
                self._register(key, horizon + self.allowed_lateness_ms, self.expiry_resolution)
        else:
            self.states[key] = state
            upcoming = self.logic.next_timer(key, state)
            if upcoming is not None:
                # Window closes and expiry may come late: results do not change (a step
                # closes or prunes first anyway), only the work is coalesced.
                self._register(key, upcoming, self.expiry_resolution)
        for target, item in forwards:
            out.extend(self.submit(target, item))
        return out

    def flush(self, watermark: int | None = None) -> list[Detection]:
        """Close everything up to ``watermark`` (default: end of input, like Flink's MAX_WATERMARK)."""
        return self.advance(FOREVER if watermark is None else watermark)


class CorrelationEngine:
    """Sigma correlation rules over a stream of matched events, without Flink.

    ``process(event, matched)`` routes the event, advances event time and returns the
    detections that became certain; ``flush()`` at the end of a replay closes all windows.
    Only correlations that generate alerts are returned (chained inner ones feed their parent).
    """

    def __init__(
        self, logic: CorrelationLogic, *, out_of_orderness_ms: int = 5_000, allowed_lateness_ms: int = 60_000
    ) -> None:
        self.logic = logic
        self.driver = EventTimeDriver(
            logic, levels=logic.levels, out_of_orderness_ms=out_of_orderness_ms, allowed_lateness_ms=allowed_lateness_ms
        )

    @classmethod
    def from_rules(
        cls,
        correlations: Iterable[Any],
        rules: Iterable[Any] = (),
        *,
        out_of_orderness_ms: int = 5_000,
        allowed_lateness_ms: int = 60_000,
        max_items: int = 10_000,
        include_silenced: bool = False,
    ) -> CorrelationEngine:
        """Build from pySigma ``SigmaCorrelationRule`` objects and the base rules they reference.

        ``include_silenced`` also returns detections of correlations that only feed other
        correlations (useful to test such a rule on its own).
        """
        specs = specs_from_sigma(correlations, rules)
        return cls(
            CorrelationLogic(specs, max_items=max_items, include_silenced=include_silenced),
            out_of_orderness_ms=out_of_orderness_ms,
            allowed_lateness_ms=allowed_lateness_ms,
        )

    @property
    def specs(self) -> Sequence[CorrelationSpec]:
        return self.logic.specs

    @property
    def stats(self) -> DriverStats:
        return self.driver.stats

    def route(self, event: Event, matched: Sequence[RuleInfo]) -> list[KeyedItem]:
        return self.logic.route(event, matched)

    def process(self, event: Event, matched: Sequence[RuleInfo]) -> list[Detection]:
        """Feed one event with the rules it matched; returns detections now certain."""
        out: list[Detection] = []
        for key, item in self.logic.route(event, matched):
            out.extend(self.driver.submit(key, item))
        moment = event_time_ms(event)
        if moment is not None:
            self.driver.observe(moment)
            out.extend(self.driver.advance())
        return out

    def flush(self, watermark: int | None = None) -> list[Detection]:
        return self.driver.flush(watermark)
