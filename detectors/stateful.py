"""The stateful stage's pure side: routing events to keyed inputs, and the keyed logic.

Interface with the Flink job (``detectors/flink/job.py``) — kept small on purpose:

1. Build once, in the batch operator's ``open()`` (the plan pickles, it holds no pySigma)::

       plan = StatefulPlan.build(StatefulSettings.load("config/detectors.yaml"),
                                 engine.correlations, rules)   # rules: RuleInfos or SigmaRules

2. Per event, after Sigma matching: ``plan.route(event, matched) -> [(key, item), ...]``
   (``matched``: every rule the event matched, including ``generate: false`` ones). It
   returns only what state needs: matches of rules that correlations reference (with their
   group-by values in the key) and a few fields per anomaly detector. Items are small dicts
   whose ``"t"`` is the event time in epoch milliseconds. An event without a usable
   ``@timestamp`` raises :class:`~detectors.errors.DetectorError` (dead-letter it: state
   runs on event time and cannot place it).

3. Per batch: group the pairs by key and emit one record per key —
   ``keyed_records(grouped) -> [str]``, each the JSON ``{"key": k, "items": [...], "ts": min t}``
   (``keyed_batch`` gives each with its key and ts beside it, as the job's side output carries them)
   — so one keyed-state access serves every event of the batch with that key. ``ts`` is the
   record's earliest item time and records come sorted by it, except that the last record
   carries the batch's latest time, so the watermark reaches it (see ``keyed_records``).

4. ``detectors.flink.stateful.add_stateful_stage(records, plan) -> DataStream[str]`` turns
   those records into JSON Detection records (``Detection.as_record()``), to be unioned with
   the Sigma detections before the alert sink.

Keys are ``"<level>|<c|a>|<correlation id or detector>|<group>"``: one key per group value of
each correlation or detector, so keyed load spreads over parallel tasks; ``level`` is the chain
depth of a correlation (a correlation fed by another runs one keyed operator further on).

:class:`StatefulEngine` runs the same plan without Flink (``socflow replay``, tests, bench):
``process(event, matched)`` per event, ``flush()`` at the end of the input. For correlation
rules alone, ``detectors.correlation.CorrelationEngine.from_rules(correlations, rules)``
offers the same ``process`` / ``flush``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from detectors.anomaly.config import StatefulSettings
from detectors.anomaly.logic import AnomalyLogic, compact_counts, is_counting_key
from detectors.correlation.engine import CorrelationLogic, DriverStats, EventTimeDriver, KeyedItem
from detectors.correlation.spec import specs_from_sigma
from detectors.errors import DetectorError
from detectors.model import Detection, RuleInfo, event_id
from ingest.schema import Event


@dataclass
class StatefulPlan:
    """Correlations and anomaly detectors behind one routing function and one keyed logic."""

    settings: StatefulSettings
    correlations: CorrelationLogic
    anomalies: AnomalyLogic

    @classmethod
    def build(
        cls, settings: StatefulSettings | None = None, correlations: Iterable[Any] = (), rules: Iterable[Any] = (),
        *, ruleset_version: str = "",
    ) -> StatefulPlan:
        """From settings and pySigma correlation rules (plus the base rules they reference).

        ``ruleset_version``: the published rule set these come from, stamped on the rules of
        their detections (hot reload: every alert says which rule set judged it)."""
        settings = settings or StatefulSettings()
        specs = specs_from_sigma(correlations, rules)
        if ruleset_version:
            specs = [replace(spec, rule=replace(spec.rule, ruleset_version=ruleset_version)) for spec in specs]
        anomalies = AnomalyLogic(settings.detectors)
        if ruleset_version:
            for detector in anomalies.detectors.values():
                detector.rule = replace(detector.rule, ruleset_version=ruleset_version)
        return cls(
            settings=settings,
            correlations=CorrelationLogic(specs, max_items=settings.correlation.max_items_per_group),
            anomalies=anomalies,
        )

    def identity(self, key: str) -> str | None:
        """What a key's state means under this plan, as a short digest; None when the plan has no
        correlation or detector for the key (removed by a new rule set: its state is dropped).

        A hot reload keeps a key's state when its identity did not change: a correlation's is its
        definition (type, references, window, grouping, condition, aliases, level, title), so a
        changed rule under the same id starts empty; a detector's is its name and the settings that
        shape its state (a volume detector's bucket length), so a changed threshold keeps its
        baselines and windows."""
        _level, kind, ident, _group = key.split("|", 3)
        if kind == "c":
            spec = self.correlations.by_id.get(ident)
            if spec is None:
                return None
            shape: Any = [spec.type, spec.refs, spec.timespan_ms, spec.group_by, repr(spec.condition),
                          sorted((alias, sorted(fields.items())) for alias, fields in spec.aliases.items()),
                          spec.generate, spec.level, spec.rule.level, spec.rule.title]
        else:
            detector = self.anomalies.detectors.get(ident)
            if detector is None:
                return None
            shape = [ident, type(detector).__name__, getattr(detector.settings, "bucket_s", None)]
        text = json.dumps(shape, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    @property
    def levels(self) -> int:
        """Number of keyed operators in a row (1 + the deepest correlation chain)."""
        return self.correlations.levels

    def route(self, event: Event, matched: Sequence[RuleInfo], moment: int | None = None) -> list[KeyedItem]:
        """Keyed items of one event (see the module docstring). Raises DetectorError without a time.

        ``moment``: the event's time when the caller has it (``AnomalyLogic.event_time``)."""
        pairs = self.correlations.route(event, matched)
        if self.anomalies.detectors:
            if moment is None:
                moment = self.anomalies.event_time(event)
            if moment is None:
                raise DetectorError("event without a usable @timestamp", source=event_id(event))
            pairs.extend(self.anomalies.route(event, moment))
        return pairs

    def _logic(self, key: str) -> Any:
        kind = key.split("|", 2)[1]
        return self.correlations if kind == "c" else self.anomalies

    # KeyedLogic, dispatched on the key's kind -------------------------------------------

    def new_state(self, key: str) -> Any:
        return self._logic(key).new_state(key)

    def step(self, key: str, state: Any, item: Mapping[str, Any]) -> tuple[Any, list[Detection], list[KeyedItem]]:
        return self._logic(key).step(key, state, item)

    def on_timer(self, key: str, state: Any, now: int) -> tuple[Any, list[Detection], list[KeyedItem]]:
        return self._logic(key).on_timer(key, state, now)

    def next_timer(self, key: str, state: Any) -> int | None:
        return self._logic(key).next_timer(key, state)

    def is_empty(self, key: str, state: Any) -> bool:
        return bool(self._logic(key).is_empty(key, state))

    def encode(self, key: str, state: Any) -> dict[str, Any]:
        return self._logic(key).encode(key, state)

    def decode(self, key: str, snapshot: Mapping[str, Any]) -> Any:
        return self._logic(key).decode(key, snapshot)

    def dumps(self, key: str, state: Any) -> str:
        """The state as stored in Flink's ValueState: compact JSON of the versioned snapshot."""
        return json.dumps(self.encode(key, state), separators=(",", ":"))

    def loads(self, key: str, text: str) -> Any:
        return self.decode(key, json.loads(text))


def keyed_records(grouped: Mapping[str, Sequence[Mapping[str, Any]]], version: str = "") -> list[str]:
    """One JSON record per key of a batch: ``{"key", "items", "ts"}``, in ``ts`` order (see
    :func:`keyed_batch`)."""
    return [record for _key, record, _ts in keyed_batch(grouped, version)]


def keyed_batch(grouped: Mapping[str, Sequence[Mapping[str, Any]]], version: str = "") -> list[tuple[str, str, int]]:
    """``(key, record, ts)`` per key of a batch: the JSON record ``{"key", "items", "ts"}`` with
    its key and ts beside it, so the Flink job routes and times it without decoding it.
    ``version``: the published rule set that routed the batch, as ``"rs"`` in each record (the
    keyed operator applies that set's correlations and thresholds to it: hot reload).

    ``ts`` is the *earliest* item time of the record, and records are returned sorted by it:
    a batch spans some event time, and a record stamped with its latest time would move the
    watermark past items of records emitted after it in the same batch, making them late.
    The *last* record is stamped with the batch's latest item time instead: nothing of the
    batch follows it, and without it the watermark would stop at the latest record's earliest
    time, short of the batch's end, and the batch's last detections would wait for the next
    batch (the core without Flink moves event time to the latest event, and so does this).
    Items of counting detectors (volume) are compacted to one per second with a count.
    """
    records = []
    for key, given in grouped.items():
        if not given:
            continue
        items = compact_counts(given) if is_counting_key(key) else list(given)
        records.append((min(int(item["t"]) for item in items), key, items))
    records.sort(key=lambda record: (record[0], record[1]))
    if records:
        _earliest, key, items = records[-1]
        records[-1] = (max(int(item["t"]) for _ts, _key, kept in records for item in kept), key, items)
    extra = {"rs": version} if version else {}
    return [
        (key, json.dumps({"key": key, "items": list(items), "ts": ts, **extra}, separators=(",", ":"), default=str),
         ts)
        for ts, key, items in records
    ]


def group_pairs(pairs: Iterable[KeyedItem]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for key, item in pairs:
        grouped.setdefault(key, []).append(item)
    return grouped


def parse_record(text: str) -> tuple[str, list[dict[str, Any]], int]:
    record = json.loads(text)
    return str(record["key"]), list(record["items"]), int(record["ts"])


class StatefulEngine:
    """The whole plan without Flink: ``process(event, matched)`` then ``flush()`` at the end."""

    def __init__(self, plan: StatefulPlan) -> None:
        self.plan = plan
        timing = plan.settings.event_time
        self.driver = EventTimeDriver(
            plan,
            levels=plan.levels,
            out_of_orderness_ms=timing.out_of_orderness_ms,
            allowed_lateness_ms=timing.allowed_lateness_ms,
            timer_resolution_ms=timing.timer_resolution_ms,
            expiry_resolution_ms=timing.expiry_resolution_ms,
        )

    @property
    def stats(self) -> DriverStats:
        return self.driver.stats

    def process(self, event: Event, matched: Sequence[RuleInfo] = ()) -> list[Detection]:
        out: list[Detection] = []
        # The event's time, for the routing and the watermark (the plan's memo of parsed texts).
        moment = self.plan.anomalies.event_time(event)
        driver = self.driver
        for key, item in self.plan.route(event, matched, moment):
            out.extend(driver.submit(key, item))
        # The watermark moves only when the greatest event time does: otherwise advancing would
        # find every level's watermark where it is and fire nothing.
        if moment is not None and moment > driver.max_time:
            driver.observe(moment)
            out.extend(driver.advance())
        return out

    def process_record(self, text: str) -> list[Detection]:
        """Feed one keyed record (what Flink's stage receives); watermark from its ts."""
        key, items, ts = parse_record(text)
        out: list[Detection] = []
        for item in items:
            out.extend(self.driver.submit(key, item))
        self.driver.observe(ts)
        out.extend(self.driver.advance())
        return out

    def flush(self, watermark: int | None = None) -> list[Detection]:
        return self.driver.flush(watermark)


def build_plan(engine: Any, config_dir: str | Path, ruleset_version: str = "") -> StatefulPlan:
    """Correlations of a loaded rule set plus the anomaly detectors of ``config_dir``/detectors.yaml:
    the plan the Flink job's keyed stage runs, and replay's and hunt's inline one (here, not in
    the Flink shell, so that they need not import pyflink: a tenth of replay's start-up)."""
    settings = StatefulSettings.load(Path(config_dir) / "detectors.yaml")
    return StatefulPlan.build(settings, engine.correlations, engine.rules, ruleset_version=ruleset_version)
