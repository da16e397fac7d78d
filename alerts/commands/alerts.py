"""``socflow alerts list|show|ack|close|assign|comment``: the console's triage from scripts.

The same service as the console (``alerts.triage``): the same filters, the same transitions,
every write conditional on the alert's version (``--version`` as ``list``/``show`` print it;
without it, on the state just read) and appended to the audit trail as the acting user
(``--as``, default ``<login name>@cli``). A conflict prints the alert's fresh state and exits 3.
Everything from an alert is printed inert (control and direction characters made visible).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from alerts.settings import Settings

EXIT_CONFLICT = 3


def _inert(value: Any, limit: int = 200) -> str:
    from alerts.web.inert import inert

    return escape(inert("" if value is None else str(value), limit))


def _store(settings: Settings) -> Any:
    from alerts.audit.trail import AuditTrail
    from alerts.indexer import connect
    from alerts.triage.store import open_store

    client = connect(settings.elasticsearch)
    audit = AuditTrail(client, settings.console.audit_index, settings.audit_dir / "chain-head")
    return open_store(settings, audit, client)


def _actor(args: argparse.Namespace) -> str:
    return str(args.actor or f"{getpass.getuser()}@cli")


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True, default=str))


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.triage.queue import QueueFilter
    from alerts.triage.store import alert_summary

    params = {name: values for name in ("status", "level", "rule", "tactic", "technique", "node", "agency",
                                        "district", "security_level", "assignee")
              if (values := getattr(args, name))}
    for name in ("since", "until", "text", "order"):
        if getattr(args, name):
            params[name] = [getattr(args, name)]
    queue = QueueFilter.from_params(params)
    page = _store(settings).page(queue, datetime.now(UTC), size=args.limit, after=args.after)
    rows = [alert_summary(record) for record in page.alerts]
    if args.json:
        _print_json({"alerts": rows, "total": page.total, "cursor": page.cursor})
        return 0
    console = Console(width=None if sys.stdout.isatty() else 220)  # piped: do not fold every cell
    table = Table(title=f"{page.total}{'' if page.total_is_exact else '+'} alerts", show_lines=False)
    table.add_column("id", no_wrap=True)
    for column in ("version", "risk", "level", "last seen (UTC)", "rule", "node", "host", "user", "source", "status",
                   "assignee"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["id"], row["version"], str(row["risk"] or ""), _inert(row["rule"]["level"]),
                      _inert((row["timestamp"] or "")[:19].replace("T", " ")),
                      _inert(row["rule"]["name"], 60), _inert(row["node"]["id"]),
                      _inert(row["host"], 40), _inert(row["user"], 40), _inert(row["source"], 40), row["status"],
                      _inert(row["assignee"]))
    console.print(table)
    if page.cursor:
        console.print(f"next page: --after {page.cursor}")
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.triage.store import alert_summary

    record = _store(settings).get(args.id)
    if args.json:
        _print_json(record.as_dict())
        return 0
    summary = alert_summary(record)
    console = Console()
    console.print(f"[bold]{_inert(summary['rule']['name'])}[/] ({_inert(summary['rule']['level'])}, risk "
                  f"{summary['risk']})  status [bold]{summary['status']}[/]  assignee {_inert(summary['assignee'])}")
    console.print(f"id {summary['id']}  version {summary['version']}  node {_inert(summary['node']['id'])}  "
                  f"host {_inert(summary['host'])}  user {_inert(summary['user'])}  source {_inert(summary['source'])}")
    triage = (record.source.get("socflow") or {}).get("triage") or {}
    for comment in triage.get("comments") or []:
        console.print(f"  {_inert(str(comment.get('at'))[:19])} {_inert(comment.get('by'))}: "
                      f"{_inert(comment.get('text'), 2000)}")
    return 0


def _act(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.triage.errors import ConflictError
    from alerts.triage.store import alert_summary

    store = _store(settings)
    now = datetime.now(UTC)
    actor = _actor(args)
    try:
        if args.command_name == "ack":
            record = store.set_status(args.id, "acknowledged", actor=actor, now=now, expected=args.version)
        elif args.command_name == "close":
            record = store.set_status(args.id, "closed", actor=actor, now=now, expected=args.version,
                                      verdict=args.verdict, reason=args.reason)
        elif args.command_name == "assign":
            record = store.assign(args.id, None if args.user == "-" else args.user, actor=actor, now=now,
                                  expected=args.version)
        else:
            text = sys.stdin.read() if args.text == "-" else args.text
            record = store.comment(args.id, text, actor=actor, now=now, expected=args.version)
    except ConflictError as error:
        print(f"socflow: conflict: {error.reason}", file=sys.stderr)
        current = error.current or {}
        alert = (current.get("socflow") or {}).get("alert") or {}
        print(json.dumps({"id": current.get("_id"), "version": current.get("_version"), "status": alert.get("status"),
                          "assignee": alert.get("assignee")}), file=sys.stderr)
        return EXIT_CONFLICT
    summary = alert_summary(record)
    print(json.dumps({key: summary[key] for key in ("id", "version", "status", "assignee", "verdict")}))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "alerts", help="triage alerts from scripts (the console's queue and actions)",
        description="List, show and triage alerts in Elasticsearch with the console's service: every change is "
        "conditional on the alert's version and written to the audit trail.")
    commands = parser.add_subparsers(dest="command_name", metavar="ACTION", required=True)

    listing = commands.add_parser("list", help="the queue, newest or riskiest first",
                                  description="One page of the alert queue; filters take several values (commas).")
    for name, text in (("status", "open, acknowledged, investigating, closed"), ("level", "rule level"),
                       ("rule", "rule id or name"), ("tactic", "ATT&CK tactic"), ("technique", "e.g. T1059"),
                       ("node", "node id"), ("agency", "agency id"), ("district", "district id"),
                       ("security-level", "1-5"), ("assignee", "user, or - for nobody")):
        listing.add_argument(f"--{name}", dest=name.replace("-", "_"), action="append", default=[], help=text)
    listing.add_argument("--since", help="RFC 3339 time or 15m / 24h / 7d")
    listing.add_argument("--until", help="RFC 3339 time or 15m / 24h / 7d")
    listing.add_argument("--text", help="free text (rule, host, user, address, URL, command line)")
    listing.add_argument("--order", choices=("newest", "risk"), default="newest")
    listing.add_argument("--limit", type=int, default=50, help="alerts per page, 1-200 (default 50)")
    listing.add_argument("--after", help="cursor of the next page, as the previous page printed it")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="one alert")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="the whole document as JSON")
    show.set_defaults(handler=_show)

    def action(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=f"{text[0].upper()}{text[1:]}; exit 3 on a conflict.")
        sub.add_argument("id", help="alert id")
        sub.add_argument("--version", help="the version you saw (<seq_no>:<primary_term>); refused if it changed")
        sub.add_argument("--as", dest="actor", help="who acts, for the audit trail (default <login>@cli)")
        sub.set_defaults(handler=_act)
        return sub

    action("ack", "acknowledge an alert")
    close = action("close", "close an alert with a verdict and a reason")
    close.add_argument("--verdict", required=True, choices=("true_positive", "benign", "false_positive"))
    close.add_argument("--reason", required=True)
    assign = action("assign", "assign an alert to a user (- unassigns)")
    assign.add_argument("user")
    comment = action("comment", "comment on an alert")
    comment.add_argument("text", help="the comment, or - to read it from stdin")
