"""Clear errors for missing tools and failed downloads; PyFlink's local runtime with local_env()."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import elasticsearch, flink
from deploy.errors import StackError, ToolMissingError
from deploy.maven import fetch_artifact
from deploy.settings import StackSettings


def test_missing_java_is_a_tool_missing_error(tmp_path: Path) -> None:
    settings = StackSettings(java_home=tmp_path / "no-jdk", run_dir=tmp_path / "run",
                             elasticsearch_port=19290, elasticsearch_transport_port=19291)
    with pytest.raises(ToolMissingError, match="no bin/java"):
        elasticsearch.start(settings)


@pytest.mark.integration
def test_download_failure_names_the_artifact_and_shows_maven_output(tmp_path: Path) -> None:
    with pytest.raises(StackError) as caught:
        fetch_artifact("org.socflow.absent:no-such-artifact:0.0.0:jar", tmp_path)
    assert "Maven could not fetch org.socflow.absent:no-such-artifact:0.0.0:jar" in str(caught.value)
    assert "last log lines" in str(caught.value)  # Maven's own explanation follows
    assert not (tmp_path / "artifacts" / "no-such-artifact-0.0.0.jar").exists()


@pytest.mark.integration
def test_local_runtime_runs_a_python_job_with_local_env(stack_settings: StackSettings, tmp_path: Path) -> None:
    env = {**os.environ, **flink.local_env(stack_settings)}
    output = tmp_path / "out"
    script = Path(flink.__file__).parent / "jobs" / "smoke.py"
    result = subprocess.run([sys.executable, str(script), str(output), "100"], env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    lines = [line for part in output.rglob("part-*") for line in part.read_text().splitlines()]
    assert sorted(int(line.split(",")[0]) for line in lines) == [value * value for value in range(100)]
