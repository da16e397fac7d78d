"""socflow replay against RSigma, whole process, same records, same rules, one core, CPU time.

    .venv/bin/python bench/engine_vs_rsigma.py [--target 99060] [--rounds 2] [--rules DIR] [--json]

Builds nothing. The records are evtx-attack-samples read by socflow's collector (8,255 events),
written as JSON lines and repeated to ``--target`` events. socflow runs ``socflow replay`` on
those lines; RSigma (``rsigma engine eval``, when an ``rsigma`` binary is on PATH or ``RSIGMA``
names one) runs on the same records in the flat form Sigma rules name (EventData fields,
``EventID``, ``Channel``, ``Provider_Name``, ``Computer``), each carrying the logsource socflow
routed it to (``ls_product``/``ls_service``/``ls_category``), which ``--logsource-routing``
reads: the RSigma pipeline that routes logsources as socflow does. Both get the same rules
(``$SOCFLOW_CORPORA/sigma/rules/windows`` by default).

Each tool runs ``--rounds`` times, alternating, pinned to one core (``taskset -c 0``); a run's
CPU time and peak memory come from GNU time (``/usr/bin/time``). Start-up is a run over one event. The figures:
events/s (CPU), events/s with start-up subtracted, start-up CPU s, peak RSS MiB, and the ratio
socflow/RSigma. Before timing, the match sets of both on the 8,255 records are compared (rule id
per record; socflow's from its engine, RSigma's from ``--include-event``): they must agree, or
the figures compare different work. Without RSigma the socflow figures are printed alone.
The reference loop (``sum(range(1000))``, µs) is measured in the same run: this VM's speed swings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pipeline import calibrate  # noqa: E402

CORPORA = Path(os.environ.get("SOCFLOW_CORPORA", REPO.parent / "shared" / "corpora"))
SOCFLOW = [sys.executable, "-c", "import sys; from alerts.cli import main; sys.exit(main())"]
ROUTING = ["--logsource-routing", "--logsource-field-map", "product=ls_product,service=ls_service,category=ls_category"]


def corpus_samples(rules: Path) -> Path | None:
    """The evtx-attack-samples folder, or None (said on stderr) when it or ``rules`` is absent."""
    samples = CORPORA / "evtx-attack-samples"
    if samples.is_dir() and rules.is_dir():
        return samples
    print(f"corpus not found under {CORPORA} (set SOCFLOW_CORPORA)", file=sys.stderr)
    return None


def collected_events(samples: Path) -> list[dict[str, Any]]:
    """The corpus as socflow's collector delivers it (through a spool, as production does)."""
    from alerts.settings import load_settings
    from ingest.files import collect_paths
    from ingest.spool import read_batches

    with tempfile.TemporaryDirectory(prefix="socflow-vs-") as temporary:
        spool = Path(temporary) / "spool"
        collect_paths([samples], spool, settings=load_settings().collector, writer_id="bench")
        return [event for batch in read_batches(spool) for event in batch]


def flat(event: dict[str, Any], number: int) -> dict[str, Any]:
    """The record as Sigma's Windows rules name its fields, with socflow's route."""
    winlog = event.get("winlog") or {}
    record: dict[str, Any] = {"n": number}
    data = winlog.get("event_data")
    if isinstance(data, dict):
        record.update(data)
    record.update({"EventID": winlog.get("event_id"), "Channel": winlog.get("channel"),
                   "Provider_Name": winlog.get("provider_name"), "Computer": winlog.get("computer_name")})
    logsource = (event.get("socflow") or {}).get("logsource") or {}
    for dimension in ("product", "service", "category"):
        if logsource.get(dimension):
            record[f"ls_{dimension}"] = logsource[dimension]
    return record


def write_lines(path: Path, records: Sequence[dict[str, Any]], total: int) -> None:
    lines = [json.dumps(record, ensure_ascii=False) + "\n" for record in records]
    with path.open("w", encoding="utf-8") as handle:
        for index in range(total):
            handle.write(lines[index % len(lines)])


def run_reaped(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, float]:
    """CPU seconds and peak RSS (MiB) of one pinned run of ``command``, measured by GNU time.

    Not by our own wait4: a child forked from this process starts with its page tables, and Linux
    counts that in the child's peak RSS (every run read 314 MiB, this bench's own size). ``cwd``:
    where it runs; for ``python -c`` the working directory comes first on the import path, so a
    socflow process runs the checkout it is started in, whatever PYTHONPATH says."""
    pinned = (["taskset", "-c", "0"] if shutil.which("taskset") else []) + command
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="socflow-run-") as temporary:
        measured, errors_path = Path(temporary) / "time", Path(temporary) / "errors"
        with errors_path.open("wb") as errors:
            completed = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", str(measured), *pinned],
                                       stdout=subprocess.DEVNULL, stderr=errors, env=env, cwd=cwd, check=False)
        if completed.returncode:
            raise SystemExit(f"{command[0]} failed ({completed.returncode}): "
                             f"{errors_path.read_bytes().decode(errors='replace')[-2000:]}")
        user, system, peak_kib = measured.read_text().split()[-3:]
    return {"cpu_s": float(user) + float(system), "peak_mib": int(peak_kib) / 1024,
            "wall_s": time.perf_counter() - start}


def socflow_command(rules: Path, events: Path, output: Path) -> list[str]:
    return [*SOCFLOW, "replay", "--rules", str(rules), "--output", str(output), str(events)]


