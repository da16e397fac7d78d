"""``socflow demo``: the whole pipeline on generated sample data, end to end, on real parts.

Steps: start the local Elasticsearch (fetched from Maven Central on first use), generate the
attack scenario, collect it into the spool, store every collected event in the event store
(``socflow-demo-events-*``), run the Flink job over the spool (Flink's local runtime, bounded),
index the committed alerts, and print them as read back from Elasticsearch; end with the
timeline of the most severe alert's host, read from the event store (``socflow events``). A
rerun gives the same alerts and events and adds no duplicates.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from alerts.hunt.times import parse_duration
from alerts.settings import Settings

SCENARIO_START = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
DEMO_PREFIX = "socflow-demo-alerts"
DEMO_EVENTS = "socflow-demo-events"  # the demo's event store, apart from real events like its alerts
DEMO_DEADLETTERS = "socflow-demo-deadletters"
LEVEL_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "informational": "dim"}


def _step(progress: Progress, description: str, action: Callable[[], Any]) -> Any:
    task = progress.add_task(description, total=1)
    started = time.monotonic()
    result = action()
    elapsed = f"{time.monotonic() - started:.1f} s"
    progress.update(task, completed=1, description=f"{description} [dim]({elapsed})[/]")
    if not progress.console.is_terminal:
        progress.console.print(f"done: {description} ({elapsed})")  # logs and pipes see each step
    return result


def _drop_demo_indices(client: Any) -> None:
    # The server refuses wildcard deletes (action.destructive_requires_name): delete by name.
    for prefix in (DEMO_PREFIX, DEMO_EVENTS, DEMO_DEADLETTERS):
        for name in client.indices.get(index=f"{prefix}-*", allow_no_indices=True):
            client.indices.delete(index=name)


def run_demo(settings: Settings, console: Console, *, keep: bool = False) -> list[dict[str, Any]]:
    """Run every step; return the alert documents read back from Elasticsearch."""
    from alerts.commands.run import job_spec, prepare_java
    from alerts.eventstore.writer import EventWriter
    from alerts.indexer import Indexer, connect
    from alerts.nodes import NodeResolver
    from alerts.scenario import generate
    from deploy import elasticsearch
    from detectors.flink.job import run_job
    from ingest.files import collect_paths

    if not keep and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)  # a fresh spool and stream each run: same input, same alerts
    inputs = settings.data_dir / "inputs"
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=False) as progress:
        status = _step(progress, "Starting Elasticsearch (fetched on first run)",
                       lambda: elasticsearch.start(settings.stack))
        url = elasticsearch.elasticsearch_url(settings.stack)
        # The demo's alerts live under their own alias, never mixed with real ones, and each
        # run starts from an empty one so the table shows exactly this run's alerts.
        es_settings = settings.elasticsearch.model_copy(update={"url": url, "index_prefix": DEMO_PREFIX})
        if not keep:
            _drop_demo_indices(connect(es_settings))
        files = _step(progress, "Generating the attack scenario",
                      lambda: generate(inputs, SCENARIO_START))
        stats = _step(progress, f"Collecting {files.records} records into the spool",
                      lambda: collect_paths([files.mail, files.portal, files.windows], settings.spool_dir,
                                            settings=settings.collector, writer_id="demo"))
        store = settings.event_store.model_copy(update={"index_prefix": DEMO_EVENTS,
                                                        "deadletter_prefix": DEMO_DEADLETTERS})
        writer = EventWriter(connect(es_settings), settings.spool_dir, store)
        stored = _step(progress, "Storing every event in the event store", writer.run_once)
        prepare_java(settings)
        spec = job_spec(settings, bounded=True)
        _step(progress, "Running the Flink detection job over the spool", lambda: run_job(spec))  # type: ignore[arg-type]
        client = connect(es_settings)
        indexer = Indexer(client, settings.alert_stream_dir, settings.data_dir / "indexer", es_settings,
                          settings.indexer, node_of_group=NodeResolver.load(settings.collector))
        indexed = _step(progress, "Indexing alerts into Elasticsearch", indexer.run_once)
    response = client.search(index=es_settings.index_prefix, size=200, sort=[{"socflow.alert.first_seen": "asc"}],
                             query={"match_all": {}})
    hits = [hit["_source"] | {"_id": hit["_id"]} for hit in response["hits"]["hits"]]
    console.print(f"Elasticsearch {getattr(status, 'version', '')} at {url}: "
                  f"{stats.events} events collected, {stats.dead_letters} dead letters, "
                  f"{indexed.indexed} alerts indexed now, {indexed.already_present} already there.")
    console.print(f"Event store: {stored.indexed} events stored now, {stored.already_present} already there, "
                  f"{stored.deadletters_stored + stored.deadletters_present} dead letters "
                  f"(aliases {DEMO_EVENTS}, {DEMO_DEADLETTERS}).")
    return hits


def render(hits: list[dict[str, Any]], console: Console) -> None:
    table = Table(title=f"socflow alerts in Elasticsearch ({len(hits)})", show_lines=False)
    for column in ("first seen (UTC)", "last", "n", "level", "rule", "node", "host", "source", "ATT&CK"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        node = hit.get("socflow", {}).get("node", {})
        level = hit["rule"]["level"]
        alert = hit.get("socflow", {}).get("alert", {})
        table.add_row(
            alert.get("first_seen", hit["@timestamp"])[:19].replace("T", " "),
            hit["@timestamp"][11:19],
            str(alert.get("count", 1)),
            f"[{LEVEL_STYLE.get(level, '')}]{level}[/]",
            hit["rule"]["name"],
            f"{node.get('id', '?')} ({node.get('district', '?')}, level {node.get('security_level', '?')})",
            hit.get("host", {}).get("name", ""),
            str(hit.get("source", {}).get("ip", "")),
            ", ".join(hit.get("threat", {}).get("technique", {}).get("id", [])),
        )
    console.print(table)


def demo_report(settings: Settings, output: Path, console: Console) -> None:
    """The operations report of the scenario's day over the demo's alerts and events (``--report``)."""
    from datetime import timedelta

    from alerts.indexer import connect
    from alerts.reports.period import parse_period
    from alerts.reports.service import Request, make_report, render
    from deploy import elasticsearch

    url = elasticsearch.elasticsearch_url(settings.stack)
    demo = settings.model_copy(update={
        "elasticsearch": settings.elasticsearch.model_copy(update={"url": url, "index_prefix": DEMO_PREFIX}),
        "event_store": settings.event_store.model_copy(update={"index_prefix": DEMO_EVENTS})})
    day = SCENARIO_START.astimezone(ZoneInfo(settings.reports.timezone)).date().isoformat()
    period = parse_period(settings.reports, period=None, start=day, end=day)
    fmt = output.suffix.lstrip(".") or "html"
    # The report's clock: the evening of the scenario's day, so the same run gives the same report.
    report = make_report(demo, connect(demo.elasticsearch), Request("operations", period, None, "en"),
                         now=SCENARIO_START + timedelta(hours=12))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(render(report, fmt))
    console.print(f"Operations report of {day}: {output} (same as: socflow report operations --from {day} "
                  f"--to {day} --format {fmt} with SOCFLOW_ELASTICSEARCH__INDEX_PREFIX={DEMO_PREFIX} "
                  f"SOCFLOW_EVENT_STORE__INDEX_PREFIX={DEMO_EVENTS})")


def handler(args: argparse.Namespace, settings: Settings) -> int:
    if args.data_dir is None:
        settings = settings.model_copy(update={"data_dir": settings.data_dir / "demo"})
    console = Console()
    if not console.is_terminal:
        console = Console(width=170)  # piped or logged: do not squeeze the table into 80 columns
    hits = run_demo(settings, console, keep=args.keep)
    render(hits, console)
    from alerts.indexer import connect
    from deploy import elasticsearch

    demo = settings.model_copy(update={
        "elasticsearch": settings.elasticsearch.model_copy(
            update={"url": elasticsearch.elasticsearch_url(settings.stack), "index_prefix": DEMO_PREFIX}),
        "event_store": settings.event_store.model_copy(
            update={"index_prefix": DEMO_EVENTS, "deadletter_prefix": DEMO_DEADLETTERS})})
    show_timeline(connect(demo.elasticsearch), demo, hits, console)
    if not args.no_report:
        demo_report(settings, args.report or settings.data_dir / "operations-report.html", console)
    _console_invitation(settings, console)  # last: what the analyst does next
    return 0 if hits else 1


def show_timeline(client: Any, settings: Settings, hits: list[dict[str, Any]], console: Console) -> Any:
    """The stored events of the most severe alert's host, in the hour around it (what an analyst
    opens first), and the command that prints it again; returns the timeline (None: no alert
    names a host)."""
    from alerts.commands.events import show
    from alerts.eventstore.timeline import Entity, alert_time, entity_events

    ranked = sorted((hit for hit in hits if (hit.get("host") or {}).get("name")),
                    key=lambda hit: (-int((hit.get("event") or {}).get("severity") or 0), hit["@timestamp"]))
    if not ranked:
        return None
    alert = ranked[0]
    timeline = entity_events(client, settings, Entity("host", alert["host"]["name"]), alert_time(alert),
                             parse_duration("1h"), limit=40)
    console.print(Text(f"Timeline of alert {alert['_id']} ({alert['rule']['name']}): the host's events "
                       "around it, from the event store"))
    show(timeline, console)
    console.print(Text(f"Again, or for any alert: SOCFLOW_EVENT_STORE__INDEX_PREFIX={DEMO_EVENTS} "
                       f"SOCFLOW_ELASTICSEARCH__INDEX_PREFIX={DEMO_PREFIX} "
                       f"SOCFLOW_ELASTICSEARCH__URL={settings.elasticsearch.url} "
                       f"socflow events --around {alert['_id']} --host {alert['host']['name']}"))
    return timeline


def _console_invitation(settings: Settings, console: Console) -> None:
    """The console over the demo's alerts and a login (alerts.commands.demo_console)."""
    from alerts.commands.demo_console import invitation, prepare_console
    from alerts.indexer import connect
    from deploy import elasticsearch

    url = elasticsearch.elasticsearch_url(settings.stack)
    client = connect(settings.elasticsearch.model_copy(update={"url": url}))
    path, password = prepare_console(settings, client, es_url=url, alerts_prefix=DEMO_PREFIX)
    console.print("\n".join(invitation(path, password, settings)), markup=False, highlight=False)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline on generated sample data and show the alerts",
        description="Start the local Elasticsearch, generate an attack scenario on the provincial network, "
        "collect it, run the Flink detection job, index the alerts and print them from Elasticsearch.")
    parser.add_argument("--keep", action="store_true", help="keep the previous demo spool and alert stream")
    parser.add_argument("--report", type=Path, metavar="FILE",
                        help="where to write the operations report of the scenario's day (.html, .pdf, .json or "
                        ".csv; default <data-dir>/operations-report.html of the demo)")
    parser.add_argument("--no-report", action="store_true", help="do not write the operations report")
    parser.set_defaults(handler=handler)
