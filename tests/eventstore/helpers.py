"""Helpers of the event-store tests: a spool filled the real way, what the store holds."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from alerts.eventstore.writer import EventWriter
from alerts.settings import EventStoreSettings
from ingest.spool import read_batches


def unique_settings(**overrides: Any) -> EventStoreSettings:
    """Event-store settings with index names of this test alone."""
    tag = uuid.uuid4().hex[:10]
    return EventStoreSettings(index_prefix=f"t-evstore-{tag}", deadletter_prefix=f"t-evstore-dl-{tag}",
                              refresh_interval="1s", **overrides)


def spool_ids(spool_dir: Path) -> list[str]:
    """The event ids the collectors committed to a spool (with repeats, if any)."""
    return [event["event"]["id"] for batch in read_batches(spool_dir) for event in batch]


def stored(client: Elasticsearch, alias: str, *, fields: tuple[str, ...] = ("event.id",)) -> dict[str, dict[str, Any]]:
    """Every document under ``alias`` by ``_id`` (paged with search_after); fails on an id stored twice."""
    client.indices.refresh(index=alias, ignore_unavailable=True, allow_no_indices=True)
    documents: dict[str, dict[str, Any]] = {}
    after: list[Any] | None = None
    if not client.indices.exists_alias(name=alias):
        return documents
    while True:
        extra = {"search_after": after} if after else {}
        hits = client.search(index=alias, size=5000, sort=[{"event.id": "asc"}], query={"match_all": {}},
                             **extra)["hits"]["hits"]
        if not hits:
            return documents
        for hit in hits:
            assert hit["_id"] not in documents, f"{hit['_id']} stored twice"
            documents[hit["_id"]] = hit["_source"] | {"_index": hit["_index"], "_ignored": hit.get("_ignored", [])}
        after = hits[-1]["sort"]


def drop(client: Elasticsearch, settings: EventStoreSettings) -> None:
    """Delete this test's indices and templates (by name: destructive_requires_name)."""
    for prefix in (settings.index_prefix, settings.deadletter_prefix):
        for name in client.indices.get(index=f"{prefix}-*", allow_no_indices=True):
            client.indices.delete(index=name)
        if client.indices.exists_index_template(name=prefix):
            client.indices.delete_index_template(name=prefix)


def run_writer(client: Elasticsearch, spool: Path, settings: EventStoreSettings) -> Any:
    return EventWriter(client, spool, settings, sleep=lambda _s: None).run_once()
