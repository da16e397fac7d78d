"""``socflow stack up --event-writer``: the writer runs in the background, follows the spool, stops on ``down``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from alerts.eventstore import service
from alerts.scenario import generate
from alerts.settings import load_settings
from ingest.files import collect_paths
from tests.eventstore.helpers import drop, spool_ids, stored, unique_settings
from tests.eventstore.test_store import START

pytestmark = pytest.mark.integration


def test_the_background_writer_follows_the_spool(tmp_path: Path, elasticsearch_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    settings = unique_settings()
    for name, value in (("INDEX_PREFIX", settings.index_prefix), ("DEADLETTER_PREFIX", settings.deadletter_prefix),
                        ("POLL_INTERVAL_S", "0.2"), ("METRICS_PORT", "0")):
        monkeypatch.setenv(f"SOCFLOW_EVENT_STORE__{name}", value)
    data = tmp_path / "data"
    client = Elasticsearch(elasticsearch_url, request_timeout=30)
    try:
        running = service.start(data, elasticsearch_url, 0)
        assert running.state == "running" and running.pid
        assert service.start(data, elasticsearch_url, 0).pid == running.pid  # idempotent
        files = generate(tmp_path / "in", START)
        collect_paths([files.mail, files.windows], data / "spool", settings=load_settings().collector,
                      writer_id="files", progress=False)
        expected = sorted(spool_ids(data / "spool"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sorted(stored(client, settings.index_prefix)) != expected:
            time.sleep(0.5)
        assert sorted(stored(client, settings.index_prefix)) == expected
    finally:
        assert service.stop(data)
        drop(client, settings)
    assert service.status(data, elasticsearch_url, 0).state == "stopped"
    assert "events_stored" in (data / "event-store" / "writer.log").read_text(encoding="utf-8")
