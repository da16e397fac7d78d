"""Indexer bookkeeping with a scripted client (the real Elasticsearch runs in tests/pipeline).

Only the pure logic is checked here: position advances only after acknowledgement, a stored newer version counts
as done, retryable item errors are retried with back-off, hard rejections are dead-lettered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from elastic_transport import ConnectionError as TransportConnectionError

from alerts.errors import IndexingError
from alerts.indexer import Indexer
from alerts.nodes import NodeResolver
from alerts.settings import ElasticsearchSettings, IndexerSettings
from detectors.model import Detection, RuleInfo
from ingest.settings import CollectorSettings


class ScriptedIndices:
    def __init__(self) -> None:
        self.templates: list[str] = []

    def put_index_template(self, name: str, **_: Any) -> None:
        self.templates.append(name)

    def put_mapping(self, **_: Any) -> None:  # the triage fields' mapping on existing indices
        return None

    def refresh(self, **_: Any) -> None:
        return None


class ScriptedClient:
    """Stores documents by _id; `fail` scripts per-call outcomes."""

    def __init__(self, script: list[Any] | None = None) -> None:
        self.indices = ScriptedIndices()
        self.docs: dict[str, dict] = {}
        self.seq: dict[str, int] = {}
        self.script = list(script or [])
        self.calls = 0

    def mget(self, docs: list[dict]) -> dict:
        found = []
        for doc in docs:
            stored = self.docs.get(doc["_id"])
            found.append({"_id": doc["_id"], "found": stored is not None, "_source": stored,
                          "_seq_no": self.seq.get(doc["_id"], 0), "_primary_term": 1})
        return {"docs": found}

    def bulk(self, operations: list[dict]) -> dict:
        self.calls += 1
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        items = []
        for header, source in zip(operations[::2], operations[1::2], strict=True):
            (kind, meta), = header.items()
            doc_id = meta["_id"]
            status = step(doc_id) if callable(step) else None
            if status is None:  # what Elasticsearch's create / conditional index answer
                stored = doc_id in self.docs
                if kind == "create":
                    status = 409 if stored else 201
                else:
                    status = 200 if stored and meta["if_seq_no"] == self.seq[doc_id] else 409
            if status in (200, 201):
                self.docs[doc_id] = source
                self.seq[doc_id] = self.seq.get(doc_id, 0) + 1
            error = {"type": "x"} if status >= 400 else None
            items.append({kind: {"_id": doc_id, "status": status, "error": error}})
        return {"items": items, "errors": any(next(iter(i.values()))["status"] >= 300 for i in items)}


def _stream(tmp_path: Path, count: int) -> Path:
    stream = tmp_path / "stream"
    stream.mkdir()
    rule = RuleInfo(id="r1", title="Rule one", level="high", tags=("attack.t1059.001",))
    lines = []
    for i in range(count):
        event = {"@timestamp": f"2026-11-20T10:00:{i:02d}.000Z", "event": {"id": f"e{i}"},
                 "host": {"name": "h"}, "socflow": {"node": {"id": "cp-001"}}}
        lines.append(json.dumps(Detection.for_events(rule, [event]).as_record()))
    (stream / "alerts-0-0.jsonl").write_text("\n".join(lines) + "\n")
    (stream / ".alerts-0-1.jsonl.inprogress.x").write_text("{not committed}\n")
    return stream


def _indexer(client: ScriptedClient, tmp_path: Path, stream: Path, **overrides: Any) -> Indexer:
    settings = IndexerSettings(bulk_size=2, max_retries=3, initial_backoff_s=0.01, **overrides)
    return Indexer(client, stream, tmp_path / "state", ElasticsearchSettings(), settings,  # type: ignore[arg-type]
                   sleep=lambda _: None)


def test_indexes_committed_files_once(tmp_path: Path) -> None:
    stream = _stream(tmp_path, 5)
    client = ScriptedClient()
    stats = _indexer(client, tmp_path, stream).run_once()
    assert (stats.indexed, stats.already_present, stats.files_done) == (5, 0, 1)
    assert client.indices.templates == ["socflow-alerts"]
    # A second indexer (new process) over the same stream does nothing: the position was saved.
    again = _indexer(client, tmp_path, stream).run_once()
    assert (again.indexed, again.already_present, again.files_done) == (0, 0, 0)
    # Lost position (e.g. state wiped): everything is "already present", nothing duplicated.
    (tmp_path / "state" / "indexer-position.json").unlink()
    lost = _indexer(client, tmp_path, stream).run_once()
    assert (lost.indexed, lost.already_present) == (0, 5)
    assert len(client.docs) == 5


def test_newer_versions_replace_older_ones_never_the_reverse(tmp_path: Path) -> None:
    stream = tmp_path / "stream"
    stream.mkdir()
    rule = RuleInfo(id="r1", title="Rule one")
    event = {"@timestamp": "2026-11-20T10:00:00.000Z", "event": {"id": "e1"}}
    base = Detection.for_events(rule, [event])
    versions = [Detection(rule=rule, events=(event,), timestamp=base.timestamp, id="alert-1", count=n,
                          first_seen=base.timestamp) for n in (1, 3, 2)]
    (stream / "alerts-0-0.jsonl").write_text("".join(json.dumps(v.as_record()) + "\n" for v in versions))
    client = ScriptedClient()
    stats = _indexer(client, tmp_path, stream).run_once()
    # In one bulk only the newest version is sent; an older one later is refused by version.
    assert (stats.indexed, stats.superseded, stats.already_present) == (1, 1, 1)  # bulk_size 2
    assert client.docs["alert-1"]["socflow"]["alert"]["count"] == 3
    (stream / "alerts-0-1.jsonl").write_text(json.dumps(versions[2].as_record()) + "\n")
    late = _indexer(client, tmp_path, stream).run_once()
    assert (late.indexed, late.already_present) == (0, 1)
    assert client.docs["alert-1"]["socflow"]["alert"]["count"] == 3


def test_detector_alerts_are_indexed_with_the_node_of_their_group(tmp_path: Path) -> None:
    stream = tmp_path / "stream"
    stream.mkdir()
    event = {"@timestamp": "2026-11-20T10:00:00.000Z", "event": {"id": "e1"}}  # as detectors write them
    groups = [{"detector": "volume_node", "socflow.node.id": "cp-001"}, {"detector": "bruteforce", "user.name": "a"}]
    detections = [Detection.for_events(RuleInfo(id=f"r{n}", title="Rule"), [event], kind="anomaly", group=group)
                  for n, group in enumerate(groups)]
    (stream / "alerts-0-0.jsonl").write_text("".join(json.dumps(d.as_record()) + "\n" for d in detections))
    client = ScriptedClient()
    settings = IndexerSettings(bulk_size=2, max_retries=0)
    Indexer(client, stream, tmp_path / "state", ElasticsearchSettings(), settings,  # type: ignore[arg-type]
            node_of_group=NodeResolver.load(CollectorSettings())).run_once()
    assert [client.docs[d.id]["socflow"]["node"]["id"] for d in detections] == ["cp-001", "unknown"]


def test_retryable_item_errors_are_retried(tmp_path: Path) -> None:
    stream = _stream(tmp_path, 2)
    first = {"n": 0}

    def once_429(doc_id: str) -> int | None:
        first["n"] += 1
        return 429 if first["n"] == 1 else None

    client = ScriptedClient([once_429])
    stats = _indexer(client, tmp_path, stream).run_once()
    assert stats.indexed == 2
    assert stats.retries == 1


def test_connection_failure_keeps_position_and_resumes(tmp_path: Path) -> None:
    stream = _stream(tmp_path, 4)
    down = TransportConnectionError("refused")
    client = ScriptedClient([None, down, down, down, down])
    with pytest.raises(IndexingError, match="unavailable"):
        _indexer(client, tmp_path, stream).run_once()
    assert len(client.docs) == 2  # the first chunk was acknowledged
    stats = _indexer(client, tmp_path, stream).run_once()
    assert (stats.indexed, stats.already_present) == (2, 0)  # resumed after the acknowledged chunk
    assert len(client.docs) == 4


def test_hard_rejections_are_dead_lettered_not_lost(tmp_path: Path) -> None:
    stream = _stream(tmp_path, 3)
    client = ScriptedClient([lambda doc_id: 400])
    indexer = _indexer(client, tmp_path, stream)
    stats = indexer.run_once()
    assert stats.rejected == 2 and stats.indexed == 1
    letters = [json.loads(line) for line in indexer.deadletter_path.read_text().splitlines()]
    assert len(letters) == 2 and all("rejected by Elasticsearch" in letter["reason"] for letter in letters)


def test_unreadable_stream_records_are_dead_lettered(tmp_path: Path) -> None:
    stream = _stream(tmp_path, 1)
    with (stream / "alerts-0-0.jsonl").open("a") as handle:
        handle.write("{broken\n")
    client = ScriptedClient()
    indexer = _indexer(client, tmp_path, stream)
    assert indexer.run_once().indexed == 1
    assert "unreadable alert-stream record" in indexer.deadletter_path.read_text()
