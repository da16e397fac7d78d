"""``socflow replay``: the detection core over files, no Flink — for rule tests and hunts.

Events go through exactly the collector's reading and normalization, then, batch by batch,
through the same batch stage the Flink job runs, so a rule behaves the same here as in
production. They stream from the reader to the matcher (``--spool``: through a throw-away spool,
the bytes Flink would read) and detections are grouped as they come: memory does not grow with
the input (``bench/replay_memory.py``).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from alerts.commands import existing_path
from alerts.model import NodeOfGroup, index_name, to_document
from alerts.nodes import NodeResolver
from alerts.settings import REPO_ROOT, Settings
from detectors.model import Detection, RuleInfo
from detectors.pipeline import BatchProcessor, BatchResult
from ingest.schema import Event, canonical_json
from ingest.spool import DeadLetter, dead_letters, read_batches

if TYPE_CHECKING:
    from detectors.anomaly.config import StatefulSettings
    from detectors.sigma import SigmaEngine
    from detectors.sigma.loader import LoadReport


@dataclass
class ReplayResult:
    """What a replay produced."""

    detections: list[Detection] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0
    rules_loaded: int = 0
    rule_failures: list[Any] = field(default_factory=list)
    suppressed: dict[str, int] = field(default_factory=dict)


def replay(rule_paths: Sequence[Path], event_paths: Sequence[Path], settings: Settings, *,
           flush: bool = True, spool: bool = False) -> ReplayResult:
    """Read ``event_paths`` as the collector does and run the detection core over the events.

    Events go from the reader straight to the matcher in batches (``spool``: through a temporary
    spool first, as before: the bytes Flink would read); detections are grouped into alerts as
    they come. Memory holds the rules, one batch and the alerts, not the input.

    ``flush``: at the end of the input, move event time to its end so every window closes
    (False: stop where the last event's watermark leaves it, as a running job would be).
    """
    with rarer_young_collections():
        # The rule set lives as long as the process: frozen as it loads (as in the Flink operator).
        engine, report = load_rules(rule_paths, freeze=True)
        result = _replay(engine, rule_paths, event_paths, settings, flush=flush, spool=spool)
    result.rules_loaded, result.rule_failures = report.loaded, list(report.failures)
    return result


@contextmanager
def rarer_young_collections() -> Iterator[None]:
    """Collect the young generation every 100,000 allocations, as the Flink operator does, for
    the block: each event allocates dozens of small containers, and at the default threshold
    (700) the collector ran every few events, 13% of a replay's CPU (99,060 events, 2,407 rules;
    the Flink operator and the collectors do the same). The threshold is restored after."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _replay(engine: SigmaEngine, rule_paths: Sequence[Path], event_paths: Sequence[Path], settings: Settings, *,
            flush: bool, spool: bool) -> ReplayResult:
    from detectors.ruleset import sources_version
    from ingest.files import collect_paths

    run = DetectionRun(engine, settings, flush=flush, ruleset_version=sources_version(list(rule_paths)))
    with tempfile.TemporaryDirectory(prefix="socflow-replay-") as temporary:
        spool_dir = Path(temporary) / "spool"
        if spool:
            collect_paths(list(event_paths), spool_dir, settings=settings.collector, writer_id="replay")
            for batch in read_batches(spool_dir):
                run.feed(batch)
            collected: list[dict[str, Any]] = list(dead_letters(spool_dir))
        else:
            sink = DetectingSink(run, settings.collector.batch_size)
            collect_paths(list(event_paths), spool_dir, settings=settings.collector, writer_id="replay", sink=sink)
            sink.commit()
            collected = sink.dead_letters
    result = run.finish()
    result.dead_letters.extend(collected)  # the collector's after the detection stage's, as from a spool
    return result


