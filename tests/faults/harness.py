"""Helpers of the fault tests: a fed input directory, processes to kill, ES contents to compare.

Every fault test compares what Elasticsearch holds after the fault with the undisturbed
result over the same events — the detection core without Flink (``socflow replay``), which
the end-to-end test proves equal to an undisturbed Flink run — by ids and by count.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from alerts.commands.replay import replay
from alerts.indexer import finished_files
from alerts.model import to_document
from alerts.scenario import generate
from alerts.settings import load_settings
from deploy import elasticsearch
from deploy.lease import locked
from deploy.settings import StackSettings
from detectors.model import Detection

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)
# A continuous job that checkpoints every second and looks for new spool segments twice a second.
JOB_ENV = {"SOCFLOW_JOB__CHECKPOINT_INTERVAL_MS": "1000", "SOCFLOW_JOB__MONITOR_INTERVAL_S": "0.5"}


def scenario_copy(staging: Path, inputs: Path, number: int) -> list[Path]:
    """One more day of the demo scenario, moved into ``inputs`` whole (a tailing collector never
    sees a half-written file)."""
    target = staging / f"day-{number:02d}"
    files = generate(target, START + timedelta(days=number))
    inputs.mkdir(parents=True, exist_ok=True)
    final = inputs / target.name
    os.replace(target, final)
    return [final / path.name for path in (files.mail, files.portal, files.windows)]


def expected_detections(inputs: Iterable[Path], work: Path, *, flush: bool = True) -> list[Detection]:
    """The undisturbed result: the same core without Flink over the same input files.

    ``flush=False``: what a running job has emitted once it processed them (windows that only
    a later watermark closes stay open)."""
    settings = load_settings(data_dir=work)
    return list(replay([REPO / "rules"], list(inputs), settings, flush=flush).detections)


def socflow(data_dir: Path, *args: str, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    """Start ``socflow ARGS`` in its own process group (so kill -9 takes its JVM and workers too)."""
    output = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "alerts.cli", "--data-dir", str(data_dir), *args],
                            cwd=REPO, env={**os.environ, **(env or {})}, stdout=output, stderr=output,
                            start_new_session=True)


def kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the process group we started for ``process`` (never anything else)."""
    if process.poll() is None or sig == signal.SIGKILL:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.5) -> float:
    """Poll until ``condition()``; return seconds waited; raise AssertionError with ``what``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)
    return time.monotonic() - started


def stream_records(stream_dir: Path) -> list[dict[str, Any]]:
    """Records of the committed alert-stream files (every version of every alert)."""
    return [json.loads(line) for path in finished_files(stream_dir)
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def stream_ids(stream_dir: Path) -> list[str]:
    """Alert ids in the committed alert-stream files (with repeats: updates of one alert)."""
    return [record["id"] for record in stream_records(stream_dir)]


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest completed retained checkpoint (``chk-N`` with its ``_metadata``)."""
    done = [p.parent for p in checkpoint_dir.glob("*/chk-*/_metadata")]
    return max(done, key=lambda p: (p.stat().st_mtime_ns, int(p.name[4:])), default=None)


def write_stream(stream_dir: Path, records: list[dict[str, Any]], part: int) -> None:
    """Commit one alert-stream part file the way Flink's FileSink does: hidden, then renamed."""
    stream_dir.mkdir(parents=True, exist_ok=True)
    hidden = stream_dir / f".part-fault-{part:05d}.inprogress"
    with hidden.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
    os.replace(hidden, stream_dir / f"part-fault-{part:05d}")


def clear_indices(client: Elasticsearch, prefix: str) -> None:
    # destructive_requires_name: delete earlier runs' indices one by one, by their names.
    for name in client.indices.get(index=f"{prefix}-*", allow_no_indices=True):
        client.indices.delete(index=name)


def es_alerts(client: Elasticsearch, prefix: str) -> dict[str, int]:
    """Every alert in the alias as id -> ``socflow.alert.count``, paged by ``search_after``.

    Raises when an id appears twice (it could only do so across two indices)."""
    client.indices.refresh(index=prefix, ignore_unavailable=True)
    alerts: dict[str, int] = {}
    after: list[Any] | None = None
    while True:
        extra = {"search_after": after} if after else {}
        hits = client.search(index=prefix, size=5000, source_includes=["socflow.alert.count"],
                             sort=[{"event.id": "asc"}], query={"match_all": {}}, **extra)["hits"]["hits"]
        if not hits:
            return alerts
        for hit in hits:
            assert hit["_id"] not in alerts, f"alert {hit['_id']} stored twice"
            alerts[hit["_id"]] = int(hit["_source"]["socflow"]["alert"]["count"])
        after = hits[-1]["sort"]


def newest_counts(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """id -> count of the newest version of each alert among alert-stream records."""
    counts: dict[str, int] = {}
    for record in records:
        # The count as the alert document states it (alerts.model decides, not this test).
        count = int(to_document(Detection.from_record(record))["socflow"]["alert"]["count"])
        counts[record["id"]] = max(counts.get(record["id"], 0), count)
    return counts


def es_count(client: Elasticsearch, prefix: str, *, refresh: bool = False) -> int:
    """Documents under ``prefix``; ``refresh``: first make everything written searchable (without
    it, what the last second wrote may not count yet)."""
    try:
        if refresh:
            client.indices.refresh(index=prefix, ignore_unavailable=True)
        return int(client.count(index=prefix)["count"])
    except Exception:  # noqa: BLE001 - polled while the alias may not exist yet or ES restarts
        return -1


def reset(*directories: Path) -> None:
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def private_elasticsearch(stack_settings: StackSettings, *, suffix: str, port: int,
                          transport_port: int) -> Iterator[StackSettings]:
    """An Elasticsearch of one test module alone (own ports and run dir), stopped at the end:
    stopping it for an outage disturbs no other test session on the machine."""
    base = stack_settings.effective_run_dir
    settings = stack_settings.model_copy(update={
        "run_dir": base.with_name(base.name + suffix),
        "elasticsearch_port": port,
        "elasticsearch_transport_port": transport_port,
        "elasticsearch_heap": "512m",
    })
    with locked(settings.effective_run_dir / "faults.lock"):  # concurrent sessions take turns
        if elasticsearch.status(settings).pid is None:
            elasticsearch.remove_data(settings)
        elasticsearch.start(settings)
        try:
            yield settings
        finally:
            elasticsearch.stop(settings)
