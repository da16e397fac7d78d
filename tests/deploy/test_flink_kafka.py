"""The Flink Kafka connector jar from deploy.flink works on the cluster against the test broker."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from deploy import flink
from deploy.settings import StackSettings

pytestmark = pytest.mark.integration

ECHO_JOB = Path(flink.__file__).parent / "jobs" / "kafka_echo.py"


def test_connector_jar_is_cached_and_verified(kafka_connector_jars: list[Path]) -> None:
    assert kafka_connector_jars
    for jar in kafka_connector_jars:
        assert jar.name.startswith("flink-sql-connector-kafka-")
        assert jar.with_name(jar.name + ".sha1").exists()
    assert all(url.startswith("file:///") for url in flink.jar_urls(kafka_connector_jars))


def test_cluster_job_reads_kafka_with_the_connector(flink_cluster: str, kafka_bootstrap: str,
                                                    kafka_connector_jars: list[Path],
                                                    stack_settings: StackSettings, tmp_path: Path) -> None:
    topic = f"socflow-echo-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    values = [f"event-{index}" for index in range(20)]
    for value in values:
        producer.produce(topic, value=value.encode())
    assert producer.flush(30) == 0
    del producer, admin  # librdkafka handles keep reconnecting (and logging) until destroyed

    output = tmp_path / "echo"
    job_id = flink.submit_python_job(stack_settings, ECHO_JOB, [kafka_bootstrap, topic, str(output)],
                                     parallelism=2, jars=kafka_connector_jars)
    state = flink.wait_for_job(stack_settings, job_id, timeout_s=300)
    assert state == "FINISHED", flink.job_exceptions(stack_settings, job_id)
    lines = sorted(line for part in output.rglob("part-*") for line in part.read_text().splitlines())
    assert lines == sorted(value.upper() for value in values)
