"""``socflow collect``: run a collector (``files``, ``syslog``, ``net``) into the spool or Kafka.

Each sub-command builds its collector from ``settings.collector``, writes to the spool at
``--spool`` (default: the data directory's spool) or, with ``--kafka``, to a Kafka topic
buffered on disk, and stops cleanly (committing what it read) on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ingest.errors import IngestError
from ingest.files import collect_paths
from ingest.metrics import serve
from ingest.parsers import FORMATS
from ingest.sink import close_sink, open_sink
from ingest.syslog import Listen, serve_syslog, tls_context


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("collect", help="run a collector (files, syslog, net) into the spool or Kafka")
    commands = parser.add_subparsers(dest="collector", metavar="COLLECTOR", required=True)

    files = commands.add_parser(
        "files", help="read JSON lines, text logs, EVTX and JSON exports, or tail them",
        description="Read log files into the spool. With paths, each file is sniffed (or read as --format); "
        "without, the file sources of collector.files in the settings are read, each glob with its format, "
        "time zone, host and options. `socflow sources` lists the formats.")
    files.add_argument("paths", nargs="*", type=Path,
                       help="files, directories or globs (default: the sources of collector.files)")
    files.add_argument("--follow", action="store_true", help="keep tailing (rotation and truncation handled)")
    files.add_argument("--format", default="auto", choices=(*FORMATS, "evtx", "winjson"), metavar="FORMAT",
                       help="force a parser instead of sniffing each file: " + ", ".join((*FORMATS[1:], "evtx",
                                                                                          "winjson")))
    _common(files, "files")
    files.set_defaults(handler=handle_files)

    syslog = commands.add_parser("syslog", help="syslog server: RFC 3164/5424 over UDP, TCP and TLS")
    syslog.add_argument("--udp", metavar="HOST:PORT", help="UDP listener (default: collector.syslog_udp)")
    syslog.add_argument("--tcp", metavar="HOST:PORT", help="TCP listener (default: collector.syslog_tcp)")
    syslog.add_argument("--tls", metavar="HOST:PORT", help="TLS listener (default: collector.syslog_tls)")
    syslog.add_argument("--no-udp", action="store_true", help="no UDP listener")
    syslog.add_argument("--no-tcp", action="store_true", help="no TCP listener")
    syslog.add_argument("--tls-cert", type=Path, help="PEM certificate of the TLS listener")
    syslog.add_argument("--tls-key", type=Path, help="PEM key of the TLS listener")
    syslog.add_argument("--timezone", help="zone of RFC 3164 timestamps (default: collector.syslog_timezone)")
    _common(syslog, "syslog")
    syslog.set_defaults(handler=handle_syslog)

    net = commands.add_parser("net", help="network sensor (scapy capture): flows, DNS, HTTP and TLS records")
    source = net.add_mutually_exclusive_group(required=True)
    source.add_argument("--iface", help="capture live on this interface (needs root or CAP_NET_RAW)")
    source.add_argument("--pcap", type=Path, nargs="+", help="read pcap/pcapng files")
    net.add_argument("--bpf", help="BPF filter (default: collector.sensor_bpf live; none for pcaps)")
    _common(net, "net")
    net.set_defaults(handler=handle_net)


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


def _settle_gc() -> None:
    """Freeze what start-up built (modules, settings, the sink) so the collector's full collections
    skip it, and collect the young generation less often: a collector allocates a few containers
    per line for as long as it runs (measured ~8% of the file collector's CPU before)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _address(text: str, transport: str) -> Listen:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise IngestError(f"--{transport} wants HOST:PORT, not {text!r}")
    return Listen(transport, host.strip("[]"), int(port))


def handle_syslog(args: argparse.Namespace, settings: Any) -> int:
    config = settings.collector
    listens: list[Listen] = []
    udp = None if args.no_udp else (args.udp or config.syslog_udp)
    tcp = None if args.no_tcp else (args.tcp or config.syslog_tcp)
    tls_address = args.tls or config.syslog_tls
    for text, transport in ((udp, "udp"), (tcp, "tcp"), (tls_address, "tls")):
        if text:
            listens.append(_address(text, transport))
    if not listens:
        raise IngestError("no listener: give --udp, --tcp or --tls")
    context = None
    if tls_address:
        cert = args.tls_cert or config.syslog_tls_cert
        if cert is None:
            raise IngestError("--tls needs --tls-cert (and --tls-key unless the key is in the certificate file)")
        context = tls_context(cert, args.tls_key or config.syslog_tls_key)
    spool = args.spool or settings.spool_dir
    if args.metrics:
        serve(config.metrics_port)
    sink = open_sink(spool, args.writer_id, config, kafka_bootstrap=args.kafka, kafka_topic=args.topic)
    _settle_gc()
    try:
        stats = serve_syslog(listens, spool, settings=config, writer_id=args.writer_id, sink=sink, tls=context,
                             timezone=args.timezone or config.syslog_timezone, stop=_stop_on_signals(),
                             ready=lambda ports: print(json.dumps({"listening": ports}), flush=True))
    finally:
        close_sink(sink)
    print(json.dumps({"collector": "syslog", **stats.as_dict()}), flush=True)
    return 0


def handle_net(args: argparse.Namespace, settings: Any) -> int:
    from ingest.net.sensor import capture_live, collect_pcaps  # scapy: imported only for the sensor

    config = settings.collector
    spool = args.spool or settings.spool_dir
    if args.metrics:
        serve(config.metrics_port)
    sink = open_sink(spool, args.writer_id, config, kafka_bootstrap=args.kafka, kafka_topic=args.topic)
    _settle_gc()
    try:
        if args.pcap:
            stats = collect_pcaps(args.pcap, spool, settings=config, writer_id=args.writer_id, bpf=args.bpf,
                                  sink=sink)
        else:
            stats = capture_live(args.iface, spool, settings=config, writer_id=args.writer_id, bpf=args.bpf,
                                 stop=_stop_on_signals(), sink=sink,
                                 ready=lambda: print(json.dumps({"capturing": args.iface}), flush=True))
    finally:
        close_sink(sink)
    print(json.dumps({"collector": "net", **stats.as_dict()}), flush=True)
    return 0


def handle_files(args: argparse.Namespace, settings: Any) -> int:
    collector_settings = settings.collector
    sources = () if args.paths else tuple(collector_settings.files)
    if not args.paths and not sources:
        raise IngestError("no paths given and no file sources configured (collector.files in the settings)")
    spool = args.spool or settings.spool_dir
    if args.metrics:
        serve(collector_settings.metrics_port)
    sink = open_sink(spool, args.writer_id, collector_settings, kafka_bootstrap=args.kafka, kafka_topic=args.topic)
    _settle_gc()
    try:
        stats = collect_paths(args.paths, spool, settings=collector_settings, writer_id=args.writer_id,
                              follow=args.follow, progress=False if args.no_progress else None, fmt=args.format,
                              sink=sink, stop=_stop_on_signals(), sources=sources)
    finally:
        close_sink(sink)
    print(json.dumps({"collector": "files", **stats.as_dict()}), file=sys.stdout)
    return 0
