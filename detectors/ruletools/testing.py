"""Run every rule's ``<name>.tests.yml``: positive and negative events and an expectation.

Beside each rule ``<name>.yml`` stands ``<name>.tests.yml``::

    expect: {exactly: 2}        # or {at_least: N}; default at_least 1
    positive: [<event>, ...]    # socflow event shape; Windows events need only ``winlog``
    negative: [<event>, ...]    # must give no hit of the rule

Events are completed as a collector would (timestamp, event id, Windows logsource, the node
from the asset inventory) and judged as replay judges them: every event through the Sigma
engine's ``match``; for a correlation rule the matches also feed a fresh pure
:class:`~detectors.correlation.CorrelationEngine` in event order, whose windows are closed by
``flush`` at the end. A hit of a plain rule is a match of it (also of a rule that only feeds
correlations); a hit of a correlation rule is one of its detections.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from detectors.correlation import CorrelationEngine
from detectors.sigma import SigmaEngine
from detectors.sigma.loader import DEFAULT_CONFIG_DIR, RuleFailure, iter_rule_files
from ingest.assets import AssetInventory
from ingest.logsource import LogsourceTable
from ingest.schema import stable_id

TESTS_SUFFIX = ".tests.yml"


@dataclass
class RuleTestResult:
    """The verdict on one rule's test file."""

    rule: str  # the rule file
    tests: str  # its test file
    rule_id: str | None
    title: str | None
    kind: str  # "sigma" or "correlation"
    expect: str  # "exactly N" / "at_least N"
    positive_hits: int = 0
    negative_hits: int = 0
    error: str | None = None  # None: passed
    # Which event the failure shows first: ("positive" | "negative", index, event)
    first_failing: tuple[str, int, dict[str, Any]] | None = None

    @property
    def passed(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        failing = None
        if self.first_failing is not None:
            side, index, event = self.first_failing
            failing = {"side": side, "index": index, "event": event}
        return {"rule": self.rule, "tests": self.tests, "id": self.rule_id, "title": self.title,
                "kind": self.kind, "expect": self.expect, "positive_hits": self.positive_hits,
                "negative_hits": self.negative_hits, "passed": self.passed, "error": self.error,
                "first_failing": failing}


@dataclass
class RuleTestRun:
    """Every rule test of a run, the rules without tests and the rules that did not load."""

    results: list[RuleTestResult] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)
    load_failures: list[RuleFailure] = field(default_factory=list)

    @property
    def failed(self) -> list[RuleTestResult]:
        return [result for result in self.results if not result.passed]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.load_failures and bool(self.results)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "passed": len(self.results) - len(self.failed),
            "failed": len(self.failed),
            "results": [result.to_json() for result in self.results],
            "untested": self.untested,
            "load_failures": [{"path": f.path, "id": f.rule_id, "title": f.title, "reason": f.reason}
                              for f in self.load_failures],
        }


class EventPreparer:
    """Completes a test event as a collector would: time, id, Windows logsource, node."""

    def __init__(self, config_dir: Path) -> None:
        self.logsources = LogsourceTable.load(config_dir / "logsources.yaml")
        self.inventory = AssetInventory.load(config_dir / "assets.yaml")

    def __call__(self, raw: Mapping[str, Any], name: str, index: int) -> dict[str, Any]:
        event = copy.deepcopy(dict(raw))  # enrichment writes into nested dicts: keep the test's own
        event.setdefault("@timestamp", f"2026-11-20T10:{index // 60:02d}:{index % 60:02d}.000Z")
        inner = event.get("event")
        inner = dict(inner) if isinstance(inner, Mapping) else {}
        inner["id"] = inner.get("id") or stable_id("rule-test", name, index)
        event["event"] = inner
        self.logsources.tag(event)
        return self.inventory.enrich(event)


def find_test_files(paths: Sequence[Path]) -> list[Path]:
    """``*.tests.yml`` files named directly or under directories, sorted."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p for p in path.rglob("*" + TESTS_SUFFIX) if p.is_file())
        elif path.name.endswith(TESTS_SUFFIX):
            found.add(path)
        else:
            beside = path.with_name(path.name.rsplit(".", 1)[0] + TESTS_SUFFIX)
            if beside.is_file():
                found.add(beside)
    return sorted(found)


def rule_beside(test_file: Path) -> Path:
    return test_file.with_name(test_file.name[: -len(TESTS_SUFFIX)] + ".yml")


def run_rule_tests(paths: Sequence[Path], *, config_dir: Path | None = None,
                   only: Sequence[Path] | None = None) -> RuleTestRun:
    """Load the rule set under ``paths`` once, then judge every test file found there.

    ``only``: judge just these test files (the rule set stays the whole of ``paths``, since a
    correlation needs the rules it references).
    """
    config = config_dir or DEFAULT_CONFIG_DIR
    engine, report = SigmaEngine.load(list(paths), config_dir=config)
    prepare = EventPreparer(config)
    run = RuleTestRun(load_failures=list(report.failures))
    tests = list(only) if only is not None else find_test_files(paths)
    tested = {rule_beside(test).resolve() for test in tests}
    run.untested = [str(path) for path in iter_rule_files(paths)
                    if path.resolve() not in tested and not has_test_file(path)]
    for test in tests:
        run.results.append(judge(test, engine, prepare, report.failures))
    return run


def has_test_file(rule: Path) -> bool:
    return rule.with_name(rule.name.rsplit(".", 1)[0] + TESTS_SUFFIX).is_file()


def _expectation(spec: Mapping[str, Any]) -> tuple[str, int]:
    expect = spec.get("expect")
    if expect is None:
        return "at_least", 1
    if not isinstance(expect, Mapping) or len(expect) != 1:
        raise ValueError(f"expect must be {{exactly: N}} or {{at_least: N}}, not {expect!r}")
    (kind, count), = expect.items()
    if kind not in ("exactly", "at_least") or not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError(f"expect must be {{exactly: N}} or {{at_least: N}} with N >= 0, not {expect!r}")
    return str(kind), count


class _BrokenTestError(Exception):
    """A test that cannot run: its reason becomes the result's error."""


