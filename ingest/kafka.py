"""Kafka transport: a sink that buffers on disk and forwards batch records with delivery reports.

:class:`KafkaSink` is a :class:`ingest.sink.Sink`. Events first go through a spool of their
own (``<spool>/kafka/<writer>/``, never read by the Flink job's file source) with the same
two-phase commit as the default transport, so offsets and events stay exactly-once on disk.
A forwarder thread then sends every line of each sealed segment -- a JSON array of events,
the same batch record the spool carries -- as one Kafka record (key: the writer id, so one
collector's records stay in order on one partition) and deletes the segment only once every
record of it has a successful delivery report.

When the broker is slow or unreachable the segments simply wait on disk (buffering, not
dropping); past ``max_buffer_bytes`` of undelivered data ``commit`` blocks until the forwarder
catches up, which slows the collector down (a TCP syslog sender then feels it too).

Delivery is at-least-once: a segment partly delivered before a failure is sent again whole.
``event.id`` is deterministic, so the Flink job's alert ids make such repeats harmless.
Dead letters stay on disk in the buffer's ``deadletter/`` directory.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ingest.errors import IngestError
from ingest.logs import log_event
from ingest.metrics import BACKPRESSURE
from ingest.schema import Event
from ingest.spool import DeadLetter, SpoolWriter, sealed_segments

_log = logging.getLogger(__name__)


class KafkaSink:
    """Spool-buffered Kafka producer (see the module docstring)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        buffer_dir: Path,
        writer_id: str,
        batch_size: int = 1000,
        linger_ms: int = 50,
        delivery_timeout_s: float = 30.0,
        max_buffer_bytes: int = 1 << 30,
        producer_config: Mapping[str, Any] | None = None,
    ) -> None:
        from confluent_kafka import Producer  # librdkafka: loaded only when Kafka is used

        self.topic = topic
        self.writer_id = writer_id
        self.root = Path(buffer_dir) / "kafka" / writer_id
        self.spool = SpoolWriter(self.root, writer_id, batch_size=batch_size)
        self.delivery_timeout_s = delivery_timeout_s
        self.max_buffer_bytes = max_buffer_bytes
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,  # broker-side dedup of the producer's own retries
            "linger.ms": linger_ms,
            "compression.type": "lz4",
            "message.max.bytes": 16 * 1024 * 1024,
            "delivery.timeout.ms": int(delivery_timeout_s * 1000),
            "client.id": f"socflow-{writer_id}",
        }
        config.update(producer_config or {})
        self.producer = Producer(config)
        self.delivered = 0
        self.failed = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._error: str | None = None
        self._thread = threading.Thread(target=self._forward_loop, name=f"kafka-{writer_id}", daemon=True)
        self._thread.start()

    # -- the Sink protocol ---------------------------------------------------------------------
    @property
    def offsets(self) -> dict[str, Any]:
        return self.spool.offsets

    @property
    def events_uncommitted(self) -> int:
        return self.spool.events_uncommitted

    def append(self, event: Event) -> None:
        self.spool.append(event)

    def dead_letter(self, letter: DeadLetter) -> None:
        self.spool.dead_letter(letter)

    def commit(self, offsets: Mapping[str, Any] | None = None) -> int:
        committed = self.spool.commit(offsets)
        self._wake.set()
        waited_from = time.monotonic()
        while self.buffered_bytes() > self.max_buffer_bytes and not self._stop.is_set():
            # Back-pressure: the broker is behind; hold the collector rather than grow without end.
            self._wake.set()
            time.sleep(0.2)
        waited = time.monotonic() - waited_from
        if waited > 0.1:
            BACKPRESSURE.labels(self.writer_id).inc(waited)
        return committed

    def close(self, drain_timeout_s: float | None = None) -> None:
        """Try to deliver what is buffered (up to the delivery timeout), then stop."""
        deadline = time.monotonic() + (self.delivery_timeout_s if drain_timeout_s is None else drain_timeout_s)
        while self.pending_segments() and time.monotonic() < deadline and self._thread.is_alive():
            self._wake.set()
            time.sleep(0.1)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.delivery_timeout_s + 5)
        left = self.pending_segments()
        if left:
            log_event(_log, "kafka_buffered_on_close", logging.WARNING, segments=len(left), dir=str(self.root))
        self.producer.flush(1.0)

    # -- forwarding ------------------------------------------------------------------------------
    def pending_segments(self) -> list[Path]:
        return sealed_segments(self.root)

    def buffered_bytes(self) -> int:
        total = 0
        for segment in self.pending_segments():
            try:
                total += segment.stat().st_size
            except FileNotFoundError:
                continue
        return total

    def _forward_loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            for segment in self.pending_segments():
                if self._stop.is_set():
                    break
                try:
                    ok = self._send_segment(segment)
                except (OSError, ValueError, IngestError) as error:
                    log_event(_log, "kafka_segment_unreadable", logging.ERROR, segment=str(segment), error=str(error))
                    ok = False
                if not ok:
                    # Broker unreachable or slow: keep the data on disk, retry with backoff.
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
                    self._wake.set()
                    break
                backoff = 0.5

    def _send_segment(self, segment: Path) -> bool:
        lines = [line for line in segment.read_text(encoding="utf-8").splitlines() if line]
        results: list[str | None] = [None] * len(lines)

        def report(index: int) -> Any:
            def callback(error: Any, message: Any) -> None:
                results[index] = "ok" if error is None else str(error)
            return callback

        key = self.writer_id.encode()
        for index, line in enumerate(lines):
            self._produce(line.encode("utf-8"), key, report(index))
        deadline = time.monotonic() + self.delivery_timeout_s
        while any(result is None for result in results) and time.monotonic() < deadline:
            self.producer.poll(0.1)
        failed = [result for result in results if result != "ok"]
        if failed:
            self.failed += len(failed)
            log_event(_log, "kafka_delivery_failed", logging.WARNING, segment=segment.name, records=len(failed),
                      error=next((r for r in failed if r), "timeout"))
            return False
        self.delivered += len(lines)
        segment.unlink()
        log_event(_log, "kafka_segment_delivered", logging.DEBUG, segment=segment.name, records=len(lines))
        return True

    def _produce(self, value: bytes, key: bytes, callback: Any) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value=value, key=key, on_delivery=callback)
                return
            except BufferError:
                self.producer.poll(0.5)  # the local queue is full: let deliveries drain it
            except Exception as error:  # noqa: BLE001 - KafkaException carries broker/config errors
                callback(error, None)
                return


def consume_events(bootstrap: str, topic: str, *, group: str, timeout_s: float = 30.0,
                   expect: int | None = None) -> list[Event]:
    """Read the batch records of ``topic`` back into events (tests and debugging)."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    events: list[Event] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and (expect is None or len(events) < expect):
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            events.extend(json.loads(message.value() or b"[]"))
    finally:
        consumer.close()
    return events
