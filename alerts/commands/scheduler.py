"""``socflow scheduler``: issue the scheduled reports (settings ``reports.schedule``) when due."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alerts.settings import Settings


def handler(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.indexer import connect
    from alerts.reports.scheduler import run_due

    client = connect(settings.elasticsearch)
    while True:
        for entry in run_due(settings, client, datetime.now(UTC)):
            print(f"issued {entry['id']}: " + ", ".join(f"{fmt} {item['sha256'][:16]}"
                                                        for fmt, item in sorted(entry["files"].items())), flush=True)
        if args.once:
            return 0
        time.sleep(args.interval)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scheduler", help="issue scheduled reports when due (long-running; --once for a CronJob)",
        description="Every --interval seconds, issue each report of reports.schedule whose last complete period "
        "is not in <data-dir>/reports yet (archived with its SHA-256, recorded in the audit trail).")
    parser.add_argument("--once", action="store_true", help="issue what is due and exit (CronJob)")
    parser.add_argument("--interval", type=float, default=3600, help="seconds between checks (default: 3600)")
    parser.set_defaults(handler=handler)
