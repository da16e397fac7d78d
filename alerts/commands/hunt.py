"""``socflow hunt``: Sigma rules over the stored events of a time range.

Writes the alert documents ``socflow replay`` would write for the same events (JSON lines), or
a table of them. Candidates are pre-selected in Elasticsearch and confirmed by socflow's own
engine (alerts.hunt); a rule that cannot load is listed with its reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts.commands import existing_path
from alerts.commands.replay import alert_documents, write_jsonl
from alerts.hunt.display import console, safe, table
from alerts.hunt.run import HuntResult, hunt
from alerts.hunt.times import accept_relative_times, parse_time
from alerts.indexer import connect
from alerts.nodes import NodeResolver
from alerts.settings import Settings
from detectors.model import Detection


def handler(args: argparse.Namespace, settings: Settings, *, now: datetime | None = None) -> int:
    moment = now or datetime.now(UTC)
    start, end = parse_time(args.start, moment), parse_time(args.end, moment)
    if start > end:
        print(f"socflow hunt: --from ({start.isoformat()}) is after --to ({end.isoformat()})", file=sys.stderr)
        return 2
    client = connect(settings.elasticsearch)
    show = not args.no_progress and sys.stderr.isatty()
    with _bar(show) as (on_total, on_batch, say):
        outcome = hunt(client, settings, args.rules, start, end, detectors=args.detectors,
                       page_size=args.page_size, workers=args.workers, on_total=on_total, on_batch=on_batch,
                       on_match=_live(say, getattr(args, "show_matches", 10)))
    result = outcome.result
    for failure in result.rule_failures:
        print(f"rule not loaded: {failure.path}: {failure.reason}", file=sys.stderr)
    documents = list(alert_documents(result.detections, settings.elasticsearch.index_prefix,
                                     NodeResolver.load(settings.collector)))
    fmt = args.format or ("jsonl" if args.output else "table")
    if args.output and str(args.output) != "-":
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with args.output.open("w", encoding="utf-8") as handle:
            _write(fmt, documents, handle)
    else:
        _write(fmt, documents, sys.stdout)
    summary = {
        "events_scanned": result.events, "alerts": len(documents), "dead_letters": len(result.dead_letters),
        "rules_loaded": result.rules_loaded, "rules_failed": len(result.rule_failures),
        "suppressed": result.suppressed, "from": start.isoformat(), "to": end.isoformat(),
        "seconds": round(outcome.seconds, 3),
        "first_detection_s": None if outcome.first_detection_s is None else round(outcome.first_detection_s, 3),
    }
    print(json.dumps(summary), file=sys.stderr)
    return 1 if result.rule_failures and args.strict else 0


def _write(fmt: str, documents: list[dict[str, Any]], handle: Any) -> None:
    if fmt == "jsonl":
        write_jsonl(iter(documents), handle)
        return
    rows = ([doc.get("@timestamp"), doc["rule"]["level"], doc["rule"]["name"], _entity(doc),
             doc["socflow"]["alert"]["count"], doc["_id"]] for doc in documents)
    out = console()
    out.file = handle
    out.print(table(f"{len(documents)} alert(s)", ("time", "level", "rule", "entity", "count", "alert id"), rows))


def _entity(document: Mapping[str, Any]) -> str:
    for head, tail in (("source", "ip"), ("host", "name"), ("user", "name")):
        value = (document.get(head) or {}).get(tail) if isinstance(document.get(head), dict) else None
        if value:
            return f"{head}.{tail}={value}"
    return "-"


def _live(say: Callable[[str], None], limit: int) -> Callable[[Detection, float], None]:
    """Print the first ``limit`` rule matches on stderr as they are found (the alerts, grouped
    and suppressed, come at the end): a hunt over a month shows its first results in seconds."""
    shown = [0]

    def on_match(detection: Detection, seconds: float) -> None:
        shown[0] += 1
        if shown[0] == limit + 1:
            say(f"more than {limit} matches: the alerts below list them all (--show-matches N shows more)")
        if shown[0] > limit:
            return
        event = detection.events[-1] if detection.events else {}
        say(f"match after {seconds:.1f} s: {safe(detection.timestamp, 40)} {safe(detection.rule.level, 20)} "
            f"{safe(detection.rule.title, 120)} {safe(_entity(event), 160)}")

    return on_match


@contextmanager
def _progress(show: bool, label: str = "hunting"
              ) -> Iterator[tuple[Callable[[int], None] | None, Callable[[int, int], None] | None]]:
    """A rich progress bar on stderr (events scanned of the candidates counted), or nothing.
    Also ``socflow rules backtest``'s (``label``)."""
    with _bar(show, label) as (on_total, on_batch, _say):
        yield on_total, on_batch


@contextmanager
def _bar(show: bool, label: str = "hunting") -> Iterator[tuple[
        Callable[[int], None] | None, Callable[[int, int], None] | None, Callable[[str], None]]]:
    """A rich progress bar on stderr (events scanned of the candidates counted), or nothing;
    and how to print a line on stderr above it."""
    if not show:
        with nullcontext():
            yield None, None, lambda line: print(line, file=sys.stderr, flush=True)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.text import Text

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("events"),
                  TextColumn("{task.fields[matches]} matches"), TimeRemainingColumn(),
                  console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("hunt", total=None, matches=0)
        matches = [0]

        def on_total(total: int) -> None:
            bar.update(task, total=total)

        def on_batch(events: int, detections: int) -> None:
            matches[0] += detections
            bar.update(task, advance=events, matches=matches[0])

        yield on_total, on_batch, lambda line: bar.console.print(Text(line))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hunt", help="run Sigma rules over stored events (the event store)",
        description="Run Sigma rules (single-event and correlation) over the events stored in Elasticsearch "
        "between --from and --to, and write the alerts socflow replay would write for the same events. "
        "Times: ISO dates (2026-12-01), ISO times (2026-12-01T08:00:00Z; no zone means UTC), now, "
        "or relative to now (-7d, -12h, -30m).")
    parser.add_argument("--rules", type=existing_path, nargs="+", required=True, metavar="FILE|DIR",
                        help="rule files or directories (Sigma YAML)")
    parser.add_argument("--from", dest="start", default="-24h", metavar="T", help="start of the range (default -24h)")
    parser.add_argument("--to", dest="end", default="now", metavar="T", help="end of the range (default now)")
    parser.add_argument("--output", type=Path, metavar="FILE", help="write alerts there instead of stdout")
    parser.add_argument("--format", choices=("table", "jsonl"),
                        help="table, or JSON lines (alert documents as replay writes them); "
                        "default: jsonl with --output, else table")
    parser.add_argument("--detectors", action="store_true",
                        help="also run the anomaly detectors of config/detectors.yaml (reads every event "
                        "of the range; replay runs them)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (off anyway when not a TTY)")
    parser.add_argument("--show-matches", type=int, default=10, metavar="N",
                        help="print the first N rule matches on stderr as they are found, before the alerts "
                        "(default 10; 0: none)")
    parser.add_argument("--page-size", type=int, default=5000, metavar="N", help="events per Elasticsearch page")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="days of events fetched from Elasticsearch at once (default 2)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any rule failed to load")
    accept_relative_times(parser)
    parser.set_defaults(handler=handler)


__all__ = ["HuntResult", "handler", "register"]
