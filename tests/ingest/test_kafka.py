"""Kafka sink: buffered on disk while the broker is unreachable, delivered once it is there."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from ingest.files import collect_paths
from ingest.kafka import KafkaSink, consume_events
from ingest.settings import CollectorSettings
from ingest.spool import read_batches

DATA = Path(__file__).resolve().parent.parent / "data" / "ingest"
SETTINGS = CollectorSettings(commit_interval_s=0.2)


def _events_in_buffer(root: Path) -> int:
    return sum(len(batch) for batch in read_batches(root))


def test_unreachable_broker_buffers_on_disk_and_loses_nothing(tmp_path: Path) -> None:
    source = tmp_path / "app.jsonl"
    source.write_text("".join(f'{{"n": {n}}}\n' for n in range(500)))
    sink = KafkaSink("127.0.0.1:9", "never", buffer_dir=tmp_path / "spool", writer_id="files",
                     delivery_timeout_s=1.0, producer_config={"reconnect.backoff.max.ms": 200})
    try:
        stats = collect_paths([source], tmp_path / "spool", settings=SETTINGS, sink=sink)
    finally:
        sink.close(drain_timeout_s=1.0)
    assert stats.events == 500
    assert sink.delivered == 0
    buffer = tmp_path / "spool" / "kafka" / "files"
    assert _events_in_buffer(buffer) == 500
    # The offsets were committed with the buffer: a rerun adds nothing.
    again = KafkaSink("127.0.0.1:9", "never", buffer_dir=tmp_path / "spool", writer_id="files",
                      delivery_timeout_s=1.0)
    try:
        assert collect_paths([source], tmp_path / "spool", settings=SETTINGS, sink=again).events == 0
    finally:
        again.close(drain_timeout_s=0.5)
    assert not (tmp_path / "spool" / "segments").exists() or not list((tmp_path / "spool" / "segments").iterdir())


@pytest.mark.integration
def test_files_to_real_kafka_after_an_outage(tmp_path: Path, kafka_bootstrap: str) -> None:
    topic = f"socflow-ingest-{uuid.uuid4().hex[:8]}"
    source = tmp_path / "app.jsonl"
    shutil.copy(DATA / "ecs.jsonl", source)
    with source.open("a") as handle:
        handle.writelines(f'{{"n": {n}}}\n' for n in range(1000))
    # First the broker is "down" (wrong port): everything waits on disk.
    down = KafkaSink("127.0.0.1:9", topic, buffer_dir=tmp_path / "spool", writer_id="files", delivery_timeout_s=1.0)
    try:
        stats = collect_paths([source], tmp_path / "spool", settings=SETTINGS, sink=down)
    finally:
        down.close(drain_timeout_s=0.5)
    assert stats.events == 1004
    # The broker is back: a new sink on the same buffer delivers the backlog, with reports.
    up = KafkaSink(kafka_bootstrap, topic, buffer_dir=tmp_path / "spool", writer_id="files", delivery_timeout_s=30)
    try:
        assert collect_paths([source], tmp_path / "spool", settings=SETTINGS, sink=up).events == 0
    finally:
        up.close()
    assert up.pending_segments() == []
    events = consume_events(kafka_bootstrap, topic, group=f"g-{topic}", expect=1004, timeout_s=60)
    assert len(events) == 1004
    assert len({event["event"]["id"] for event in events}) == 1004


def test_back_pressure_blocks_commits_instead_of_growing(tmp_path: Path) -> None:
    import threading

    from ingest.spool import DeadLetter

    sink = KafkaSink("127.0.0.1:9", "never", buffer_dir=tmp_path / "spool", writer_id="bp", delivery_timeout_s=1.0,
                     max_buffer_bytes=1)
    done = threading.Event()

    def produce() -> None:
        sink.append({"n": 1})
        sink.dead_letter(DeadLetter("r", "s", "raw"))
        sink.commit({"f": 1})
        done.set()

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        assert not done.wait(1.5), "commit returned although the broker is unreachable and the buffer is full"
        assert _events_in_buffer(tmp_path / "spool" / "kafka" / "bp") == 1  # durable before it waits
    finally:
        sink.close(drain_timeout_s=0.2)
    assert done.wait(5), "close() must release a waiting commit"
