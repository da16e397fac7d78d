"""``socflow rules``: check Sigma rule sets before they go into the job.

``socflow rules validate DIR...`` loads every rule the way the Flink job and ``socflow replay``
do, prints each rule that failed with its reason and ends with ``loaded N of M rules``; the
exit code is 1 when any rule failed, so CI can gate a rule repository on it.
``socflow rules match --rules DIR... EVENTS...`` shows which rules fire on which events.
``socflow rules test [DIR...]`` runs every rule's ``<name>.tests.yml`` (the same code as the
pytest suite: ``detectors.ruletools.testing``) and prints a pass/fail line per rule with the
first failing event; exit 1 on any failure.

Reports go to a rich table on a terminal and to plain tab-separated lines otherwise (or JSON
with ``--format json``). Every string shown came from a rule or an event file: it is printed
with control characters escaped and, in tables, without rich markup.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from alerts.settings import REPO_ROOT, Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rules", help="validate Sigma rule sets and try them on events",
        description="Sigma rule tooling: validate rule directories, match rules against event files.")
    commands = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    validate = commands.add_parser(
        "validate", help="load rules and report every one that cannot be used",
        description="Load Sigma rules (files or directories, recursively *.yml/*.yaml), print each "
        "failure with its reason and end with 'loaded N of M rules'. Exit 1 when any rule failed.")
    validate.add_argument("paths", type=Path, nargs="+", metavar="DIR", help="rule files or directories")
    validate.add_argument("--config-dir", type=Path, default=REPO_ROOT / "config",
                          help="folder holding logsources.yaml and sigma/ mappings (default: config/)")
    validate.set_defaults(handler=validate_handler)

    match = commands.add_parser(
        "match", help="print the rules that fire on each event of EVTX / JSON files",
        description="Run the Sigma engine over Windows EVTX or JSON exports and print one JSON line "
        "per event with at least one match.")
    match.add_argument("--rules", type=Path, nargs="+", required=True, metavar="DIR", help="rule files or directories")
    match.add_argument("--config-dir", type=Path, default=REPO_ROOT / "config")
    match.add_argument("events", type=Path, nargs="+", metavar="EVENTS", help=".evtx or .json files")
    match.set_defaults(handler=match_handler)

    test = commands.add_parser(
        "test", help="run every rule's <name>.tests.yml and report pass/fail per rule",
        description="Load the rule set under DIR (default: the project's rules/), then for every rule with "
        "a <name>.tests.yml beside it check its positive events (expect: exactly/at_least N hits) and "
        "negative events (no hit); correlation rules included. Prints one line per rule with the first "
        "failing event. Exit 1 when any test fails or any rule does not load.")
    test.add_argument("paths", type=Path, nargs="*", metavar="DIR", help="rule directories or files (default: rules/)")
    test.add_argument("--config-dir", type=Path, default=REPO_ROOT / "config",
                      help="folder holding logsources.yaml, assets.yaml and sigma/ mappings (default: config/)")
    test.add_argument("--format", choices=("table", "json"), default="table", help="report format (default: table)")
    test.set_defaults(handler=test_handler)


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
