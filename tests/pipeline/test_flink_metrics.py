"""The Flink job reports through Flink's Prometheus reporter, socflow's own counters included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.scenario import generate
from alerts.settings import load_settings
from ingest.files import collect_paths

REPO = Path(__file__).resolve().parents[2]
PORT = 19290  # away from a developer's job on the default 9250

pytestmark = pytest.mark.integration


def test_running_job_serves_prometheus_metrics(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    files = generate(tmp_path / "inputs", datetime(2026, 11, 20, 7, 30, tzinfo=UTC))
    collect_paths([files.mail], settings.spool_dir, settings=settings.collector, writer_id="metrics")
    env = {**os.environ, "SOCFLOW_JOB__FLINK_METRICS_PORT": str(PORT)}
    job = subprocess.Popen([sys.executable, "-m", "alerts.cli", "--data-dir", str(settings.data_dir), "run",
                            "--metrics"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           start_new_session=True)
    body = ""
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and job.poll() is None:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{PORT}/metrics", timeout=3).read().decode()
            except OSError:
                body = ""
            if "socflow_events_in" in body and "socflow_events_in{" in body.replace(" ", ""):
                break
            time.sleep(2)
    finally:
        os.killpg(job.pid, signal.SIGTERM)
        job.wait(timeout=60)
    assert "flink_jobmanager_job_lastCheckpointSize" in body, (job.stderr.read() if job.stderr else "")[-2000:]
    counts = [float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
              if line.startswith("flink_taskmanager_job_task_operator_socflow_events_in{")]
    assert counts, "no socflow_events_in metric"
