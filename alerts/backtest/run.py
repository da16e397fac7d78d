"""Run a backtest: load the candidate rules (and a baseline), read events, count hits.

Events come from one of the two readers socflow already has: the hunt's store reader
(:mod:`alerts.hunt.store`, pre-selected by time and the rules' logsources with
:mod:`alerts.hunt.select`) or replay's file reader (the collector's reading and normalization,
``ingest.files.collect_paths`` into replay's ``DetectingSink``). The detection core is replay's
``DetectionRun`` with the anomaly detectors off; this module only listens to its detections
(:class:`_CountingRun`) and writes no alert anywhere.

A baseline is an older version of a candidate, usually with the same id: it is loaded from a
copy whose id (and Sigma ``name``) is changed, so both versions run side by side in one pass.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from elasticsearch import Elasticsearch

from alerts.backtest import BacktestError
from alerts.backtest.aggregate import Aggregator
from alerts.backtest.model import BacktestResult, RuleSource, RuleSpec
from alerts.commands.replay import DetectingSink, DetectionRun, load_rules
from alerts.settings import REPO_ROOT, Settings
from detectors.model import Detection
from detectors.pipeline import BatchResult
from ingest.schema import Event, get_field

if TYPE_CHECKING:
    from detectors.sigma import SigmaEngine

Window = tuple[datetime | None, datetime | None]
Progress = Callable[[int, int], None]  # (events read in this batch, hits in it)
BASELINE_NAMESPACE = uuid.UUID("6f1d3c52-9a0e-4d8b-b7c4-2e5f0a9d1b37")


@dataclass(frozen=True)
class Options:
    """What a backtest reports: ``samples`` events per rule, ``top`` values per field."""

    samples: int = 5
    top: int = 10


# ------------------------------------------------------------------ rules


def condition_fields(tree: Any) -> list[str]:
    """The field names of a pySigma condition tree, in order, once each (keywords have none)."""
    found: dict[str, None] = {}

    def walk(node: Any) -> None:
        name = getattr(node, "field", None)
        if isinstance(name, str) and name:
            found.setdefault(name)
        for child in getattr(node, "args", None) or ():
            walk(child)

    walk(tree)
    return list(found)


def _correlation_fields(correlation: Any) -> list[str]:
    """A correlation's group-by fields: its alerts carry their values (``Detection.group``); the
    events it keeps are stubs (time, id, node), so a counted field's values are not known."""
    return list(dict.fromkeys(str(name) for name in correlation.group_by or ()))


def rule_ids_in(paths: Sequence[Path]) -> list[tuple[str, str]]:
    """``(id, file)`` of every Sigma rule and correlation in ``paths`` (YAML only: fast)."""
    from detectors.sigma.loader import iter_rule_files

    found = []
    for path in iter_rule_files(paths):
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise BacktestError(f"not a readable YAML rule: {error}", source=str(path)) from error
        for document in documents:
            if isinstance(document, dict) and document.get("id") and ("detection" in document
                                                                      or "correlation" in document):
                found.append((str(document["id"]), str(path)))
    return found


def specs_of(engine: SigmaEngine, wanted: Mapping[str, str], *, role: str = "candidate",
             pairs: Mapping[str, str] | None = None) -> list[RuleSpec]:
    """The specs of the loaded rules whose ids are in ``wanted`` (id -> file), in load order."""
    specs: list[RuleSpec] = []
    for loaded in engine.loaded_rules():
        info = loaded.info
        if info.id in wanted and info.generate:
            fields = [name for tree in loaded.conditions for name in condition_fields(tree)]
            source: RuleSource = loaded.source
            specs.append(RuleSpec(id=info.id, title=info.title, level=info.level, kind="sigma", path=wanted[info.id],
                                  fields=tuple(dict.fromkeys(fields)), source=source, role=role,  # type: ignore[arg-type]
                                  pair=(pairs or {}).get(info.id, "")))
    for correlation in engine.correlations:
        rule_id = str(correlation.id) if correlation.id else ""
        if rule_id in wanted:
            specs.append(RuleSpec(id=rule_id, title=str(correlation.title), level=str(correlation.level or "medium"),
                                  kind="correlation", path=wanted[rule_id],
                                  fields=tuple(_correlation_fields(correlation)), role=role,  # type: ignore[arg-type]
                                  pair=(pairs or {}).get(rule_id, "")))
    return specs