class DetectingSink:
    """A collector sink that hands each batch of events to a :class:`DetectionRun` (no spool).

    The events are the collector's own objects, which hold only JSON types: what the spool's
    encoding and decoding would give back (tests/pipeline/test_golden.py checks it stays so).
    """

    def __init__(self, run: DetectionRun, batch_size: int) -> None:
        self.run = run
        self.batch_size = batch_size
        self.offsets: dict[str, Any] = {}
        self.events_uncommitted = 0
        self.dead_letters: list[dict[str, Any]] = []
        self._batch: list[Event] = []

    def append(self, event: Event) -> None:
        self._batch.append(event)
        self.events_uncommitted += 1
        if len(self._batch) >= self.batch_size:
            self._hand_over()

    def dead_letter(self, letter: DeadLetter) -> None:
        self.dead_letters.append(letter.as_record())

    def commit(self, offsets: Mapping[str, Any] | None = None) -> int:
        self._hand_over()
        if offsets is not None:
            self.offsets = dict(offsets)
        committed, self.events_uncommitted = self.events_uncommitted, 0
        return committed

    def _hand_over(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            self.run.feed(batch)


def load_rules(rule_paths: Sequence[Path], *, freeze: bool = False) -> tuple[SigmaEngine, LoadReport]:
    """The Sigma engine over rule files and directories; a rule that cannot load is in the report.

    Through the rule-set cache (``detectors/sigma/cache.py``): a second load of the same rules,
    configuration and code is read back instead of parsed and compiled again.
    """
    from detectors.sigma.cache import load_engine

    engine, report, _ = load_engine(list(rule_paths), config_dir=REPO_ROOT / "config", freeze=freeze)
    return engine, report


def detect(engine: SigmaEngine, batches: Iterable[Sequence[Any]], settings: Settings, *, flush: bool = True,
           detectors: bool = True, on_batch: Callable[[BatchResult], None] | None = None,
           ruleset_version: str | None = None) -> ReplayResult:
    """The detection core over batches of normalized events, in the order given: Sigma matching,
    correlations and (``detectors``) the anomaly detectors, then suppressions and grouping.

    ``socflow replay`` feeds it the batches of the collector, ``socflow hunt`` the events of the
    store; ``on_batch`` sees each batch's result (progress). Memory grows with alerts, not events.
    """
    run = DetectionRun(engine, settings, flush=flush, detectors=detectors, on_batch=on_batch,
                       ruleset_version=ruleset_version)
    for batch in batches:
        run.feed(batch)
    return run.finish()


class DetectionRun:
    """:func:`detect` one batch at a time (pushed by a collector sink, or pulled by detect).

    Each detection is suppressed or folded into its alert as soon as it is made, so only the
    alerts are kept. The result is the one of grouping them all at the end in event order:
    an alert's id, count, first/last seen and kept events do not depend on arrival order
    (``detectors/dedup.py``) — except the idempotence list of an alert past ``MAX_IDS``
    detections, which only matters when the input holds the same event more than once.
    """

    def __init__(self, engine: SigmaEngine, settings: Settings, *, flush: bool = True, detectors: bool = True,
                 on_batch: Callable[[BatchResult], None] | None = None, ruleset_version: str | None = None) -> None:
        from detectors.dedup import Deduplicator, DedupPolicy, Suppressor
        from detectors.ruleset import StampedMatcher, rule_versions
        from detectors.stateful import StatefulEngine, StatefulPlan, build_plan  # the Flink job's plan

        self.result = ReplayResult()
        self.flush, self.on_batch = flush, on_batch
        plan = build_plan(engine, str(REPO_ROOT / "config"))
        if not detectors:
            plan = StatefulPlan.build(without_detectors(plan.settings), engine.correlations, engine.rules)
        self.stateful = StatefulEngine(plan)
        self.suppressor = Suppressor.load_all(settings.suppression_paths)  # config, then the console's
        self.grouping = Deduplicator(DedupPolicy(window_s=settings.job.dedup_window_s,
                                                 entity_fields=settings.job.dedup_entity_fields))
        # The versions the Flink job stamps on its detections (rule set, each rule), so that
        # replay's alerts are the job's, field for field.
        matcher: Any = engine if ruleset_version is None else StampedMatcher(engine, ruleset_version,
                                                                            rule_versions(engine))
        self.processor = BatchProcessor(matcher, router=self._feed_stateful)
        self.batches = 0

    def _feed_stateful(self, event: Event, matched: Sequence[RuleInfo]) -> list[tuple[str, dict[str, Any]]]:
        # Without Flink the keyed stage runs inline, in event order, on the same matches.
        for detection in self.stateful.process(event, matched):
            self._group(detection)
        return []

    def _group(self, detection: Detection) -> None:
        if self.suppressor.suppressed_by(detection) is None:
            self.grouping.add(detection)

    def feed(self, batch: Sequence[Any]) -> None:
        batch_result = self.processor.process(batch, source=f"replay-batch-{self.batches}")
        self.batches += 1
        self.result.events += batch_result.events
        for detection in batch_result.detections:
            self._group(detection)
        self.result.dead_letters.extend(batch_result.dead_letters)
        if self.on_batch is not None:
            self.on_batch(batch_result)

    def finish(self) -> ReplayResult:
        # End of input: the watermark moves to the end of time and closes every window.
        if self.flush:
            for detection in self.stateful.flush():
                self._group(detection)
        self.result.detections, self.result.suppressed = self.grouping.alerts(), dict(self.suppressor.counts)
        return self.result


def without_detectors(settings: StatefulSettings) -> StatefulSettings:
    """The stateful settings with every anomaly detector disabled (correlations only)."""
    from detectors.anomaly.config import DetectorSettings

    disabled = {name: getattr(settings.detectors, name).model_copy(update={"enabled": False})
                for name in DetectorSettings.model_fields}
    return settings.model_copy(update={"detectors": DetectorSettings(**disabled)})


def group_alerts(detections: Sequence[Detection], settings: Settings) -> tuple[list[Detection], dict[str, int]]:
    """Suppressions, then one alert per rule, entity and window, as the Flink job does."""
    from detectors.dedup import Deduplicator, DedupPolicy, Suppressor

    suppressor = Suppressor.load_all(settings.suppression_paths)
    grouping = Deduplicator(DedupPolicy(window_s=settings.job.dedup_window_s,
                                        entity_fields=settings.job.dedup_entity_fields))
    # Event order, as a stream delivers them; the result does not depend on it.
    for detection in sorted(detections, key=lambda d: (d.timestamp, d.rule.id, d.id)):
        if suppressor.suppressed_by(detection) is None:
            grouping.add(detection)
    return grouping.alerts(), dict(suppressor.counts)


def alert_documents(detections: Sequence[Detection], prefix: str,
                    node_of_group: NodeOfGroup | None = None) -> Iterator[dict[str, Any]]:
    for detection in detections:
        yield {"_id": detection.id, "_index": index_name(prefix, detection.timestamp),
               **to_document(detection, node_of_group)}


def write_jsonl(records: Iterator[dict[str, Any]] | Sequence[dict[str, Any]], handle: TextIO) -> int:
    count = 0
    for record in records:
        handle.write(canonical_json(record) + "\n")
        count += 1
    return count


def handler(args: argparse.Namespace, settings: Settings) -> int:
    # For the whole command: after the run, the compiled rules and the alerts are millions of
    # young objects, and the default thresholds walked them again while the alert documents
    # were made (3% of a 99,060-event replay).
    with rarer_young_collections():
        return _handle(args, settings)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    result = replay(args.rules, args.events, settings, spool=args.spool)
    for failure in result.rule_failures:
        print(f"rule not loaded: {failure.path}: {failure.reason}", file=sys.stderr)
    documents = alert_documents(result.detections, settings.elasticsearch.index_prefix,
                                NodeResolver.load(settings.collector))
    if str(args.output) == "-":
        written = write_jsonl(documents, sys.stdout)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with args.output.open("w", encoding="utf-8") as handle:
            written = write_jsonl(documents, handle)
    dead_path = args.dead_letters or (args.output.with_suffix(".deadletter.jsonl") if str(args.output) != "-"
                                      else None)
    if dead_path and result.dead_letters:
        with dead_path.open("w", encoding="utf-8") as handle:
            write_jsonl(result.dead_letters, handle)
    summary = {
        "events": result.events, "alerts": written, "dead_letters": len(result.dead_letters),
        "rules_loaded": result.rules_loaded, "rules_failed": len(result.rule_failures),
        "suppressed": result.suppressed,
    }
    print(json.dumps(summary), file=sys.stderr)
    return 1 if result.rule_failures and args.strict else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="run the rules over event files without Flink (hunts, rule tests)",
        description="Read EVTX files, Windows JSON exports and JSON-lines files (or directories of them), "
        "run the same detection core as the Flink job, and write the alerts as JSON lines.")
    parser.add_argument("--rules", type=existing_path, nargs="+", required=True, metavar="DIR",
                        help="rule files or directories (Sigma YAML)")
    parser.add_argument("--output", type=Path, required=True, metavar="FILE", help="alerts as JSON lines; - for stdout")
    parser.add_argument("--dead-letters", type=Path, metavar="FILE",
                        help="where records that could not be processed go (default: OUTPUT.deadletter.jsonl)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any rule failed to load")
    parser.add_argument("--spool", action="store_true",
                        help="pass the events through a temporary spool, as the Flink job reads them (slower)")
    parser.add_argument("events", type=existing_path, nargs="+", metavar="EVENTS", help="event files or directories")
    parser.set_defaults(handler=handler)
