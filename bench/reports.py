"""Benchmark of the yearly report: time to make it over a generated year of ~1M alerts, and memory.

    .venv/bin/python bench/reports.py [--alerts 1000000] [--url http://127.0.0.1:19200] [--keep] [--reuse PREFIX]
                                      [--runs 2] [--concurrency N] [--no-pdf] [--profile]

1. Generates the year (alerts.yeardata, seeded) and bulk-loads it once into indices of a unique
   prefix (monthly alert indices with refresh off while loading, events of the last days,
   incidents, retention records chained through the audit trail), then refreshes and force-merges
   to one segment per index, as a month's index is once it is no longer written. ``--keep``
   leaves the indices (and the private Elasticsearch's data) for later runs with ``--reuse``:
   loading a million alerts takes minutes here;
2. makes the yearly periodic report (``yearly:2026``) the way ``socflow report`` does, ``--runs``
   times with Elasticsearch's request cache cleared before each, and prints the best run's total
   and phases: the data model (with each section's wall time, and the ``took`` Elasticsearch
   reported summed over every request: its own work, which runs concurrently), the charts, the
   HTML, the PDF; then a reference measured in the same run (one ``match_all`` count plus one
   terms aggregation over the same alerts, cache cleared) and the ratio, which survives this
   VM's 2x swings; then, in a separate run (tracemalloc slows Python down), the Python heap's
   peak while making the data model, charts and HTML, and the process's max RSS;
3. deletes the indices unless ``--keep``. ``--profile`` prints cProfile's top functions of one run.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import time
import tracemalloc
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from elasticsearch import Elasticsearch, helpers

from alerts import yeardata
from alerts.audit.trail import AuditTrail
from alerts.eventstore.template import install_event_templates
from alerts.indexer import install_template
from alerts.reports.period import named_period
from alerts.reports.service import Request, make_report
from alerts.settings import load_settings
from deploy import elasticsearch
from deploy.settings import StackSettings
from ingest.assets import AssetInventory
from ingest.normalize import resolve_config_path

NOW = datetime.fromisoformat("2026-12-16T09:00:00+07:00")


def load(client: Elasticsearch, settings, year: yeardata.Year, inventory: AssetInventory) -> float:  # type: ignore[no-untyped-def]
    prefix = settings.elasticsearch.index_prefix
    install_template(client, prefix)
    install_event_templates(client, settings.event_store)
    for month in range(13):
        name = f"{prefix}-{year.year - 1 + (month + 11) // 12}.{(month + 11) % 12 + 1:02d}"
        client.indices.create(index=name, settings={"refresh_interval": "-1"})
    started = time.perf_counter()
    actions = ({"_op_type": "create", "_index": index, "_id": ident, "_source": source}
               for index, ident, source in yeardata.alerts(year, inventory, prefix))
    for done, (ok, item) in enumerate(helpers.parallel_bulk(
            client.options(request_timeout=300), actions, thread_count=2, chunk_size=5000, raise_on_error=False),
            start=1):
        if not ok:
            raise RuntimeError(f"refused: {item}")
        if done % 200_000 == 0:
            print(f"  loaded {done:,} alerts ({done / (time.perf_counter() - started):,.0f}/s)", flush=True)
    seconds = time.perf_counter() - started
    yeardata.bulk_load(client, yeardata.events(year, inventory, settings.event_store.index_prefix))
    yeardata.bulk_load(client, yeardata.incidents(year, inventory, settings.reports.incidents_index))
    trail = AuditTrail(client, settings.reports.audit_index, settings.data_dir / "audit" / "chain-head")
    for entry in yeardata.retention_records(year):
        trail.append(**entry)  # through the chain, as socflow retention writes them
    client.indices.put_settings(index=f"{prefix}-*", settings={"refresh_interval": "1s"})
    client.indices.refresh(index=f"{prefix.rsplit('-', 1)[0]}-*")
    client.options(request_timeout=600).indices.forcemerge(index=f"{prefix}-*", max_num_segments=1)
    return seconds


def private_stack() -> StackSettings:
    """An Elasticsearch of the bench's own (port 19236, 1 GB heap), not the tests' shared one."""
    base = load_settings().stack.for_tests()
    return base.model_copy(update={"run_dir": base.effective_run_dir.with_name(base.effective_run_dir.name
                                                                               + "-bench-reports"),
                                   "elasticsearch_port": 19236, "elasticsearch_transport_port": 19336,
                                   "elasticsearch_heap": "1g"})


def drop(client: Elasticsearch, prefix: str) -> None:
    names = sorted(client.indices.get(index=f"{prefix}-*", expand_wildcards="all", allow_no_indices=True))
    for start in range(0, len(names), 50):
        client.indices.delete(index=",".join(names[start:start + 50]))
    for template in (f"{prefix}-alerts", f"{prefix}-events", f"{prefix}-dead"):
        client.options(ignore_status=404).indices.delete_index_template(name=template)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--url", help="an Elasticsearch to use (default: a private one, started and removed)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--concurrency", type=int, help="reports.concurrency (default: the setting's, 3)")
    parser.add_argument("--no-pdf", dest="pdf_off", action="store_true", help="leave the PDF out")
    parser.add_argument("--no-heap", action="store_true", help="skip the tracemalloc run")
    parser.add_argument("--profile", action="store_true", help="cProfile one more run, top 30 functions")
    parser.add_argument("--keep", action="store_true", help="leave the indices (print their prefix)")
    parser.add_argument("--reuse", metavar="PREFIX", help="use indices a --keep run left")
    args = parser.parse_args()
    prefix = args.reuse or f"bench-reports-{uuid.uuid4().hex[:8]}"
    stack = None
    if args.url is None:
        stack = private_stack()
        args.url = elasticsearch.start(stack).url
    settings = load_settings(
        data_dir=Path("/tmp") / prefix, elasticsearch={"url": args.url, "index_prefix": f"{prefix}-alerts"},
        event_store={"index_prefix": f"{prefix}-events", "deadletter_prefix": f"{prefix}-dead"},
        reports={"audit_index": f"{prefix}-audit", "incidents_index": f"{prefix}-incidents"})
    client = Elasticsearch(args.url, request_timeout=300)
    inventory = AssetInventory.load(resolve_config_path(settings.collector.assets_path))
    year = yeardata.Year(alerts=args.alerts, incidents=40, event_days=14, events_per_source_day=50, event_nodes=60)
    try:
        if not args.reuse:
            seconds = load(client, settings, year, inventory)
            print(f"load: {args.alerts:,} alerts in {seconds:.1f} s ({args.alerts / seconds:,.0f}/s)")
        count = client.count(index=settings.elasticsearch.index_prefix)["count"]
        if args.runs == 0:
            return 0
        if args.concurrency is not None:
            settings = settings.model_copy(update={"reports": settings.reports.model_copy(
                update={"concurrency": args.concurrency})})
        period = named_period(settings.reports, "yearly:2026")
        request = Request("periodic", period, None, "vi")
        timings = time_sections()
        took = count_took(client)
        runs = []
        for _ in range(args.runs):
            client.indices.clear_cache(index=f"{prefix}-*", request=True)
            timings.clear()
            took.clear()
            runs.append((one_run(settings, client, request, pdf=not args.pdf_off), dict(timings), sum(took),
                         len(took)))
        phases, sections, es_took, requests = min(runs, key=lambda run: sum(run[0].values()))
        reference = min(reference_time(client, settings.elasticsearch.index_prefix, prefix) for _ in range(3))
        monitoring = min(monitoring_time(settings, client, prefix, period) for _ in range(3))
        total = sum(phases.values())
        print(f"yearly report over {count:,} alerts, best of {args.runs} (concurrency "
              f"{settings.reports.concurrency}): total {total:.1f} s = "
              + " + ".join(f"{name} {seconds:.1f}" for name, seconds in phases.items()))
        print("  data model by section (wall, concurrent): "
              + ", ".join(f"{name} {seconds:.1f}" for name, seconds in sections.items()))
        print(f"  Elasticsearch's own time (took, summed over {requests} requests): {es_took / 1000:.1f} s")
        print(f"reference (match_all count + terms aggregation, same alerts, cache cleared): {reference:.2f} s; "
              f"total / reference = {total / reference:.1f}x, data model / reference = "
              f"{phases['data model'] / reference:.1f}x")
        print(f"reference 2 (the monitoring section's one aggregation request, as before): {monitoring:.2f} s; "
              f"data model / it = {phases['data model'] / monitoring:.1f}x")
        if not args.no_heap:
            client.indices.clear_cache(index=f"{prefix}-*", request=True)
            tracemalloc.start()
            one_run(settings, client, request, pdf=False)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"Python heap peak (data model, charts, HTML): {peak / 2**20:.1f} MiB; process max RSS "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        if args.profile:
            client.indices.clear_cache(index=f"{prefix}-*", request=True)
            profiler = cProfile.Profile()
            profiler.runcall(one_run, settings, client, request, pdf=not args.pdf_off)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    finally:
        if args.keep:
            print(f"kept indices {prefix}-* (--reuse {prefix})")
        else:
            drop(client, prefix)
        client.close()
        if stack is not None:
            elasticsearch.stop(stack)
            if not args.keep:
                elasticsearch.remove_data(stack)
    return 0


def one_run(settings, client: Elasticsearch, request: Request, *, pdf: bool) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """One yearly report, phase by phase: data model, charts, HTML, PDF (seconds)."""
    from alerts.reports.charts import charts_of
    from alerts.reports.pdf import html_to_pdf
    from alerts.reports.render import render_html

    phases: dict[str, float] = {}
    started = time.perf_counter()
    report = make_report(settings, client, request, now=NOW)
    phases["data model"] = time.perf_counter() - started
    assert report["sections"]["monitoring"]["total"] == client.count(index=settings.elasticsearch.index_prefix)[
        "count"], "the report must count every alert"
    started = time.perf_counter()
    charts = charts_of(report)
    phases["charts"] = time.perf_counter() - started
    started = time.perf_counter()
    html = render_html(report, charts=charts, for_pdf=pdf)
    phases["HTML"] = time.perf_counter() - started
    if pdf:
        started = time.perf_counter()
        html_to_pdf(html)
        phases["PDF"] = time.perf_counter() - started
    return phases


def reference_time(client: Elasticsearch, alias: str, prefix: str) -> float:
    """One plain count and one terms aggregation over the same alerts, request cache cleared."""
    client.indices.clear_cache(index=f"{prefix}-*", request=True)
    started = time.perf_counter()
    client.count(index=alias, query={"match_all": {}})
    client.search(index=alias, size=0, aggs={"level": {"terms": {"field": "rule.level", "size": 10}}})
    return time.perf_counter() - started


def monitoring_time(settings, client: Elasticsearch, prefix: str, period) -> float:  # type: ignore[no-untyped-def]
    """The monitoring section's single request (the previous reference of this bench)."""
    from alerts.reports.scope import Scope
    from alerts.reports.sections import monitoring
    from alerts.reports.sections.base import Context

    ctx = Context(client=client, settings=settings.reports, period=period, scope=Scope("province"),
                  inventory=None, now=NOW, alerts_index=settings.elasticsearch.index_prefix,  # type: ignore[arg-type]
                  events_index="")
    client.indices.clear_cache(index=f"{prefix}-*", request=True)
    started = time.perf_counter()
    client.search(index=ctx.alerts_index, **monitoring.body(ctx))
    return time.perf_counter() - started


def count_took(client: Elasticsearch) -> list[int]:
    """Collect the ``took`` (ms) of every search the client makes from here on."""
    found: list[int] = []
    original = client.search

    def search(*args, **kwargs):  # type: ignore[no-untyped-def]
        response = original(*args, **kwargs)
        found.append(int(response.get("took", 0)))
        return response

    client.search = search  # type: ignore[method-assign]
    return found


def time_sections() -> dict[str, float]:
    """Wrap each section module's build with a timer (the report's own code stays clock-free)."""
    from alerts.reports import sections

    timings: dict[str, float] = {}
    for name in ("coverage", "monitoring", "response", "retention", "rules", "attack", "integrity"):
        module = __import__(f"alerts.reports.sections.{name}", fromlist=["build"])
        original = module.build

        def timed(*args, _name=name, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                timings[_name] = time.perf_counter() - started

        module.build = timed
    del sections
    return timings


if __name__ == "__main__":
    sys.exit(main())
