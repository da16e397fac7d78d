"""The standalone Flink cluster: two TaskManagers, and a PyFlink job really runs on both."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy import flink
from deploy.process import http_json
from deploy.settings import StackSettings

pytestmark = pytest.mark.integration

SMOKE_JOB = Path(flink.__file__).parent / "jobs" / "smoke.py"


def test_cluster_reports_two_taskmanagers(flink_cluster: str, stack_settings: StackSettings) -> None:
    overview = http_json(f"{flink_cluster}/overview")
    assert overview["taskmanagers"] == 2
    assert overview["slots-total"] == 2 * stack_settings.flink_slots_per_taskmanager
    assert overview["flink-version"].startswith("2.2")
    assert flink.cluster_status(stack_settings).state == "running"


def test_python_job_runs_with_parallelism_two(flink_cluster: str, stack_settings: StackSettings,
                                              tmp_path: Path) -> None:
    output = tmp_path / "out"
    job_id = flink.submit_python_job(stack_settings, SMOKE_JOB, [str(output), "1000"], parallelism=2)
    state = flink.wait_for_job(stack_settings, job_id, timeout_s=300)
    assert state == "FINISHED", flink.job_exceptions(stack_settings, job_id)

    vertices = {vertex["name"]: vertex["parallelism"]
                for vertex in flink.job_details(stack_settings, job_id)["vertices"]}
    python_vertex = next(name for name in vertices if "square_in_python" in name)
    assert vertices[python_vertex] == 2
    # Slots are spread over the TaskManagers, so the Python operator ran on both of them.
    assert len(flink.subtask_taskmanagers(stack_settings, job_id)[python_vertex]) == 2

    lines = [line for part in output.rglob("part-*") for line in part.read_text().splitlines()]
    squares = sorted(int(line.split(",")[0]) for line in lines)
    assert squares == [value * value for value in range(1000)]
    python_workers = {line.split(",")[1] for line in lines}
    assert len(python_workers) == 2


def test_prometheus_reporter_serves_flink_metrics(flink_cluster: str, stack_settings: StackSettings) -> None:
    import urllib.request

    low, high = (int(part) for part in stack_settings.flink_metrics_ports.split("-"))
    served = []
    for port in range(low, high + 1):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                if b"flink_" in response.read():
                    served.append(port)
        except OSError:
            continue
    assert len(served) >= 3  # the JobManager and both TaskManagers
