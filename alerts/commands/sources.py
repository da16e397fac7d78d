"""``socflow sources``: every parser, the formats it reads and its Sigma logsource; with ``--since``,
which node sent what (from the event store) and which inventory nodes fell silent.

Everything shown from the event store came from logs: it is stripped of control characters and
shown as plain text, never as terminal markup.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from alerts.errors import AlertsError
from alerts.sources import Activity, activity, parse_since, parser_rows, silent_nodes
from ingest.assets import AssetInventory
from ingest.normalize import resolve_config_path
from ingest.schema import format_timestamp, parse_timestamp

DEFAULT_EVENT_INDEX = "socflow-events"
# C0/C1 controls and the bidirectional overrides that can reorder what a terminal shows.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sources", help="list the parsers and their Sigma logsources; with --since, which node sent what",
        description="List every log format socflow reads (built-in and catalogued), the inputs it comes "
        "from and the Sigma logsource its events get. With --since, also the events per node, logsource "
        "and dataset in that window from the event store, with the last time seen, and the inventory's "
        "nodes that sent nothing (a silent source).")
    parser.add_argument("--since", metavar="DURATION", help="window to report on, e.g. 30m, 6h, 1d, 2w")
    parser.add_argument("--until", metavar="TIME", help="end of the window, RFC 3339 (default: now)")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    parser.add_argument("--index", help=f"event store alias (default: event_store.index_prefix, else "
                                        f"{DEFAULT_EVENT_INDEX})")
    parser.set_defaults(handler=handler)


def _event_index(args: argparse.Namespace, settings: Any) -> str:
    if args.index:
        return str(args.index)
    store = getattr(settings, "event_store", None)  # the event store's settings section, where it exists
    return str(getattr(store, "index_prefix", DEFAULT_EVENT_INDEX))


def _until(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        return parse_timestamp(text)
    except ValueError as error:
        raise AlertsError(f"--until wants an RFC 3339 time, not {text!r}") from error


def report(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    """What ``socflow sources`` shows, as data (the JSON output)."""
    result: dict[str, Any] = {"parsers": [asdict(row) for row in parser_rows()]}
    if not args.since:
        return result
    since = parse_since(args.since)
    until = _until(args.until)
    index = _event_index(args, settings)
    result.update({"since": args.since, "until": format_timestamp(until), "index": index})
    from elasticsearch import ApiError, TransportError

    from alerts.indexer import connect

    inventory = AssetInventory.load(resolve_config_path(settings.collector.assets_path))
    # An unreachable store is an answer here ("not available"), not a reason for retries and tracebacks.
    logging.getLogger("elastic_transport").setLevel(logging.CRITICAL)
    try:
        client = connect(settings.elasticsearch).options(max_retries=0, request_timeout=15)
        if not client.indices.exists(index=index):
            result["event_store"] = f"event store not available: no index or alias {index!r}"
            return result
        rows = activity(client, index, since=since, until=until, inventory=inventory)
        result["activity"] = [row.as_dict() for row in rows]
        result["silent_nodes"] = silent_nodes(client, index, inventory, rows)
    except (ApiError, TransportError) as error:
        result["event_store"] = (f"event store not available at {settings.elasticsearch.url}: "
                                 f"{type(error).__name__}: {error}")[:500]
        return result
    result["event_store"] = "available"
    return result


def _safe(value: Any, limit: int = 80) -> str:
    text = _UNSAFE.sub("\ufffd", "" if value is None else str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(width=None if sys.stdout.isatty() else 160)
    parsers = Table(title="Parsers", title_justify="left")
    for column in ("format", "aliases", "inputs", "Sigma logsource", "what it reads"):
        parsers.add_column(column, no_wrap=column in ("format", "inputs"))
    for row in result["parsers"]:
        parsers.add_row(*(Text(_safe(value, 100)) for value in (row["name"], ", ".join(row["aliases"]), row["inputs"],
                                                                 row["logsource"], row["title"])))
    console.print(parsers)
    if "since" not in result:
        return
    if result["event_store"] != "available":
        console.print(Text(_safe(result["event_store"], 300)), style="yellow")
        return
    seen = Table(title=f"Events by node, {result['since']} to {result['until']} ({result['index']})",
                 title_justify="left")
    for column in ("node", "name", "Sigma logsource", "dataset", "events", "last seen"):
        seen.add_column(column, justify="right" if column == "events" else "left")
    for item in result["activity"]:
        row = Activity(**item)
        seen.add_row(*(Text(_safe(value)) for value in (row.node, row.node_name, row.logsource, row.dataset,
                                                         row.events, row.last_seen or "-")))
    console.print(seen)
    silent = Table(title="Inventory nodes with no event in the window", title_justify="left")
    for column in ("node", "name", "agency", "district", "last seen ever"):
        silent.add_column(column)
    for node in result["silent_nodes"]:
        silent.add_row(*(Text(_safe(node[key] or "never")) for key in ("node", "name", "agency", "district",
                                                                       "last_seen")))
    console.print(silent if result["silent_nodes"] else Text("Every inventory node sent events in the window."))


def handler(args: argparse.Namespace, settings: Any) -> int:
    result = report(args, settings)
    if args.format == "json":
        json.dump(result, sys.stdout, indent=2)  # ASCII: no control or bidi character reaches the terminal
        sys.stdout.write("\n")
    else:
        _table(result)
    return 0
