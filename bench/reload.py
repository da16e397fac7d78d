"""Hot reload: time from publish to the first alert judged by the new version, and the throughput dip.

    .venv/bin/python bench/reload.py [--rate 5000] [--seconds 60] [--publish-at 20] [--reload-interval 5] [--json]
    .venv/bin/python bench/reload.py --core [--seconds 12] [--publish-at 4] [--json]

Default (the job): ``bench/pipeline.py``'s load — ``socflow collect files --follow`` tailing a file
its generator appends Sysmon process-creation events to at ``--rate`` events/s, and the continuous
job ``socflow run`` (local runtime, spool) judging them with this project's rules plus the SigmaHQ
Windows rule set, published as rule set v1 (``$SOCFLOW_CORPORA``; the indexer and Elasticsearch
are left out: the figures come from the job's committed output and its Flink metrics). Once the
pipeline has alerted and read its warm-up backlog, the offered rate runs for ``--seconds``; at
``--publish-at`` seconds into it v2 (one rule's level changed) is published in this process, as
``socflow rules publish`` does.
Printed: how long ``publish`` took (it loads every rule once), from the end of publish and from its
start to the first committed alert stamped v2 (``rule.ruleset_version`` in the alert stream), and
the job's events/s per one-second bucket (its ``socflow_events_in`` counter, scraped from the
Prometheus reporter every second) before publish, during publish and the switch, and after the
first v2 alert: median before, minimum during, median after and their ratio (the dip); and per
phase the largest backlog (events written to the input file, not yet read by the job).

``--core``: the detect operator's loop without Flink (the same classes): ``BatchProcessor`` over
batches of 1000 events against ``rules/`` published as v1, polling a ``RuleSetWatcher`` between
batches as ``DetectBatches`` does (interval 1 s, background load), v2 published by a second thread;
events/s per 0.5 s window before, during (publish + background load) and after the switch.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

# The repository before bench/ (whose detectors.py would shadow the package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.indexer import finished_files
from alerts.settings import REPO_ROOT, load_settings
from detectors.pipeline import BatchProcessor
from detectors.ruleset import RuleSetWatcher, load_published, publish

CONFIG = REPO_ROOT / "config"
WINDOW_S = 0.5


def batch(number: int, size: int = 1000) -> list[dict]:
    out = []
    for index in range(size):
        serial = number * size + index
        minute, second, milli = (serial // 60000) % 60, (serial // 1000) % 60, serial % 1000
        out.append({
            "@timestamp": f"2026-12-07T09:{minute:02d}:{second:02d}.{milli:03d}Z",
            "event": {"id": f"bench-{serial}", "code": "1"},
            "host": {"name": f"ws-{serial % 500:03d}"},
            "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 1,
                       "event_data": {"Image": "C:\\Windows\\System32\\cmd.exe",
                                      "CommandLine": f"cmd.exe /c echo {serial}",
                                      "ParentImage": "C:\\Windows\\explorer.exe", "User": "AGENCY\\clerk"}},
            "socflow": {"logsource": {"product": "windows", "category": "process_creation"}},
        })
    return out


def changed_rules(work: Path) -> Path:
    """A copy of rules/ with one rule's level changed: the content of rule set v2."""
    changed = work / "rules-v2"
    shutil.copytree(REPO_ROOT / "rules", changed)
    target = next(p for p in sorted(changed.rglob("*.yml"))
                  if not p.name.endswith(".tests.yml") and "\nlevel: high" in p.read_text(encoding="utf-8"))
    target.write_text(target.read_text(encoding="utf-8").replace("\nlevel: high", "\nlevel: critical"),
                      encoding="utf-8")
    return changed


