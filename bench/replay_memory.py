"""Peak memory and CPU of ``socflow replay`` at 1x and 10x the same input: memory must not grow.

    .venv/bin/python bench/replay_memory.py [--times 1 10] [--rules DIR] [--baseline CHECKOUT] [--json]

The input is evtx-attack-samples read by socflow's collector (8,255 events), written as JSON lines
and repeated ``--times`` times. Each run is a whole ``socflow replay`` process pinned to one core;
its peak RSS and CPU time come from GNU time. ``--baseline`` runs another checkout (e.g. the
previous main) on the same files beside this one, in the same run. The reference loop
(``sum(range(1000))``, µs) is printed too: this VM's speed swings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.engine_vs_rsigma import (  # noqa: E402
    CORPORA,
    collected_events,
    corpus_samples,
    run_reaped,
    socflow_command,
    write_lines,
)
from bench.pipeline import calibrate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--times", type=int, nargs="+", default=[1, 10], help="input sizes, in corpus copies")
    parser.add_argument("--rules", type=Path, default=CORPORA / "sigma" / "rules" / "windows")
    parser.add_argument("--baseline", type=Path, help="another socflow checkout to run beside this one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    samples = corpus_samples(args.rules)
    if samples is None:
        return 2
    reference = calibrate()
    events = collected_events(samples)
    checkouts = {"this": REPO, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    rows = []
    with tempfile.TemporaryDirectory(prefix="socflow-memory-") as temporary:
        work = Path(temporary)
        for times in args.times:
            write_lines(work / f"x{times}.jsonl", events, len(events) * times)
        for checkout in checkouts.values():  # fill the rule cache (a checkout without one ignores it)
            env = {**os.environ, "PYTHONPATH": str(checkout)}
            run_reaped(socflow_command(args.rules, work / "x1.jsonl", work / "warm.jsonl"), env, checkout)
        for times in args.times:  # checkouts alternate, so that both meet the same VM phase
            for name, checkout in checkouts.items():
                env = {**os.environ, "PYTHONPATH": str(checkout)}
                measured = run_reaped(socflow_command(args.rules, work / f"x{times}.jsonl", work / "out.jsonl"), env,
                                      checkout)
                rows.append({"checkout": name, "times": times, "events": len(events) * times,
                             "peak_mib": round(measured["peak_mib"], 1), "cpu_s": round(measured["cpu_s"], 2),
                             "events_per_cpu_s": round(len(events) * times / measured["cpu_s"])})
    if args.json:
        print(json.dumps({"reference_loop_us": round(reference, 2), "runs": rows}, indent=2))
        return 0
    print(f"reference loop: sum(range(1000)) = {reference:.1f} us (about 10 us on an idle modern core)")
    print(f"rules {args.rules}; one core; whole socflow replay process")
    print(f"{'checkout':10}{'input':>8}{'events':>10}{'peak MiB':>10}{'CPU s':>9}{'events/CPU-s':>14}")
    for row in rows:
        print(f"{row['checkout']:10}{str(row['times']) + 'x':>8}{row['events']:>10}{row['peak_mib']:>10}"
              f"{row['cpu_s']:>9}{row['events_per_cpu_s']:>14}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