def rsigma_command(rsigma: str, rules: Path, events: Path, *extra: str) -> list[str]:
    return [rsigma, "engine", "eval", "--rules", str(rules), "--event", f"@{events}", "--input-format", "json",
            *ROUTING, *extra]


def socflow_matches(events: Sequence[dict[str, Any]], rules: Path) -> set[tuple[int, str]]:
    from detectors.sigma.cache import load_engine

    engine, _, _ = load_engine([rules])
    return {(number, rule.id) for number, event in enumerate(events) for rule in engine.match(event)}


def rsigma_matches(rsigma: str, rules: Path, events: Path) -> set[tuple[int, str]]:
    completed = subprocess.run(rsigma_command(rsigma, rules, events, "--include-event"), capture_output=True,
                               text=True, check=False)
    found: set[tuple[int, str]] = set()
    for line in completed.stdout.splitlines():
        try:
            match = json.loads(line)
        except ValueError:
            continue
        event = match.get("event") or {}
        if isinstance(event, dict) and "n" in event:
            found.add((int(event["n"]), str(match.get("rule_id") or match.get("id") or "")))
    return found


def figures(events: int, full: dict[str, float], startup: dict[str, float]) -> dict[str, float]:
    rest = full["cpu_s"] - startup["cpu_s"]
    return {"events_per_s": round(events / full["cpu_s"]), "events_per_s_after_startup": round(events / rest)
            if rest > 0 else 0, "startup_cpu_s": round(startup["cpu_s"], 3), "cpu_s": round(full["cpu_s"], 2),
            "peak_mib": round(full["peak_mib"], 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", type=int, default=99_060, help="events per run (the corpus repeated)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each tool, alternating")
    parser.add_argument("--rules", type=Path, default=CORPORA / "sigma" / "rules" / "windows")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    samples = corpus_samples(args.rules)
    if samples is None:
        return 2
    rsigma = os.environ.get("RSIGMA") or shutil.which("rsigma")
    why = "" if rsigma else "no rsigma binary on PATH and RSIGMA not set (cargo install rsigma builds one)"
    reference = calibrate()
    events = collected_events(samples)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    report: dict[str, Any] = {"reference_loop_us": round(reference, 2), "records": len(events),
                              "events": args.target, "rules": str(args.rules)}
    with tempfile.TemporaryDirectory(prefix="socflow-vs-") as temporary:
        work = Path(temporary)
        write_lines(work / "socflow.jsonl", events, args.target)
        write_lines(work / "socflow-one.jsonl", events, 1)
        flats = [flat(event, number) for number, event in enumerate(events)]
        write_lines(work / "flat.jsonl", flats, args.target)
        write_lines(work / "flat-one.jsonl", flats, 1)
        write_lines(work / "flat-corpus.jsonl", flats, len(flats))
        if rsigma:
            ours, theirs = socflow_matches(events, args.rules), rsigma_matches(rsigma, args.rules,
                                                                              work / "flat-corpus.jsonl")
            report["match_sets"] = {"socflow": len(ours), "rsigma": len(theirs), "both": len(ours & theirs),
                                    "agree": ours == theirs}
        run_reaped(socflow_command(args.rules, work / "socflow-one.jsonl", work / "warm.jsonl"), env, REPO)  # cache
        runs: dict[str, list[dict[str, float]]] = {"socflow": [], "socflow_startup": [], "rsigma": [],
                                                   "rsigma_startup": []}
        for _ in range(args.rounds):
            runs["socflow_startup"].append(run_reaped(socflow_command(args.rules, work / "socflow-one.jsonl",
                                                                      work / "one.jsonl"), env, REPO))
            runs["socflow"].append(run_reaped(socflow_command(args.rules, work / "socflow.jsonl",
                                                              work / "alerts.jsonl"), env, REPO))
            if rsigma:
                runs["rsigma_startup"].append(run_reaped(rsigma_command(rsigma, args.rules, work / "flat-one.jsonl")))
                runs["rsigma"].append(run_reaped(rsigma_command(rsigma, args.rules, work / "flat.jsonl")))
    best = {name: min(values, key=lambda r: r["cpu_s"]) for name, values in runs.items() if values}
    report["socflow"] = figures(args.target, best["socflow"], best["socflow_startup"])
    if rsigma:
        report["rsigma"] = figures(args.target, best["rsigma"], best["rsigma_startup"])
        ratio = report["socflow"]["events_per_s"] / report["rsigma"]["events_per_s"]
        report["ratio_socflow_to_rsigma"] = round(ratio, 3)
    else:
        report["rsigma"] = why
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"reference loop: sum(range(1000)) = {reference:.1f} us (about 10 us on an idle modern core)")
    print(f"{len(events)} records repeated to {args.target} events; rules {args.rules}; best of {args.rounds}, "
          "one core, CPU time")
    if "match_sets" in report:
        print(f"match sets (record, rule) on the corpus: {report['match_sets']}")
    columns = ("events_per_s", "events_per_s_after_startup", "startup_cpu_s", "peak_mib")
    print(f"{'':10}" + "".join(f"{name:>28}" for name in columns))
    for tool in ("socflow", "rsigma"):
        if isinstance(report[tool], dict):
            print(f"{tool:10}" + "".join(f"{report[tool][name]:>28}" for name in columns))
    if rsigma:
        print(f"ratio socflow/RSigma (events/s, whole process): {report['ratio_socflow_to_rsigma']}")
    else:
        print(f"RSigma not measured: {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
