"""socflow replay against RSigma, whole process, same records, same rules, one core, CPU time.

    .venv/bin/python bench/engine_vs_rsigma.py [--target 99060] [--rounds 2] [--rules DIR] [--diff] [--json]

Builds nothing. The records are evtx-attack-samples read by socflow's collector (8,255 events),
written as JSON lines and repeated to ``--target`` events. socflow runs ``socflow replay`` on
those lines; RSigma (``rsigma engine eval``, when an ``rsigma`` binary is on PATH or ``RSIGMA``
names one) runs on the same records in the flat form Sigma rules name (EventData fields and the
System fields socflow's mapping names), with a processing pipeline the bench writes, so that
RSigma routes rules to records and finds fields as socflow does:

- each record carries socflow's route (``ls_product``/``ls_service``/``ls_category``, read by
  ``--logsource-routing``; ``-`` where socflow has none, since RSigma's pruning is fail-open);
- categories one event holds together (Sysmon 13: registry_set and registry_event) become one
  group category in the pipeline (``change_logsource``) plus a condition that the record's
  ``ls_categories`` holds the rule's own (``add_condition``);
- socflow's route-dependent field names (Security 4688's NewProcessName is a process_creation
  rule's Image) are given on the record (see :func:`route_aliases` for why not in the pipeline).

Both get the same rules (``$SOCFLOW_CORPORA/sigma/rules/windows`` by default). ``--diff``
prints each (record, rule) pair only one side matches, with the reason where the bench knows it.

Each tool runs ``--rounds`` times, alternating, pinned to one core (``taskset -c 0``); a run's
CPU time and peak memory come from GNU time (``/usr/bin/time``). Start-up is a run over one event.
socflow runs as ``deploy/run`` leaves it: modules compiled to bytecode, rule set cached (one warm-up run). The figures:
events/s (CPU), events/s with start-up subtracted, start-up CPU s, peak RSS MiB, and the ratio
socflow/RSigma. Before timing, the match sets of both on the 8,255 records are compared (rule id
per record; socflow's from its engine, RSigma's from ``--include-event``): they must agree, or
the figures compare different work; a difference the bench cannot explain is counted as such.
Without RSigma the socflow figures are printed alone.
The reference loop (``sum(range(1000))``, µs) is measured in the same run: this VM's speed swings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pipeline import calibrate  # noqa: E402
from detectors.sigma.fieldmap import EventRoute, FieldMappings  # noqa: E402

CORPORA = Path(os.environ.get("SOCFLOW_CORPORA", REPO.parent / "shared" / "corpora"))
SOCFLOW = [sys.executable, "-c", "from alerts.cli import run; run()"]
# The System fields socflow's mapping names (config/sigma/windows.yml), by their winlog key.
SYSTEM_FIELDS = {"EventID": "event_id", "Channel": "channel", "Provider_Name": "provider_name",
                 "Computer": "computer_name", "EventRecordID": "record_id", "Level": "level", "Task": "task",
                 "Opcode": "opcode", "Keywords": "keywords", "Version": "version"}
NONE = "-"  # a logsource tag no rule names: RSigma prunes a rule that names that dimension
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


def flat(event: dict[str, Any], number: int, route: EventRoute, groups: Mapping[str, str],
         aliases: Mapping[str, str]) -> dict[str, Any]:
    """The record as Sigma's Windows rules name its fields, tagged with socflow's route.

    ``route``: (product, service, categories) as socflow's engine routes the event. The tags
    RSigma's ``--logsource-routing`` reads: ``ls_product``, ``ls_service`` (``-`` when socflow
    gives none: a rule naming a service must not see the event, and RSigma's pruning is
    fail-open on an absent tag), ``ls_category`` (the one category, ``-`` for none, or the
    group name of categories an event can hold together, see :func:`category_groups`) and
    ``ls_categories`` (every category, which the pipeline's conditions test). ``aliases``: the
    Sigma names socflow's route-dependent field mappings give this event's fields (Security
    4688's NewProcessName is a process_creation rule's Image), see :func:`route_aliases`."""
    winlog = event.get("winlog") or {}
    record: dict[str, Any] = {"n": number}
    data = winlog.get("event_data")
    if isinstance(data, dict):
        record.update(data)
    for sigma_name, name in aliases.items():
        if isinstance(data, dict) and name in data:
            record[sigma_name] = data[name]
    for sigma_name, path in SYSTEM_FIELDS.items():
        if winlog.get(path) is not None:
            record[sigma_name] = winlog[path]
    product, service, categories = route
    record["ls_product"] = product or NONE
    record["ls_service"] = service or NONE
    grouped = [groups[category] for category in categories if category in groups]
    record["ls_category"] = grouped[0] if grouped else categories[0] if len(categories) == 1 else NONE
    if grouped:
        record["ls_categories"] = list(categories)
    return record


def category_groups(routes: Iterable[EventRoute]) -> dict[str, str]:
    """category -> group name, for categories one event can hold together (Sysmon 13 is
    registry_set and registry_event). RSigma prunes by one category per event: the pipeline
    gives each rule of a group's category the group as its logsource category, and a condition
    that the event's ``ls_categories`` holds the rule's own category, which is socflow's routing."""
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    for _, _, categories in routes:
        for other in categories[1:]:
            parent[root(other)] = root(categories[0])
    members: dict[str, list[str]] = {}
    for category in parent:
        members.setdefault(root(category), []).append(category)
    return {category: "+".join(sorted(group)) for group in members.values() if len(group) > 1
            for category in group}


def route_aliases(mappings: FieldMappings, route: EventRoute) -> dict[str, str]:
    """Sigma name -> EventData field, from socflow's mapping entries that depend on the event's
    route beyond its product (``config/sigma/windows.yml``: Security 4688 for process_creation
    rules, Defender for antivirus rules). Given to RSigma on the event, not in its pipeline: a
    pipeline maps a rule's field for every event (Image to Image or NewProcessName), which turns
    a filter ``Image: null`` true on every event. Exact here: no rule of another category that
    sees these events names those fields."""
    aliases: dict[str, str] = {}
    for entry in mappings.entries:
        if set(entry.event) <= {"product"} or not entry.rule:
            continue
        if not entry.applies(route, (route[0], entry.rule.get("category"), entry.rule.get("service"))):
            continue
        for sigma_name, paths in entry.fields.items():
            prefix = "winlog.event_data."
            if paths[0].startswith(prefix):
                aliases[sigma_name] = paths[0][len(prefix):]
    return aliases


def rsigma_pipeline(groups: Mapping[str, str]) -> str:
    """The pySigma-style processing pipeline (YAML) that makes RSigma route rules as socflow:
    for each category of a group, the rule must find its category in ``ls_categories`` and is
    pruned by the group's name."""
    items: list[dict[str, Any]] = []
    for category, group in sorted(groups.items()):
        logsource = [{"type": "logsource", "category": category}]
        items.append({"id": f"socflow_category_{category}", "type": "add_condition",
                      "conditions": {"ls_categories": category}, "rule_conditions": logsource})
        items.append({"id": f"socflow_group_{category}", "type": "change_logsource", "category": group,
                      "rule_conditions": logsource})
    return json.dumps({"name": "socflow-routing", "priority": 10, "transformations": items}, indent=1)


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


def rsigma_command(rsigma: str, rules: Path, events: Path, pipeline: Path, *extra: str) -> list[str]:
    return [rsigma, "engine", "eval", "--rules", str(rules), "--event", f"@{events}", "--input-format", "json",
            "--pipeline", str(pipeline), *ROUTING, *extra]


def socflow_side(events: Sequence[dict[str, Any]], rules: Path) -> tuple[set[tuple[int, str]], list[EventRoute],
                                                                         dict[str, Any]]:
    """socflow's (record, rule id) matches, each record's route, and the loaded rules by id."""
    from alerts.settings import REPO_ROOT
    from detectors.sigma.cache import load_engine

    engine, _, _ = load_engine([rules], config_dir=REPO_ROOT / "config")
    matches = {(number, rule.id) for number, event in enumerate(events) for rule in engine.match(event)}
    return matches, [engine.route(event) for event in events], {rule.info.id: rule for rule in engine.loaded_rules()}


def rsigma_matches(rsigma: str, rules: Path, events: Path, pipeline: Path) -> set[tuple[int, str]]:
    completed = subprocess.run(rsigma_command(rsigma, rules, events, pipeline, "--include-event"),
                               capture_output=True,
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


def windash_slashes(rule_path: str) -> list[str]:
    """The rule's ``windash`` values holding a ``/``."""
    import yaml

    found: list[str] = []

    def walk(node: Any, windash: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, windash or "windash" in str(key))
        elif isinstance(node, list):
            for value in node:
                walk(value, windash)
        elif windash and isinstance(node, str) and "/" in node:
            found.append(node)

    with contextlib.suppress(OSError, yaml.YAMLError, AttributeError):  # no reason to give, then
        walk((yaml.safe_load(Path(rule_path).read_text(encoding="utf-8")) or {}).get("detection"), False)
    return found


def explain(number: int, rule_id: str, only: str, loaded: Mapping[str, Any]) -> str:
    """Why one (record, rule) pair is matched by one side only, where the bench knows."""
    rule = loaded.get(rule_id)
    if rule is None:
        return "rule not loaded by socflow"
    slashes = windash_slashes(rule.path)
    if only == "socflow" and slashes:
        return (f"windash on {slashes!r}: RSigma 0.23 varies only '-' (compiler/helpers.rs expand_windash), "
                "Sigma's specification and pySigma also '/' (the event writes it with '-')")
    return "not explained"


def print_differences(ours: set[tuple[int, str]], theirs: set[tuple[int, str]], loaded: Mapping[str, Any],
                      events: Sequence[dict[str, Any]]) -> None:
    for only, pairs in (("socflow", ours - theirs), ("rsigma", theirs - ours)):
        for number, rule_id in sorted(pairs):
            winlog = events[number].get("winlog") or {}
            title = getattr(loaded.get(rule_id), "info", None)
            print(f"only {only}: record {number} ({winlog.get('channel')} {winlog.get('event_id')}) rule {rule_id} "
                  f"{getattr(title, 'title', '')!r}: {explain(number, rule_id, only, loaded)}")


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
    parser.add_argument("--diff", action="store_true", help="print each (record, rule) pair only one side matches")
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
        ours, routes, loaded = socflow_side(events, args.rules)
        groups = category_groups(routes)
        mappings = FieldMappings.load(REPO / "config" / "sigma")
        flats = [flat(event, number, route, groups, route_aliases(mappings, route))
                 for number, (event, route) in enumerate(zip(events, routes, strict=True))]
        pipeline = work / "socflow-routing.yml"
        pipeline.write_text(rsigma_pipeline(groups), encoding="utf-8")
        write_lines(work / "flat.jsonl", flats, args.target)
        write_lines(work / "flat-one.jsonl", flats, 1)
        write_lines(work / "flat-corpus.jsonl", flats, len(flats))
        if rsigma:
            theirs = rsigma_matches(rsigma, args.rules, work / "flat-corpus.jsonl", pipeline)
            unexplained = [pair for only, pairs in (("socflow", ours - theirs), ("rsigma", theirs - ours))
                           for pair in pairs if explain(*pair, only, loaded) == "not explained"]
            report["match_sets"] = {"socflow": len(ours), "rsigma": len(theirs), "both": len(ours & theirs),
                                    "agree": ours == theirs, "unexplained": len(unexplained)}
            if args.diff:
                print_differences(ours, theirs, loaded, events)
        # socflow as deploy/run leaves it: its modules compiled to bytecode, its rule set cached.
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "alerts", "ingest", "detectors", "deploy"],
                       cwd=REPO, stdout=subprocess.DEVNULL, check=False)
        run_reaped(socflow_command(args.rules, work / "socflow-one.jsonl", work / "warm.jsonl"), env, REPO)  # cache
        runs: dict[str, list[dict[str, float]]] = {"socflow": [], "socflow_startup": [], "rsigma": [],
                                                   "rsigma_startup": []}
        for _ in range(args.rounds):
            runs["socflow_startup"].append(run_reaped(socflow_command(args.rules, work / "socflow-one.jsonl",
                                                                      work / "one.jsonl"), env, REPO))
            runs["socflow"].append(run_reaped(socflow_command(args.rules, work / "socflow.jsonl",
                                                              work / "alerts.jsonl"), env, REPO))
            if rsigma:
                runs["rsigma_startup"].append(run_reaped(rsigma_command(rsigma, args.rules, work / "flat-one.jsonl",
                                                                       pipeline)))
                runs["rsigma"].append(run_reaped(rsigma_command(rsigma, args.rules, work / "flat.jsonl", pipeline)))
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
