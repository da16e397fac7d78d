"""A small generated year loaded once into the real test Elasticsearch, under unique names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from alerts import yeardata
from alerts.audit.trail import AuditTrail
from alerts.eventstore.template import install_event_templates
from alerts.indexer import install_template
from alerts.settings import Settings, load_settings
from ingest.assets import AssetInventory
from ingest.normalize import resolve_config_path

YEAR = yeardata.Year(alerts=3000, incidents=8, event_days=8, events_per_source_day=3, event_nodes=6)
NOW = datetime.fromisoformat("2026-12-16T09:00:00+07:00")  # the day after the yearly period ends
# A fixed rule directory for the golden files (the project's rules/ grows; these do not).
RULES_DIR = Path(__file__).resolve().parent / "rules"


@dataclass
class Loaded:
    client: Elasticsearch
    settings: Settings
    prefix: str
    documents: dict[str, list[tuple[str, str, dict[str, Any]]]]


def settings_for(url: str, prefix: str, data_dir: Path) -> Settings:
    return load_settings(data_dir=data_dir, elasticsearch={"url": url, "index_prefix": f"{prefix}-alerts"},
                         event_store={"index_prefix": f"{prefix}-events", "deadletter_prefix": f"{prefix}-dead"},
                         reports={"audit_index": f"{prefix}-audit", "incidents_index": f"{prefix}-incidents"})


def drop_indices(client: Elasticsearch, prefix: str) -> None:
    """Delete the run's indices by name (the cluster refuses wildcard deletes), 50 a request."""
    names = sorted(client.indices.get(index=f"{prefix}-*", expand_wildcards="all", allow_no_indices=True))
    for start in range(0, len(names), 50):
        client.indices.delete(index=",".join(names[start:start + 50]))


@pytest.fixture(scope="module")
def loaded(elasticsearch_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    prefix = f"t-reports-{uuid.uuid4().hex[:8]}"
    settings = settings_for(elasticsearch_url, prefix, tmp_path_factory.mktemp("reports-data"))
    client = Elasticsearch(elasticsearch_url, request_timeout=120)
    inventory = AssetInventory.load(resolve_config_path(settings.collector.assets_path))
    install_template(client, settings.elasticsearch.index_prefix)
    install_event_templates(client, settings.event_store)
    documents = {
        "alerts": list(yeardata.alerts(YEAR, inventory, settings.elasticsearch.index_prefix)),
        "events": list(yeardata.events(YEAR, inventory, settings.event_store.index_prefix)),
        "incidents": list(yeardata.incidents(YEAR, inventory, settings.reports.incidents_index)),
    }
    client.indices.create(index=settings.reports.incidents_index, mappings={"dynamic": False, "properties": {
        "id": {"type": "keyword"}, "detected_at": {"type": "date"}, "reported_at": {"type": "date"},
        "nodes": {"type": "keyword"}, "agencies": {"type": "keyword"}, "alerts": {"type": "keyword"}}})
    for name in ("alerts", "events", "incidents"):
        yeardata.bulk_load(client, iter(documents[name]))
    # Retention deletions go through the chain, as socflow retention writes them, with the head
    # where the report's integrity section looks for it: the trail verifies.
    trail = AuditTrail(client, settings.reports.audit_index, settings.data_dir / "audit" / "chain-head")
    documents["audit"] = [(settings.reports.audit_index, str(record["seq"]), record)
                          for record in (trail.append(**entry) for entry in yeardata.retention_records(YEAR))]
    client.indices.refresh(index=f"{prefix}-*")
    try:
        yield Loaded(client, settings, prefix, documents)
    finally:
        drop_indices(client, prefix)
        for template in (settings.elasticsearch.index_prefix, settings.event_store.index_prefix,
                         settings.event_store.deadletter_prefix):
            client.options(ignore_status=404).indices.delete_index_template(name=template)
        client.close()
