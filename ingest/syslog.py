"""The syslog server: RFC 3164 and RFC 5424 over UDP, TCP (octet counting or newline framing) and TLS.

Two halves joined by a file, so that a message the server has read is never lost:

- the **receiver** (one asyncio loop: UDP, TCP and TLS listeners) frames messages and
  appends them at once to a *receive journal* (``<spool>/journal/<writer>/jrn-<seq>.bin``,
  one ``write`` per batch). Data written to a file survives the death of the process
  (``kill -9``) because it is in the kernel's page cache; it never waits for parsing, so a
  slow transport makes the journal grow on disk instead of dropping messages.
- the **processor** (a thread) reads the journal, parses, normalizes and commits events to
  the sink together with its journal position, exactly like the file collector does with
  a file. After a crash it resumes from the committed position: every journaled message
  is committed exactly once, with the same ``event.id`` (derived from journal position).

What no syslog server can promise: bytes still in the kernel's socket buffers, or in flight,
when the process dies. Plain syslog has no acknowledgements; senders that need more use a
disk-queued relay (rsyslog) writing files that ``collect files`` tails. UDP has no flow
control either: datagrams the kernel drops on a full receive buffer are counted (see
:class:`_UdpListener`), so such a loss is seen, not silent.

Journal record: ``<I payload length><d reception epoch><B transport><H peer length>``,
peer (UTF-8), payload (raw bytes of one message).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ingest.errors import IngestError, ParseError
from ingest.files import CollectStats, Emitter
from ingest.logs import log_event
from ingest.metrics import CollectorMetrics
from ingest.normalize import Normalizer, epoch_timestamp
from ingest.parsers import linux
from ingest.parsers import syslog as syslog_parser
from ingest.schema import Event, stable_id
from ingest.settings import CollectorSettings
from ingest.sink import Sink, close_sink, lock_writer, unlock_writer
from ingest.spool import SpoolWriter

_log = logging.getLogger(__name__)

_HEADER = struct.Struct("<IdBH")
TRANSPORTS = ("udp", "tcp", "tls")
MAX_MESSAGE = 64 * 1024  # longer frames are cut here and dead-lettered by the processor
JOURNAL_ROLL_BYTES = 64 * 1024 * 1024
_JOURNAL_NAME = re.compile(r"^jrn-(\d{12})\.bin$")
_OCTET_COUNT = re.compile(rb"(\d{1,6}) ")
# SO_RXQ_OVFL (Linux 2.6.33+): each datagram carries the socket's drop counter. Python's socket
# module does not name it; 40 is its value in asm-generic/socket.h (all but a few old arches).
_SO_RXQ_OVFL: int | None = getattr(socket, "SO_RXQ_OVFL", 40) if sys.platform == "linux" else None


@dataclass(frozen=True)
class Listen:
    """One listener: transport (udp, tcp, tls), address and port (0 picks a free port)."""

    transport: str
    host: str = "127.0.0.1"
    port: int = 5514


# -- journal -----------------------------------------------------------------------------------------

class JournalWriter:
    """Appends framed messages to the newest journal file; rolls at JOURNAL_ROLL_BYTES."""

    def __init__(self, directory: Path, *, after: int = 0) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        existing = [int(m[1]) for m in (_JOURNAL_NAME.match(p.name) for p in directory.iterdir()) if m]
        # Always a new file after a restart (the previous one may end in a torn record), and
        # never one numbered at or before the committed position (``after``), which the
        # reader would take as already consumed.
        self.seq = max(max(existing, default=0), after) + 1
        self._fd = self._open()
        self.size = 0

    def _open(self) -> int:
        return os.open(self.directory / f"jrn-{self.seq:012d}.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)

    def append(self, records: list[tuple[float, int, str, bytes]]) -> None:
        chunks: list[bytes] = []
        for received, transport, peer, payload in records:
            peer_bytes = peer.encode("utf-8", "replace")[:512]
            chunks.append(_HEADER.pack(len(payload), received, transport, len(peer_bytes)))
            chunks.append(peer_bytes)
            chunks.append(payload)
        data = b"".join(chunks)
        os.write(self._fd, data)  # one write: a kill -9 leaves whole batches behind
        self.size += len(data)
        if self.size >= JOURNAL_ROLL_BYTES:
            os.close(self._fd)
            self.seq += 1
            self._fd = self._open()
            self.size = 0

    def close(self) -> None:
        os.close(self._fd)


@dataclass
class JournalRecord:
    seq: int
    offset: int
    end: int
    received: float
    transport: str
    peer: str
    payload: bytes


class JournalReader:
    """Reads journal records from a committed ``(seq, offset)``; deletes files fully committed."""

    def __init__(self, directory: Path, seq: int = 0, offset: int = 0) -> None:
        self.directory = directory
        files = self._files()
        if seq == 0 or (files and seq < files[0]):
            seq, offset = (files[0] if files else 1), 0
        self.seq, self.offset = seq, offset

    def _files(self) -> list[int]:
        return sorted(int(m[1]) for m in (_JOURNAL_NAME.match(p.name) for p in self.directory.iterdir()) if m)

    def _path(self, seq: int) -> Path:
        return self.directory / f"jrn-{seq:012d}.bin"

    def read(self, limit: int) -> list[JournalRecord]:
        """Up to ``limit`` complete records after the current position (advances it)."""
        records: list[JournalRecord] = []
        while len(records) < limit:
            got = self._read_file(limit - len(records))
            records.extend(got)
            if got:
                continue
            # End of this file: move on only once a newer file exists, re-reading this
            # one first because the writer may have added to it before rolling over.
            if any(seq > self.seq for seq in self._files()):
                again = self._read_file(limit - len(records))
                records.extend(again)
                if again:
                    continue
                if self._torn_tail():
                    log_event(_log, "journal_torn_tail", logging.WARNING, seq=self.seq, offset=self.offset)
                later = [seq for seq in self._files() if seq > self.seq]
                self.seq, self.offset = later[0], 0
                continue
            break
        return records

    def _torn_tail(self) -> bool:
        try:
            return self._path(self.seq).stat().st_size > self.offset
        except FileNotFoundError:
            return False

    def _read_file(self, limit: int) -> list[JournalRecord]:
        path = self._path(self.seq)
        try:
            with path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read(4 * 1024 * 1024)
        except FileNotFoundError:
            return []
        records: list[JournalRecord] = []
        index = 0
        size = _HEADER.size
        while len(records) < limit and index + size <= len(data):
            length, received, transport, peer_length = _HEADER.unpack_from(data, index)
            end = index + size + peer_length + length
            if end > len(data):
                break
            peer = data[index + size: index + size + peer_length].decode("utf-8", "replace")
            payload = data[index + size + peer_length: end]
            records.append(JournalRecord(self.seq, self.offset + index, self.offset + end, received,
                                         TRANSPORTS[transport] if transport < len(TRANSPORTS) else "?", peer,
                                         payload))
            index = end
        self.offset += index
        return records

    def position(self) -> dict[str, int]:
        return {"seq": self.seq, "offset": self.offset}

    def prune(self, committed_seq: int) -> None:
        """Delete journal files wholly before the committed position."""
        for seq in self._files():
            if seq < committed_seq:
                self._path(seq).unlink(missing_ok=True)


# -- receiver ----------------------------------------------------------------------------------------

class _Receiver:
    """Frames what the listeners receive and journals it, batching per event-loop turn."""

    def __init__(self, journal: JournalWriter, metrics: CollectorMetrics) -> None:
        self.journal = journal
        self.metrics = metrics
        self.pending: list[tuple[float, int, str, bytes]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False
        self.received = 0

    def add(self, transport: int, peer: str, payload: bytes) -> None:
        self.pending.append((time.time(), transport, peer, payload[:MAX_MESSAGE + 1]))
        if not self._scheduled and self.loop is not None:
            self._scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        try:
            self.journal.append(batch)
        except OSError as error:
            # A full or failing disk: these messages cannot be kept; count them, keep serving.
            self.metrics.dropped.inc(len(batch))
            log_event(_log, "journal_write_failed", logging.ERROR, error=str(error), dropped=len(batch))
            return
        self.received += len(batch)


class _UdpListener:
    """A UDP socket read with ``recvmsg`` that counts the datagrams the kernel dropped.

    UDP has no flow control: when the socket's receive buffer is full, the kernel drops
    arriving datagrams. Its drop counter reaches us two ways, both cumulative: as ancillary
    data of every datagram (``SO_RXQ_OVFL``, the count when that datagram was queued), and
    as the ``drops`` column of ``/proc/net/udp[6]`` for the socket's inode, read once a second
    and at close, which also catches drops after the last datagram. New drops go to
    ``socflow_collector_events_total{outcome="dropped"}`` at once and to a warning log at
    most once a second.
    """

    def __init__(self, sock: socket.socket, receiver: _Receiver, metrics: CollectorMetrics) -> None:
        self.sock = sock
        self.receiver = receiver
        self.metrics = metrics
        host, port = sock.getsockname()[:2]
        self.address = f"{host}:{port}"
        self.inode = os.fstat(sock.fileno()).st_ino
        self.proc_table = "/proc/net/udp6" if sock.family == socket.AF_INET6 else "/proc/net/udp"
        self.counter = 0  # the kernel's cumulative drop counter as last seen (32 bits, wraps)
        self.dropped = 0  # drops counted since the socket was opened
        self.unlogged = 0
        self._last_log = time.monotonic()
        self.ancillary = 0
        if _SO_RXQ_OVFL is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RXQ_OVFL, 1)
                self.ancillary = socket.CMSG_SPACE(4)
            except OSError:
                pass  # an older kernel: /proc alone tells the drops
        sock.setblocking(False)

    def readable(self) -> None:
        """Read what is queued (up to a bound, to stay fair to the other listeners)."""
        receive, add = self.sock.recvmsg, self.receiver.add
        for _ in range(512):
            try:
                data, ancillary, _flags, addr = receive(MAX_MESSAGE + 1, self.ancillary)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # e.g. an ICMP error queued on the socket: keep serving
                log_event(_log, "syslog_udp_receive_error", logging.WARNING, listen=self.address, error=str(error))
                return
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_RXQ_OVFL and len(value) >= 4:
                    self.observe(int.from_bytes(value[:4], sys.byteorder))
            add(0, f"{addr[0]}:{addr[1]}", data.rstrip(b"\r\n\x00"))

    def observe(self, counter: int) -> None:
        """Account a reading of the kernel's cumulative counter (older readings are ignored)."""
        new = (counter - self.counter) & 0xFFFFFFFF
        if 0 < new < 0x80000000:
            self.counter = counter & 0xFFFFFFFF
            self.dropped += new
            self.unlogged += new
            self.metrics.dropped.inc(new)

    def poll(self, final: bool = False) -> None:
        """Read the counter from /proc; log drops not logged yet (once a second at most)."""
        counter = _proc_udp_drops(self.proc_table, self.inode)
        if counter is not None:
            self.observe(counter)
        now = time.monotonic()
        if self.unlogged and (final or now - self._last_log >= 1.0):
            log_event(_log, "syslog_udp_dropped", logging.WARNING, listen=self.address, dropped=self.unlogged,
                      total=self.dropped)
            self.unlogged = 0
            self._last_log = now

    def close(self) -> None:
        self.readable()  # what the kernel still holds is read, not lost
        self.poll(final=True)
        self.sock.close()


