"""Hot reload on the standalone Flink cluster: Kafka in (two partitions), parallelism 2.

The continuous job is submitted as in ``test_cluster_kafka.py`` (process mode: thread mode fails
on the cluster's TaskManagers); the rule set store is a directory every TaskManager reads (this
machine's). A feeder sends one batch of 40 events every 0.2 s, alternating partitions; v2 is
published while the job runs. Each source subtask reads one partition and judges its batches in
order, so per partition the versions go v1 then v2, switching between two batches; every event
is alerted exactly once; and the alerts equal a replay split at each partition's switch point.
Not covered here: a kill and restore on the cluster (the local runtime test covers it).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from alerts.commands.run import job_spec
from alerts.settings import REPO_ROOT, load_settings
from deploy import flink
from deploy.java import find_java_home
from deploy.settings import StackSettings
from detectors.pipeline import BatchProcessor
from detectors.ruleset import load_published, publish
from tests.faults.harness import wait_for
from tests.rules.hotreload_fixtures import BATCH, Feeder, alerts_by_event, events, versions_seen, write_rule_set

JOB = REPO_ROOT / "detectors" / "flink" / "job.py"
CONFIG = REPO_ROOT / "config"
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_cluster_job_switches_rule_sets_per_partition_exactly_once(
        tmp_path: Path, flink_cluster: str, kafka_bootstrap: str, stack_settings: StackSettings) -> None:
    topic = f"socflow-hotreload-cluster-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(timeout=30)
    del admin
    data = tmp_path / "data"
    settings = load_settings(data_dir=data, job={"checkpoint_interval_ms": 1000, "reload_interval_s": 1})
    store, stream = settings.ruleset_store_dir, settings.alert_stream_dir
    v1 = publish([write_rule_set(tmp_path / "v1", level="low")], store, config_dir=CONFIG).version
    spec = job_spec(settings, bounded=False, parallelism=2, kafka=kafka_bootstrap, topic=topic)
    spec = dataclasses.replace(spec, jars=(), execution_mode="process")  # type: ignore[type-var]
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(spec.to_json(), encoding="utf-8")  # type: ignore[attr-defined]
    own_jar = flink.socflow_flink_jar(find_java_home(stack_settings), stack_settings.cache_dir)
    feeder = Feeder(settings.spool_dir, kafka=(kafka_bootstrap, topic), partitions=2)
    feeder.start()
    job_id = flink.submit_python_job(stack_settings, JOB, [str(spec_path)], parallelism=2,
                                     jars=[*flink.kafka_connector_jars(stack_settings), own_jar])
    try:
        wait_for(lambda: v1 in versions_seen(stream), 300, "alerts judged by v1")
        v2 = publish([write_rule_set(tmp_path / "v2", level="high")], store, config_dir=CONFIG).version
        wait_for(lambda: v2 in versions_seen(stream), 180, "alerts judged by v2")
        time.sleep(3.0)
        feeder.stop.set()
        feeder.join()
        sent = feeder.sent
        wait_for(lambda: len(alerts_by_event(stream)[0]) >= sent, 300, "an alert for every event fed")
        time.sleep(3.0)
    finally:
        feeder.stop.set()
        flink.cancel_job(stack_settings, job_id)

    by_event, seen = alerts_by_event(stream)
    fed = events(0, sent)
    assert set(by_event) == {event["event"]["id"] for event in fed}
    assert [event_id for event_id, count in seen.items() if count != 1] == []
    expected: dict[str, tuple[str, str]] = {}
    for partition in (0, 1):
        batches = [fed[start:start + BATCH] for start in range(partition * BATCH, sent, 2 * BATCH)]
        order = [by_event[batch[0]["event"]["id"]]["rule"]["ruleset_version"] for batch in batches]
        for batch, version in zip(batches, order, strict=True):
            # One version per batch: the switch falls between two batches.
            assert {by_event[e["event"]["id"]]["rule"]["ruleset_version"] for e in batch} == {version}
            loaded = load_published(store, version, CONFIG)
            for detection in BatchProcessor(loaded.matcher).process(batch).detections:
                expected[detection.event_ids[0]] = (detection.rule.ruleset_version, detection.rule.level)
        switch = order.index(v2)
        assert order == [v1] * switch + [v2] * (len(order) - switch), f"partition {partition}: {order}"
    actual = {event_id: (record["rule"]["ruleset_version"], record["rule"]["level"])
              for event_id, record in by_event.items()}
    assert actual == expected
