"""Faults on the event writer's side: Elasticsearch down for 60 s while events flow; the writer killed mid-bulk.

Events reach the spool the real way (``ingest.files.collect_paths``) while the real
``socflow index events`` process runs. Afterwards the event store must hold exactly the
collected events: every id, each once, and nothing else.

The outage runs on a private Elasticsearch (own ports and run dir), so stopping it for a minute
disturbs no other test session on the machine; the kill runs on the shared test instance.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from alerts.scenario import generate
from alerts.settings import load_settings
from deploy import elasticsearch
from deploy.settings import StackSettings
from ingest.files import collect_paths
from ingest.logs import log_event
from tests.eventstore.helpers import drop, spool_ids, stored, unique_settings
from tests.faults import harness
from tests.faults.harness import REPO, es_count, kill_group, socflow, wait_for

LOGGER = logging.getLogger(__name__)
OUTAGE_S = 60.0
START = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def private_elasticsearch(stack_settings: StackSettings) -> Iterator[StackSettings]:
    """An Elasticsearch of this module alone (ports 19240/19340), stopped at the end."""
    with harness.private_elasticsearch(stack_settings, suffix="-evstore-faults", port=19240,
                                       transport_port=19340) as settings:
        yield settings


def _env(url: str, prefix: str, deadletters: str, **writer: str) -> dict[str, str]:
    env = {"SOCFLOW_ELASTICSEARCH__URL": url, "SOCFLOW_ELASTICSEARCH__REQUEST_TIMEOUT_S": "10",
           "SOCFLOW_EVENT_STORE__INDEX_PREFIX": prefix, "SOCFLOW_EVENT_STORE__DEADLETTER_PREFIX": deadletters,
           "SOCFLOW_EVENT_STORE__METRICS_PORT": "0"}
    env.update({f"SOCFLOW_EVENT_STORE__{key.upper()}": value for key, value in writer.items()})
    return env


def _collect_day(tmp_path: Path, spool: Path, day: int) -> None:
    files = generate(tmp_path / f"in-{day:02d}", START + timedelta(days=day))
    # The generator repeats the Windows records every day (record ids, times of day): day 0 only.
    paths = [files.mail, files.portal] + ([files.windows] if day == 0 else [])
    collect_paths(paths, spool, settings=load_settings().collector, writer_id=f"day{day:02d}", progress=False)


def test_elasticsearch_down_for_60_s_while_events_flow(tmp_path: Path,
                                                       private_elasticsearch: StackSettings) -> None:
    started = time.monotonic()
    url = elasticsearch.elasticsearch_url(private_elasticsearch)
    client = Elasticsearch(url, request_timeout=10)
    store = unique_settings()
    drop(client, store)
    data = tmp_path / "data"
    spool = data / "spool"
    writer = socflow(data, "index", "events", "--follow",
                     env=_env(url, store.index_prefix, store.deadletter_prefix, max_backoff_s="4",
                              poll_interval_s="0.2", bulk_size="500"),
                     log=tmp_path / "writer.log")
    try:
        for day in range(3):
            _collect_day(tmp_path, spool, day)
        wait_for(lambda: es_count(client, store.index_prefix) > 0, 120, "the first stored events")
        assert elasticsearch.stop(private_elasticsearch)
        down_at = time.monotonic()
        for day in range(3, 8):  # the collectors go on during the outage
            _collect_day(tmp_path, spool, day)
            time.sleep(2.0)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        assert writer.poll() is None, "the writer gave up while Elasticsearch was down"
        elasticsearch.start(private_elasticsearch)
        outage = time.monotonic() - down_at
        expected = sorted(spool_ids(spool))
        catch_up = wait_for(lambda: es_count(client, store.index_prefix, refresh=True) >= len(expected), 300,
                            "the writer to catch up", poll_s=1.0)
        time.sleep(2.0)  # anything beyond would show now
    finally:
        kill_group(writer)
    documents = stored(client, store.index_prefix)  # fails on an id stored twice
    log_text = (tmp_path / "writer.log").read_text(encoding="utf-8", errors="replace")
    log_event(LOGGER, "fault_event_outage_done", seconds=round(time.monotonic() - started, 1),
              outage_s=round(outage, 1), catch_up_s=round(catch_up, 1), expected=len(expected),
              stored=len(documents), retries_logged=log_text.count("elasticsearch_retry"))
    try:
        assert outage >= OUTAGE_S
        assert "elasticsearch_retry" in log_text  # it really met the outage
        assert sorted(documents) == expected  # every collected event, once
        assert len(stored(client, store.deadletter_prefix)) > 0  # the scenario's broken lines, with reasons
    finally:
        drop(client, store)


def _big_spool(tmp_path: Path, spool: Path, count: int) -> None:
    source = tmp_path / "app.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        for number in range(count):
            stamp = (START + timedelta(seconds=number)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            handle.write(json.dumps({"@timestamp": stamp, "host": {"name": f"ws-{number % 97}"},
                                     "event": {"code": str(4624 + number % 3)}, "n": number}) + "\n")
    collect_paths([source], spool, settings=load_settings().collector, writer_id="big", progress=False)


def _acknowledged(spool: Path) -> int:
    """Events the writer had acknowledged when it was killed: those its position covers."""
    position = spool / "consumers" / "event-store.json"
    if not position.exists():
        return 0
    state = json.loads(position.read_text(encoding="utf-8"))
    total = 0
    for segment in sorted((spool / "segments").glob("seg-*.jsonl")):
        lines = segment.read_text(encoding="utf-8").splitlines()
        covered = len(lines) if segment.name in state.get("done", []) else state.get("lines", {}).get(segment.name, 0)
        total += sum(len(json.loads(line)) for line in lines[:covered])
    return total


def test_writer_killed_mid_bulk(tmp_path: Path, elasticsearch_url: str) -> None:
    started = time.monotonic()
    client = Elasticsearch(elasticsearch_url, request_timeout=30)
    store = unique_settings()
    data = tmp_path / "data"
    _big_spool(tmp_path, data / "spool", 40_000)  # 40 batches of 1000
    expected = sorted(spool_ids(data / "spool"))
    env = _env(elasticsearch_url, store.index_prefix, store.deadletter_prefix, bulk_size="4000")
    writer = socflow(data, "index", "events", env=env, log=tmp_path / "writer-1.log")
    try:
        # Kill as soon as some bulks are in: the next 4000-event bulk is then in flight.
        wait_for(lambda: es_count(client, store.index_prefix, refresh=True) > 0 or writer.poll() is not None, 300,
                 "the first bulk", poll_s=0.05)
    finally:
        kill_group(writer)
    try:
        at_kill = es_count(client, store.index_prefix, refresh=True)
        time.sleep(2.0)
        after_kill = es_count(client, store.index_prefix, refresh=True)
        acknowledged = _acknowledged(data / "spool")
        resumed = subprocess.run([sys.executable, "-m", "alerts.cli", "--data-dir", str(data), "index", "events"],
                                 cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
                                 check=False)
        assert resumed.returncode == 0, resumed.stderr[-4000:]
        documents = stored(client, store.index_prefix)
        log_event(LOGGER, "fault_event_writer_kill_done", seconds=round(time.monotonic() - started, 1),
                  expected=len(expected), at_kill=at_kill, after_kill=after_kill, acknowledged=acknowledged,
                  stored=len(documents), resumed=resumed.stdout.strip())
        assert 0 < at_kill < len(expected), "the writer was not killed mid-stream"
        new, present = map(int, re.findall(r"stored (\d+) new events, (\d+) already present", resumed.stdout)[0])
        # What the killed bulk had written beyond the acknowledged position is found, not doubled.
        assert present >= after_kill - acknowledged
        assert new + present == len(expected) - acknowledged
        assert sorted(documents) == expected
    finally:
        drop(client, store)
