"""The network sensor collector: pcap files or a live interface -> flow, DNS, HTTP, TLS events.

``collect_pcaps`` reads pcap files (offsets: a file read to its end is not read again);
``capture_live`` captures on an interface until stopped. Both feed :class:`FlowEngine` in
chunks and commit to the sink every ``commit_interval_s`` / ``commit_events``.

``event.id`` comes from the input identity (a pcap's size and first bytes, so the same capture
gives the same ids under any name) and the record's first packet number, so a pcap read
again after a crash yields the same ids (a crash mid-file re-reads the file; flows in the
table are not checkpointed).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ingest.files import CollectStats, Emitter
from ingest.logs import log_event
from ingest.metrics import FLOWS_ACTIVE, PACKETS, CollectorMetrics
from ingest.net.capture import BpfFilter, LiveCapture, pcap_linktype, read_pcap
from ingest.net.flows import FlowEngine
from ingest.normalize import Normalizer
from ingest.schema import Event, stable_id
from ingest.settings import CollectorSettings
from ingest.sink import Sink, close_sink, lock_writer, unlock_writer
from ingest.spool import SpoolWriter

_log = logging.getLogger(__name__)
CHUNK_PACKETS = 8192


@dataclass
class SensorStats:
    packets: int = 0
    undecoded: int = 0
    events: int = 0
    flows: int = 0
    evicted: int = 0
    dead_letters: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Sensor:
    """Engine + emitter + commits for one sensor instance."""

    def __init__(self, sink: Sink, normalizer: Normalizer, settings: CollectorSettings, *, collector: str,
                 observer: dict[str, Any]) -> None:
        self.sink = sink
        self.settings = settings
        self.metrics = CollectorMetrics(collector)
        self.stats = CollectStats()
        self.emitter = Emitter(sink, normalizer, self.metrics, self.stats)
        self.observer = observer
        self.source_id = ""
        self.flows = 0
        self._last_commit = time.monotonic()
        self._events_at_commit = 0
        self._packets_at_commit = 0
        self._undecoded_at_commit = 0
        self.engine: FlowEngine | None = None

    def new_engine(self, linktype: int, input_name: str, source_id: str) -> FlowEngine:
        self.emitter.input_name = input_name
        self._packets_at_commit = self._undecoded_at_commit = 0
        self.source_id = source_id
        self.engine = FlowEngine(self._emit, idle_timeout=self.settings.sensor_idle_timeout_s,
                                 active_timeout=self.settings.sensor_active_timeout_s,
                                 max_flows=self.settings.sensor_max_flows, linktype=linktype)
        return self.engine

    def _emit(self, kind: str, record: dict[str, Any], position: str) -> None:
        record["observer"] = self.observer
        if kind == "conn":
            self.flows += 1
        event: Event = record
        self.emitter.event(event, source_id=self.source_id, position=position, fmt=f"sensor.{kind}")

    def feed(self, packets: Iterable[tuple[float, bytes]], offsets: dict[str, Any] | None = None) -> None:
        engine = self.engine
        assert engine is not None
        iterator = iter(packets)
        while True:
            before = engine.packets
            engine.feed(itertools.islice(iterator, CHUNK_PACKETS))
            if engine.packets == before:
                return
            self.maybe_commit(offsets)

    def maybe_commit(self, offsets: dict[str, Any] | None = None, force: bool = False) -> None:
        if not (force or self.sink.events_uncommitted >= self.settings.commit_events
                or time.monotonic() - self._last_commit >= self.settings.commit_interval_s):
            return
        committed = self.sink.commit(offsets if offsets is not None else self.sink.offsets)
        self._last_commit = time.monotonic()
        self.metrics.received.inc(self.stats.events - self._events_at_commit)
        self._events_at_commit = self.stats.events
        self.metrics.committed(committed)
        engine = self.engine
        if engine is not None:
            PACKETS.labels(self.metrics.collector, "seen").inc(engine.packets - self._packets_at_commit)
            PACKETS.labels(self.metrics.collector, "undecoded").inc(engine.undecoded - self._undecoded_at_commit)
            self._packets_at_commit, self._undecoded_at_commit = engine.packets, engine.undecoded
            FLOWS_ACTIVE.labels(self.metrics.collector).set(len(engine.flows))

    def result(self, seconds: float, packets: int, undecoded: int, evicted: int) -> SensorStats:
        return SensorStats(packets=packets, undecoded=undecoded, events=self.stats.events, flows=self.flows,
                           evicted=evicted, dead_letters=self.stats.dead_letters, seconds=round(seconds, 3))


def _pcap_identity(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(65536)
    return stable_id("pcap", path.stat().st_size, hashlib.blake2b(head, digest_size=16).hexdigest())


def _observer(iface: str | None) -> dict[str, Any]:
    observer: dict[str, Any] = {"hostname": socket.gethostname(), "type": "sensor", "vendor": "socflow"}
    if iface:
        observer["ingress"] = {"interface": {"name": iface}}
    return observer


def collect_pcaps(
    paths: Sequence[Path | str],
    spool_dir: Path | str,
    *,
    settings: CollectorSettings,
    writer_id: str = "net",
    bpf: str | None = None,
    sink: Sink | None = None,
    normalizer: Normalizer | None = None,
) -> SensorStats:
    """Read pcap files into flow/DNS/HTTP/TLS events; a file read before is skipped."""
    own_sink = sink is None
    locked = own_sink and lock_writer(Path(spool_dir), writer_id)
    if sink is None:
        sink = SpoolWriter(Path(spool_dir), writer_id, batch_size=settings.batch_size)
    normalizer = normalizer or Normalizer.from_settings(settings, writer_id)
    sensor = Sensor(sink, normalizer, settings, collector=writer_id, observer=_observer(None))
    offsets = dict(sink.offsets)
    started = time.perf_counter()
    packets = undecoded = evicted = 0
    try:
        for item in paths:
            path = Path(item).resolve()
            stat = path.stat()
            key = f"pcap:{path}"
            signature = [stat.st_ino, stat.st_size, stat.st_mtime_ns, bpf or ""]
            entry = offsets.get(key)
            if isinstance(entry, dict) and entry.get("signature") == signature and entry.get("complete"):
                log_event(_log, "pcap_already_read", path=str(path))
                continue
            linktype = pcap_linktype(path)
            engine = sensor.new_engine(linktype, "pcap", _pcap_identity(path))
            frames = read_pcap(path)
            sensor.feed(BpfFilter(bpf, linktype).frames(frames) if bpf else frames, offsets)
            engine.flush()
            offsets[key] = {"signature": signature, "complete": True, "packets": engine.packets}
            sensor.maybe_commit(offsets, force=True)
            packets += engine.packets
            undecoded += engine.undecoded
            evicted += engine.evicted
        sensor.maybe_commit(offsets, force=True)
    finally:
        if own_sink:
            close_sink(sink)
        if locked:
            unlock_writer(Path(spool_dir), writer_id)
    stats = sensor.result(time.perf_counter() - started, packets, undecoded, evicted)
    log_event(_log, "pcap_done", **stats.as_dict())
    return stats


def capture_live(
    iface: str,
    spool_dir: Path | str,
    *,
    settings: CollectorSettings,
    writer_id: str = "net",
    bpf: str | None = None,
    stop: threading.Event | None = None,
    sink: Sink | None = None,
    normalizer: Normalizer | None = None,
    ready: Any = None,
) -> SensorStats:
    """Capture on ``iface`` until ``stop`` is set; every flow still open is exported at the end."""
    stop = stop or threading.Event()
    own_sink = sink is None
    locked = own_sink and lock_writer(Path(spool_dir), writer_id)
    if sink is None:
        sink = SpoolWriter(Path(spool_dir), writer_id, batch_size=settings.batch_size)
    normalizer = normalizer or Normalizer.from_settings(settings, writer_id)
    sensor = Sensor(sink, normalizer, settings, collector=writer_id, observer=_observer(iface))
    capture = LiveCapture(iface, bpf if bpf is not None else settings.sensor_bpf, stop)
    engine = sensor.new_engine(capture.linktype, "iface",
                               stable_id("live", writer_id, iface, os.getpid(), time.time_ns()))
    started = time.perf_counter()
    log_event(_log, "capture_started", iface=iface, bpf=bpf if bpf is not None else settings.sensor_bpf)
    if ready is not None:
        ready()
    try:
        batch: list[tuple[float, bytes]] = []
        last_feed = last_drop_check = time.monotonic()
        for frame in capture.frames():
            if frame is not None:
                batch.append(frame)
            now = time.monotonic()
            if batch and (frame is None or len(batch) >= 256 or now - last_feed >= 0.2):
                engine.feed(batch)
                batch = []
                last_feed = now
            if frame is None:
                engine.sweep(time.time())  # without traffic, flows must still time out
            if now - last_drop_check >= 1.0:
                last_drop_check = now
                drops = capture.kernel_drops()
                if drops:
                    PACKETS.labels(writer_id, "kernel_dropped").inc(drops)
                    sensor.metrics.dropped.inc(drops)
                    log_event(_log, "capture_kernel_drops", logging.WARNING, iface=iface, dropped=drops)
            sensor.maybe_commit()
        if batch:
            engine.feed(batch)
        engine.flush()
        sensor.maybe_commit(force=True)
    finally:
        capture.close()
        if own_sink:
            close_sink(sink)
        if locked:
            unlock_writer(Path(spool_dir), writer_id)
    stats = sensor.result(time.perf_counter() - started, engine.packets, engine.undecoded, engine.evicted)
    log_event(_log, "capture_stopped", **stats.as_dict())
    return stats
