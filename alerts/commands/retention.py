"""``socflow retention``: delete alerts (and stored events) past their node's retention, with an audit trail."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from alerts.eventstore.retention import plan_deadletter_indices, plan_event_indices
from alerts.indexer import connect
from alerts.retention import AuditLog, apply_retention, load_policy
from alerts.settings import REPO_ROOT, Settings

DEFAULT_POLICY = REPO_ROOT / "config" / "retention.yaml"


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("--now needs a time zone, e.g. 2027-01-01T00:00:00Z")
    return moment


def handler(args: argparse.Namespace, settings: Settings) -> int:
    policy_path: Path = args.policy
    policy = load_policy(policy_path)
    now = args.now or datetime.now(UTC)
    client = connect(settings.elasticsearch)
    audit = AuditLog(settings.data_dir / "audit" / "retention.jsonl", client, policy.audit_index, actor=args.actor)
    report = apply_retention(client, policy, settings.elasticsearch.index_prefix, now, audit,
                             dry_run=args.dry_run, policy_file=str(policy_path))
    verb = "would delete" if args.dry_run else "deleted"
    for action in report.actions:
        what = f"index {action.index}" if action.action == "delete_index" else (
            f"level-{action.level} alerts older than {action.days} days from {action.index}")
        print(f"{verb} {what}: {action.documents} alerts")
    print(f"{verb} {report.documents} alerts in {len(report.actions)} actions "
          f"({len(report.deleted_indices)} whole indices); audit: {audit.path} and index {audit.index}")
    if policy.events is not None:
        store = settings.event_store
        for prefix, planner, what in ((store.index_prefix, plan_event_indices, "events"),
                                      (store.deadletter_prefix, plan_deadletter_indices, "dead letters")):
            report = apply_retention(client, policy, prefix, now, audit, dry_run=args.dry_run,
                                     policy_file=str(policy_path), planner=planner)
            for action in report.actions:
                why = f"level {action.level}" if action.level is not None else "every level"
                print(f"{verb} index {action.index}: {action.documents} {what} ({why} keeps {action.days} days)")
            print(f"{verb} {report.documents} {what} in {len(report.deleted_indices)} daily indices")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "retention", help="delete alerts and events older than their node's retention (audited)",
        description="Apply the retention policy: delete alerts whose node's security level keeps them "
        "for fewer days than their age, and whole monthly indices older than the longest retention; "
        "delete each daily event (and dead-letter) index once the longest retention any node in it "
        "needs has passed (policy section `events`). "
        "Every action is written to <data-dir>/audit/retention.jsonl and to the audit index.")
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY,
                        help="retention policy file (default: config/retention.yaml)")
    parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    parser.add_argument("--now", type=_moment, help="act as if it were this moment (ISO 8601 with zone)")
    parser.add_argument("--actor", help="who runs it, for the audit trail (default: the OS user)")
    parser.set_defaults(handler=handler)

