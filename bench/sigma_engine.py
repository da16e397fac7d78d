"""Benchmark of the Sigma engine on one core: events per second over evtx-attack-samples.

Runs, in one process:

1. 25 Windows rules (to show what thousands of rules cost over a few),
2. all Windows rules of the SigmaHQ corpus (logsource product windows) loaded, then
3. the whole corpus (``rules``, ``rules-emerging-threats``, ``rules-threat-hunting``) loaded,

each time matching every record of ``evtx-attack-samples`` (8,255 events, parsed and
normalized beforehand: the figure is the matcher's own cost). It prints events/s (CPU time of
this process, best of several passes, so other load on a shared machine counts less; wall time
beside it) twice: with the engine's caches of value scans warm from the previous pass, and
emptied before each pass (the honest figure for a stream whose values recur only as often as
they do in the corpus), rule load time, peak memory, and the time pySigma's SQLite backend (the
reference of tests/sigma/test_differential.py) needs for the same events and Windows rules.

The engine's hot modules run as compiled by mypyc when ``python -m detectors.sigma.native_build`` has built
them (``deploy/run test`` and ``demo`` do); the Windows figures are then printed a second time
with the same modules as plain Python, for comparison.

    .venv/bin/python bench/sigma_engine.py [--passes 10] [--no-reference]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from detectors.sigma import BUILD, SigmaEngine  # noqa: E402
from detectors.sigma.events import iter_windows_file  # noqa: E402
from detectors.sigma.native import ENV_SWITCH  # noqa: E402
from ingest.logsource import LogsourceTable  # noqa: E402

CORPORA = Path(os.environ.get("SOCFLOW_CORPORA", REPO.parent / "shared" / "corpora"))
FOLDERS = ("rules", "rules-emerging-threats", "rules-threat-hunting")


def windows_rule_files(folders: list[Path]) -> list[Path]:
    """Rule files whose logsource product is windows."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*.yml")):
            documents = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader))
            if any(isinstance(d, dict) and (d.get("logsource") or {}).get("product") == "windows" for d in documents):
                found.append(path)
    return found


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(label: str, paths: list[Path], events: list[dict], passes: int) -> SigmaEngine:
    started = time.perf_counter()
    engine, report = SigmaEngine.load(paths)
    load_s = time.perf_counter() - started
    warm_start = time.perf_counter()
    matches = sum(len(engine.match(event)) for event in events)  # builds each route's index once
    warm_s = time.perf_counter() - warm_start
    gc.freeze()  # the loaded rule set is long-lived: keep the collector from re-walking it
    print(f"{label}: {report.loaded} of {report.total} rules loaded in {load_s:.1f} s; "
          f"first pass (builds route indexes) {warm_s:.2f} s")
    for fresh in (False, True):
        cpu_times, best_wall = [], float("inf")
        for _ in range(passes):
            if fresh:
                engine.forget_values()
            cpu, wall = time.process_time(), time.perf_counter()
            for event in events:
                engine.match(event)
            cpu_times.append(time.process_time() - cpu)
            best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu, median_cpu = min(cpu_times), statistics.median(cpu_times)
        how = ("value caches emptied before each pass: a value recurs only as it does in the corpus"
               if fresh else "value caches warm from the previous pass")
        print(f"  {len(events)} events, {matches} matches: {len(events) / best_cpu:,.0f} events/s on one core "
              f"(CPU time, best of {passes}; median {len(events) / median_cpu:,.0f}); "
              f"{len(events) / best_wall:,.0f} events/s wall clock; "
              f"{best_cpu / len(events) * 1e6:.1f} us/event [{how}]")
    print(f"  peak memory (max RSS of this process, events included): {peak_mib():.0f} MiB")
    return engine


def reference(engine: SigmaEngine, events: list[dict]) -> None:
    from tests.sigma.reference import SqliteReference, flatten_windows

    rules = [rule for rule in engine.rules if rule.logsource.get("product") == "windows"]
    started = time.perf_counter()
    rows = []
    for event in events:
        route = engine.route(event)
        rows.append((route, flatten_windows(event, route)))
    ref = SqliteReference(rows)
    build_s = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    compiled = matched = 0
    for rule in rules:
        result = ref.match(Path(rule.path), rule.id, rule.logsource)
        if not isinstance(result, str):
            compiled += 1
            matched += len(result)
    wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    print(f"SQLite reference (pySigma sqlite backend): table of {len(events)} events built in {build_s:.1f} s; "
          f"{compiled} of {len(rules)} Windows rules compiled and run in {wall_s:.1f} s wall / {cpu_s:.1f} s CPU "
          f"({len(events) / cpu_s:,.0f} events/s equivalent, incl. rule compilation), {matched} matches")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=10,
                        help="passes per figure; the best counts (a shared machine's bursts of other load "
                             "slow some), the median is printed beside")
    parser.add_argument("--no-reference", action="store_true", help="skip the SQLite reference run")
    parser.add_argument("--only", choices=("few", "windows", "corpus"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not (CORPORA / "sigma").is_dir() or not (CORPORA / "evtx-attack-samples").is_dir():
        print(f"corpora not found under {CORPORA} (set SOCFLOW_CORPORA)", file=sys.stderr)
        return 2
    if args.only is None:
        load = os.getloadavg()
        print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
              "(other processes share the cores: CPU-time figures are the fairer ones)")
        print(f"engine build: {BUILD}")
        runs = [("few", "1"), ("windows", "1"), ("corpus", "1")]
        if BUILD == "compiled":
            runs.insert(2, ("windows", "0"))  # the same modules as plain Python, beside
        # Each configuration in its own process, so that its peak memory is its own.
        for only, compiled in runs:
            command = [sys.executable, __file__, "--only", only, "--passes", str(args.passes)]
            if args.no_reference or compiled == "0":
                command.append("--no-reference")
            subprocess.run(command, check=True, env={**os.environ, ENV_SWITCH: compiled})
        return 0
    table = LogsourceTable.load(REPO / "config" / "logsources.yaml")
    started = time.perf_counter()
    events = [event for path in sorted((CORPORA / "evtx-attack-samples").rglob("*.evtx"))
              for _, event in iter_windows_file(path, table=table)]
    before = peak_mib()
    build = "compiled by mypyc" if BUILD == "compiled" else BUILD
    print(f"[{args.only}, engine {build}] parsed and normalized {len(events)} EVTX records in "
          f"{time.perf_counter() - started:.1f} s (not part of the figures below); "
          f"memory with events loaded {before:.0f} MiB")
    if args.only == "few":
        few = windows_rule_files([CORPORA / "sigma" / "rules" / "windows" / "process_creation"])[:25]
        run("25 Windows rules (for scale)", few, events, args.passes)
    elif args.only == "windows":
        engine = run("all Windows rules", windows_rule_files([CORPORA / "sigma" / name for name in FOLDERS]),
                     events, args.passes)
        if not args.no_reference:
            reference(engine, events)
    else:
        run("whole corpus", [CORPORA / "sigma" / name for name in FOLDERS], events, args.passes)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
