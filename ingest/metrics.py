"""Prometheus metrics shared by every collector.

The metric objects live at module level in prometheus-client's default registry, because a
registry refuses a second metric of the same name: a process that runs several collectors
(or a test that runs one many times) must share them. Label ``collector`` is the writer id
of the collector instance (``files``, ``syslog``, ``net`` by default).

``outcome`` of ``socflow_collector_events_total``: ``received`` (parsed from input),
``sent`` (committed to the transport), ``dead_letter``, ``dropped`` (input lost before the
collector could keep it: syslog UDP datagrams the kernel dropped on a full socket buffer,
frames the sensor's live capture lost in the kernel, syslog messages a failing disk kept out
of the journal; the file collector and TCP syslog block their input instead), ``skipped``
(header lines of a file format, such as W3C ``#Fields:``: read and counted, not events).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge, start_http_server

from ingest.logs import log_event
from ingest.schema import get_field, parse_timestamp

_log = logging.getLogger(__name__)

EVENTS = Counter("socflow_collector_events", "Events by collector and outcome.", ["collector", "outcome"])
BYTES = Counter("socflow_collector_bytes", "Input bytes consumed by the collector.", ["collector"])
PARSE_FAILURES = Counter(
    "socflow_collector_parse_failures", "Records a parser rejected, by input format.", ["collector", "format"]
)
DEAD_LETTERS = Counter("socflow_collector_dead_letters", "Records routed to the dead-letter output.", ["collector"])
LAG = Gauge(
    "socflow_collector_lag_seconds", "Wall-clock time minus event time of the last committed event.", ["collector"]
)
NODE_LAST_EVENT = Gauge(
    "socflow_node_last_event_timestamp_seconds", "Event time of the newest event seen per node.", ["node"]
)
PACKETS = Counter("socflow_sensor_packets", "Packets seen by the network sensor, by outcome.", ["collector", "outcome"])
FLOWS_ACTIVE = Gauge("socflow_sensor_flows_active", "Flows in the sensor's flow table.", ["collector"])
BACKPRESSURE = Counter(
    "socflow_collector_backpressure_seconds", "Time the collector waited on a slow transport.", ["collector"]
)

_started: set[int] = set()


def serve(port: int) -> bool:
    """Expose metrics over HTTP on ``port`` once per process; 0 disables. True if serving."""
    if port == 0:
        return False
    if port not in _started:
        start_http_server(port)
        _started.add(port)
        log_event(_log, "metrics_serving", port=port)
    return True


class CollectorMetrics:
    """Bound label values of one collector, so the hot path does no label lookup."""

    def __init__(self, collector: str) -> None:
        self.collector = collector
        self.received = EVENTS.labels(collector, "received")
        self.sent = EVENTS.labels(collector, "sent")
        self.dead = EVENTS.labels(collector, "dead_letter")
        self.dropped = EVENTS.labels(collector, "dropped")
        self.skipped = EVENTS.labels(collector, "skipped")  # header lines: not events, not dead letters
        self.bytes = BYTES.labels(collector)
        self.dead_letters = DEAD_LETTERS.labels(collector)
        self.lag = LAG.labels(collector)
        self.backpressure = BACKPRESSURE.labels(collector)
        self._node_times: dict[str, str] = {}
        self._last_stamp = ""

    def parse_failure(self, fmt: str) -> None:
        PARSE_FAILURES.labels(self.collector, fmt).inc()
        self.dead_letter()

    def dead_letter(self) -> None:
        self.dead.inc()
        self.dead_letters.inc()

    def observe_event(self, event: Mapping[str, Any]) -> None:
        """Remember the newest event time per node; published on :meth:`committed`."""
        stamp = event.get("@timestamp")
        if not isinstance(stamp, str):
            return
        socflow = event.get("socflow")
        if type(socflow) is dict and "socflow.node.id" not in event and type(socflow.get("node")) is dict:
            node = socflow["node"].get("id") or "unknown"  # as get_field finds it, in a fraction of its time
        else:
            node = get_field(event, "socflow.node.id") or "unknown"
        # Our stamps share one fixed RFC 3339 form, so string order is time order: no parsing
        # on the hot path, only once per node at commit time.
        if stamp > self._node_times.get(node, ""):
            self._node_times[node] = stamp
        self._last_stamp = max(self._last_stamp, stamp)

    def committed(self, events: int) -> None:
        if events:
            self.sent.inc(events)
        for node, stamp in self._node_times.items():
            seconds = _epoch(stamp)
            if seconds is not None:
                NODE_LAST_EVENT.labels(node).set(seconds)
        self._node_times.clear()
        last = _epoch(self._last_stamp) if self._last_stamp else None
        if last is not None:
            self.lag.set(max(0.0, time.time() - last))


def _epoch(stamp: str) -> float | None:
    try:
        return parse_timestamp(stamp).timestamp()
    except ValueError:
        return None
