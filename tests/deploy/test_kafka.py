"""The local KRaft Kafka broker: a message produced is consumed back."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from deploy import kafka
from deploy.settings import StackSettings

pytestmark = pytest.mark.integration


def test_produce_and_consume_one_message(kafka_bootstrap: str) -> None:
    topic = f"socflow-smoke-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(timeout=30)

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all", "enable.idempotence": True})
    payload = b'[{"event": {"code": "4688"}}, {"event": {"code": "4625"}}]'  # a batch record
    producer.produce(topic, key=b"node-1", value=payload)
    assert producer.flush(30) == 0
    del producer, admin  # librdkafka handles keep reconnecting (and logging) until destroyed

    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"g-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    received = None
    deadline = time.monotonic() + 60
    try:
        while received is None and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                received = message
    finally:
        consumer.close()
    assert received is not None, "no message consumed within 60 s"
    assert received.key() == b"node-1"
    assert received.value() == payload


def test_status_reports_the_broker(kafka_bootstrap: str, stack_settings: StackSettings) -> None:
    status = kafka.status(stack_settings)
    assert status.url == kafka_bootstrap
    assert status.up
    assert status.health == "ok"
