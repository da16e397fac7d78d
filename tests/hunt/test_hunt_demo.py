"""``socflow hunt`` over stored events equals ``socflow replay`` over the same files (demo scenario).

Differential, on the real Elasticsearch: the demo's files are replayed, and collected into a
spool that the event writer stores; hunting the store with this project's rules must give the
same alert documents, byte for byte: with the anomaly detectors (``--detectors``, as replay
runs them) all of them, without them every alert but the detectors'.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.cli import build_parser
from alerts.commands import hunt as hunt_command
from alerts.commands.replay import alert_documents, replay
from alerts.hunt import HuntError
from alerts.hunt.run import hunt
from alerts.hunt.store import day_slices, read_pages
from alerts.nodes import NodeResolver
from alerts.scenario import generate
from ingest.schema import canonical_json
from tests.hunt.conftest import REPO, Store

pytestmark = pytest.mark.integration
START = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
RANGE = (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))


def _documents(detections: Any, store: Store) -> list[str]:
    settings = store.settings
    return [canonical_json(doc) for doc in alert_documents(
        detections, settings.elasticsearch.index_prefix, NodeResolver.load(settings.collector))]


@pytest.fixture
def demo(store: Store, tmp_path: Path) -> tuple[Store, list[Path], int]:
    files = generate(tmp_path / "inputs", START)
    paths = [files.mail, files.portal, files.windows]
    stored = store.put(paths, tmp_path / "spool")
    return store, paths, stored


def test_hunt_equals_replay_on_demo_events(demo: tuple[Store, list[Path], int]) -> None:
    store, paths, stored = demo
    expected = replay([REPO / "rules"], paths, store.settings)
    want = _documents(expected.detections, store)
    assert expected.events - len(expected.dead_letters) <= stored <= expected.events

    with_detectors = hunt(store.client, store.settings, [REPO / "rules"], *RANGE, detectors=True)
    assert with_detectors.result.events == stored  # every stored event read once
    assert _documents(with_detectors.result.detections, store) == want

    rules_only = hunt(store.client, store.settings, [REPO / "rules"], *RANGE)
    kinds = {json.loads(doc)["socflow"]["alert"]["kind"] for doc in want}
    assert {"sigma", "correlation", "anomaly"} <= kinds  # the scenario exercises all three
    assert _documents(rules_only.result.detections, store) == [
        doc for doc in want if json.loads(doc)["socflow"]["alert"]["kind"] != "anomaly"]
    assert rules_only.result.rule_failures == expected.rule_failures == []

    web = hunt(store.client, store.settings, [REPO / "rules" / "web"], *RANGE)
    assert 0 < web.result.events < stored  # the web rules' logsource pre-selects the portal's events


def test_hunt_command_writes_replay_documents(demo: tuple[Store, list[Path], int], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    store, paths, _ = demo
    output = tmp_path / "out" / "alerts.jsonl"
    args = build_parser().parse_args(["hunt", "--rules", str(REPO / "rules" / "web"), "--from", "2026-11-20",
                                      "--to", "2026-11-20T23:59:59Z", "--output", str(output)])
    assert hunt_command.handler(args, store.settings) == 0
    expected = replay([REPO / "rules" / "web"], paths, store.settings)
    rules_only = [d for d in expected.detections if d.kind != "anomaly"]  # no --detectors
    assert output.read_text(encoding="utf-8").splitlines() == _documents(rules_only, store)
    err = capsys.readouterr().err.strip().splitlines()
    summary = json.loads(err[-1])
    assert summary["alerts"] == len(rules_only) > 0
    # the first matches were printed as they were found, before the alerts
    live = [line for line in err if line.startswith("match after ")]
    assert 0 < len(live) <= 10 and any(rules_only[0].rule.title in line for line in live), err
    assert summary["rules_failed"] == 0

    # relative times: the whole scenario is more than a week before "now"
    args = build_parser().parse_args(["hunt", "--rules", str(REPO / "rules" / "web"), "--from", "-7d",
                                      "--format", "table"])
    assert hunt_command.handler(args, store.settings, now=datetime(2026, 12, 7, tzinfo=UTC)) == 0
    assert "0 alert(s)" in capsys.readouterr().out


def test_bad_rule_is_listed_and_the_others_run(demo: tuple[Store, list[Path], int], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    store, _, _ = demo
    bad = tmp_path / "bad.yml"
    bad.write_text("title: broken\nlogsource: {product: windows}\ndetection: {condition: nothing}\n",
                   encoding="utf-8")
    args = build_parser().parse_args(["hunt", "--rules", str(bad), str(REPO / "rules" / "web"),
                                      "--from", "2026-11-20", "--to", "2026-11-21", "--format", "jsonl", "--strict"])
    assert hunt_command.handler(args, store.settings) == 1
    captured = capsys.readouterr()
    assert f"rule not loaded: {bad}" in captured.err
    assert captured.out.count("\n") > 0  # the web rules still ran


def test_missing_store_is_a_clear_error(store: Store) -> None:
    settings = store.settings.model_copy(
        update={"event_store": store.settings.event_store.model_copy(update={"index_prefix": "t-hunt-none"})})
    with pytest.raises(HuntError, match="no event store"):
        hunt(store.client, settings, [REPO / "rules" / "web"], *RANGE)


def test_from_after_to_is_refused(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(start="2026-11-21", end="2026-11-20")
    assert hunt_command.handler(args, store.settings) == 2
    assert "is after --to" in capsys.readouterr().err


def test_a_failing_read_is_a_clear_error(demo: tuple[Store, list[Path], int]) -> None:
    store, _, _ = demo
    alias = store.settings.event_store.index_prefix
    pages = read_pages(store.client, alias, {"range": {"@timestamp": {"gte": "not a time"}}})
    with pytest.raises(HuntError, match="reading the event store failed after 0 events"):
        list(pages)
    with pytest.raises(HuntError, match="cannot count the candidate events"):
        day_slices(store.client, alias, {"range": {"@timestamp": {"gte": "not a time"}}})
