"""Hot reload inside the detect operator: publish-to-switch time and the throughput dip.

    .venv/bin/python bench/reload.py [--seconds 12] [--publish-at 4] [--json]

What the Flink job's batch operator does, without Flink (the same classes): a loop runs
``BatchProcessor`` over batches of 1000 Windows process-creation events against the project's
``rules/`` published as rule set v1, polling a ``RuleSetWatcher`` between batches as
``DetectBatches`` does (interval 1 s, loading in a background thread). At ``--publish-at`` seconds
a second thread runs ``publish`` of v2 (one rule's level changed) while the loop keeps going.

Printed: the time ``publish`` took (validation: every rule loaded once), the time from the start
of ``publish`` to the first batch judged by v2, and events/s per 0.5 s window before, during
(publish + background load) and after the switch, with the during/before ratio: the dip. Both
the publisher and the job's loader run in this process here, as they compete for the GIL, so the
dip is an upper bound for a job whose publisher runs elsewhere. Not measured: the Flink job end
to end (commit of the first new alert waits for the next checkpoint, +checkpoint interval).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

# The repository before bench/ (whose detectors.py would shadow the package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.settings import REPO_ROOT
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--publish-at", type=float, default=4.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="socflow-bench-reload-"))
    try:
        store = work / "rulesets"
        v1 = publish([REPO_ROOT / "rules"], store, config_dir=CONFIG).version
        changed = work / "rules-v2"
        shutil.copytree(REPO_ROOT / "rules", changed)
        target = next(p for p in sorted(changed.rglob("*.yml"))
                      if not p.name.endswith(".tests.yml") and "\nlevel: high" in p.read_text(encoding="utf-8"))
        target.write_text(target.read_text(encoding="utf-8").replace("\nlevel: high", "\nlevel: critical"),
                          encoding="utf-8")
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
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:32} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
