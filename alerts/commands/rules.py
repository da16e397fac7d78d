"""``socflow rules``: check Sigma rule sets before they go into the job.

``socflow rules validate DIR...`` loads every rule the way the Flink job and ``socflow replay``
do, prints each rule that failed with its reason and ends with ``loaded N of M rules``; the
exit code is 1 when any rule failed, so CI can gate a rule repository on it.
``socflow rules match --rules DIR... EVENTS...`` shows which rules fire on which events.
"""

from __future__ import annotations

import argparse
import json
import sys
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