def _proc_udp_drops(table: str, inode: int) -> int | None:
    """The ``drops`` column of the socket with ``inode`` in /proc/net/udp or udp6 (Linux)."""
    try:
        with open(table, encoding="ascii") as handle:
            next(handle, None)  # header
            for line in handle:
                fields = line.split()
                # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
                if len(fields) >= 13 and fields[9] == str(inode):
                    return int(fields[12]) & 0xFFFFFFFF
    except (OSError, ValueError):
        return None
    return None


class _Stream(asyncio.Protocol):
    """RFC 6587 framing: octet counting (``LEN SP MSG``) or newline (LF, NUL) delimited."""

    def __init__(self, receiver: _Receiver, transport_code: int) -> None:
        self.receiver = receiver
        self.code = transport_code
        self.buffer = b""
        self.peer = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._frames(final=False)

    def eof_received(self) -> bool | None:
        self._frames(final=True)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._frames(final=True)

    def _frames(self, final: bool) -> None:
        buffer = self.buffer
        index = 0
        add = self.receiver.add
        while index < len(buffer):
            counted = _OCTET_COUNT.match(buffer, index) if buffer[index:index + 1].isdigit() else None
            if counted:
                length = int(counted[1])
                start = counted.end()
                if start + length <= len(buffer):
                    add(self.code, self.peer, buffer[start:start + length])
                    index = start + length
                    while buffer[index:index + 1] in (b"\n", b"\r") and index < len(buffer):
                        index += 1  # some senders add a newline after counted frames
                    continue
                if final or length > MAX_MESSAGE * 16:
                    add(self.code, self.peer, buffer[index:])  # truncated frame: the processor dead-letters it
                    index = len(buffer)
                break
            end = buffer.find(b"\n", index)
            nul = buffer.find(b"\x00", index, end if end >= 0 else len(buffer))
            if nul >= 0:
                end = nul
            if end < 0:
                if final or len(buffer) - index > MAX_MESSAGE:
                    add(self.code, self.peer, buffer[index:].rstrip(b"\r"))
                    index = len(buffer)
                break
            frame = buffer[index:end].rstrip(b"\r")
            if frame:
                add(self.code, self.peer, frame)
            index = end + 1
        self.buffer = buffer[index:]