def core(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="socflow-bench-reload-"))
    try:
        store = work / "rulesets"
        v1 = publish([REPO_ROOT / "rules"], store, config_dir=CONFIG).version
        changed = changed_rules(work)
        processor = BatchProcessor(load_published(store, v1, CONFIG).matcher)
        watcher = RuleSetWatcher(store, CONFIG, active=v1, interval_s=1.0)
        batches = [batch(n) for n in range(8)]
        published: dict[str, float] = {}

        def publisher() -> None:
            published["start"] = time.monotonic()
            published["version"] = publish([changed], store, config_dir=CONFIG).version  # type: ignore[assignment]
            published["end"] = time.monotonic()

        windows: list[tuple[float, int, str]] = []  # (window start, events, phase)
        started = time.monotonic()
        window_start, window_events = started, 0
        switched_at = None
        thread = None
        number = 0
        while time.monotonic() - started < args.seconds:
            now = time.monotonic()
            if thread is None and now - started >= args.publish_at:
                thread = threading.Thread(target=publisher)
                thread.start()
            loaded = watcher.poll(now)
            if loaded is not None:
                processor = BatchProcessor(loaded.matcher, processor.router)
                switched_at = time.monotonic()
            result = processor.process(batches[number % len(batches)])
            number += 1
            window_events += result.events
            if time.monotonic() - window_start >= WINDOW_S:
                phase = "before" if thread is None else ("after" if switched_at is not None else "during")
                windows.append((window_start - started, window_events, phase))
                window_start, window_events = time.monotonic(), 0
        if thread is not None:
            thread.join()
        if published.get("version") == v1:
            raise SystemExit("the changed rule set has the same version: nothing to switch to")
        rates = {phase: [n / WINDOW_S for _t, n, p in windows if p == phase] for phase in ("before", "during", "after")}
        before = statistics.median(rates["before"]) if rates["before"] else 0.0
        during = min(rates["during"]) if rates["during"] else before
        figures = {
            "publish_s": round(published["end"] - published["start"], 2) if "end" in published else None,
            "publish_to_switch_s": round(switched_at - published["start"], 2) if switched_at else None,
            "events_per_s_before": round(before),
            "events_per_s_during_min": round(during),
            "events_per_s_after": round(statistics.median(rates["after"])) if rates["after"] else None,
            "dip_ratio_during_over_before": round(during / before, 2) if before else None,
            "windows_during": len(rates["during"]),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return figures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def events_in(port: int) -> float | None:
    """The job's ``socflow_events_in`` (summed over subtasks) from its Prometheus reporter."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode("utf-8", "replace")
    except OSError:
        return None
    values = [float(match.group(1)) for match in re.finditer(r"^\S*socflow_events_in\S* (\S+)$", text, re.M)]
    return sum(values) if values else None


class Sampler(threading.Thread):
    """Every second: the job's events_in counter; every 0.2 s: new committed alert files, for the
    first alert stamped with ``wanted`` (set when published)."""

    def __init__(self, port: int, stream: Path) -> None:
        super().__init__(daemon=True)
        self.port, self.stream = port, stream
        self.samples: list[tuple[float, float, int]] = []  # (monotonic time, events_in, events written)
        self.written: Any = None  # the generator, once it exists
        self.first_alert: float | None = None
        self.versions: set[str] = set()
        self.wanted = ""
        self.stop = threading.Event()
        self._read: set[Path] = set()

    def run(self) -> None:
        next_sample = time.monotonic()
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_sample:
                value = events_in(self.port)
                if value is not None:
                    self.samples.append((now, value, self.written.written if self.written else 0))
                next_sample += 1.0
            self._scan()
            self.stop.wait(0.2)

    def _scan(self) -> None:
        for path in finished_files(self.stream):
            if path in self._read:
                continue
            self._read.add(path)
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    version = json.loads(line).get("rule", {}).get("ruleset_version", "")
                    self.versions.add(version)
                    if self.wanted and version == self.wanted and self.first_alert is None:
                        self.first_alert = time.monotonic()


def job(args: argparse.Namespace) -> dict[str, Any]:
    from bench.pipeline import Generator, corpora_dir, start, stop

    sigma = args.sigma_windows or corpora_dir() / "sigma" / "rules" / "windows"
    if not sigma.is_dir():
        raise SystemExit(f"SigmaHQ Windows rules not found at {sigma} (set SOCFLOW_CORPORA)")
    work = Path(tempfile.mkdtemp(prefix="socflow-bench-reload-"))
    data = work / "data"
    settings = load_settings(data_dir=data)
    (work / "logs").mkdir()
    source = work / "sysmon.jsonl"
    source.write_text("", encoding="utf-8")
    port = free_port()
    env = {**os.environ, "SOCFLOW_JOB__RULE_DIRS": json.dumps([str(REPO_ROOT / "rules"), str(sigma)]),
           "SOCFLOW_JOB__FLINK_METRICS_PORT": str(port), "SOCFLOW_JOB__RELOAD_INTERVAL_S": str(args.reload_interval)}
    store = settings.ruleset_store_dir
    detectors = CONFIG / "detectors.yaml"
    v1 = publish([REPO_ROOT / "rules", sigma], store, config_dir=CONFIG, detectors=detectors).version
    changed = changed_rules(work)
    generator = Generator(source, args.rate, 1000)
    sampler = Sampler(port, settings.alert_stream_dir)
    sampler.written = generator
    processes = [start("collector", data, ["collect", "files", "--follow", "--no-progress", str(source)], env,
                       work / "logs"),
                 start("job", data, ["run", "--metrics"], env, work / "logs")]
    published: dict[str, Any] = {}
    try:
        sampler.start()
        started = time.monotonic()
        while v1 not in sampler.versions:  # warm-up: the job up and alerting (start-up not counted)
            if time.monotonic() - started > 900 or any(p.poll() is not None for p in processes):
                raise SystemExit(f"pipeline did not come up; see {work / 'logs'}")
            generator.write(1.0, prefix="warmup")
        # Steady state first: the backlog of the warm-up drained (the job has read what was written).
        while not sampler.samples or sampler.samples[-1][1] < generator.written - args.rate:
            if time.monotonic() - started > 900:
                raise SystemExit(f"the job did not catch up with the warm-up; see {work / 'logs'}")
            time.sleep(0.5)
        writer = threading.Thread(target=generator.write, args=(args.seconds,), daemon=True)
        offered_from = time.monotonic()
        writer.start()
        time.sleep(args.publish_at)
        sampler.wanted = "?"  # nothing matches until the version is known
        published["start"] = time.monotonic()
        version = publish([changed, sigma], store, config_dir=CONFIG, detectors=detectors).version
        published["end"] = time.monotonic()
        sampler.wanted = version
        sampler._read.clear()  # an alert of v2 may be in a file read while publish ran
        writer.join()
        deadline = time.monotonic() + 120
        while sampler.first_alert is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)
    finally:
        sampler.stop.set()
        for process in reversed(processes):
            stop(process)
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)
            source.unlink(missing_ok=True)
    first = sampler.first_alert
    buckets: dict[str, list[float]] = {"before": [], "during": [], "after": []}
    lag: dict[str, int] = {"before": 0, "during": 0, "after": 0}  # most events written, not yet read
    for (t0, c0, _w0), (t1, c1, w1) in zip(sampler.samples, sampler.samples[1:], strict=False):
        if t0 < offered_from or t1 > offered_from + generator.span:
            continue
        phase = "before" if t1 <= published["start"] else ("during" if first is None or t0 < first else "after")
        buckets[phase].append((c1 - c0) / (t1 - t0))
        lag[phase] = max(lag[phase], int(w1 - c1))
    before = statistics.median(buckets["before"]) if buckets["before"] else 0.0
    during = min(buckets["during"]) if buckets["during"] else before
    return {
        "offered_events_per_s": args.rate,
        "rules": "rules/ + SigmaHQ windows",
        "reload_interval_s": args.reload_interval,
        "publish_s": round(published["end"] - published["start"], 1),
        "publish_end_to_first_v2_alert_s": round(first - published["end"], 1) if first else None,
        "publish_start_to_first_v2_alert_s": round(first - published["start"], 1) if first else None,
        "events_per_s_before_median": round(before),
        "events_per_s_during_min": round(during),
        "events_per_s_after_median": round(statistics.median(buckets["after"])) if buckets["after"] else None,
        "dip_ratio_during_min_over_before": round(during / before, 2) if before else None,
        "seconds_during": len(buckets["during"]),
        "max_backlog_events_before": lag["before"],
        "max_backlog_events_during": lag["during"],
        "max_backlog_events_after": lag["after"],
        "per_second_during": [round(rate) for rate in buckets["during"]],
        "logs": str(work / "logs"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--core", action="store_true", help="the detect loop without Flink (no pipeline)")
    parser.add_argument("--rate", type=int, default=5000, help="events/s offered to the pipeline (default 5000)")
    parser.add_argument("--seconds", type=float, help="seconds of steady offered rate (default 60; --core 12)")
    parser.add_argument("--publish-at", type=float, help="seconds into it v2 is published (default 20; --core 4)")
    parser.add_argument("--reload-interval", type=float, default=5.0,
                        help="job.reload_interval_s of the job (default 5, the job's default)")
    parser.add_argument("--sigma-windows", type=Path, help="SigmaHQ Windows rules (default: corpora)")
    parser.add_argument("--keep", action="store_true", help="keep the input file and the job's data")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.core:
        args.seconds, args.publish_at = args.seconds or 12.0, args.publish_at or 4.0
        figures = core(args)
    else:
        args.seconds, args.publish_at = args.seconds or 60.0, args.publish_at or 20.0
        figures = job(args)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:36} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
