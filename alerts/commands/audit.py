"""``socflow audit verify``: re-walk the hash-chained audit trail and compare it with its head file."""

from __future__ import annotations

import argparse
import sys

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from alerts.audit.trail import AuditTrail
from alerts.indexer import connect
from alerts.settings import Settings


def handler(args: argparse.Namespace, settings: Settings) -> int:
    trail = AuditTrail(connect(settings.elasticsearch), args.index or settings.console.audit_index,
                       settings.audit_dir / "chain-head")
    with Progress(TextColumn("verifying {task.fields[index]}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("verify", total=trail.count(), index=trail.index)
        verdict = trail.verify(on_record=lambda _seq: progress.advance(task))
    waiting = trail.pending()
    if waiting:
        print(f"{waiting} record(s) wait in {trail.pending_file} for Elasticsearch; they join the chain with "
              "the next record written")
    if verdict.ok:
        print(f"audit trail intact: {verdict.records} records, last seq {verdict.last.seq}, "
              f"hash {verdict.last.hash[:16]}…, head file {trail.head_file} agrees")
        return 0
    print(f"audit trail BROKEN at {verdict.problem} ({verdict.records} records before it verified)")
    return 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="check the tamper-evident audit trail",
                                   description="Audit trail tools.")
    sub = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = sub.add_parser(
        "verify", help="re-walk the hash chain; exit 1 naming the first bad record",
        description="Read every record of the audit index in seq order (search_after), recompute each hash, "
        "check the links and the sequence, and compare the last record with <data-dir>/audit/chain-head. "
        "Exit 0 when intact, 1 naming the first changed, removed or reordered record.")
    verify.add_argument("--index", help="audit index (default: console.audit_index, socflow-audit)")
    parser.set_defaults(handler=handler)
