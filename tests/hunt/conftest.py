"""Fixtures of the hunt and timeline tests: an event store of their own on the real Elasticsearch.

Events reach the store the real way: the files collector writes them into a spool, then the
event writer indexes that spool (``stored_events``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from alerts.indexer import connect
from alerts.settings import Settings, load_settings
from ingest.files import collect_paths
from ingest.spool import read_batches

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Store:
    """A test's own event store (unique prefixes) and the settings that point at it."""

    settings: Settings
    client: Elasticsearch
    prefix: str

    def put(self, paths: Sequence[Path], spool: Path) -> int:
        """Collect files into ``spool`` and index it; returns how many events were stored."""
        collect_paths(list(paths), spool, settings=self.settings.collector, writer_id="test")
        return _write_spool(self.client, self.prefix, spool)


def _write_spool(client: Elasticsearch, prefix: str, spool: Path) -> int:
    # Temporary stand-in for the event writer of branch evstore (replaced on merge).
    actions: list[dict[str, Any]] = []
    for batch in read_batches(spool):
        for event in batch:
            day = str(event["@timestamp"])[:10].replace("-", ".")
            actions.append({"_op_type": "create", "_index": f"{prefix}-{day}", "_id": event["event"]["id"],
                            "_source": event})
    ok, errors = helpers.bulk(client, actions, raise_on_error=False, refresh="wait_for")
    assert not [e for e in errors if e.get("create", {}).get("status") != 409], errors[:3]
    return ok


def _install(client: Elasticsearch, prefix: str) -> None:
    keyword = {"type": "keyword", "ignore_above": 1024}
    client.indices.put_index_template(name=prefix, index_patterns=[f"{prefix}-*"], template={
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "aliases": {prefix: {}},
        "mappings": {"dynamic": False, "properties": {
            "@timestamp": {"type": "date", "ignore_malformed": True},
            "event": {"properties": {n: keyword for n in ("id", "dataset", "action", "outcome", "category", "kind")}},
            "host": {"properties": {"name": keyword, "hostname": keyword, "ip": {"type": "ip"}}},
            "user": {"properties": {"name": keyword, "domain": keyword}},
            "source": {"properties": {"ip": {"type": "ip", "ignore_malformed": True}, "port": {"type": "long"}}},
            "winlog": {"properties": {"channel": keyword, "event_id": {"type": "long", "ignore_malformed": True},
                                      "record_id": {"type": "long", "ignore_malformed": True},
                                      "computer_name": keyword}},
            "socflow": {"properties": {"logsource": {"properties": {n: keyword for n in
                                                                     ("product", "category", "service")}},
                                       "node": {"properties": {"id": keyword}}}},
        }},
    })


@pytest.fixture
def store(elasticsearch_url: str, tmp_path: Path) -> Iterator[Store]:
    """An empty event store (and alert alias) with unique names, deleted afterwards."""
    tag = uuid.uuid4().hex[:8]
    events, alerts = f"t-hunt-events-{tag}", f"t-hunt-alerts-{tag}"
    settings = load_settings(data_dir=tmp_path / "data",
                             elasticsearch={"url": elasticsearch_url, "index_prefix": alerts})
    settings = settings.model_copy(update={"event_store": _EventStore(events)})
    client = connect(settings.elasticsearch)
    _install(client, events)
    try:
        yield Store(settings=settings, client=client, prefix=events)
    finally:
        for name in client.indices.get(index=f"{events}-*,{alerts}-*", allow_no_indices=True):
            client.indices.delete(index=name)
        client.indices.delete_index_template(name=events)


@dataclass(frozen=True)
class _EventStore:
    index_prefix: str
