"""Console settings over a fresh alert index holding the triage test alerts (real Elasticsearch).

``triage_settings(tmp_path, url)`` indexes tests.triage.alertdata's alerts under a unique
prefix and returns the settings of a console reading them, with its own audit, incidents and
saved-filter indices; ``drop_all`` deletes them.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from elasticsearch import Elasticsearch

from alerts.settings import Settings, load_settings
from tests.triage.alertdata import Indexed, drop, index_alerts


def triage_settings(tmp_path: Path, elasticsearch_url: str, count: int = 24) -> tuple[Settings, Indexed]:
    indexed = index_alerts(tmp_path, elasticsearch_url, count)
    suffix = uuid.uuid4().hex[:8]
    settings = load_settings(
        data_dir=tmp_path / "data",
        elasticsearch={"url": elasticsearch_url, "index_prefix": indexed.prefix},
        console={"audit_index": f"{indexed.prefix}_audit"},
        triage={"incidents_index": f"{indexed.prefix}_incidents", "filters_index": f"{indexed.prefix}_filters",
                "events_alias": f"{indexed.prefix}_events-{suffix}", "refresh_on_write": True,
                "poll_interval_s": 2},
    )
    return settings, indexed


def drop_all(indexed: Indexed) -> None:
    drop(indexed)
    client: Elasticsearch = indexed.client
    for name in client.indices.get(index=f"{indexed.prefix}_*", allow_no_indices=True):
        client.indices.delete(index=name)
