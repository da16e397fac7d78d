"""Scale-out: the detection job on the standalone Flink cluster, Kafka in, parallelism 2.

The cluster is the real one deploy/ starts (fixture ``flink_cluster``: a JobManager and two
TaskManagers); the job is ``detectors/flink/job.py`` submitted with ``flink run -py`` and the
JobSpec the ``socflow run`` command builds; the events reach Kafka through the collector
(``socflow collect files --kafka``) into a topic of two partitions, so both source subtasks
read. The alert set must be the one the local run gives (the local run equals ``socflow
replay``: tests/pipeline), id for id and count for count.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from alerts.commands.replay import replay
from alerts.commands.run import job_spec
from alerts.scenario import generate
from alerts.settings import load_settings
from deploy import flink
from deploy.java import find_java_home
from deploy.settings import StackSettings
from tests.faults.harness import newest_counts, stream_records

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "detectors" / "flink" / "job.py"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_cluster_job_with_kafka_and_parallelism_2_gives_the_local_alerts(
        tmp_path: Path, flink_cluster: str, kafka_bootstrap: str, stack_settings: StackSettings) -> None:
    started = time.monotonic()
    topic = f"socflow-cluster-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(timeout=30)
    del admin  # librdkafka handles keep reconnecting until destroyed

    files = generate(tmp_path / "inputs", datetime(2026, 11, 20, 7, 30, tzinfo=UTC))
    inputs = [files.mail, files.portal, files.windows]
    data = tmp_path / "data"
    collected = subprocess.run(
        [sys.executable, "-m", "alerts.cli", "--data-dir", str(data), "collect", "files", *map(str, inputs),
         "--kafka", kafka_bootstrap, "--topic", topic, "--no-progress"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert collected.returncode == 0, collected.stderr[-4000:]

    settings = load_settings(data_dir=data, job={"checkpoint_interval_ms": 1000})
    spec = job_spec(settings, bounded=True, parallelism=2, kafka=kafka_bootstrap, topic=topic)
    # On a cluster the jars (connector, socflow's own) travel with `flink run -C`; a pipeline.jars from the spec would
    # replace the flink-python jar the CLI puts there (ClassNotFoundException on the JobManager).
    # Thread mode fails on the cluster's TaskManagers (pemja: NoSuchFieldException
    # loadedLibraryNames on Java 17, before any record); process mode runs there.
    spec = dataclasses.replace(spec, jars=(), execution_mode="process")  # type: ignore[type-var]
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(spec.to_json(), encoding="utf-8")  # type: ignore[attr-defined]
    own_jar = flink.socflow_flink_jar(find_java_home(stack_settings), stack_settings.cache_dir)
    job_id = flink.submit_python_job(stack_settings, JOB, [str(spec_path)], parallelism=2,
                                     jars=[*flink.kafka_connector_jars(stack_settings), own_jar])
    state = flink.wait_for_job(stack_settings, job_id, timeout_s=600)
    assert state == "FINISHED", flink.job_exceptions(stack_settings, job_id)

    details = flink.job_details(stack_settings, job_id)
    assert {vertex["parallelism"] for vertex in details["vertices"]} == {2}
    taskmanagers = flink.subtask_taskmanagers(stack_settings, job_id)

    # Alerts are grouped (one per rule, entity and hour) and each update is a new version in the
    # stream: compare every alert's newest count, as Elasticsearch would end up holding them.
    got = newest_counts(stream_records(data / "alert-stream"))
    expected = newest_counts(d.as_record() for d in replay([REPO / "rules"], inputs,
                                                           load_settings(data_dir=tmp_path / "replay")).detections)
    print(f"cluster job {job_id}: {len(got)} alerts, taskmanagers {taskmanagers}, "
          f"{time.monotonic() - started:.0f} s")
    assert all(len(managers) == 2 for managers in taskmanagers.values())  # both TaskManagers worked
    assert got == expected
