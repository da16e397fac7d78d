"""The real detection job on Flink (parallelism 2) gives the pure core's alerts on deterministic
sequences — out-of-order and late events included — undisturbed, and across a kill -9 in the
middle of the sequence followed by a restore from the latest retained checkpoint.

The job is ``socflow run --parallelism 2`` over the project's rules (``rules/``) and detectors
(``config/``); the sequences of :mod:`tests.correlation.job_scenario` reach its spool through
the collector (``collect_paths``), one phase after the job has committed the previous phase's
alerts. The expected alerts are ``socflow replay``'s (the same core, no Flink) over the same
files; alerts are compared by id, rule, count and the events that built them.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from alerts.settings import REPO_ROOT, Settings, load_settings
from detectors.sigma import SigmaEngine
from detectors.stateful import StatefulEngine, build_plan
from ingest.files import collect_paths
from ingest.logs import log_event
from tests.faults.harness import (
    JOB_ENV,
    expected_detections,
    kill_group,
    latest_checkpoint,
    socflow,
    stream_records,
)

from . import job_scenario

LOGGER = logging.getLogger(__name__)
Summary = dict[str, tuple[str, int, tuple[str, ...]]]


def summary(records: Iterable[dict[str, Any]]) -> Summary:
    """id -> (rule id, count, event ids) of the newest version of each alert."""
    newest: dict[str, dict[str, Any]] = {}
    for record in records:
        kept = newest.get(record["id"])
        if kept is None or int(record["count"]) > int(kept["count"]):
            newest[record["id"]] = record
    return {ident: (r["rule"]["id"], int(r["count"]), tuple(sorted(r["event_ids"]))) for ident, r in newest.items()}


def expected_after(files: list[Path], work: Path, *, final: bool) -> Summary:
    return summary(d.as_record() for d in expected_detections(files, work, flush=final))


def test_core_on_the_sequences_counts_out_of_order_and_late_events() -> None:
    """The sequences do what the Flink test needs of them: late events applied and dropped."""
    engine, _report = SigmaEngine.load([REPO_ROOT / "rules"], config_dir=REPO_ROOT / "config")
    core = StatefulEngine(build_plan(engine, str(REPO_ROOT / "config")))
    titles = []
    for phase in job_scenario.phases():
        for event in phase:
            titles += [d.rule.title for d in core.process(event, engine.match(event))]
    titles += [d.rule.title for d in core.flush()]
    assert core.stats.late_dropped >= 1 and core.stats.late > core.stats.late_dropped
    assert "Linux Reconnaissance Burst by One User" in titles  # srv-a: late command applied
    assert titles.count("Linux Reconnaissance Burst by One User") == 1  # srv-b: late command dropped
    assert "SSO Brute Force Followed by a Successful Logon" in titles  # chained, completed by a late event
    assert "Unusually Large Average Document Downloads by One Account" in titles  # closed by the watermark


class Job:
    """One ``socflow run --parallelism N`` process (2 unless told) and the spool it reads."""

    def __init__(self, tmp_path: Path, *, parallelism: int = 2, env: dict[str, str] | None = None) -> None:
        self.tmp_path = tmp_path
        self.parallelism = parallelism
        self.env = env or JOB_ENV
        self.data = tmp_path / "data"
        self.inputs = tmp_path / "inputs"
        self.settings: Settings = load_settings(data_dir=self.data)
        self.files: list[Path] = []
        self.process: Any = None
        self.runs = 0

    def start(self, *extra: str) -> None:
        self.runs += 1
        self.log = self.tmp_path / f"job-{self.runs}.log"
        self.process = socflow(self.data, "run", "--parallelism", str(self.parallelism), *extra, env=self.env,
                              log=self.log)

    def feed(self, number: int, events: list[dict[str, Any]]) -> None:
        """Write one phase to the spool as the file collector does (sealed segments)."""
        path = job_scenario.write_phase(self.inputs, number, events)
        collect_paths([path], self.settings.spool_dir, settings=self.settings.collector, writer_id="feed",
                      progress=False)
        self.files.append(path)

    def committed(self) -> list[dict[str, Any]]:
        return stream_records(self.settings.alert_stream_dir)

    def wait_for(self, expected: Summary, timeout_s: float, what: str) -> None:
        started = time.monotonic()
        while summary(self.committed()) != expected:
            if self.process.poll() is not None:
                pytest.fail(f"the job exited while waiting for {what}:\n{self.tail()}")
            if time.monotonic() - started > timeout_s:
                got = summary(self.committed())
                missing = {k: v for k, v in expected.items() if got.get(k) != v}
                extra = {k: v for k, v in got.items() if expected.get(k) != v}
                pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}\nmissing or different: "
                            f"{missing}\nunexpected: {extra}\n{self.tail()}")
            time.sleep(0.5)

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("restore", [False, True], ids=["undisturbed", "killed-and-restored"])
def test_job_gives_the_core_alerts(tmp_path: Path, restore: bool) -> None:
    started = time.monotonic()
    first, second, third = job_scenario.phases()
    job = Job(tmp_path)
    work = tmp_path / "replay"
    restored_from: Path | None = None
    try:
        job.start()
        job.feed(1, first)
        # The port scan alert of phase 1 comes from an event-time timer at 219 s: once it is
        # committed, every keyed task has passed that watermark, so phase 2's late events are
        # late in Flink just as in the core (a committed alert also means a completed checkpoint).
        job.wait_for(expected_after(job.files, work / "1", final=False), 150, "the alerts of phase 1")
        job.feed(2, second)
        if restore:
            time.sleep(1.0)  # phase 2 is being read or processed, not yet committed
            kill_group(job.process)
            restored_from = latest_checkpoint(job.settings.checkpoint_dir)
            assert restored_from is not None
            job.start("--restore", str(restored_from))
        job.wait_for(expected_after(job.files, work / "2", final=False), 150, "the alerts of phases 1 and 2")
        # Only now the event that moves the watermark past every window (sent earlier, it
        # could overtake phase 2 on the other reader and make its events late).
        job.feed(3, third)
        expected = expected_after(job.files, work / "3", final=True)
        job.wait_for(expected, 120, "every alert at its final count")
        time.sleep(3.0)  # anything emitted twice would be committed within a checkpoint or two
        records = job.committed()
    finally:
        job.stop()

    assert summary(records) == expected
    versions = Counter((record["id"], int(record["count"])) for record in records)
    assert [key for key, seen in versions.items() if seen > 1] == [], "an alert version committed twice"
    log_event(LOGGER, "flink_job_matches_core", restore=restore, restored_from=str(restored_from),
              alerts=len(expected), records=len(records), seconds=round(time.monotonic() - started, 1))


@pytest.mark.integration
@pytest.mark.slow
def test_watermarks_leave_with_the_records_that_move_them(tmp_path: Path) -> None:
    """Alerts that wait for the watermark come out although periodic watermarks are held back an
    hour: the watermark leaves with the batch that moves it. A checkpoint therefore never falls
    between a batch and the timers it fires; when one did, a job restored from it had consumed
    the batch, never saw its watermark, and held those alerts until new input came (see
    EagerWatermarks.java)."""
    held_back = json.dumps({"pipeline.auto-watermark-interval": "1 h"})
    job = Job(tmp_path, parallelism=1, env={**JOB_ENV, "SOCFLOW_JOB__FLINK_CONFIG": held_back})
    failures = [job_scenario.sso(f"f{n:02d}", n * 20, "minh.le", "failure") for n in range(10)]
    events = [*failures, job_scenario.sso("s01", 300, "minh.le", "success"), job_scenario.tick("t1", 400)]
    try:
        job.start()
        job.feed(1, events)
        expected = expected_after(job.files, tmp_path / "replay", final=False)
        rules = {rule for rule, _count, _events in expected.values()}
        assert "5b0f1f0e-6f57-4b8e-9a51-2c5a8f0e7a11" in rules  # brute force then success: fired at 300 s
        job.wait_for(expected, 150, "the alerts the batch's watermark fires")
    finally:
        job.stop()
