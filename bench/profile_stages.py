"""Where every microsecond of ``socflow replay`` goes, stage by stage (cProfile on the pure core).

    .venv/bin/python bench/profile_stages.py [--rules DIR ...] [--null-rule] [--repeat N] [--spool] [--json]

Runs the whole replay path once unprofiled (CPU time: the real µs/event) and once under cProfile
over the evtx-attack-samples corpus (``$SOCFLOW_CORPORA``, default ``../shared/corpora``), with
the SigmaHQ Windows rules by default, or (``--null-rule``) one rule that never matches (the cost
of everything but matching). The profile's inclusive times of the functions that make each stage
are turned into exclusive shares, and each share is printed as µs per event of the unprofiled
run (cProfile inflates call-heavy stages more than others: the shares are estimates, the total
is measured). Stages:

- collector read+parse: reading the EVTX files and turning records into events;
- collector normalise+enrich: ``Normalizer.finish`` (timestamp, id, logsource tag, assets);
- spool write: the spool writer's encoding and writing (only when replay goes through a spool);
- job batch decode: reading the spool's batches back (JSON);
- Sigma: ``SigmaEngine.match``; detection objects: ``Detection.for_events``;
- anomaly routing: the keyed stage run inline (correlations, anomaly detectors);
- alert grouping: suppressions and deduplication; output: alert documents as JSON lines;
- replay's own path: the rest (batch loop, rule-set cache read, temporary directories ...).

The Sigma engine runs as plain Python here (``SOCFLOW_SIGMA_COMPILED=0``): cProfile cannot see
into its mypyc-compiled build. Rule loading is measured apart (first load and cached load), so the stages are per event.
The reference loop (``sum(range(1000))``, µs) is measured in the same run: this VM's speed swings.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# cProfile cannot see into the mypyc-compiled engine: profile its Python sources (the whole run
# is measured in that build; bench/engine_vs_rsigma.py measures the compiled one).
os.environ.setdefault("SOCFLOW_SIGMA_COMPILED", "0")

from alerts.commands.replay import DetectionRun, alert_documents, load_rules, replay, write_jsonl  # noqa: E402
from alerts.settings import load_settings  # noqa: E402
from bench.pipeline import calibrate  # noqa: E402
from detectors.sigma import BUILD  # noqa: E402

CORPORA = Path(os.environ.get("SOCFLOW_CORPORA", REPO.parent / "shared" / "corpora"))

NULL_RULE = """title: Never matches
id: 00000000-0000-4000-8000-0000000000ff
status: test
logsource:
  product: windows
detection:
  selection:
    EventID: 999999
  condition: selection
level: low
"""

def _stages() -> dict[str, list[Callable[..., Any]]]:
    """stage -> the functions whose inclusive time makes it; a stage's exclusive time is that
    minus the stages nested in it (NESTED). Functions, not names: several share a name."""
    from detectors.dedup import Deduplicator
    from detectors.model import Detection
    from detectors.pipeline import BatchProcessor
    from detectors.sigma import SigmaEngine
    from detectors.stateful import StatefulEngine
    from ingest import files, spool
    from ingest.normalize import Normalizer

    return {
        "collector (read+parse)": [files.collect_paths],
        "collector normalise+enrich": [Normalizer.finish],
        "spool write": [spool.SpoolWriter.append, spool.SpoolWriter.commit],
        "job batch decode": [spool.read_batches, BatchProcessor.process_line],
        "Sigma match": [SigmaEngine.match],
        "detection objects": [Detection.for_events.__func__],  # type: ignore[attr-defined]
        "anomaly routing": [StatefulEngine.process],
        "alert grouping": [DetectionRun._group, Deduplicator.alerts],
        "detection batch loop": [DetectionRun.feed],
        "output (alert documents)": [write_jsonl],
    }


# Stages called from inside another (exclusive time = inclusive minus these). Streaming, the
# collector's sink runs the whole detection batch loop; through a spool, the loop runs after it.
NESTED = {
    "collector (read+parse)": ("collector normalise+enrich", "spool write", "detection batch loop"),
    "detection batch loop": ("Sigma match", "detection objects", "anomaly routing", "alert grouping"),
}
TOTAL = "replay, whole path"


def _inclusive(stats: pstats.Stats, function: Callable[..., Any]) -> float:
    """Inclusive CPU seconds of a function's calls (0 if it never ran or is compiled)."""
    code = getattr(function, "__code__", None)
    if code is None:
        return 0.0
    key = (code.co_filename, code.co_firstlineno, code.co_name)
    found = stats.stats.get(key)  # type: ignore[attr-defined]
    return float(found[3]) if found else 0.0


