"""Fault: the Flink job is killed (-9) mid-stream and restored from its latest checkpoint.

A tailing collector (``socflow collect files --follow``) keeps feeding the spool with one
scenario day after another while the continuous job (``socflow run``) runs; the job's whole
process group is killed with SIGKILL while it is busy, more days arrive while it is down, and
it is started again with ``--restore <latest chk-N>``. The alerts then indexed into
Elasticsearch must be exactly the undisturbed result, none missing and none doubled.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from alerts.indexer import Indexer, connect
from alerts.settings import load_settings
from ingest.logs import log_event
from tests.faults.harness import (
    JOB_ENV,
    clear_indices,
    es_alerts,
    expected_detections,
    kill_group,
    latest_checkpoint,
    newest_counts,
    scenario_copy,
    socflow,
    stream_ids,
    stream_records,
    wait_for,
)

LOGGER = logging.getLogger(__name__)
PREFIX = "socflow-fault-restore-alerts"

pytestmark = [pytest.mark.integration, pytest.mark.slow]
# Consumed segments are deleted a second after their checkpoint: the restore must not need them.
PRUNING_JOB_ENV = {**JOB_ENV, "SOCFLOW_JOB__SPOOL_PRUNE_AFTER_S": "1"}


def test_job_killed_and_restored_loses_and_doubles_nothing(tmp_path: Path, elasticsearch_url: str) -> None:
    started = time.monotonic()
    data, inputs, staging = tmp_path / "data", tmp_path / "inputs", tmp_path / "staging"
    settings = load_settings(data_dir=data, elasticsearch={"url": elasticsearch_url, "index_prefix": PREFIX})
    files = scenario_copy(staging, inputs, 0)
    collector = socflow(data, "collect", "files", "--follow", "--no-progress", "--writer-id", "feed", str(inputs),
                        log=tmp_path / "collector.log")
    wait_for(lambda: any(settings.spool_dir.rglob("seg-*")), 120, "the collector's first spool segment")
    job = socflow(data, "run", env=PRUNING_JOB_ENV, log=tmp_path / "job-1.log")
    try:
        # Wait for the first day's alerts to be committed and a checkpoint to be retained.
        wait_for(lambda: len(stream_ids(settings.alert_stream_dir)) > 0 and
                 latest_checkpoint(settings.checkpoint_dir) is not None, 300, "first committed alerts")
        before_kill = len(set(stream_ids(settings.alert_stream_dir)))
        # More days arrive; kill the job while it works on them.
        files += scenario_copy(staging, inputs, 1)
        files += scenario_copy(staging, inputs, 2)
        time.sleep(2.0)
        kill_group(job)
        killed_at = latest_checkpoint(settings.checkpoint_dir)
        assert killed_at is not None
        # Incremental RocksDB checkpoints: keyed state lives in files the checkpoints share, and
        # a checkpoint writes only what changed (a full snapshot a second did not scale).
        assert any((killed_at.parent / "shared").iterdir()), "keyed state is not in shared incremental files"
        files += scenario_copy(staging, inputs, 3)  # while the job is down
        time.sleep(1.0)
        # What a running job emits (it never sees the end of its input, so no final flush).
        expected = newest_counts(d.as_record() for d in expected_detections(files, tmp_path / "replay", flush=False))
        job = socflow(data, "run", "--restore", str(killed_at), env=PRUNING_JOB_ENV, log=tmp_path / "job-2.log")
        wait_for(lambda: newest_counts(stream_records(settings.alert_stream_dir)) == expected, 400,
                 "every alert at its final count after the restore")
        time.sleep(3.0)  # anything a broken restore would emit twice arrives within a checkpoint or two
    finally:
        kill_group(job)
        kill_group(collector)

    client: Elasticsearch = connect(settings.elasticsearch)
    clear_indices(client, PREFIX)
    Indexer(client, settings.alert_stream_dir, data / "indexer", settings.elasticsearch, settings.indexer).run_once()
    stored = es_alerts(client, PREFIX)
    log_event(LOGGER, "fault_restore_done", seconds=round(time.monotonic() - started, 1), expected=len(expected),
              stored=len(stored), before_kill=before_kill, restored_from=str(killed_at),
              stream_repeats=sum(n - 1 for n in Counter(stream_ids(settings.alert_stream_dir)).values()))
    # Same alerts, each once, each with the count of the undisturbed run (nothing folded twice).
    assert stored == expected
    # ...though the spool deleted segments the job had read, before and after the restore.
    logs = (tmp_path / "job-1.log").read_text(encoding="utf-8") + (tmp_path / "job-2.log").read_text(encoding="utf-8")
    assert "spool_pruned" in logs
