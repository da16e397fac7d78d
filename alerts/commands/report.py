"""``socflow report``: auditors' reports (periodic, operations, incident) as HTML, PDF, JSON or CSV;
``socflow report schedule`` shows the scheduled reports; ``socflow report list`` the archive."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from alerts.reports import ReportError

if TYPE_CHECKING:
    from alerts.settings import Settings

EXTENSIONS = {"json": "json", "html": "html", "pdf": "pdf", "csv": "csv"}


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("--now needs a time zone, e.g. 2026-12-15T09:00:00+07:00")
    return moment


def report_handler(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.indexer import connect
    from alerts.reports.archive import audit_trail
    from alerts.reports.period import parse_period
    from alerts.reports.service import Request, archive_report, make_report, render

    now = args.now or datetime.now(UTC)
    if args.kind == "incident" and not (args.period or args.start or args.end):
        # An incident's report covers the incident, whenever it was: the year up to now frames
        # the audit records and alerts read with it.
        args.start, args.end = (now - timedelta(days=366)).isoformat(), now.isoformat()
    period = parse_period(settings.reports, period=args.period, start=args.start, end=args.end)
    scope = " ".join(args.scope) if args.scope else None
    client = connect(settings.elasticsearch)
    request = Request(args.kind, period, scope, args.lang, getattr(args, "incident_id", None))
    report = make_report(settings, client, request, now=now)
    data = render(report, args.format)
    output: Path = args.output or Path(f"{args.kind}-{period.label.replace(':', '-')}.{EXTENSIONS[args.format]}")
    output.write_bytes(data)
    print(f"socflow report: {report['report']['title']} ({period.label}, {report['report']['scope']['label']}) "
          f"-> {output} ({len(data):,} bytes)")
    for due in report["report"]["period"]["due"]:
        print(f"  due {due['what']}: {due['date']} (setting reports.yearly_due; check against Circular 12/2022)")
    for name in report["order"]:
        section = report["sections"][name]
        if section["status"] != "ok":
            print(f"  {name}: {section['status']}{': ' + section['reason'] if section.get('reason') else ''}")
    if args.issue:
        trail = audit_trail(client, settings.reports.audit_index, settings.data_dir / "audit" / "chain-head")
        entry = archive_report(settings, client, report, {args.format: data}, now=now,
                               actor=args.actor or getpass.getuser(), audit=trail)
        print(f"  issued: {entry['id']} sha256 {entry['files'][args.format]['sha256']}"
              + ("" if trail else " (no hash-chained audit trail in this build: digest kept in the archive index)"))
    return 0


def schedule_handler(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.reports.period import last_complete

    now = args.now or datetime.now(UTC)
    for entry in settings.reports.schedule:
        period = last_complete(settings.reports, entry.period, now)
        print(f"{entry.kind}\t{entry.period}\t{entry.scope}\t{','.join(entry.formats)}\tlast complete: {period.label}"
              + "".join(f"\tdue {what} {when}" for what, when in period.due))
    return 0


def list_handler(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.reports.archive import list_reports

    for entry in list_reports(settings.data_dir / "reports"):
        files = " ".join(f"{fmt}:{item['sha256'][:16]}" for fmt, item in sorted(entry["files"].items()))
        print(f"{entry['issued_at']}\t{entry['kind']}\t{entry['period']}\t{entry['scope']}\t{files}")
    return 0


def _handler(function):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return int(function(args, settings))
        except ReportError as error:
            print(f"socflow report: {error}", file=sys.stderr)
            return 2
    return run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="auditors' reports: periodic, operations, incident (HTML, PDF, JSON, CSV)",
        description="Make a report from the alert store, event store, incidents and audit trail; every figure "
        "comes with the Elasticsearch request it came from.")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, help_text in (("periodic", "security monitoring report of a period (yearly: Circular 12/2022)"),
                            ("operations", "monthly/weekly figures for the SOC's management"),
                            ("incident", "one incident in the fields of the notification form")):
        sub = kinds.add_parser(kind, help=help_text, description=help_text)
        if kind == "incident":
            sub.add_argument("incident_id", metavar="ID", help="incident id (socflow-incidents)")
        sub.add_argument("--period", help="yearly:2026 (15 Dec 2025 - 14 Dec 2026), monthly:2026-11, weekly:2026-W48")
        sub.add_argument("--from", dest="start", help="first day (YYYY-MM-DD, local) or ISO 8601 time")
        sub.add_argument("--to", dest="end", help="last day included (YYYY-MM-DD, local) or ISO 8601 time")
        sub.add_argument("--scope", nargs="+", metavar="WHAT",
                         help="province (default), agency ID, district ID or node ID")
        sub.add_argument("--format", choices=tuple(EXTENSIONS), default="html", help="output format (default: html)")
        sub.add_argument("--output", type=Path, help="file to write (default: KIND-PERIOD.FORMAT)")
        sub.add_argument("--lang", choices=("vi", "en"), default="vi", help="language of the text (default: vi)")
        sub.add_argument("--now", type=_moment, help="the report's clock (default: now); for reproducible reports")
        sub.add_argument("--issue", action="store_true",
                         help="archive under <data-dir>/reports with its SHA-256, recorded in the audit trail")
        sub.add_argument("--actor", help="who issues it (default: the OS user)")
        sub.set_defaults(handler=_handler(report_handler))
    schedule = kinds.add_parser("schedule", help="the scheduled reports (settings reports.schedule) and their periods")
    schedule.add_argument("--now", type=_moment, help="the clock (default: now)")
    schedule.set_defaults(handler=_handler(schedule_handler))
    listing = kinds.add_parser("list", help="issued reports in <data-dir>/reports with their digests")
    listing.set_defaults(handler=_handler(list_handler))
