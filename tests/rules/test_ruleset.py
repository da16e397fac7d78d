"""Publishing versioned rule sets and switching to them (the pure core of hot reload)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from alerts.model import to_document
from alerts.settings import REPO_ROOT
from detectors.dedup import Suppressor
from detectors.pipeline import BatchProcessor
from detectors.ruleset import (
    HISTORY,
    POINTER,
    REFUSED,
    RuleSetRefused,
    RuleSetWatcher,
    VersionedSuppressors,
    candidates,
    current_version,
    load_published,
    publish,
    set_current,
)
from tests.rules.hotreload_fixtures import RULE_ID, events, write_rule_set

CONFIG = REPO_ROOT / "config"


def test_publish_is_versioned_by_content_and_idempotent(tmp_path: Path) -> None:
    store = tmp_path / "rulesets"
    first = publish([write_rule_set(tmp_path / "v1", level="low")], store, config_dir=CONFIG)
    assert first.created and first.rules == 1
    assert current_version(store) == first.version
    assert (store / first.version / "manifest.json").is_file()
    again = publish([write_rule_set(tmp_path / "v1-copy", level="low")], store, config_dir=CONFIG)
    # Same content (the directory name is not part of it): same version, nothing new written.
    assert again.version == first.version and not again.created
    second = publish([write_rule_set(tmp_path / "v2", level="high")], store, config_dir=CONFIG)
    assert second.version != first.version and current_version(store) == second.version
    assert sorted(p.name for p in store.iterdir()) == sorted([first.version, second.version, POINTER, HISTORY])
    # Rolling back is pointing at a published version again.
    set_current(store, first.version)
    assert current_version(store) == first.version
    assert candidates(store) == [first.version, second.version]


@pytest.mark.parametrize("bad", ["not_yaml", "not_sigma", "unknown_reference", "bad_suppressions"])
def test_refused_rule_set_publishes_nothing(tmp_path: Path, bad: str) -> None:
    store = tmp_path / "rulesets"
    good = publish([write_rule_set(tmp_path / "v1", level="low")], store, config_dir=CONFIG)
    rules = write_rule_set(tmp_path / "v2", level="high")
    suppressions = None
    if bad == "not_yaml":
        (rules / "broken.yml").write_text("title: x\ndetection: [\n", encoding="utf-8")
    elif bad == "not_sigma":
        (rules / "broken.yml").write_text("just: a mapping\n", encoding="utf-8")
    elif bad == "unknown_reference":
        (rules / "corr.yml").write_text(
            "title: c\nid: 0d6f2a52-8d61-4f2c-b1a4-7f0a3f9a3c11\ncorrelation:\n  type: event_count\n"
            "  rules: [no_such_rule]\n  group-by: [host.name]\n  timespan: 5m\n  condition: {gte: 2}\n",
            encoding="utf-8")
    else:
        suppressions = tmp_path / "suppressions.yaml"
        suppressions.write_text("suppressions:\n  - name: x\n", encoding="utf-8")
    with pytest.raises(RuleSetRefused) as refused:
        publish([rules], store, config_dir=CONFIG, suppressions=suppressions)
    assert refused.value.reasons, "a refusal gives its reasons"
    # Reasons name the user's files, not the staged copies.
    assert ".staging" not in " ".join(refused.value.reasons)
    assert current_version(store) == good.version
    assert sorted(p.name for p in store.iterdir()) == sorted([good.version, POINTER, HISTORY])


def test_watcher_switches_once_and_refuses_a_broken_version(tmp_path: Path) -> None:
    store = tmp_path / "rulesets"
    v1 = publish([write_rule_set(tmp_path / "v1", level="low")], store, config_dir=CONFIG).version
    refusals: list[tuple[str, list[str]]] = []
    watcher = RuleSetWatcher(store, CONFIG, active=v1, interval_s=5.0, background=False,
                             on_refused=lambda version, reasons: refusals.append((version, reasons)))
    assert watcher.poll(0.0) is None  # nothing new
    v2 = publish([write_rule_set(tmp_path / "v2", level="high")], store, config_dir=CONFIG).version
    assert watcher.poll(1.0) is None  # not looked at before the interval
    loaded = watcher.poll(5.0)
    assert loaded is not None and loaded.version == v2 and watcher.active == v2
    assert watcher.poll(10.0) is None  # handed over once
    # A published directory changed behind the store's back no longer matches its digest: refused.
    v3 = publish([write_rule_set(tmp_path / "v3", level="medium")], store, config_dir=CONFIG).version
    (next((store / v3).rglob("hotreload_probe.yml"))).write_text("title: [\n", encoding="utf-8")
    assert watcher.poll(15.0) is None
    assert watcher.active == v2 and [version for version, _ in refusals] == [v3]
    # ...and said so where the publisher looks, with what the job kept.
    assert json.loads((store / REFUSED / f"{v3}.json").read_text(encoding="utf-8"))["kept"] == v2
    assert watcher.poll(20.0) is None and len(refusals) == 1  # refused once, not retried


def test_watcher_loads_in_the_background(tmp_path: Path) -> None:
    store = tmp_path / "rulesets"
    v1 = publish([write_rule_set(tmp_path / "v1", level="low")], store, config_dir=CONFIG).version
    watcher = RuleSetWatcher(store, CONFIG, active=None, interval_s=0.0)
    deadline = time.monotonic() + 60
    loaded = None
    while loaded is None and time.monotonic() < deadline:
        loaded = watcher.poll(time.monotonic())
        time.sleep(0.01)
    assert loaded is not None and loaded.version == v1


def test_detections_carry_rule_set_and_rule_versions(tmp_path: Path) -> None:
    store = tmp_path / "rulesets"
    v1 = publish([write_rule_set(tmp_path / "v1", level="low")], store, config_dir=CONFIG).version
    v2 = publish([write_rule_set(tmp_path / "v2", level="high")], store, config_dir=CONFIG).version
    old, new = load_published(store, v1, CONFIG), load_published(store, v2, CONFIG)
    stream = events(0, 10)
    # The switch between two batches: the first judged by v1, the rest by v2.
    first = BatchProcessor(old.matcher).process(stream[:4]).detections
    rest = BatchProcessor(new.matcher).process(stream[4:]).detections
    assert [d.event_ids[0] for d in first + rest] == [e["event"]["id"] for e in stream]
    assert {(d.rule.ruleset_version, d.rule.level) for d in first} == {(v1, "low")}
    assert {(d.rule.ruleset_version, d.rule.level) for d in rest} == {(v2, "high")}
    assert old.rule_versions[RULE_ID] != new.rule_versions[RULE_ID]
    document = to_document(rest[0])
    assert document["socflow"]["ruleset"]["version"] == v2
    assert document["rule"]["version"] == new.rule_versions[RULE_ID]


def test_suppressions_follow_the_rule_set_that_judged(tmp_path: Path) -> None:
    store = tmp_path / "rulesets"
    suppressions = tmp_path / "suppressions.yaml"
    suppressions.write_text(
        f"suppressions:\n  - name: probe-web-3\n    reason: test host\n    until: 2099-01-01T00:00:00Z\n"
        f"    rule: {RULE_ID}\n    host: web-0000003\n", encoding="utf-8")
    v1 = publish([write_rule_set(tmp_path / "v1", level="low")], store, config_dir=CONFIG,
                 suppressions=suppressions).version
    v2 = publish([write_rule_set(tmp_path / "v2", level="high")], store, config_dir=CONFIG).version
    fallback = Suppressor()
    by_version = VersionedSuppressors(store, fallback)
    stream = events(3, 1)
    old = BatchProcessor(load_published(store, v1, CONFIG).matcher).process(stream).detections[0]
    new = BatchProcessor(load_published(store, v2, CONFIG).matcher).process(stream).detections[0]
    assert by_version.for_version(old.rule.ruleset_version).suppressed_by(old) == "probe-web-3"
    assert by_version.for_version(new.rule.ruleset_version).suppressed_by(new) is None  # v2 has none
    assert by_version.for_version("") is fallback and by_version.for_version("not-published") is fallback
