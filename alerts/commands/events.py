"""``socflow events``: the stored events of one host, user or source address around a time.

The query is ``alerts.eventstore.timeline.entity_events`` (the triage console's too); this
module only formats: a table whose every cell is escaped (alerts.hunt.display), or JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from alerts.eventstore.timeline import (
    DEFAULT_LIMIT,
    Entity,
    Timeline,
    alert_entity,
    alert_time,
    entity_events,
    find_alert,
)
from alerts.hunt.display import console, table
from alerts.hunt.times import accept_relative_times, parse_duration, parse_time
from alerts.indexer import connect
from alerts.settings import Settings
from ingest.schema import get_field


def handler(args: argparse.Namespace, settings: Settings, *, now: datetime | None = None) -> int:
    moment = now or datetime.now(UTC)
    client = connect(settings.elasticsearch)
    entity = _given_entity(args)
    if args.around:
        alert = find_alert(client, settings.elasticsearch.index_prefix, args.around)
        at = alert_time(alert)
        entity = entity or alert_entity(alert)
    else:
        at = parse_time(args.at, moment)
    if entity is None:
        print("socflow events: give --host, --user or --source (or --around an alert that names one)",
              file=sys.stderr)
        return 2
    timeline = entity_events(client, settings, entity, at, parse_duration(args.window), limit=args.limit)
    if args.format == "json":
        sys.stdout.write(json.dumps(timeline.as_record(), ensure_ascii=True, sort_keys=True, indent=1) + "\n")
    else:
        show(timeline)
    return 0


def show(timeline: Timeline, out: Any = None) -> None:
    """Print a timeline as a table (escaped cells) with a one-line heading."""
    target = out or console()
    entity = timeline.entity
    more = f", more after the first {len(timeline.events)} (raise --limit)" if timeline.truncated else ""
    title = (f"{entity.field}={entity.value}: {len(timeline.events)} event(s) from "
             f"{timeline.start.isoformat()} to {timeline.end.isoformat()}{more}")
    target.print(table(title, ("time", "host", "user", "source", "event", "details"),
                       (_row(event) for event in timeline.events)))


def _row(event: dict[str, Any]) -> list[Any]:
    code = get_field(event, "winlog.event_id")
    kind = get_field(event, "event.action") or get_field(event, "event.dataset") or ""
    if code is not None:
        kind = f"{get_field(event, 'winlog.channel') or ''} {code}".strip()
    details = (get_field(event, "process.command_line") or get_field(event, "url.original")
               or get_field(event, "message") or get_field(event, "event.original") or "")
    source = get_field(event, "source.ip") or ""
    outcome = get_field(event, "event.outcome")
    return [get_field(event, "@timestamp"), get_field(event, "host.name") or get_field(event, "winlog.computer_name"),
            get_field(event, "user.name"), source, f"{kind} {outcome}" if outcome else kind, details]


def _given_entity(args: argparse.Namespace) -> Entity | None:
    if args.host:
        return Entity("host", args.host)
    if args.user:
        return Entity("user", args.user)
    if args.source:
        return Entity("source", args.source)
    return None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "events", help="the stored events of a host, user or source address around a time (timeline)",
        description="Print the events of one entity from the event store, oldest first, in a window "
        "centred on --at or on an alert (--around). Host and user names match case-insensitively; "
        "--source takes an address or a CIDR block.")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--host", metavar="NAME", help="host.name")
    who.add_argument("--user", metavar="NAME", help="user.name")
    who.add_argument("--source", metavar="IP", help="source.ip (address or CIDR)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--around", metavar="ALERT_ID",
                      help="centre on this alert (socflow-alerts); its entity when none is given")
    when.add_argument("--at", default="now", metavar="T", help="centre time: ISO time, now, -2h ... (default now)")
    parser.add_argument("--window", default="1h", metavar="DURATION", help="width of the window (default 1h)")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output (default table)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N",
                        help=f"at most N events, the oldest (default {DEFAULT_LIMIT})")
    accept_relative_times(parser)
    parser.set_defaults(handler=handler)
