"""Collectors -> Kafka -> Flink job (KafkaSource) -> alert stream, on the real broker.

The broker is the project's own KRaft Kafka (fixture ``kafka_bootstrap``); the collector is
``socflow collect files --kafka``; the job is ``socflow run --kafka --bounded`` in PyFlink's
local runtime with the Flink Kafka connector fetched from Maven Central. The alerts must be
exactly the ones the spool transport gives for the same input (``socflow replay``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.commands.replay import replay
from alerts.indexer import finished_files
from alerts.scenario import generate
from alerts.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _socflow(*args: str, timeout: int = 600) -> None:
    result = subprocess.run([sys.executable, "-m", "alerts.cli", *args], cwd=REPO, capture_output=True,
                            text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr[-4000:]


def test_collect_to_kafka_then_flink_reads_kafka(tmp_path: Path, kafka_bootstrap: str) -> None:
    topic = f"socflow-test-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data"
    files = generate(tmp_path / "inputs", datetime(2026, 11, 20, 7, 30, tzinfo=UTC))
    inputs = [str(files.mail), str(files.portal), str(files.windows)]
    _socflow("--data-dir", str(data), "collect", "files", *inputs, "--kafka", kafka_bootstrap, "--topic", topic)
    _socflow("--data-dir", str(data), "run", "--bounded", "--kafka", kafka_bootstrap, "--topic", topic)

    stream = data / "alert-stream"
    newest: dict[str, int] = {}  # alert id -> highest version (count) the stream carries
    for path in finished_files(stream):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                newest[record["id"]] = max(newest.get(record["id"], 0), record["count"])
    settings = load_settings(data_dir=tmp_path / "replay")
    expected = {d.id: d.count for d in replay([REPO / "rules"], [Path(p) for p in inputs], settings).detections}
    assert len(newest) >= 10
    assert newest == expected
