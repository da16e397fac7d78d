"""The event writer reading the Kafka topic, for collectors that send to Kafka (``--kafka``).

Each Kafka record is one batch (the JSON array a spool line holds). The writer consumes the
topic in its own consumer group (``socflow-event-store`` by default, independent of the Flink
job's) with auto-commit off and commits a partition's offset only after Elasticsearch
acknowledged every event before it; a bulk that fails for good makes it forget what it fetched
(the consumer is closed and opened again at the committed offsets), so nothing is skipped.
A kill re-delivers what was sent but not committed: found present, never doubled.

The collectors' dead letters stay on disk in their Kafka buffers
(``<spool>/kafka/<writer>/deadletter/``); the writer stores those it can see (the same volume),
keeping its position in ``<spool>/kafka/event-store.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from alerts.errors import IndexingError
from alerts.eventstore.writer import EventStats, EventWriter, PendingBulk, utc_stamp
from alerts.settings import EventStoreSettings

DEFAULT_GROUP = "socflow-event-store"


class KafkaEventWriter(EventWriter):
    """Consumes batch records from a Kafka topic into the event store; see the module docstring."""

    def __init__(self, client: Elasticsearch, spool_dir: Path, settings: EventStoreSettings, *, bootstrap: str,
                 topic: str, group: str = DEFAULT_GROUP, consumer_config: dict[str, Any] | None = None,
                 idle_s: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(client, spool_dir, settings, sleep=sleep)
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.idle_s = idle_s
        self.consumer_config = consumer_config or {}
        self._record_times: dict[str, str] = {}
        self._consumer: Any = None
        self._assigned = False
        self.join_timeout_s = 60.0  # joining the group takes a few seconds: not an idle topic

    @staticmethod
    def _position_path(spool_dir: Path) -> Path:
        return spool_dir / "kafka" / "event-store.json"

    def _deadletter_files(self) -> list[Path]:
        return sorted((self.spool_dir / "kafka").glob("*/deadletter/dl-*.jsonl"))

    def _open(self) -> Any:
        if self._consumer is None:
            from confluent_kafka import Consumer  # librdkafka: loaded only when Kafka is used

            config = {"bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "client.id": "socflow-event-store",
                      "fetch.max.bytes": 64 * 1024 * 1024, **self.consumer_config}
            self._consumer = Consumer(config)
            self._assigned = False
            self._consumer.subscribe([self.topic], on_assign=self._on_assign)
        return self._consumer

    def _on_assign(self, _consumer: Any, _partitions: Any) -> None:
        self._assigned = True

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _record_time(self, segment: str) -> str:
        return self._record_times.get(segment, utc_stamp(time.time()))

    def run_once(self, *, refresh: bool = True) -> EventStats:
        """Store what the topic holds until it stays quiet for ``idle_s``; commit after each bulk."""
        stats = EventStats()
        self._ensure_templates(stats)
        consumer = self._open()
        bulk = PendingBulk()
        offsets: dict[tuple[str, int], int] = {}
        joining_since = time.monotonic()
        try:
            while True:
                messages = consumer.consume(num_messages=200, timeout=self.idle_s)
                if not messages:
                    if self._assigned or time.monotonic() - joining_since > self.join_timeout_s:
                        break
                    continue
                for message in messages:
                    if message.error() is not None:
                        if message.error().retriable() or message.error().code() == -191:  # _PARTITION_EOF
                            continue
                        raise IndexingError(f"Kafka: {message.error()}", source=self.topic)
                    segment = f"{message.topic()}:{message.partition()}"
                    kind, stamp = message.timestamp()  # the producer's time: the same on every delivery
                    moment = stamp / 1000.0 if kind and stamp > 0 else time.time()
                    self._record_times[segment] = utc_stamp(moment)
                    self._add_line(bulk, segment, message.offset(), message.value() or b"", stats)
                    offsets[(message.topic(), message.partition())] = message.offset() + 1
                    if self._full(bulk):
                        bulk = self._commit(bulk, offsets, stats)
            self._commit(bulk, offsets, stats)
        except IndexingError:
            self.close()  # forget what was fetched: the next run starts at the committed offsets
            raise
        self._finish(stats, refresh=refresh)
        return stats

    def _commit(self, bulk: PendingBulk, offsets: dict[tuple[str, int], int], stats: EventStats) -> PendingBulk:
        from confluent_kafka import KafkaException, TopicPartition

        if bulk.items:
            self._send(bulk.items, stats)
        if offsets:
            partitions = [TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()]
            try:
                self._consumer.commit(offsets=partitions, asynchronous=False)
            except KafkaException as error:  # a rebalance: the records come again, found present
                raise IndexingError(f"Kafka offset commit failed: {error}", source=self.topic) from error
            offsets.clear()
        return PendingBulk()
