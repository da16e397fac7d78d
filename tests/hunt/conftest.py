"""Fixtures of the hunt and timeline tests: an event store of their own on the real Elasticsearch.

Events reach the store the real way: the files collector writes them into a spool, then the
event writer indexes that spool (``stored_events``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from alerts.eventstore.writer import EventWriter
from alerts.indexer import connect
from alerts.settings import Settings, load_settings
from ingest.files import collect_paths

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Store:
    """A test's own event store (unique prefixes) and the settings that point at it."""

    settings: Settings
    client: Elasticsearch
    prefix: str

    def put(self, paths: Sequence[Path], spool: Path) -> int:
        """Collect files into ``spool`` and index it; returns how many events the store holds.

        Counted in the store, not from the writer's statistics: on a loaded machine a bulk
        request can time out after Elasticsearch stored it, and the writer's retry then finds
        those events already there (op create) and does not count them as indexed."""
        collect_paths(list(paths), spool, settings=self.settings.collector, writer_id="test")
        EventWriter(self.client, spool, self.settings.event_store).run_once()
        return int(self.client.count(index=self.prefix)["count"])


@pytest.fixture
def store(elasticsearch_url: str, tmp_path: Path) -> Iterator[Store]:
    """An empty event store (and alert alias) with unique names, deleted afterwards."""
    tag = uuid.uuid4().hex[:8]
    events, alerts, dead = f"t-hunt-events-{tag}", f"t-hunt-alerts-{tag}", f"t-hunt-dl-{tag}"
    settings = load_settings(data_dir=tmp_path / "data",
                             elasticsearch={"url": elasticsearch_url, "index_prefix": alerts},
                             event_store={"index_prefix": events, "deadletter_prefix": dead,
                                          "metrics_port": 0})
    client = connect(settings.elasticsearch)
    try:
        yield Store(settings=settings, client=client, prefix=events)
    finally:
        names = sorted(client.indices.get(index=f"{events}-*,{alerts}-*,{dead}-*", allow_no_indices=True))
        for first in range(0, len(names), 50):  # by names (wildcard deletes are refused), 50 a request
            client.indices.delete(index=",".join(names[first:first + 50]))
        for template in (events, dead):
            client.options(ignore_status=404).indices.delete_index_template(name=template)
