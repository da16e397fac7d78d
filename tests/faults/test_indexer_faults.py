"""Faults on the indexer's side: Elasticsearch down for 60 s mid-stream; the indexer killed mid-batch.

The alert stream is written the way the Flink job commits it (part files appearing one by
one, hidden while in progress), holding the undisturbed detections of a few scenario days
(``socflow replay``); the indexer is the real ``socflow index`` process. Afterwards
Elasticsearch must hold exactly those alerts: every id, each once.

The outage runs on a private Elasticsearch instance (own ports and run dir) rather than the
shared test instance, so stopping it for a minute disturbs no other test session on the
machine.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from deploy import elasticsearch
from deploy.settings import StackSettings
from ingest.logs import log_event
from tests.faults import harness
from tests.faults.harness import (
    REPO,
    clear_indices,
    es_alerts,
    es_count,
    expected_detections,
    kill_group,
    newest_counts,
    scenario_copy,
    socflow,
    wait_for,
    write_stream,
)

LOGGER = logging.getLogger(__name__)
OUTAGE_S = 60.0
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def private_elasticsearch(stack_settings: StackSettings) -> Iterator[StackSettings]:
    """An Elasticsearch of this module alone (ports 19220/19320), stopped at the end."""
    with harness.private_elasticsearch(stack_settings, suffix="-faults", port=19220,
                                       transport_port=19320) as settings:
        yield settings


def _detection_records(tmp_path: Path, days: int) -> list[dict[str, Any]]:
    files: list[Path] = []
    for day in range(days):
        files += scenario_copy(tmp_path / "staging", tmp_path / "inputs", day)
    return [d.as_record() for d in expected_detections(files, tmp_path / "replay")]


def _env(url: str, prefix: str, **indexer: str) -> dict[str, str]:
    env = {"SOCFLOW_ELASTICSEARCH__URL": url, "SOCFLOW_ELASTICSEARCH__INDEX_PREFIX": prefix,
           "SOCFLOW_ELASTICSEARCH__REQUEST_TIMEOUT_S": "10"}
    env.update({f"SOCFLOW_INDEXER__{key.upper()}": value for key, value in indexer.items()})
    return env


def test_elasticsearch_down_for_60_s_mid_stream(tmp_path: Path, private_elasticsearch: StackSettings) -> None:
    started = time.monotonic()
    prefix = "socflow-fault-outage-alerts"
    url = elasticsearch.elasticsearch_url(private_elasticsearch)
    client = Elasticsearch(url, request_timeout=10)
    clear_indices(client, prefix)
    records = _detection_records(tmp_path, 4)
    expected = newest_counts(records)
    parts = [records[i:i + 10] for i in range(0, len(records), 10)]
    data = tmp_path / "data"
    stream = data / "alert-stream"
    indexer = socflow(data, "index", "--follow", env=_env(url, prefix, max_backoff_s="4", poll_interval_s="0.2"),
                      log=tmp_path / "indexer.log")
    try:
        half = len(parts) // 2
        for number, part in enumerate(parts[:half]):
            write_stream(stream, part, number)
            time.sleep(0.1)
        wait_for(lambda: es_count(client, prefix) > 0, 120, "the first indexed alerts")
        assert elasticsearch.stop(private_elasticsearch)
        down_at = time.monotonic()
        for number, part in enumerate(parts[half:], start=half):  # the stream goes on during the outage
            write_stream(stream, part, number)
            time.sleep(0.5)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        assert indexer.poll() is None, "the indexer gave up while Elasticsearch was down"
        elasticsearch.start(private_elasticsearch)
        outage = time.monotonic() - down_at
        catch_up = wait_for(lambda: es_count(client, prefix) >= len(expected) and
                            es_alerts(client, prefix) == expected, 240, "the indexer to catch up", poll_s=1.0)
    finally:
        kill_group(indexer)
    stored = es_alerts(client, prefix)
    log_text = (tmp_path / "indexer.log").read_text(encoding="utf-8", errors="replace")
    log_event(LOGGER, "fault_outage_done", seconds=round(time.monotonic() - started, 1), outage_s=round(outage, 1),
              catch_up_s=round(catch_up, 1), expected=len(expected), stored=len(stored),
              retries_logged=log_text.count("elasticsearch_retry"))
    assert outage >= OUTAGE_S
    assert "elasticsearch_retry" in log_text  # it really met the outage
    assert stored == expected  # every alert, once, at its final count


def _acknowledged(position: Path, per_file: int) -> int:
    """Alerts the indexer had acknowledged by Elasticsearch when it was killed (its position)."""
    if not position.exists():
        return 0
    state = json.loads(position.read_text(encoding="utf-8"))
    done = set(state.get("done", []))
    return per_file * len(done) + sum(lines for name, lines in state.get("lines", {}).items() if name not in done)


def test_indexer_killed_mid_batch(tmp_path: Path, elasticsearch_url: str) -> None:
    started = time.monotonic()
    prefix = "socflow-fault-indexer-alerts"
    client = Elasticsearch(elasticsearch_url, request_timeout=30)
    clear_indices(client, prefix)
    base = _detection_records(tmp_path, 1)
    # A large stream: each detection of a scenario day many times over, under ids of its own.
    copies = 1000  # 10,000 alerts: five bulks of 2,000, so the kill lands well before the last
    records = [{**record, "id": f"{record['id']}-{copy:03d}"} for copy in range(copies) for record in base]
    expected = newest_counts(records)
    data = tmp_path / "data"
    for number in range(0, len(records), 2500):
        write_stream(data / "alert-stream", records[number:number + 2500], number // 2500)
    env = _env(elasticsearch_url, prefix, bulk_size="2000")
    indexer = socflow(data, "index", env=env, log=tmp_path / "indexer-1.log")
    try:
        # Kill as soon as some bulks are in: the next 2000-document bulk is then in flight. The
        # count refreshes: on a fast machine the indexer wrote the whole stream within the
        # index's one-second refresh interval, and a plain count first saw it all.
        wait_for(lambda: es_count(client, prefix, refresh=True) > 0 or indexer.poll() is not None, 300,
                 "the first bulk", poll_s=0.05)
    finally:
        kill_group(indexer)
    at_kill = es_count(client, prefix, refresh=True)
    time.sleep(2.0)
    after_kill = es_count(client, prefix, refresh=True)  # what the killed bulk had already written
    acknowledged = _acknowledged(data / "indexer" / "indexer-position.json", per_file=2500)
    resumed = subprocess.run([sys.executable, "-m", "alerts.cli", "--data-dir", str(data), "index"], cwd=REPO,
                             env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    stored = es_alerts(client, prefix)
    log_event(LOGGER, "fault_indexer_kill_done", seconds=round(time.monotonic() - started, 1),
              expected=len(expected), at_kill=at_kill, after_kill=after_kill, acknowledged=acknowledged,
              stored=len(stored), resumed=resumed.stdout.strip())
    assert 0 < at_kill < len(expected), "the indexer was not killed mid-stream"
    # The resumed run re-sent what Elasticsearch held beyond the acknowledged position (found,
    # not doubled) and did the rest. Whether the kill caught a bulk in flight is timing: when
    # it fell between bulks, nothing was beyond the position and there is nothing to find.
    new, present = map(int, re.findall(r"(\d+) new alerts, (\d+) already present", resumed.stdout)[0])
    assert present >= after_kill - acknowledged
    assert new > 0
    assert stored == expected  # every alert, once, at its final count
