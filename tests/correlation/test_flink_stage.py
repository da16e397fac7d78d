"""The stateful stage on real Flink (parallelism 2) gives the pure core's alerts, across a
kill and a restore from a retained checkpoint in the middle of the sequence."""

from __future__ import annotations

import json
import os
import signal
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest

from detectors.stateful import StatefulEngine

from . import scenario

JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"
JOB = Path(__file__).with_name("flink_stage_job.py")


def committed_ids(sink: Path) -> list[str]:
    ids = []
    for part in sorted(sink.rglob("*.jsonl")):
        if part.name.startswith("."):
            continue  # in-progress or pending: not committed by a checkpoint
        for line in part.read_text(encoding="utf-8").splitlines():
            if line.strip():
                ids.append(json.loads(line)["id"])
    return ids


def latest_checkpoint(root: Path) -> Path | None:
    done = [meta.parent for meta in root.rglob("chk-*/_metadata")]
    return max(done, key=lambda path: int(path.name.split("-")[1])) if done else None


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    # The embedded (thread mode) interpreter imports the project and scenario from PYTHONPATH.
    # It starts from the base interpreter, so the virtualenv's site-packages (pemja, pyflink)
    # must be on the path too.
    path = os.pathsep.join([str(JOB.parents[2]), str(JOB.parent), *site.getsitepackages(),
                            os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, JAVA_HOME=os.environ.get("JAVA_HOME", JAVA_HOME), PYTHONPATH=path)
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, str(JOB), *args], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def wait_for(sink: Path, expected: set[str], proc: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if expected <= set(committed_ids(sink)):
            return
        if proc.poll() is not None:
            pytest.fail(f"Flink job exited early:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"timed out; committed {committed_ids(sink)} expected {sorted(expected)}\n"
                f"{log.read_text(errors='replace')[-4000:]}")


def write_segment(directory: Path, name: str, lines: list[str]) -> None:
    hidden = directory / f".{name}"  # FileSource skips hidden files: publish atomically
    hidden.write_text("\n".join(lines) + "\n", encoding="utf-8")
    hidden.rename(directory / name)


@pytest.mark.integration
@pytest.mark.slow
def test_flink_stage_matches_core_across_restore(tmp_path: Path) -> None:
    if not Path(os.environ.get("JAVA_HOME", JAVA_HOME)).exists():
        pytest.skip("no Java 17 for Flink")
    plan = scenario.build_plan()
    phase1 = scenario.batches(scenario.phase1(), plan)
    phase2 = scenario.batches(scenario.phase2(), plan)
    core = StatefulEngine(plan)
    expected1 = {d.id for line in phase1 for d in core.process_record(line)}
    expected2 = {d.id for line in phase2 for d in core.process_record(line)}
    assert expected1 and expected2, "the scenario must alert before and after the restart"
    assert core.stats.late > 0 and core.stats.late_dropped > 0

    source, sink, checkpoints, log = tmp_path / "in", tmp_path / "out", tmp_path / "chk", tmp_path / "job.log"
    for directory in (source, sink, checkpoints):
        directory.mkdir()
    write_segment(source, "segment-1.jsonl", phase1)
    first = start([str(source), str(sink), str(checkpoints)], log)
    try:
        wait_for(sink, expected1, first, log)
        time.sleep(4)  # let the watermark settle and a checkpoint cover the processed phase
        restore = latest_checkpoint(checkpoints)
        assert restore is not None
    finally:
        kill(first)
    second = start([str(source), str(sink), str(checkpoints), str(restore)], log)
    try:
        write_segment(source, "segment-2.jsonl", phase2)
        wait_for(sink, expected1 | expected2, second, log)
        time.sleep(3)  # anything extra would show up now
    finally:
        kill(second)
    ids = committed_ids(sink)
    assert sorted(set(ids)) == sorted(expected1 | expected2)
    assert len(ids) == len(set(ids)), "a restored job must not commit an alert twice"
