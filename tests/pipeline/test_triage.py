"""Analysts' triage survives newer versions of an alert, on the real Elasticsearch.

An analyst acknowledges an alert and assigns it; the job then counts one more event for the
same alert (a newer version). The document must show the new count and still carry the
analyst's status, assignee and notes; an older version arriving late must change nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from elasticsearch import Elasticsearch

from alerts.indexer import Indexer, IndexStats, connect, install_template
from alerts.settings import Settings, load_settings
from detectors.model import Detection, RuleInfo

PREFIX = "socflow-test-triage"
RULE = RuleInfo(id="r-triage", title="Encoded PowerShell", level="high", tags=("attack.t1059.001",))


def _version(count: int) -> str:
    events = [{"@timestamp": f"2026-11-20T10:00:0{i}.000Z", "event": {"id": f"e{i}"}, "host": {"name": "pc-7"},
               "socflow": {"node": {"id": "cp-001"}}} for i in range(count)]
    record = Detection.for_events(RULE, events[-1:]).as_record()
    # every version of a grouped alert keeps the group's id (detectors.dedup)
    record.update(id=Detection.for_events(RULE, events[:1]).id, count=count, first_seen=events[0]["@timestamp"])
    return json.dumps(record)


def _index(tmp_path: Path, name: str, lines: list[str], settings: Settings, client: Elasticsearch) -> IndexStats:
    stream = tmp_path / name
    stream.mkdir()
    (stream / "alerts-0-0.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Indexer(client, stream, tmp_path / f"{name}-state", settings.elasticsearch, settings.indexer).run_once()


def test_triage_fields_survive_newer_versions(tmp_path: Path, elasticsearch_url: str) -> None:
    settings = load_settings(elasticsearch={"url": elasticsearch_url, "index_prefix": PREFIX})
    client = connect(settings.elasticsearch)
    for name in client.indices.get(index=f"{PREFIX}-*", allow_no_indices=True):
        client.indices.delete(index=name)
    install_template(client, PREFIX)

    first = _index(tmp_path, "v1", [_version(1)], settings, client)
    assert (first.indexed, first.already_present) == (1, 0)
    hit = client.search(index=PREFIX, query={"match_all": {}})["hits"]["hits"][0]
    client.update(index=hit["_index"], id=hit["_id"], refresh=True,
                  doc={"socflow": {"alert": {"status": "acknowledged", "assignee": "lan.pham"},
                                   "triage": {"notes": "called the agency's admin"}}})

    second = _index(tmp_path, "v3", [_version(2), _version(3)], settings, client)
    assert (second.indexed, second.superseded) == (1, 1)
    late = _index(tmp_path, "late", [_version(2)], settings, client)
    assert (late.indexed, late.already_present) == (0, 1)

    client.indices.refresh(index=PREFIX)
    hits = client.search(index=PREFIX, query={"match_all": {}})["hits"]["hits"]
    assert len(hits) == 1
    alert = hits[0]["_source"]["socflow"]["alert"]
    assert (alert["count"], alert["version"]) == (3, 3)
    assert (alert["status"], alert["assignee"]) == ("acknowledged", "lan.pham")
    assert hits[0]["_source"]["socflow"]["triage"] == {"notes": "called the agency's admin"}
