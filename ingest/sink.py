"""What a collector writes to: the spool (default) or Kafka, behind one small protocol.

A sink buffers ``append``-ed events and dead letters and makes them durable together with
the collector's source offsets in ``commit(offsets)``; offsets committed are the position a
restarted collector resumes from, so an event is never both committed and re-read.
:class:`ingest.spool.SpoolWriter` is a sink as it is; :class:`ingest.kafka.KafkaSink` is the
other one.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from ingest.errors import IngestError
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


_locks: dict[str, int] = {}


def _lock_path(spool_dir: Path, writer_id: str) -> Path:
    return Path(spool_dir).absolute() / "state" / f"{writer_id}.lock"


def lock_writer(spool_dir: Path, writer_id: str) -> bool:
    """Hold ``<spool>/state/<writer>.lock`` for this process: one writer id, one process.

    Two collectors with the same writer id would interleave their commits and corrupt the
    offsets; the lock (released by the kernel when the process ends, even by kill -9) makes the
    second one fail at start instead. Returns True if this call took the lock (the caller then
    releases it with :func:`unlock_writer`), False if this process already held it.
    """
    path = _lock_path(spool_dir, writer_id)
    if str(path) in _locks:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise IngestError(f"writer id {writer_id!r} is in use by another collector on {spool_dir}") from None
    _locks[str(path)] = descriptor
    return True


def unlock_writer(spool_dir: Path, writer_id: str) -> None:
    descriptor = _locks.pop(str(_lock_path(spool_dir, writer_id)), None)
    if descriptor is not None:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


def open_sink(
    spool_dir: Path,
    writer_id: str,
    settings: CollectorSettings,
    *,
    kafka_bootstrap: str | None = None,
    kafka_topic: str | None = None,
) -> Sink:
    """The spool writer, or a Kafka sink buffering in ``spool_dir`` when a bootstrap is given.

    The writer id is locked for this process (see :func:`lock_writer`).
    """
    lock_writer(spool_dir, writer_id)
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
