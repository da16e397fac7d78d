"""``socflow rules backtest``: candidate rules over stored events (or event files), no alert written.

Reports each rule's hits per day (Asia/Ho_Chi_Minh), per node, agency and host, the top values of
the fields its detection uses and sample events; ``--baseline OLD_RULE`` runs an older version
in the same pass and lists the hits added and removed (``alerts.backtest``). Registered under
``socflow rules`` by ``alerts.commands.rules``; heavy imports wait for the handler.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts.settings import Settings

DESCRIPTION = """\
Run candidate Sigma rules (single-event and correlation) over the events stored in Elasticsearch
between --from and --to (or over event files with --events) with the detection core of
socflow replay, without creating alerts, and report per rule: hits per day (days in
Asia/Ho_Chi_Minh), per node, agency and host, the top values of the fields the rule's detection
uses, and sample events. --baseline OLD_RULE runs an older version of a rule in the same pass and
reports the hits only the new version has (added) and only the old one has (removed), matched on
event id. Suppressions apply as in replay (counted apart); anomaly detectors do not run.
Times: ISO dates (2026-12-01: midnight UTC), ISO times (no zone means UTC), now, -7d, -12h.
Exit 2 on a rule that does not load, a missing file or no event store."""


def handler(args: argparse.Namespace, settings: Settings, *, now: datetime | None = None) -> int:
    from alerts.backtest import BacktestError
    from alerts.backtest.run import Options, backtest
    from alerts.hunt.times import parse_time

    moment = now or datetime.now(UTC)
    default_start, default_end = (None, None) if args.events else ("-7d", "now")
    start_text, end_text = args.start or default_start, args.end or default_end
    start = None if start_text is None else parse_time(start_text, moment)
    end = None if end_text is None else parse_time(end_text, moment)
    if start is not None and end is not None and start > end:
        raise BacktestError(f"--from ({start.isoformat()}) is after --to ({end.isoformat()})")
    if args.samples < 0 or args.top < 1:
        raise BacktestError("--samples must be 0 or more and --top 1 or more")
    fmt = args.format or ("json" if args.output and args.output.suffix == ".json" else
                          "html" if args.output and args.output.suffix in (".html", ".htm") else "table")
    if fmt == "html" and not args.output:
        raise BacktestError("--format html needs --output FILE.html")
    client = None
    if not args.events:
        from alerts.indexer import connect

        client = connect(settings.elasticsearch)
    from alerts.commands.hunt import _progress  # the hunt's bar: events read of those pre-selected

    show = not args.no_progress and sys.stderr.isatty()
    with _progress(show and not args.events, "backtest") as (on_total, on_batch):
        result = backtest(settings, args.rules, start=start, end=end, events=args.events or (), client=client,
                          baselines=args.baseline or (), supporting=args.with_rules or (),
                          options=Options(samples=args.samples, top=args.top), on_total=on_total,
                          on_batch=on_batch, file_progress=show)
    _write(result, fmt, args)
    print(json.dumps({"events_read": result.events_read, "rules": len(result.rules),
                      "hits": {f"{rule.spec.pair} (baseline)" if rule.spec.pair else rule.spec.id: rule.hits
                               for rule in result.rules}
                      if len(result.rules) <= 20 else sum(rule.hits for rule in result.rules),
                      "output": str(args.output) if args.output else None}), file=sys.stderr)
    return 0


def _write(result: Any, fmt: str, args: argparse.Namespace) -> None:
    from alerts.backtest.render import print_report, render_html, to_json
    from alerts.hunt.display import console

    if fmt == "table":
        out = console()
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            with args.output.open("w", encoding="utf-8") as handle:
                out.file = handle
                print_report(result, out)
        else:
            print_report(result, out)
        return
    text = to_json(result, ids=args.ids) if fmt == "json" else render_html(result)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def register_action(commands: argparse._SubParsersAction) -> None:
    """``backtest`` under ``socflow rules``."""
    from alerts.hunt.times import accept_relative_times

    parser = commands.add_parser(
        "backtest", help="run candidate rules over stored events (or files) and report their hits, no alerts",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rules", type=Path, nargs="+", metavar="RULE", help="candidate rule files or directories")
    parser.add_argument("--from", dest="start", metavar="T",
                        help="start of the range (default: -7d over the store, everything with --events)")
    parser.add_argument("--to", dest="end", metavar="T",
                        help="end of the range, inclusive (default: now over the store, everything with --events)")
    parser.add_argument("--events", type=Path, nargs="+", metavar="FILE",
                        help="read these event files or directories (as socflow replay does) instead of the store")
    parser.add_argument("--baseline", type=Path, action="append", metavar="OLD_RULE",
                        help="an older version of a candidate (same id; or any id when there is one candidate): "
                        "report hits added and removed; repeatable")
    parser.add_argument("--with", dest="with_rules", type=Path, nargs="+", metavar="RULE",
                        help="rules loaded only so that candidate correlations can reference them (not reported)")
    parser.add_argument("--format", choices=("table", "json", "html"),
                        help="table (terminal), json, or html (a self-contained page with a chart; needs --output); "
                        "default: from the --output suffix, else table")
    parser.add_argument("--output", type=Path, metavar="PATH", help="write the report there instead of stdout")
    parser.add_argument("--samples", type=int, default=5, metavar="N", help="sample events per rule (default 5)")
    parser.add_argument("--top", type=int, default=10, metavar="N",
                        help="values shown per field and dimension (default 10)")
    parser.add_argument("--ids", action="store_true", help="json: list every hit's event id (and added/removed ids)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (off anyway when not a TTY)")
    accept_relative_times(parser)
    parser.set_defaults(handler=handler)
