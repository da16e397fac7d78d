"""Hot reload on the local runtime, spool and Kafka: switch rule sets under a steady stream, refuse a
broken one, and kill -9 and restore the job between the switches.

A feeder commits a spool segment (one batch of 40 events) every 0.2 s for the whole test. The job
(``socflow run``) starts on published rule set v1; v2 is published while it runs; then ``current``
is pointed at a broken set (the job must refuse it and keep v2); the job is killed with SIGKILL
and restored from its latest checkpoint while the feed goes on; finally v3 is published and the
job killed at once (before it switched, most likely) and restored again.

Every event fires the probe rule in every version (tests/rules/hotreload_fixtures.py), each on
its own host, so every event is exactly one alert and its ``ruleset_version`` says who judged it.
Checked: each event alerted exactly once in the committed alert stream (none twice, none missed);
versions never go back in stream order and change only between batches; the job restored after
v3's publication resumes on v2, the version its checkpoint held, before switching to v3; and the
alerts equal a replay of the same events through the core, split at the observed switch points.

A second test switches a running job to a set whose correlation is unchanged and whose brute-force
threshold is lower: the correlation's half-built window and the failures counted survive the switch.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from alerts.settings import REPO_ROOT, load_settings
from detectors.anomaly.logic import detector_rule
from detectors.pipeline import BatchProcessor
from detectors.ruleset import MANIFEST, REFUSED, load_published, publish, set_current, tree_digest
from ingest.logs import log_event
from ingest.spool import SpoolWriter
from tests.faults.harness import JOB_ENV, kill_group, latest_checkpoint, socflow, stream_records, wait_for
from tests.rules.hotreload_fixtures import (
    BATCH,
    CORRELATION_ID,
    Feeder,
    alerts_by_event,
    events,
    failed_logon,
    marked,
    versions_seen,
    write_rule_set,
    write_stateful_set,
)

LOGGER = logging.getLogger(__name__)
pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONFIG = REPO_ROOT / "config"
ENV = {**JOB_ENV, "SOCFLOW_JOB__RELOAD_INTERVAL_S": "1"}


@pytest.mark.parametrize("source", ["spool", "kafka"])
def test_rule_sets_switch_under_load_and_across_a_restore(tmp_path: Path, source: str,
                                                          request: pytest.FixtureRequest) -> None:
    data = tmp_path / "data"
    settings = load_settings(data_dir=data)
    store, stream = settings.ruleset_store_dir, settings.alert_stream_dir
    v1 = publish([write_rule_set(tmp_path / "v1", level="low")], store, config_dir=CONFIG).version
    run: tuple[str, ...] = ("run",)
    kafka = None
    if source == "kafka":
        kafka = (str(request.getfixturevalue("kafka_bootstrap")), f"socflow-hotreload-{uuid.uuid4().hex[:8]}")
        run = ("run", "--kafka", kafka[0], "--topic", kafka[1])
    feeder = Feeder(settings.spool_dir, kafka=kafka)
    feeder.start()
    job = socflow(data, *run, env=ENV, log=tmp_path / "job-1.log")
    try:
        wait_for(lambda: v1 in versions_seen(stream), 240, "alerts judged by v1")
        published_at = time.monotonic()
        v2 = publish([write_rule_set(tmp_path / "v2", level="high")], store, config_dir=CONFIG).version
        wait_for(lambda: v2 in versions_seen(stream), 120, "alerts judged by v2")
        # Publish to the first committed alert of v2 (poll 1 s + load + next checkpoint; a figure, not a bound).
        log_event(LOGGER, "hot_reload_first_new_alert", seconds=round(time.monotonic() - published_at, 1))
        # A set that does not load, made current behind publish's back (publish would refuse it);
        # named by its true digest, so the job refuses it for its broken rule, not its name.
        draft = tmp_path / "broken"
        shutil.copytree(store / v2, draft)
        (next(draft.rglob("hotreload_probe.yml"))).write_text("title: [\n", encoding="utf-8")
        (draft / MANIFEST).write_text(json.dumps({"version": tree_digest(draft)}), encoding="utf-8")
        broken = store / tree_digest(draft)
        shutil.copytree(draft, broken)
        set_current(store, broken.name)
        refusal = store / REFUSED / f"{broken.name}.json"
        wait_for(refusal.exists, 60, "the broken set refused by the job")
        refused = json.loads(refusal.read_text(encoding="utf-8"))
        assert refused["kept"] == v2 and "hotreload_probe.yml" in " ".join(refused["reasons"]), refused
        time.sleep(3.0)  # the job keeps judging with v2 meanwhile
        kill_group(job)
        checkpoint = latest_checkpoint(settings.checkpoint_dir)
        assert checkpoint is not None
        refusal.unlink()
        at_kill = len(alerts_by_event(stream)[0])
        time.sleep(2.0)  # the feed goes on while the job is down
        job = socflow(data, *run, "--restore", str(checkpoint), env=ENV, log=tmp_path / "job-2.log")
        wait_for(lambda: len(alerts_by_event(stream)[0]) > at_kill + 5 * BATCH, 240, "alerts of the restored job")
        # The restored job tried `current` (the broken set), refused it again and kept v2.
        assert refusal.exists()
        # Killed again right after publishing v3, most likely before it looked (every second):
        # the restored job starts on v3 or switches to it, at a batch boundary either way.
        v3 = publish([write_rule_set(tmp_path / "v3", level="medium")], store, config_dir=CONFIG).version
        kill_group(job)
        committed_at_kill = len(alerts_by_event(stream)[0])
        checkpoint = latest_checkpoint(settings.checkpoint_dir)
        assert checkpoint is not None
        job = socflow(data, *run, "--restore", str(checkpoint), env=ENV, log=tmp_path / "job-3.log")
        wait_for(lambda: v3 in versions_seen(stream), 240, "alerts judged by v3")
        time.sleep(2.0)
        feeder.stop.set()
        feeder.join()
        sent = feeder.sent
        wait_for(lambda: len(alerts_by_event(stream)[0]) >= sent, 180, "an alert for every event fed")
        time.sleep(3.0)  # a doubled alert would be committed within a checkpoint or two
    finally:
        feeder.stop.set()
        kill_group(job)

    by_event, seen = alerts_by_event(stream)
    fed = events(0, sent)
    ids = [event["event"]["id"] for event in fed]
    # Exactly once: every event judged, none judged twice (in committed output).
    assert set(by_event) == set(ids)
    assert [event_id for event_id, count in seen.items() if count != 1] == []
    # Versions in stream order: v1, then v2, then v3, each switch between two batches.
    order = [by_event[event_id]["rule"]["ruleset_version"] for event_id in ids]
    runs = [order[0], *(version for previous, version in itertools.pairwise(order) if version != previous)]
    assert runs == [v1, v2, v3], runs
    switches = [position for position in range(1, len(order)) if order[position] != order[position - 1]]
    assert all(position % BATCH == 0 for position in switches), switches
    # The broken set never judged anything; the restored job started on v2 (its fallback).
    assert broken.name not in order
    # The last checkpoint held v2 as the version in force (keyed state): the restored job resumed
    # on it although `current` named v3 when it started, and switched to v3 by the normal path
    # (the watcher's next look). The first event not committed at the kill was judged either
    # before the checkpoint (by v2, committed on restore) or by the restored job's first batches.
    assert order[committed_at_kill] == v2, "the job restored after v3's publication did not resume on v2"
    # Same alerts as a replay of the same events split at the switch points.
    bounds = [0, *switches, len(fed)]
    expected: dict[str, tuple[str, str, str]] = {}
    for (start, end), version in zip(itertools.pairwise(bounds), (v1, v2, v3), strict=True):
        loaded = load_published(store, version, CONFIG)
        for detection in BatchProcessor(loaded.matcher).process(fed[start:end]).detections:
            rule = detection.rule
            expected[detection.event_ids[0]] = (rule.ruleset_version, rule.version, rule.level)
    actual = {event_id: (record["rule"]["ruleset_version"], record["rule"]["version"], record["rule"]["level"])
              for event_id, record in by_event.items()}
    assert actual == expected


def test_correlation_state_and_detector_thresholds_across_a_switch(tmp_path: Path) -> None:
    """v1 → v2 while the job runs (spool): the correlation, unchanged, completes a window half-built
    under v1 and fires once, stamped v2; brute force's threshold drops from 10 to 4 failures and
    fires on the 4th failure, counting the three seen under v1 (its state kept)."""
    data = tmp_path / "data"
    settings = load_settings(data_dir=data)
    store, stream = settings.ruleset_store_dir, settings.alert_stream_dir
    rules, detectors = write_stateful_set(tmp_path / "v1", level="low", gte=3, failures=10)
    v1 = publish([rules], store, config_dir=CONFIG, detectors=detectors).version
    writer = SpoolWriter(settings.spool_dir, "hotreload", batch_size=BATCH)

    def feed(batch: list[dict[str, Any]]) -> None:
        for event in batch:
            writer.append(event)
        writer.commit({})

    def stateful_alerts() -> list[dict[str, Any]]:
        return [record for record in stream_records(stream) if record["rule"]["id"] in (CORRELATION_ID, brute_id)]

    brute_id = detector_rule("bruteforce", "medium").id
    job = socflow(data, "run", env=ENV, log=tmp_path / "job.log")
    try:
        feed([marked(0, "web-a"), marked(1, "web-a"), *(failed_logon(n, "alice") for n in (2, 3, 4))])
        wait_for(lambda: v1 in versions_seen(stream), 240, "alerts judged by v1")
        rules, detectors = write_stateful_set(tmp_path / "v2", level="high", gte=3, failures=4)
        v2 = publish([rules], store, config_dir=CONFIG, detectors=detectors).version
        number = 100
        deadline = time.monotonic() + 120
        while v2 not in versions_seen(stream):  # a steady trickle until the job judges with v2
            assert time.monotonic() < deadline, "no alert judged by v2"
            feed(events(number, 2))
            number += 2
            time.sleep(0.3)
        feed([marked(number, "web-a"), failed_logon(number + 1, "alice")])
        # 20 s later in event time, with a keyed item (only those move the keyed operators'
        # watermark): the watermark passes the items above and their timers fire.
        feed([failed_logon(number + 2000, "bob")])
        wait_for(lambda: len(stateful_alerts()) >= 2, 120, "the correlation and brute-force alerts")
        time.sleep(2.0)  # a second firing would be committed within a checkpoint or two
    finally:
        kill_group(job)
    fired = stateful_alerts()
    correlation = [record for record in fired if record["rule"]["id"] == CORRELATION_ID]
    assert len(correlation) == 1, correlation
    assert correlation[0]["rule"]["ruleset_version"] == v2
    assert correlation[0]["event_ids"] == ["hr-mark-0000000", "hr-mark-0000001", f"hr-mark-{number:07d}"]
    brute = [record for record in fired if record["rule"]["id"] == brute_id]
    assert len(brute) == 1 and brute[0]["rule"]["ruleset_version"] == v2, brute
    assert set(brute[0]["event_ids"]) == {f"hr-fail-{n:07d}" for n in (2, 3, 4, number + 1)}