def judge(test: Path, engine: SigmaEngine, prepare: EventPreparer,
          load_failures: Sequence[RuleFailure] = ()) -> RuleTestResult:
    """Run one test file against the loaded engine."""
    rule_path = rule_beside(test)
    result = RuleTestResult(rule=str(rule_path), tests=str(test), rule_id=None, title=None, kind="sigma", expect="")
    try:
        _judge(result, rule_path, test, engine, prepare, load_failures=load_failures)
    except _BrokenTestError as broken:
        result.error = str(broken)
    return result


def _read(rule_path: Path, test: Path) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    try:
        rule_doc = yaml.safe_load(rule_path.read_text(encoding="utf-8"))
        spec = yaml.safe_load(test.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise _BrokenTestError(f"no rule {rule_path.name} beside the test file") from error
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise _BrokenTestError(f"unreadable: {error}") from error
    if not isinstance(rule_doc, Mapping) or not isinstance(spec, Mapping):
        raise _BrokenTestError("the rule and its test file must each be one YAML mapping")
    return rule_doc, spec


def _judge(result: RuleTestResult, rule_path: Path, test: Path, engine: SigmaEngine, prepare: EventPreparer, *,
           load_failures: Sequence[RuleFailure]) -> None:
    rule_doc, spec = _read(rule_path, test)
    result.rule_id = str(rule_doc.get("id")) if rule_doc.get("id") is not None else None
    result.title = str(rule_doc.get("title")) if rule_doc.get("title") is not None else None
    result.kind = "correlation" if "correlation" in rule_doc else "sigma"
    try:
        kind, count = _expectation(spec)
    except ValueError as error:
        raise _BrokenTestError(str(error)) from error
    result.expect = f"{kind} {count}"
    failed_load = [f for f in load_failures if Path(f.path).resolve() == rule_path.resolve()]
    if failed_load:
        raise _BrokenTestError("rule did not load: " + "; ".join(f.reason for f in failed_load))
    raw: dict[str, list[Any]] = {}
    for side in ("positive", "negative"):
        events = spec.get(side) or []
        if not isinstance(events, list) or not all(isinstance(event, Mapping) for event in events):
            raise _BrokenTestError(f"{side} must be a list of events (mappings)")
        raw[side] = events
    prepared = {side: [prepare(event, f"{test.name}:{side}", index) for index, event in enumerate(events)]
                for side, events in raw.items()}
    correlation = result.kind == "correlation"
    try:
        positive = _hits_per_event(engine, result.rule_id or "", correlation, prepared["positive"])
        negative = _hits_per_event(engine, result.rule_id or "", correlation, prepared["negative"])
    except Exception as error:  # a rule or event that breaks the engine fails its test, with why
        raise _BrokenTestError(f"detection failed: {error!r}") from error
    result.positive_hits, result.negative_hits = sum(positive), sum(negative)
    if (kind == "exactly" and result.positive_hits != count) or (kind == "at_least" and result.positive_hits < count):
        result.error = f"expected {kind} {count} hits on the positive events, got {result.positive_hits}"
        index = _first_failing_positive(positive, count if kind == "exactly" else None)
        if index is not None:
            result.first_failing = ("positive", index, dict(raw["positive"][index]))
    elif result.negative_hits:
        result.error = f"{result.negative_hits} hits on the negative events, expected none"
        index = next(i for i, hits in enumerate(negative) if hits)
        result.first_failing = ("negative", index, dict(raw["negative"][index]))


def _first_failing_positive(per_event: list[int], exactly: int | None) -> int | None:
    total = sum(per_event)
    if exactly is not None and total > exactly:
        running = 0
        for index, hits in enumerate(per_event):
            running += hits
            if running > exactly:
                return index
    # Too few: the first event that gave nothing (for a correlation: none is to blame alone).
    return next((i for i, hits in enumerate(per_event) if not hits), None)


def _hits_per_event(engine: SigmaEngine, rule_id: str, correlation: bool, events: list[dict[str, Any]]) -> list[int]:
    """Hits of the rule, attributed to the event at which they came (flush: the last event)."""
    if not correlation:
        return [sum(1 for rule in engine.match(event) if rule.id == rule_id) for event in events]
    correlations = CorrelationEngine.from_rules(engine.correlations, engine.rules, include_silenced=True)
    per_event = []
    for event in events:
        per_event.append(sum(1 for d in correlations.process(event, engine.match(event)) if d.rule.id == rule_id))
    flushed = sum(1 for d in correlations.flush() if d.rule.id == rule_id)
    if flushed:
        if per_event:
            per_event[-1] += flushed
        else:
            per_event.append(flushed)
    return per_event


def event_preview(event: Mapping[str, Any], limit: int = 160) -> str:
    """One line of JSON, ASCII only (control characters escaped), cut at ``limit``."""
    text = json.dumps(event, ensure_ascii=True, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