def baseline_copy(path: Path, directory: Path) -> tuple[Path, str, str]:
    """A copy of the rule file ``path`` under a new id and Sigma ``name``, so that it can be
    loaded beside the candidate it is an older version of; returns (copy, old id, new id)."""
    if not path.is_file():
        raise BacktestError("baseline rule: no such file", source=str(path))
    try:
        documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise BacktestError(f"baseline rule: not readable YAML: {error}", source=str(path)) from error
    if len(documents) != 1 or not isinstance(documents[0], dict) or not documents[0].get("id"):
        raise BacktestError("baseline rule: the file must hold one rule with an id", source=str(path))
    document = dict(documents[0])
    old_id = str(document["id"])
    new_id = str(uuid.uuid5(BASELINE_NAMESPACE, old_id))
    document["id"] = new_id
    if document.get("name"):
        document["name"] = f"{document['name']}_baseline"
    document["title"] = f"{document.get('title', old_id)} (baseline)"
    copy = directory / f"baseline-{re.sub(r'[^A-Za-z0-9_.-]', '_', path.stem)}.yml"
    copy.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return copy, old_id, new_id


def _missing(paths: Iterable[Path]) -> list[str]:
    return [str(path) for path in paths if not path.exists()]


# ------------------------------------------------------------------ the run


class _CountingRun(DetectionRun):
    """Replay's detection run that also hands every detection to the aggregator, with whether
    a suppression took it (a baseline is judged under its candidate's id)."""

    def __init__(self, engine: SigmaEngine, settings: Settings, aggregator: Aggregator,
                 judged_as: Mapping[str, str], on_batch: Callable[[BatchResult], None] | None) -> None:
        super().__init__(engine, settings, detectors=False, on_batch=on_batch)
        self.aggregator, self.judged_as = aggregator, judged_as

    def _group(self, detection: Detection) -> None:
        judged = detection
        other = self.judged_as.get(detection.rule.id)
        if other is not None:
            judged = replace(detection, rule=replace(detection.rule, id=other))
        suppressed = self.suppressor.suppressed_by(judged) is not None
        self.aggregator.add(detection, suppressed=suppressed)
        if not suppressed:
            self.grouping.add(detection)


class _WindowSink(DetectingSink):
    """Replay's collector sink, keeping only events in ``[start, end]`` (the store's range)."""

    def __init__(self, run: DetectionRun, batch_size: int, start: datetime | None, end: datetime | None) -> None:
        super().__init__(run, batch_size)
        self.start, self.end = start, end
        self.outside = 0

    def append(self, event: Event) -> None:
        if self.start is not None or self.end is not None:
            try:
                moment = datetime.fromisoformat(str(get_field(event, "@timestamp", "")))
            except ValueError:
                moment = None
            if (moment is None or moment.tzinfo is None or (self.start is not None and moment < self.start)
                    or (self.end is not None and moment > self.end)):
                self.outside += 1
                return
        super().append(event)


class FieldValues:
    """The values an event has for a rule's Sigma fields, found where the engine looks for them
    (``config/sigma`` mappings for the event's route and the rule's logsource)."""

    def __init__(self, engine: SigmaEngine) -> None:
        from detectors.sigma.fieldmap import FieldMappings

        self.engine = engine
        self.mappings = FieldMappings.load(REPO_ROOT / "config" / "sigma")
        self._maps: dict[tuple[Any, ...], Any] = {}

    def __call__(self, spec: RuleSpec, detection: Detection) -> dict[str, list[Any]]:
        if spec.kind == "correlation":
            return {name: [detection.group[name]] for name in spec.fields if name in detection.group}
        event = detection.events[-1] if detection.events else {}
        route = self.engine.route(event)
        key = (route, spec.source)
        fieldmap = self._maps.get(key)
        if fieldmap is None:
            fieldmap = self._maps[key] = self.mappings.resolve(route, spec.source)
        found: dict[str, list[Any]] = {}
        for name in spec.fields:
            for path in fieldmap.paths(name):
                value = get_field(event, path)
                if value is not None:
                    found[name] = [value]
                    break
        return found


