"""The whole pipeline on real parts: collector -> spool -> Flink job -> alert stream -> Elasticsearch.

Elasticsearch is the real single-node server started by deploy/ (fixture ``elasticsearch_url``);
the job runs in PyFlink's real local runtime through ``socflow run --bounded``. The alerts in
Elasticsearch must be exactly those the same core produces without Flink (``socflow replay``),
with the nodes and counts the scenario implies, and a second full run must add nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.commands.replay import alert_documents, replay
from alerts.indexer import Indexer, connect
from alerts.nodes import NodeResolver
from alerts.scenario import SPRAYER, generate
from alerts.settings import Settings, load_settings
from ingest.files import collect_paths
from ingest.spool import sealed_segments
from ingest.spool_prune import CONSUMED_DIR, prune_consumed

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
# Detections per rule (summed alert counts) and alerts per rule after grouping by entity and hour.
EXPECTED_ALERTS = {
    "Official Mail Login Failed": 4,
    "Vulnerability Scanner User Agent": 1,
    "SQL Injection Attempt Against a Web Application": 1,
    "Path Traversal Attempt in a Web Request": 1,
    "PowerShell Started With an Encoded Command": 1,
}
EXPECTED_PER_RULE = {
    "Official Mail Login Failed": 43,
    "Vulnerability Scanner User Agent": 5,
    "SQL Injection Attempt Against a Web Application": 3,
    "Path Traversal Attempt in a Web Request": 2,
    "PowerShell Started With an Encoded Command": 1,
}
EXPECTED_NODE = {
    "Official Mail Login Failed": "dc-mail",
    "Vulnerability Scanner User Agent": "dc-portal",
    "SQL Injection Attempt Against a Web Application": "dc-portal",
    "Path Traversal Attempt in a Web Request": "dc-portal",
    "PowerShell Started With an Encoded Command": "cp-012",
}

pytestmark = pytest.mark.integration


def _settings(data_dir: Path, url: str) -> Settings:
    return load_settings(
        data_dir=data_dir,
        elasticsearch={"url": url, "index_prefix": "socflow-e2e-alerts"},
        job={"rule_dirs": [str(REPO / "rules")], "checkpoint_interval_ms": 1000},
    )


def _run_flink_job(settings: Settings) -> None:
    env = dict(os.environ)
    env["SOCFLOW_ELASTICSEARCH__URL"] = settings.elasticsearch.url
    env["SOCFLOW_JOB__CHECKPOINT_INTERVAL_MS"] = "1000"
    result = subprocess.run(
        [sys.executable, "-m", "alerts.cli", "--data-dir", str(settings.data_dir), "run", "--bounded"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]


def _consumed_names(settings: Settings) -> list[str]:
    """Segment names the job committed as read to their end (visible FileSink parts only)."""
    return [line for path in sorted((settings.spool_dir / CONSUMED_DIR).glob("consumed-*"))
            for line in path.read_text(encoding="utf-8").split()]


def _search_all(settings: Settings) -> list[dict]:
    client = connect(settings.elasticsearch)
    response = client.search(index=settings.elasticsearch.index_prefix, size=1000, query={"match_all": {}})
    return [{"_id": hit["_id"], "_index": hit["_index"], **hit["_source"]} for hit in response["hits"]["hits"]]


def test_flink_pipeline_indexes_exact_alerts_once(tmp_path: Path, elasticsearch_url: str) -> None:
    settings = _settings(tmp_path / "data", elasticsearch_url)
    client = connect(settings.elasticsearch)
    # destructive_requires_name: delete earlier runs' indices by their names.
    for name in client.indices.get(index=f"{settings.elasticsearch.index_prefix}-*", allow_no_indices=True):
        client.indices.delete(index=name)
    files = generate(tmp_path / "inputs", START)
    inputs = [files.mail, files.portal, files.windows]
    stats = collect_paths(inputs, settings.spool_dir, settings=settings.collector, writer_id="e2e")
    assert (stats.events, stats.dead_letters) == (files.records - files.damaged, files.damaged)

    _run_flink_job(settings)
    # The job named every segment it read, once, committed with its checkpoints (ingest.spool_prune).
    segments = sorted(path.name for path in sealed_segments(settings.spool_dir))
    assert sorted(_consumed_names(settings)) == segments
    nodes = NodeResolver.load(settings.collector)  # as `socflow index` and `socflow replay` load it
    indexer = Indexer(client, settings.alert_stream_dir, settings.data_dir / "indexer", settings.elasticsearch,
                      settings.indexer, node_of_group=nodes)
    first = indexer.run_once()
    assert first.rejected == 0
    stored = _search_all(settings)
    assert first.indexed == len(stored)

    # Single-event Sigma alerts: exact counts and nodes.
    sigma = [doc for doc in stored if doc["socflow"]["alert"]["kind"] == "sigma"]
    assert Counter(doc["rule"]["name"] for doc in sigma) == EXPECTED_ALERTS
    detections: Counter[str] = Counter()
    for doc in sigma:
        detections[doc["rule"]["name"]] += doc["socflow"]["alert"]["count"]
    assert detections == EXPECTED_PER_RULE
    for doc in sigma:
        assert doc["socflow"]["node"]["id"] == EXPECTED_NODE[doc["rule"]["name"]]
    for doc in stored:
        assert doc["event"]["kind"] == "alert"
        assert doc["_id"] == doc["event"]["id"]
        assert doc["_index"] == "socflow-e2e-alerts-2026.11"
    powershell = next(doc for doc in sigma if "winlog" in doc)
    assert powershell["winlog"]["record_id"] == 52027
    assert powershell["threat"]["technique"]["id"] == ["T1059.001", "T1027"]
    # The spraying shows across events: the Sigma correlation and the spray detector, keyed on
    # the attacker's address, naming the failed logins that built them.
    spraying = [doc for doc in stored if doc["rule"]["name"] == "Password Spraying on Official Mail"]
    assert len(spraying) == 1  # four firings in one hour, grouped into one alert
    assert spraying[0]["socflow"]["alert"]["group"] == {"source.ip": SPRAYER}
    assert spraying[0]["socflow"]["alert"]["count"] == 4
    assert len(spraying[0]["event"]["original_ids"]) >= 40
    assert any(doc["socflow"]["alert"]["kind"] == "anomaly" and doc["socflow"]["alert"]["group"].get("detector")
               == "spray" for doc in stored)

    # The same core without Flink gives exactly the same documents, id for id.
    expected = {doc["_id"]: doc for doc in alert_documents(
        replay([REPO / "rules"], inputs, settings).detections, settings.elasticsearch.index_prefix, nodes)}
    assert {doc["_id"]: doc for doc in stored} == expected

    # Run everything again from the same spool, with a fresh alert stream and indexer state:
    # the deterministic ids make the second run a no-op in Elasticsearch.
    for directory in (settings.alert_stream_dir, settings.checkpoint_dir, settings.data_dir / "indexer"):
        shutil.rmtree(directory)
    _run_flink_job(settings)
    second = Indexer(client, settings.alert_stream_dir, settings.data_dir / "indexer", settings.elasticsearch,
                     settings.indexer, node_of_group=nodes).run_once()
    assert (second.indexed, second.already_present) == (0, first.indexed)
    client.indices.refresh(index=settings.elasticsearch.index_prefix)
    assert client.count(index=settings.elasticsearch.index_prefix)["count"] == len(stored)

    # Read twice now, every segment is named twice; past the grace the spool deletes each once.
    assert sorted(_consumed_names(settings)) == sorted(segments * 2)
    assert prune_consumed(settings.spool_dir, now=time.time(), grace_s=600).segments == 0
    assert prune_consumed(settings.spool_dir, now=time.time() + 601, grace_s=600).segments == len(segments)
    assert sealed_segments(settings.spool_dir) == []


def test_malformed_records_reach_dead_letters_with_reasons(tmp_path: Path, elasticsearch_url: str) -> None:
    """Damaged input is dead-lettered at ingest; events the detection stage rejects, in the job."""
    settings = _settings(tmp_path / "data", elasticsearch_url)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"@timestamp": "2026-11-20T10:00:00Z", "message": "fine"}\n{"torn": \n[1, 2]\n', encoding="utf-8")
    stats = collect_paths([bad], settings.spool_dir, settings=settings.collector, writer_id="bad")
    assert stats.dead_letters == 2
    # A spool record that is not a batch of objects (written by a foreign producer).
    segment = settings.spool_dir / "segments" / "seg-foreign-000000000001.jsonl"
    segment.write_text('[42, {"@timestamp": "2026-11-20T10:00:00Z"}]\nnot json\n', encoding="utf-8")
    _run_flink_job(settings)
    letters = [json.loads(line) for path in sorted(settings.deadletter_dir.glob("deadletter-*"))
               for line in path.read_text(encoding="utf-8").splitlines()]
    reasons = sorted(letter["reason"].split(":")[0] for letter in letters)
    assert reasons == ["event is not a JSON object", "spool record is not JSON"]
