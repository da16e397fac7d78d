"""Hot reload of what has state: the batch operator's active version across a restore, correlation
rules and detector thresholds across a switch — the Flink operators' own logic over fake state
objects (the Flink runs are in tests/faults/test_flink_hot_reload.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alerts.settings import REPO_ROOT
from detectors.flink.job import DetectBatches
from detectors.flink.stateful import StatefulFunction
from detectors.pipeline import BatchProcessor
from detectors.ruleset import RuleSetRefused, load_plan, load_published, plan_fits, publish
from detectors.stateful import keyed_batch
from tests.correlation.test_stateful_state import FakeContext, FakeCounter, FakeList, FakeValue
from tests.rules.hotreload_fixtures import (
    BRUTEFORCE,
    CORRELATION_ID,
    failed_logon,
    marked,
    write_rule_set,
    write_stateful_set,
)

CONFIG = REPO_ROOT / "config"


def _publish(tmp_path: Path, name: str, **options: Any) -> str:
    rules, detectors = write_stateful_set(tmp_path / name, **options)
    return publish([rules], tmp_path / "store", config_dir=CONFIG, detectors=detectors).version


class KeyedRun:
    """A StatefulFunction with one fake state per key, fed the keyed records of batches routed by a
    published version (as DetectBatches emits them), event time following the events."""

    def __init__(self, store: Path, start: str) -> None:
        self.store = store
        self.function = StatefulFunction(load_plan(store, start, CONFIG), 0, ruleset_store=str(store),
                                         config_dir=str(CONFIG), plan_version=start)
        for name in ("items_counter", "late_counter", "dropped_counter", "behind_counter", "detections_counter",
                     "reset_counter"):
            setattr(self.function, name, FakeCounter())
        self.states: dict[str, tuple[FakeValue, FakeList, FakeValue]] = {}

    def feed(self, version: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        loaded = load_published(self.store, version, CONFIG)
        keyed = BatchProcessor(loaded.matcher, self.function.plan_for(version).route).process(events).keyed
        out = []
        for key, record, ts in keyed_batch(keyed, version):
            state = self.states.setdefault(key, (FakeValue(), FakeList([]), FakeValue()))
            self.function.state, self.function.pending, self.function.legacy_pending = state
            # The watermark just past the record: its items are applied at once, windows stay open.
            outputs = self.function.process_element(record, FakeContext(key, ts + 1000))  # type: ignore[arg-type]
            out += [json.loads(text) for text in outputs if not text.startswith('{"key":')]
        return out


def test_unchanged_correlation_keeps_its_window_and_a_new_threshold_applies(tmp_path: Path) -> None:
    v1 = _publish(tmp_path, "v1", level="low", gte=3, failures=10)
    # v2: another probe level (a new version), the same correlation, brute force at 4 failures.
    v2 = _publish(tmp_path, "v2", level="high", gte=3, failures=4)
    # v3: the correlation changed (4 marked requests).
    v3 = _publish(tmp_path, "v3", level="medium", gte=4, failures=4)
    run = KeyedRun(tmp_path / "store", v1)
    # Under v1: two marked requests of web-a (a half-built window), three failures of alice (< 10).
    assert run.feed(v1, [marked(0, "web-a"), marked(1, "web-a"), *(failed_logon(n, "alice") for n in (2, 3, 4))]) == []
    # Switch to v2: the third marked request completes the window built under v1; the fourth
    # failure reaches v2's threshold over the failures counted under v1.
    fired = run.feed(v2, [marked(5, "web-a"), failed_logon(6, "alice")])
    correlation = [d for d in fired if d["rule"]["id"] == CORRELATION_ID]
    assert len(correlation) == 1
    assert correlation[0]["rule"]["ruleset_version"] == v2
    assert correlation[0]["event_ids"] == ["hr-mark-0000000", "hr-mark-0000001", "hr-mark-0000005"]
    brute = [d for d in fired if d["rule"].get("sigma_name") == BRUTEFORCE]
    assert len(brute) == 1 and brute[0]["rule"]["ruleset_version"] == v2
    assert set(brute[0]["event_ids"]) >= {f"hr-fail-{n:07d}" for n in (2, 3, 4, 6)}
    assert run.function.reset_counter.count == 0
    # Two marked requests of web-c under v2, then v3 changes the correlation: its state starts empty.
    assert run.feed(v2, [marked(7, "web-c"), marked(8, "web-c")]) == []
    fired = run.feed(v3, [marked(n, "web-c") for n in (9, 10, 11, 12)])
    assert run.function.reset_counter.count == 1
    correlation = [d for d in fired if d["rule"]["id"] == CORRELATION_ID]
    assert [d["event_ids"] for d in correlation] == [[f"hr-mark-{n:07d}" for n in (9, 10, 11, 12)]]
    assert correlation[0]["rule"]["ruleset_version"] == v3


def test_a_restored_key_resumes_on_its_checkpointed_version_then_switches(tmp_path: Path) -> None:
    store = tmp_path / "store"
    v2 = publish([write_rule_set(tmp_path / "v2", level="high")], store, config_dir=CONFIG).version
    v3 = publish([write_rule_set(tmp_path / "v3", level="medium")], store, config_dir=CONFIG).version
    # What open() leaves after a restore while `current` names v3: v3 loaded and active.
    operator = DetectBatches((), str(CONFIG), levels=0, ruleset_store=str(store), reload_interval_s=1.0,
                             start_version=v3)
    operator.processors = {v3: BatchProcessor(load_published(store, v3, CONFIG).matcher)}
    operator.active_version, operator.unpublished = v3, ""
    operator.key_versions, operator.resume_until = {}, {}
    operator.rulesets_switched = FakeCounter()
    operator.version_state = FakeValue(v2)  # the checkpoint's keyed state: v2 was in force
    assert operator._version_of("0", 100.0) == v2  # resumed on v2, loaded for it
    assert operator._version_of("0", 100.5) == v2  # until the watcher's next look (1 s + the load)
    assert operator._version_of("0", 102.0) == v3  # then switched, and the switch is in state
    assert operator.version_state.value() == v3 and operator.rulesets_switched.count == 1
    # A key without state (a new source subtask) starts on the active version and records it.
    operator.version_state = FakeValue()
    assert operator._version_of("1", 103.0) == v3 and operator.version_state.value() == v3


def test_a_set_the_running_job_cannot_wire_is_refused(tmp_path: Path) -> None:
    version = _publish(tmp_path, "v1", level="low")
    store = tmp_path / "store"
    assert plan_fits(load_plan(store, version, CONFIG), 1) == []
    # A job started without correlations or detectors has no keyed operators to give them.
    operator = DetectBatches((), str(CONFIG), levels=0, ruleset_store=str(store))
    with pytest.raises(RuleSetRefused) as refused:
        operator._load_checked(store, version, CONFIG)
    assert "restart the job" in " ".join(refused.value.reasons)