def backtest(settings: Settings, rules: Sequence[Path], *, start: datetime | None, end: datetime | None,
             events: Sequence[Path] = (), client: Elasticsearch | None = None, baselines: Sequence[Path] = (),
             supporting: Sequence[Path] = (), options: Options = Options(),
             on_total: Callable[[int], None] | None = None, on_batch: Progress | None = None,
             file_progress: bool = False) -> BacktestResult:
    """Run ``rules`` (and their ``baselines``) over the stored events of ``[start, end]`` (or over
    the event files ``events``), writing nothing; see the module docstring.

    ``supporting``: rules loaded only so that candidate correlations can reference them (their
    own hits are not reported). Raises :class:`BacktestError` for a missing file, a rule that
    does not load, a baseline no candidate matches, or no event store.
    """
    missing = _missing([*rules, *baselines, *supporting, *events])
    if missing:
        raise BacktestError("no such file or directory: " + ", ".join(missing))
    candidates = dict(rule_ids_in(rules))
    if not candidates:
        raise BacktestError("no Sigma rule in " + ", ".join(str(path) for path in rules))
    with tempfile.TemporaryDirectory(prefix="socflow-backtest-") as temporary:
        copies: list[Path] = []
        pairs: dict[str, str] = {}  # baseline id -> candidate id
        for baseline in baselines:
            copy, old_id, new_id = baseline_copy(baseline, Path(temporary))
            partner = old_id if old_id in candidates else (next(iter(candidates)) if len(candidates) == 1 else None)
            if partner is None:
                raise BacktestError(f"baseline rule {old_id}: no candidate rule has this id (and there are "
                                    f"{len(candidates)} candidates to choose from)", source=str(baseline))
            if partner in pairs.values():
                raise BacktestError(f"two baselines for rule {partner}", source=str(baseline))
            copies.append(copy)
            pairs[new_id] = partner
        if copies:  # not through the rule-set cache: its key holds the copies' temporary paths
            from detectors.sigma import SigmaEngine

            engine, report = SigmaEngine.load([*rules, *supporting, *copies], config_dir=REPO_ROOT / "config")
        else:
            engine, report = load_rules([*rules, *supporting])
        failed = [failure for failure in report.failures
                  if failure.rule_id in candidates or failure.rule_id in pairs
                  or any(Path(failure.path) == Path(path) or Path(path) in Path(failure.path).parents
                         for path in [*rules, *copies])]
        if failed:
            shown = "; ".join(f"{_named(failure.path, baselines, copies)}: {failure.reason}" for failure in failed)
            raise BacktestError(f"rule(s) that do not load: {shown}")
        baseline_files = {new_id: str(baselines[index]) for index, new_id in enumerate(pairs)}
        specs = specs_of(engine, candidates) + specs_of(engine, baseline_files, role="baseline", pairs=pairs)
        found = {spec.id for spec in specs}
        silent = sorted(set(candidates) - found)
        if silent == sorted(candidates):
            raise BacktestError("no alerting rule among the candidates (only rules with generate: false, or "
                                "rules that did not load): " + ", ".join(silent))
        aggregator = Aggregator(specs, FieldValues(engine), samples=options.samples, top=options.top)

        def seen(batch: BatchResult) -> None:
            if on_batch is not None:
                on_batch(batch.events, len(batch.detections))

        run = _CountingRun(engine, settings, aggregator, pairs, seen)
        if events:
            source, total, dead = _from_files(run, settings, events, (start, end), Path(temporary),
                                               progress=file_progress)
        else:
            source, total = _from_store(run, settings, client, engine, (start, end), on_total=on_total)
            dead = 0
        outcome = run.finish()
    alerts = Counter(detection.rule.id for detection in outcome.detections)
    return aggregator.result(source=source, start=_iso(start), end=_iso(end), events_read=outcome.events,
                             candidates=total, dead_letters=dead + len(outcome.dead_letters), alerts=alerts)


def _named(path: str, baselines: Sequence[Path], copies: Sequence[Path]) -> str:
    for original, copy in zip(baselines, copies, strict=False):
        if Path(path) == copy:
            return f"{original} (baseline)"
    return path


def _iso(moment: datetime | None) -> str | None:
    from alerts.hunt.times import iso

    return None if moment is None else iso(moment)


def _from_files(run: DetectionRun, settings: Settings, events: Sequence[Path], window: Window, temporary: Path, *,
                progress: bool) -> tuple[str, None, int]:
    from ingest.files import collect_paths

    start, end = window
    sink = _WindowSink(run, settings.collector.batch_size, start, end)
    collect_paths(list(events), temporary / "spool", settings=settings.collector, writer_id="backtest", sink=sink,
                  progress=progress)
    sink.commit()
    return "files: " + ", ".join(str(path) for path in events), None, len(sink.dead_letters)


def _from_store(run: DetectionRun, settings: Settings, client: Elasticsearch | None, engine: SigmaEngine,
                window: Window, *, on_total: Callable[[int], None] | None) -> tuple[str, int]:
    from alerts.hunt.select import candidate_query, rule_logsources
    from alerts.hunt.store import day_slices, events_alias, read_pages, require_store
    from ingest.logsource import LogsourceTable

    if client is None:
        raise BacktestError("no Elasticsearch client for the event store")
    start, end = window
    alias = events_alias(settings)
    require_store(client, alias)
    table = LogsourceTable.load(REPO_ROOT / "config" / "logsources.yaml")
    query = candidate_query(rule_logsources(engine.rules), table, start, end)
    slices = day_slices(client, alias, query)
    total = sum(found for _start, _end, found in slices)
    if on_total is not None:
        on_total(total)
    pages: Generator[list[dict[str, Any]], None, None] = read_pages(client, alias, query, slices=slices)
    with closing(pages):
        for page in pages:
            run.feed(page)
    return f"event store: {alias}", total