# -- processor ---------------------------------------------------------------------------------------

class SyslogProcessor:
    """Journal -> events -> sink, with the journal position as the committed offset."""

    def __init__(self, journal_dir: Path, sink: Sink, normalizer: Normalizer, settings: CollectorSettings,
                 metrics: CollectorMetrics, *, collector: str, zone: tzinfo) -> None:
        self.sink = sink
        self.settings = settings
        self.metrics = metrics
        self.collector = collector
        self.zone = zone
        self.stats = CollectStats()
        self.emitter = Emitter(sink, normalizer, metrics, self.stats)
        committed = sink.offsets.get("journal") or {}
        self.reader = JournalReader(journal_dir, int(committed.get("seq", 0)), int(committed.get("offset", 0)))
        self._last_commit = time.monotonic()
        self._events_at_commit = 0
        self.source_id = stable_id("syslog", collector)

    def step(self) -> int:
        """Process what the journal holds (up to a commit's worth); returns records read."""
        budget = max(1, self.settings.commit_events - self.sink.events_uncommitted)
        records = self.reader.read(min(budget, 10_000))
        for record in records:
            self._record(record)
        if records:
            self.stats.bytes += sum(len(r.payload) for r in records)
            self.metrics.bytes.inc(sum(len(r.payload) for r in records))
        self.maybe_commit()
        return len(records)

    def _record(self, record: JournalRecord) -> None:
        text = record.payload.decode("utf-8", "replace")
        source = f"{record.transport}://{record.peer}"
        position = f"{record.seq}:{record.offset}"
        source_id = self.source_id

        def parse() -> tuple[str, Event]:
            if len(record.payload) > MAX_MESSAGE:
                raise ParseError(f"message longer than {MAX_MESSAGE} bytes")
            if not text.strip():
                raise ParseError("empty message")
            received = datetime.fromtimestamp(record.received, UTC)
            message = syslog_parser.parse_message(text, received=received, zone=self.zone)
            event = syslog_parser.to_event(message, text)
            linux.enrich_program(event, message)
            if not message.hostname:
                # No host named in the message: the sender's address is the best we know (beside
                # the computer a Windows payload names).
                event["host"] = {**event.get("host", {}), "ip": record.peer.rsplit(":", 1)[0].strip("[]")}
            event["log"]["source"] = {"address": record.peer}
            event["event"]["ingested"] = epoch_timestamp(record.received)
            if "network" not in event:  # a firewall record's network is the traffic it logged, not syslog's
                event["network"] = {"transport": "udp" if record.transport == "udp" else "tcp"}
            return str(event["event"]["dataset"]), event

        self.emitter.input_name = record.transport
        self.emitter.guarded(parse, fmt=f"syslog.{record.transport}", source=source, raw=text,
                             source_id=source_id, position=position)

    def maybe_commit(self, force: bool = False) -> None:
        if (force or self.sink.events_uncommitted >= self.settings.commit_events
                or time.monotonic() - self._last_commit >= self.settings.commit_interval_s):
            offsets = dict(self.sink.offsets)
            offsets["journal"] = self.reader.position()
            committed = self.sink.commit(offsets)
            self._last_commit = time.monotonic()
            self.metrics.received.inc(self.stats.events - self._events_at_commit)
            self._events_at_commit = self.stats.events
            self.metrics.committed(committed)
            self.reader.prune(self.reader.seq)


