"""What a collector writes to: the spool (default) or Kafka, behind one small protocol.

A sink buffers ``append``-ed events and dead letters and makes them durable together with
the collector's source offsets in ``commit(offsets)``; offsets committed are the position a
restarted collector resumes from, so an event is never both committed and re-read.
:class:`ingest.spool.SpoolWriter` is a sink as it is; :class:`ingest.kafka.KafkaSink` is the
other one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from ingest.schema import Event
from ingest.settings import CollectorSettings
from ingest.spool import DeadLetter, SpoolWriter


class Sink(Protocol):
    @property
    def offsets(self) -> dict[str, Any]: ...

    @property
    def events_uncommitted(self) -> int: ...

    def append(self, event: Event) -> None: ...

    def dead_letter(self, letter: DeadLetter) -> None: ...

    def commit(self, offsets: Mapping[str, Any] | None = None) -> int: ...


def open_sink(
    spool_dir: Path,
    writer_id: str,
    settings: CollectorSettings,
    *,
    kafka_bootstrap: str | None = None,
    kafka_topic: str | None = None,
) -> Sink:
    """The spool writer, or a Kafka sink buffering in ``spool_dir`` when a bootstrap is given."""
    if kafka_bootstrap:
        from ingest.kafka import KafkaSink  # confluent-kafka loads librdkafka: only when asked

        return KafkaSink(
            kafka_bootstrap,
            kafka_topic or "socflow-events",
            buffer_dir=spool_dir,
            writer_id=writer_id,
            batch_size=settings.batch_size,
            linger_ms=settings.kafka_linger_ms,
            delivery_timeout_s=settings.kafka_delivery_timeout_s,
        )
    return SpoolWriter(spool_dir, writer_id, batch_size=settings.batch_size)


def close_sink(sink: Sink) -> None:
    close = getattr(sink, "close", None)
    if callable(close):
        close()