def _grouping_outside(stats: pstats.Stats) -> float:
    from detectors.dedup import Deduplicator

    return _inclusive(stats, Deduplicator.alerts)


def shares(stats: pstats.Stats, whole: float) -> dict[str, float]:
    inclusive = {stage: sum(_inclusive(stats, function) for function in functions)
                 for stage, functions in _stages().items()}
    exclusive = dict(inclusive)
    streaming = inclusive["spool write"] == 0
    for stage, inner in NESTED.items():
        nested = [name for name in inner if streaming or name != "detection batch loop"]
        exclusive[stage] = inclusive[stage] - sum(inclusive[name] for name in nested)
    # Grouping's final sort (Deduplicator.alerts) runs after the loop: only _group is inside it.
    exclusive["detection batch loop"] += _grouping_outside(stats)
    exclusive["replay's own path"] = whole - sum(exclusive.values())
    return {stage: seconds / whole for stage, seconds in exclusive.items()}


def run_replay(rules: list[Path], events: list[Path], spool: bool) -> int:
    settings = load_settings()
    result = replay(rules, events, settings, spool=spool)
    with open(os.devnull, "w", encoding="utf-8") as sink:
        write_jsonl(alert_documents(result.detections, settings.elasticsearch.index_prefix), sink)
    return result.events


def cpu(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.process_time()
    value = function()
    return value, time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", type=Path, nargs="+", help="rule directories (default: SigmaHQ rules/windows)")
    parser.add_argument("--null-rule", action="store_true", help="one rule that never matches instead")
    parser.add_argument("--repeat", type=int, default=1, help="read the corpus this many times (default 1)")
    parser.add_argument("--spool", action="store_true", help="through a temporary spool (replay --spool)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    samples = CORPORA / "evtx-attack-samples"
    if not samples.is_dir():
        print(f"corpus not found: {samples} (set SOCFLOW_CORPORA)", file=sys.stderr)
        return 2
    events = [samples] * args.repeat
    with tempfile.TemporaryDirectory(prefix="socflow-profile-") as temporary:
        if args.null_rule:
            (Path(temporary) / "never.yml").write_text(NULL_RULE, encoding="utf-8")
            rules = [Path(temporary)]
        else:
            rules = args.rules or [CORPORA / "sigma" / "rules" / "windows"]
        reference = calibrate()
        os.environ["SOCFLOW_RULESET_CACHE"] = "0"
        _, first_load = cpu(lambda: load_rules(rules))
        os.environ["SOCFLOW_RULESET_CACHE"] = "1"
        load_rules(rules)  # make sure the cache holds them
        _, cached_load = cpu(lambda: load_rules(rules))
        count, whole = cpu(lambda: run_replay(rules, events, args.spool))
        profile = cProfile.Profile(time.process_time)  # CPU: the VM's other load is not ours
        profile.enable()
        _, profiled_whole = cpu(lambda: run_replay(rules, events, args.spool))
        profile.disable()
        stats = pstats.Stats(profile, stream=io.StringIO())
    per_event = whole / count * 1e6 if count else 0.0
    breakdown = {stage: share * per_event for stage, share in shares(stats, profiled_whole).items()}
    figures = {
        "reference_loop_us": round(reference, 2), "engine_build": BUILD, "events": count,
        "rules": "never-matching rule" if args.null_rule else [str(r) for r in rules],
        "first_load_cpu_s": round(first_load, 3), "cached_load_cpu_s": round(cached_load, 3),
        "replay_cpu_s": round(whole, 3), "replay_us_per_event": round(per_event, 1),
        "events_per_cpu_s": round(count / whole) if whole else 0,
        "stages_us_per_event": {stage: round(value, 2) for stage, value in breakdown.items()},
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"reference loop: sum(range(1000)) = {reference:.1f} us (about 10 us on an idle modern core)")
    print(f"engine build: {BUILD}; rules: {figures['rules']}")
    print(f"rule load: first {first_load:.3f} CPU s, cached {cached_load:.3f} CPU s")
    print(f"{TOTAL}: {count} events in {whole:.2f} CPU s = {per_event:.1f} us/event "
          f"({figures['events_per_cpu_s']} events/CPU-s; includes the cached rule load)")
    print(f"{'stage':32} {'us/event':>9} {'share':>7}")
    for stage, value in breakdown.items():
        print(f"{stage:32} {value:9.2f} {value / per_event:7.1%}" if per_event else stage)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
