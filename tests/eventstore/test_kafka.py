"""The event writer over a real Kafka topic: the collected events, once, offsets committed after ES acknowledged."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from alerts.eventstore.kafka_source import KafkaEventWriter
from ingest.files import collect_paths
from ingest.kafka import KafkaSink
from ingest.settings import CollectorSettings
from tests.eventstore.helpers import drop, stored, unique_settings

pytestmark = pytest.mark.integration


def test_kafka_topic_into_the_store_exactly_once(tmp_path: Path, kafka_bootstrap: str, elasticsearch_url: str) -> None:
    topic = f"t-evstore-{uuid.uuid4().hex[:8]}"
    source = tmp_path / "app.jsonl"
    source.write_text("".join(f'{{"@timestamp": "2026-11-20T08:{n // 60 % 60:02d}:{n % 60:02d}Z", "n": {n}}}\n'
                              for n in range(3000)) + "not json\n", encoding="utf-8")
    sink = KafkaSink(kafka_bootstrap, topic, buffer_dir=tmp_path / "spool", writer_id="files", batch_size=250)
    try:
        stats = collect_paths([source], tmp_path / "spool", settings=CollectorSettings(batch_size=250), sink=sink)
    finally:
        sink.close()
    assert stats.events == 3000 and stats.dead_letters == 1
    client = Elasticsearch(elasticsearch_url, request_timeout=60)
    settings = unique_settings(bulk_size=1000)
    group = f"t-evstore-{uuid.uuid4().hex[:8]}"
    try:
        writer = KafkaEventWriter(client, tmp_path / "spool", settings, bootstrap=kafka_bootstrap, topic=topic,
                                  group=group, idle_s=3.0)
        try:
            first = writer.run_once()
            again = writer.run_once()  # offsets committed: nothing is fetched again
        finally:
            writer.close()
        assert (first.indexed, first.already_present, first.deadletters_stored) == (3000, 0, 1)
        assert first.bulks >= 3
        assert (again.indexed, again.already_present) == (0, 0)
        documents = stored(client, settings.index_prefix)
        assert len(documents) == 3000
        assert sorted(document["n"] for document in documents.values()) == list(range(3000))
        assert all(letter["reason"] for letter in stored(client, settings.deadletter_prefix).values())
        # Another group reads the topic from the start: every event found present, none doubled.
        other = KafkaEventWriter(client, tmp_path / "spool", settings, bootstrap=kafka_bootstrap, topic=topic,
                                 group=f"{group}-2", idle_s=3.0)
        try:
            replayed = other.run_once()
        finally:
            other.close()
        assert (replayed.indexed, replayed.already_present) == (0, 3000)
        assert len(stored(client, settings.index_prefix)) == 3000
    finally:
        drop(client, settings)
