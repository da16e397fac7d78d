"""Fault: the job was down while the collector went on, and finds a backlog of segments.

Several days of the demo scenario wait in the spool as sealed segments when the job starts
(as after an outage or a restore). Flink's default split assigner hands pending files out in
no set order; read that way, a later day moves event time on and an earlier day's events come
late and are dropped (a day's password-spraying alert went missing). The job's spool source
reads the backlog oldest first, so its alerts are exactly the core's over the same files.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from alerts.settings import load_settings
from ingest.files import collect_paths
from tests.faults.harness import (
    expected_detections,
    kill_group,
    newest_counts,
    scenario_copy,
    socflow,
    stream_records,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DAYS = 5


def test_backlog_of_segments_is_read_oldest_first(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    files: list[Path] = []
    for day in range(DAYS):  # one collector pass per day: one sealed segment per day at least
        paths = scenario_copy(tmp_path / "staging", tmp_path / "inputs", day)
        collect_paths(paths, settings.spool_dir, settings=settings.collector, writer_id="feed", progress=False)
        files += paths
    expected = newest_counts(d.as_record() for d in expected_detections(files, tmp_path / "replay"))
    log = tmp_path / "job.log"
    job = socflow(tmp_path / "data", "run", "--bounded", "--parallelism", "1", log=log)
    try:
        code = job.wait(timeout=300)
    except subprocess.TimeoutExpired:
        kill_group(job)
        raise
    assert code == 0, log.read_text(encoding="utf-8", errors="replace")[-4000:]
    got = newest_counts(stream_records(settings.alert_stream_dir))
    assert got == expected, {k: (expected.get(k), got.get(k)) for k in {*expected, *got}
                             if expected.get(k) != got.get(k)}
