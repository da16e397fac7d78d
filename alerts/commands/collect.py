"""``socflow collect``: run a collector (``files``, ``syslog``, ``net``) into the spool or Kafka.

Each sub-command builds its collector from ``settings.collector``, writes to the spool at
``--spool`` (default: the data directory's spool) or, with ``--kafka``, to a Kafka topic
buffered on disk, and stops cleanly (committing what it read) on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ingest.files import collect_paths
from ingest.metrics import serve
from ingest.parsers import FORMATS
from ingest.sink import close_sink, open_sink


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("collect", help="run a collector (files, syslog, net) into the spool or Kafka")
    commands = parser.add_subparsers(dest="collector", metavar="COLLECTOR", required=True)

    files = commands.add_parser("files", help="read JSON lines, text logs, EVTX and JSON exports, or tail them")
    files.add_argument("paths", nargs="+", type=Path, help="files or directories")
    files.add_argument("--follow", action="store_true", help="keep tailing (rotation and truncation handled)")
    files.add_argument("--format", default="auto", choices=(*FORMATS, "evtx", "winjson"),
                       help="force a parser instead of sniffing each file")
    _common(files, "files")
    files.set_defaults(handler=handle_files)


def _common(parser: argparse.ArgumentParser, default_writer: str) -> None:
    parser.add_argument("--spool", type=Path, help="spool directory (default: <data-dir>/spool)")
    parser.add_argument("--writer-id", default=default_writer, help="spool writer id; one per running collector")
    parser.add_argument("--metrics", action="store_true", help="serve Prometheus metrics on collector.metrics_port")
    parser.add_argument("--kafka", metavar="BOOTSTRAP", help="send to Kafka at BOOTSTRAP instead of the spool")
    parser.add_argument("--topic", default="socflow-events", help="Kafka topic (with --kafka)")
    parser.add_argument("--no-progress", action="store_true", help="no progress display even on a terminal")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _handler(signum: int, frame: object) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handler)
    return stop


def handle_files(args: argparse.Namespace, settings: Any) -> int:
    collector_settings = settings.collector
    spool = args.spool or settings.spool_dir
    if args.metrics:
        serve(collector_settings.metrics_port)
    sink = open_sink(spool, args.writer_id, collector_settings, kafka_bootstrap=args.kafka, kafka_topic=args.topic)
    try:
        stats = collect_paths(args.paths, spool, settings=collector_settings, writer_id=args.writer_id,
                              follow=args.follow, progress=False if args.no_progress else None, fmt=args.format,
                              sink=sink, stop=_stop_on_signals())
    finally:
        close_sink(sink)
    print(json.dumps({"collector": "files", **stats.as_dict()}), file=sys.stdout)
    return 0
