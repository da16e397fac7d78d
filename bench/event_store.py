"""The event store's cost: events/s indexed, Elasticsearch CPU per event, bytes on disk per event.

    .venv/bin/python bench/event_store.py [--events 100000] [--no-evtx] [--es-url URL --es-pid PID] [--json]
        [--variants chosen-5s-bc] [--rounds 2] [--no-detection]

The same events go through the real event writer (``alerts.eventstore.writer``) into one alias
per variant, all in one run on one Elasticsearch:

- ``dynamic``: no mapping at all, Elasticsearch's defaults (every field mapped on first sight,
  strings as ``text`` plus a ``.keyword``; index.mapping.total_fields.limit 1000);
- ``dynamic-keyword``: what Filebeat's default template does with fields it does not know
  (``strings_as_keyword``: every string a keyword, ignore_above 1024; limit raised to 10000);
- ``chosen``: socflow's mapping (alerts/eventstore/template.py) at refresh 1 s and 5 s, the
  default codec and ``best_compression``, one shard and two.

Events: the EVTX attack corpus (``$SOCFLOW_CORPORA/evtx-attack-samples``) collected through the
files collector (re-dated into one day: see ``redate``), plus ``--events`` generated Sysmon
process creations (bench/pipeline.py's generator) on 200 hosts. Per variant: wall time
(events/s through writer and Elasticsearch), CPU of the Elasticsearch process (from /proc, µs
per event), CPU of the writer (this process), then refresh + force-merge to one segment and the
store size (bytes per event). Rejected
events (the writer's dead letters) are counted: a dynamic mapping refuses what overflows it.
By default a private Elasticsearch (port 19235, heap 512 MB) is started and stopped.

The reference, measured in the same run on the same spool: the detection job's own Python work
per event (``BatchProcessor.process_line`` over every spool line, with this project's rules and
the SigmaHQ Windows rules, as the Flink job's operator runs them; the job's JVM side comes on
top), so "storing an event costs no more than detecting on it" reads as writer + Elasticsearch
µs/event against that figure. Plus the pure-Python loop, for this VM's speed of the moment.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from elasticsearch import Elasticsearch  # noqa: E402

from alerts.eventstore.template import event_template  # noqa: E402
from alerts.eventstore.writer import EventWriter  # noqa: E402
from alerts.settings import EventStoreSettings, load_settings  # noqa: E402
from bench.pipeline import BENIGN, event  # noqa: E402
from deploy import elasticsearch  # noqa: E402
from deploy.settings import StackSettings  # noqa: E402
from ingest.files import collect_paths  # noqa: E402
from ingest.spool import read_batches  # noqa: E402

VARIANTS: list[dict[str, Any]] = [
    {"name": "dynamic", "mapping": "dynamic", "refresh": "1s", "codec": "default", "shards": 1},
    {"name": "dynamic-keyword", "mapping": "dynamic-keyword", "refresh": "1s", "codec": "default", "shards": 1},
    {"name": "chosen-1s", "mapping": "chosen", "refresh": "1s", "codec": "default", "shards": 1},
    {"name": "chosen-5s", "mapping": "chosen", "refresh": "5s", "codec": "default", "shards": 1},
    {"name": "chosen-5s-bc", "mapping": "chosen", "refresh": "5s", "codec": "best_compression", "shards": 1},
    {"name": "chosen-5s-bc-2sh", "mapping": "chosen", "refresh": "5s", "codec": "best_compression", "shards": 2},
]


def corpora_dir() -> Path:
    return Path(os.environ.get("SOCFLOW_CORPORA", REPO.parent / "shared" / "corpora"))


def calibrate() -> float:
    """Microseconds of a fixed pure-Python loop: how fast this core is right now."""
    return min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6


def detection_us_per_event(spool: Path) -> float | None:
    """CPU µs per event of the job's Python core (decode, Sigma over this project's rules and
    SigmaHQ's Windows rules, detections) over every spool line; None without the Sigma corpus."""
    import gc

    from detectors.pipeline import BatchProcessor
    from detectors.sigma.cache import load_engine

    sigma = corpora_dir() / "sigma" / "rules" / "windows"
    if not sigma.is_dir():
        return None
    engine, _report, _ = load_engine([REPO / "rules", sigma], config_dir=REPO / "config")
    processor = BatchProcessor(engine)
    gc.freeze()  # as the job does: the rule set is not walked by every collection
    started = time.process_time()
    for segment in sorted((spool / "segments").glob("seg-*.jsonl")):
        with segment.open(encoding="utf-8") as handle:
            for line in handle:
                processor.process_line(line)
    spent = time.process_time() - started
    gc.unfreeze()
    events = sum(len(batch) for batch in read_batches(spool))
    return spent / events * 1e6 if events else None


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def template_body(variant: dict[str, Any], prefix: str) -> dict[str, Any]:
    settings = EventStoreSettings(index_prefix=prefix, refresh_interval=variant["refresh"], codec=variant["codec"],
                                  number_of_shards=variant["shards"])
    if variant["mapping"] == "chosen":
        return event_template(settings)
    index_settings: dict[str, Any] = {"number_of_shards": variant["shards"], "number_of_replicas": 0,
                                      "refresh_interval": variant["refresh"], "codec": variant["codec"]}
    mappings: dict[str, Any] = {}
    if variant["mapping"] == "dynamic-keyword":
        index_settings["mapping"] = {"total_fields": {"limit": 10000}}
        mappings = {"dynamic_templates": [{"strings_as_keyword": {
            "match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}}],
            "properties": {"@timestamp": {"type": "date"}}}
    return {"index_patterns": [f"{prefix}-*"], "priority": 200,
            "template": {"settings": index_settings, "aliases": {prefix: {}}, "mappings": mappings}}


def generated_events(path: Path, count: int, seed: int = 7) -> None:
    """``count`` Sysmon process creations (the pipeline bench's shape) on 200 hosts, one a line."""
    chooser = random.Random(seed)
    start = datetime(2026, 11, 20, 7, 0, tzinfo=UTC).timestamp()
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            image, parent, arguments = chooser.choice(BENIGN)
            host = f"ag-{number % 200:03d}-pc{number % 17:03d}"
            handle.write(json.dumps(event(100_000 + number, host, image, parent, arguments, start + number * 0.01))
                         + "\n")


def redate(spool: Path, writer: str, day: str) -> None:
    """Move one writer's events to ``day`` (time of day kept). The corpus's samples span 2018-2022,
    hundreds of daily indices: their creation, not the mapping, would be what the bench measures."""
    for segment in sorted((spool / "segments").glob(f"seg-{writer}-*.jsonl")):
        batches = [json.loads(line) for line in segment.read_text(encoding="utf-8").splitlines() if line.strip()]
        for batch in batches:
            for record in batch:
                record["@timestamp"] = day + record["@timestamp"][10:]
        segment.write_text("".join(json.dumps(batch, separators=(",", ":")) + "\n" for batch in batches),
                           encoding="utf-8")


def build_spool(work: Path, count: int, evtx: bool) -> tuple[Path, int, int]:
    spool = work / "spool"
    collector = load_settings().collector
    if count:
        source = work / "sysmon.jsonl"
        generated_events(source, count)
        collect_paths([source], spool, settings=collector, writer_id="generated", progress=False)
    corpus = corpora_dir() / "evtx-attack-samples"
    if evtx and corpus.is_dir():
        collect_paths([corpus], spool, settings=collector, writer_id="evtx", progress=False)
        redate(spool, "evtx", "2026-11-20")
    elif evtx:
        print(f"EVTX corpus not found at {corpus} (set SOCFLOW_CORPORA): generated events only", file=sys.stderr)
    events = sum(len(batch) for batch in read_batches(spool))
    raw = sum(path.stat().st_size for path in (spool / "segments").glob("seg-*.jsonl"))
    return spool, events, raw


def drop(client: Elasticsearch, prefix: str) -> None:
    for name in client.indices.get(index=f"{prefix}-*", allow_no_indices=True):
        client.indices.delete(index=name)
    if client.indices.exists_index_template(name=prefix):
        client.indices.delete_index_template(name=prefix)


def clear_templates(client: Elasticsearch) -> None:
    """Every bench template and index: one variant's at a time (their patterns must not meet)."""
    if not client.indices.exists_index_template(name="bench-evstore-*"):
        return
    for template in client.indices.get_index_template(name="bench-evstore-*")["index_templates"]:
        drop(client, template["name"])


def run_variant(client: Elasticsearch, es_pid: int, spool: Path, variant: dict[str, Any], events: int,
                keep: bool) -> dict[str, Any]:
    prefix = f"bench-evstore-{variant['name']}-v"  # "-v": no variant's pattern covers another's indices
    clear_templates(client)
    client.indices.put_index_template(name=prefix, **template_body(variant, prefix))
    (spool / "consumers" / "event-store.json").unlink(missing_ok=True)
    settings = EventStoreSettings(index_prefix=prefix, deadletter_prefix=f"{prefix}-dl")
    # Refused events are counted, not repaired: what a Filebeat-style shipper would lose.
    writer = EventWriter(client, spool, settings, max_moves=0 if variant["mapping"] != "chosen" else 8)
    writer._template_ready = True  # the variant's template, not the chosen one
    es_before, own_before, started = process_cpu_s(es_pid), time.process_time(), time.monotonic()
    stats = writer.run_once(refresh=False)
    client.indices.refresh(index=prefix)
    wall = time.monotonic() - started
    es_cpu, own_cpu = process_cpu_s(es_pid) - es_before, time.process_time() - own_before
    client.indices.forcemerge(index=prefix, max_num_segments=1, wait_for_completion=True)
    client.indices.flush(index=prefix)  # the merged-away segments' files go with the commit
    client.indices.refresh(index=prefix)
    store = client.indices.stats(index=prefix, metric="store,docs")["_all"]["primaries"]
    mapping = client.indices.get_mapping(index=prefix)
    fields = max(json.dumps(entry["mappings"]).count('"type"') for entry in mapping.values())
    docs = int(store["docs"]["count"])
    result = {
        "variant": variant["name"], "mapping": variant["mapping"], "refresh": variant["refresh"],
        "codec": variant["codec"], "shards": variant["shards"], "events": events, "stored": docs,
        "rejected": stats.dead_lettered, "repaired": stats.repaired,
        "events_per_s": round(docs / wall) if wall else None, "es_cpu_us_per_event": round(es_cpu / events * 1e6, 1),
        "writer_cpu_us_per_event": round(own_cpu / events * 1e6, 1),
        "bytes_per_event": round(int(store["store"]["size_in_bytes"]) / docs, 1) if docs else None,
        "mapped_fields": fields,
    }
    if not keep:
        drop(client, prefix)
        drop(client, f"{prefix}-dl")
    return result


def private_stack() -> StackSettings:
    base = load_settings().stack.for_tests()
    return base.model_copy(update={"run_dir": base.effective_run_dir.with_name(base.effective_run_dir.name
                                                                               + "-bench-evstore"),
                                   "elasticsearch_port": 19235, "elasticsearch_transport_port": 19335,
                                   "elasticsearch_heap": "512m"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="generated Sysmon events (default 100000)")
    parser.add_argument("--no-evtx", action="store_true", help="leave out the EVTX attack corpus")
    parser.add_argument("--variants", help="comma-separated variant names (default: all)")
    parser.add_argument("--es-url", help="an Elasticsearch to use (with --es-pid); default: a private one")
    parser.add_argument("--es-pid", type=int, help="pid of that Elasticsearch's JVM (for its CPU time)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs of every variant, in turn (default 2); the figures are the round with the "
                        "least Elasticsearch CPU, the others show the spread")
    parser.add_argument("--keep", action="store_true", help="keep the bench indices")
    parser.add_argument("--no-detection", action="store_true",
                        help="skip the reference run of the detection core over the same events")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    logging.getLogger("alerts").setLevel(logging.ERROR)  # one dead-letter line per refused event
    stack = None
    if args.es_url:
        if not args.es_pid:
            parser.error("--es-url needs --es-pid (the CPU per event is read from /proc/PID)")
        url, pid = args.es_url, args.es_pid
    else:
        stack = private_stack()
        status = elasticsearch.start(stack)
        url, pid = status.url, int(status.pid or 0)
    work = Path(tempfile.mkdtemp(prefix="socflow-bench-evstore-"))
    try:
        client = Elasticsearch(url, request_timeout=300)
        spool, events, raw = build_spool(work, args.events, not args.no_evtx)
        chosen = [v for v in VARIANTS if not args.variants or v["name"] in args.variants.split(",")]
        # Warm-up: Elasticsearch's JIT and caches, so the first variant does not pay for them.
        run_variant(client, pid, spool, {**VARIANTS[-1], "name": "warm-up"}, events, False)
        reference_before = calibrate()
        rounds = [[run_variant(client, pid, spool, variant, events, args.keep) for variant in chosen]
                  for _ in range(max(1, args.rounds))]
        reference_after = calibrate()
        detection = None if args.no_detection else detection_us_per_event(spool)
        results = []
        for runs in zip(*rounds, strict=True):
            best = min(runs, key=lambda row: row["es_cpu_us_per_event"])
            best["es_cpu_us_per_event_rounds"] = [row["es_cpu_us_per_event"] for row in runs]
            best["events_per_s_rounds"] = [row["events_per_s"] for row in runs]
            results.append(best)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if stack is not None:
            elasticsearch.stop(stack)
    figures = {"events": events, "spool_bytes_per_event": round(raw / events, 1), "results": results,
               "reference_loop_us": [round(reference_before, 1), round(reference_after, 1)],
               "detection_cpu_us_per_event": round(detection, 1) if detection else None,
               "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    print(f"{events} events ({figures['spool_bytes_per_event']} bytes each as spool JSON); load average "
          f"{figures['load_avg_1m']} on {figures['cpus']} CPUs shared with other work")
    base = results[0]

    def versus(row: dict[str, Any]) -> str:
        """(writer + Elasticsearch) CPU per event over the detection core's."""
        return f"{(row['es_cpu_us_per_event'] + row['writer_cpu_us_per_event']) / detection:.2f}" if detection else "-"

    print(f"{'variant':18} {'stored':>7} {'rejected':>8} {'events/s':>9} {'ES µs/ev':>9} {'(rounds)':>16} "
          f"{'vs first':>8} {'writer µs/ev':>12} {'store/detect':>12} {'bytes/ev':>9} {'vs first':>8} {'fields':>6}")
    for row in results:
        rounds_text = "/".join(str(value) for value in row["es_cpu_us_per_event_rounds"])
        print(f"{row['variant']:18} {row['stored']:>7} {row['rejected']:>8} {row['events_per_s']:>9} "
              f"{row['es_cpu_us_per_event']:>9} {rounds_text:>16} "
              f"{row['es_cpu_us_per_event'] / base['es_cpu_us_per_event']:>8.2f} "
              f"{row['writer_cpu_us_per_event']:>12} {versus(row):>12} {row['bytes_per_event']:>9} "
              f"{row['bytes_per_event'] / base['bytes_per_event']:>8.2f} {row['mapped_fields']:>6}")
    print(f"reference: sum(range(1000)) took {reference_before:.1f} us before and {reference_after:.1f} us after "
          "(about 10 us on an idle modern core)")
    if detection:
        print(f"detection core (decode + Sigma, this project's and SigmaHQ's Windows rules) on the same events: "
              f"{detection:.1f} CPU µs/event; store/detect = (writer + Elasticsearch) / that")
    return 0


if __name__ == "__main__":
    sys.exit(main())