# -- the server --------------------------------------------------------------------------------------

def tls_context(certfile: Path, keyfile: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    except (OSError, ssl.SSLError) as error:
        raise IngestError(f"cannot load TLS certificate: {error}", source=str(certfile)) from error
    return context


def serve_syslog(
    listens: list[Listen],
    spool_dir: Path | str,
    *,
    settings: CollectorSettings,
    writer_id: str = "syslog",
    sink: Sink | None = None,
    normalizer: Normalizer | None = None,
    tls: ssl.SSLContext | None = None,
    timezone: str = "UTC",
    stop: threading.Event | None = None,
    ready: Callable[[dict[str, int]], None] | None = None,
) -> CollectStats:
    """Run the syslog server until ``stop`` is set; returns what was committed.

    ``ready`` is called with ``{"udp": port, "tcp": port, "tls": port}`` once listening
    (useful with port 0). On stop, everything received is journaled, processed and committed.
    """
    stop = stop or threading.Event()
    spool = Path(spool_dir)
    own_sink = sink is None
    locked = own_sink and lock_writer(spool, writer_id)
    if sink is None:
        sink = SpoolWriter(spool, writer_id, batch_size=settings.batch_size)
    normalizer = normalizer or Normalizer.from_settings(settings, writer_id)
    try:
        zone: tzinfo = ZoneInfo(timezone)
    except (KeyError, ValueError) as error:
        raise IngestError(f"unknown time zone {timezone!r}") from error
    metrics = CollectorMetrics(writer_id)
    journal_dir = spool / "journal" / writer_id
    committed = sink.offsets.get("journal") or {}
    journal = JournalWriter(journal_dir, after=int(committed.get("seq", 0)))
    processor = SyslogProcessor(journal_dir, sink, normalizer, settings, metrics, collector=writer_id, zone=zone)
    receiving = threading.Event()
    receiver = _Receiver(journal, metrics)

    def process_loop() -> None:
        while True:
            done = receiving.is_set()  # read before processing: nothing arrives after this
            if processor.step() == 0:
                if done:
                    break
                time.sleep(min(0.05, settings.poll_interval_s))
        processor.maybe_commit(force=True)

    worker = threading.Thread(target=process_loop, name=f"{writer_id}-processor", daemon=True)
    worker.start()
    try:
        asyncio.run(_serve(listens, receiver, tls, stop, ready=ready, udp_buffer=settings.syslog_udp_buffer_bytes))
    finally:
        receiving.set()
        worker.join()
        journal.close()
        if own_sink:
            close_sink(sink)
        if locked:
            unlock_writer(spool, writer_id)
    log_event(_log, "syslog_stopped", **processor.stats.as_dict())
    return processor.stats


def _receive_buffer(sock: socket.socket, size: int) -> int:
    """Ask for a ``size`` receive buffer; returns what the kernel granted.

    SO_RCVBUF is capped by ``net.core.rmem_max``; SO_RCVBUFFORCE (Linux, CAP_NET_ADMIN) is
    not, so it is tried first.
    """
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    try:
        if force is None:
            raise PermissionError
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


async def _serve(listens: list[Listen], receiver: _Receiver, tls: ssl.SSLContext | None, stop: threading.Event, *,
                 ready: Callable[[dict[str, int]], None] | None, udp_buffer: int) -> None:
    loop = asyncio.get_running_loop()
    receiver.loop = loop
    closers: list[Callable[[], Any]] = []
    udp: list[_UdpListener] = []
    ports: dict[str, int] = {}
    for listen in listens:
        if listen.transport == "udp":
            sock = socket.socket(socket.AF_INET6 if ":" in listen.host else socket.AF_INET, socket.SOCK_DGRAM)
            granted = _receive_buffer(sock, udp_buffer)
            sock.bind((listen.host, listen.port))
            listener = _UdpListener(sock, receiver, receiver.metrics)
            loop.add_reader(sock.fileno(), listener.readable)
            udp.append(listener)
            ports["udp"] = sock.getsockname()[1]
            log_event(_log, "syslog_udp_buffer", listen=listener.address, requested=udp_buffer, granted=granted)
        elif listen.transport in ("tcp", "tls"):
            if listen.transport == "tls" and tls is None:
                raise IngestError("a TLS listener needs a certificate (--tls-cert)")
            code = TRANSPORTS.index(listen.transport)
            server = await loop.create_server(lambda code=code: _Stream(receiver, code), listen.host, listen.port,
                                              ssl=tls if listen.transport == "tls" else None, reuse_address=True)
            closers.append(server.close)
            ports[listen.transport] = server.sockets[0].getsockname()[1]
        else:
            raise IngestError(f"unknown syslog transport {listen.transport!r}")
    log_event(_log, "syslog_listening", **ports)
    if ready is not None:
        ready(ports)
    polled = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.1)
        if time.monotonic() - polled >= 1.0:
            polled = time.monotonic()
            for listener in udp:
                listener.poll()
    for listener in udp:
        loop.remove_reader(listener.sock.fileno())
        listener.close()
    for close in closers:
        close()
    await asyncio.sleep(0.05)  # let closing connections deliver their last frames
    receiver.flush()
