"""Syslog server with real peers: util-linux ``logger`` over UDP and TCP, a Python TLS client."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from ingest.metrics import CollectorMetrics
from ingest.settings import CollectorSettings
from ingest.spool import dead_letters, read_batches
from ingest.syslog import JournalWriter, Listen, _UdpListener, serve_syslog, tls_context

SETTINGS = CollectorSettings(commit_interval_s=0.1)


class Server:
    def __init__(self, spool: Path, listens: list[Listen], settings: CollectorSettings = SETTINGS,
                 **kwargs: object) -> None:
        self.spool = spool
        self.stop = threading.Event()
        self.ports: dict[str, int] = {}
        ready = threading.Event()

        def on_ready(ports: dict[str, int]) -> None:
            self.ports.update(ports)
            ready.set()

        self.thread = threading.Thread(target=serve_syslog, args=(listens, spool),
                                       kwargs={"settings": settings, "stop": self.stop, "ready": on_ready, **kwargs},
                                       daemon=True)
        self.thread.start()
        assert ready.wait(10), "syslog server did not start"

    def events(self) -> list[dict]:
        return [event for batch in read_batches(self.spool) for event in batch]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if len(events) + len(list(dead_letters(self.spool))) >= count:
                return events
            time.sleep(0.05)
        raise AssertionError(f"expected {count} records, have {len(self.events())}")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "spool", [Listen("udp", "127.0.0.1", 0), Listen("tcp", "127.0.0.1", 0)])
    yield running
    running.close()


needs_logger = pytest.mark.skipif(shutil.which("logger") is None, reason="util-linux logger not installed")


@needs_logger
def test_logger_udp_and_tcp(server: Server) -> None:
    udp, tcp = str(server.ports["udp"]), str(server.ports["tcp"])
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", udp, "-d", "-t", "sshd", "-i", "--sd-id", "origin@32473",
                    "--sd-param", 'software="socflow-test"', "--msgid", "AUTH",
                    "Failed password for invalid user admin from 198.51.100.23 port 50122 ssh2"], check=True)
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", tcp, "-T", "--octet-count", "--rfc3164", "-t", "sudo",
                    "     nva : TTY=pts/0 ; PWD=/home/nva ; USER=root ; COMMAND=/usr/bin/id"], check=True)
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", tcp, "-T", "-p", "local3.warning", "-t", "app",
                    "newline framed RFC 5424"], check=True)
    events = sorted(server.wait_for(3), key=lambda e: e["@timestamp"])
    assert len(events) == 3
    ssh = next(e for e in events if e["process"]["name"] == "sshd")
    assert ssh["socflow"]["logsource"] == {"product": "linux", "service": "sshd"}
    assert ssh["socflow"]["collector"] == {"name": "syslog", "input": "udp"}
    assert ssh["user"]["name"] == "admin" and ssh["source"]["ip"] == "198.51.100.23"
    assert ssh["log"]["syslog"]["msgid"] == "AUTH"
    assert ssh["log"]["syslog"]["structured_data"]["origin@32473"] == {"software": "socflow-test"}
    assert ssh["event"]["original"].startswith("<13>1 ")
    sudo = next(e for e in events if e["process"]["name"] == "sudo")
    assert sudo["process"]["command_line"] == "/usr/bin/id" and sudo["socflow"]["collector"]["input"] == "tcp"
    app = next(e for e in events if e["process"]["name"] == "app")
    assert app["log"]["syslog"]["facility"]["name"] == "local3"
    assert app["log"]["syslog"]["severity"]["name"] == "warning"
    assert app["message"] == "newline framed RFC 5424"
    assert len({e["event"]["id"] for e in events}) == 3


def test_tcp_framing_and_malformed_messages(server: Server) -> None:
    frames = [
        b"<13>Nov 22 10:00:00 dc-ad01 app: first newline framed\n",
        b"55 <13>1 2026-11-22T10:00:01+07:00 dc-ad01 app - - - octet one",
        b"<13>Nov 22 10:00:02 dc-ad01 app: nul terminated\x00",
        b"this has no PRI\n",
        b"<200>Nov 22 10:00:03 dc-ad01 app: PRI out of range\n",
        b"<13>1 2026-11-22T10:00:04Z dc-ad01 app - - [broken sd m\n",
    ]
    frames[1] = str(len(frames[1].split(b" ", 1)[1])).encode() + b" " + frames[1].split(b" ", 1)[1]
    with socket.create_connection(("127.0.0.1", server.ports["tcp"])) as client:
        payload = b"".join(frames)
        for index in range(0, len(payload), 7):  # dribble: frames split across reads
            client.sendall(payload[index:index + 7])
        client.sendall(b"<13>Nov 22 10:00:05 dc-ad01 app: last one without newline")
    events = server.wait_for(7)
    letters = list(dead_letters(server.spool))
    assert [e["message"] for e in events] == ["first newline framed", "octet one", "nul terminated",
                                                  "last one without newline"]
    assert events[1]["@timestamp"] == "2026-11-22T03:00:01.000Z"
    assert events[0]["socflow"]["node"]["id"] == "dc-core"
    reasons = sorted(letter["reason"] for letter in letters)
    assert len(reasons) == 3
    assert any("PRI" in reason for reason in reasons) and any("structured data" in r for r in reasons)
    assert all(letter["source"].startswith("tcp://127.0.0.1:") for letter in letters)


def test_udp_flood_is_journaled_and_committed_once(server: Server) -> None:
    count = 2000
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for number in range(count):
            client.sendto(f"<14>Nov 22 10:00:00 cp-host app[1]: n={number}".encode(), ("127.0.0.1",
                                                                                      server.ports["udp"]))
            if number % 200 == 0:
                time.sleep(0.01)  # stay under the socket buffer: UDP has no flow control
    events = server.wait_for(count)
    assert sorted(int(e["message"][2:]) for e in events) == list(range(count))


def test_udp_overflow_is_counted_as_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """A full kernel socket buffer drops datagrams: the drops are counted and logged, never silent."""
    stalled, resume = threading.Event(), threading.Event()
    append = JournalWriter.append

    def stall_once(self: JournalWriter, records: list) -> None:
        # The first journal write blocks the server's event loop, so nothing reads the socket
        # while the flood below fills its receive buffer.
        if not stalled.is_set():
            stalled.set()
            resume.wait(30)
        append(self, records)

    monkeypatch.setattr(JournalWriter, "append", stall_once)
    collector = "udp-drops-test"
    dropped_before = REGISTRY.get_sample_value(
        "socflow_collector_events_total", {"collector": collector, "outcome": "dropped"}) or 0.0
    settings = CollectorSettings(commit_interval_s=0.1, syslog_udp_buffer_bytes=4096)
    running = Server(tmp_path / "spool", [Listen("udp", "127.0.0.1", 0)], settings=settings, writer_id=collector)
    sent = 3000
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            target = ("127.0.0.1", running.ports["udp"])
            client.sendto(b"<14>Nov 22 10:00:00 cp-host app[1]: n=0", target)
            assert stalled.wait(10), "the server did not read the first datagram"
            for number in range(1, sent):
                client.sendto(f"<14>Nov 22 10:00:00 cp-host app[1]: n={number}".encode(), target)
        resume.set()
    finally:
        resume.set()
        running.close()
    received = running.events()
    dropped = (REGISTRY.get_sample_value(
        "socflow_collector_events_total", {"collector": collector, "outcome": "dropped"}) or 0.0) - dropped_before
    assert dropped > 0
    assert len(received) + dropped == sent
    assert len({event["message"] for event in received}) == len(received)
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("syslog_udp_dropped ")]
    assert warnings and all(r.levelname == "WARNING" for r in caplog.records
                            if r.getMessage().startswith("syslog_udp_dropped "))
    assert sum(int(message.split("dropped=")[1].split()[0]) for message in warnings) == dropped


def test_udp_drops_arrive_with_the_next_datagram() -> None:
    """The SO_RXQ_OVFL path alone: the datagram queued after an overflow carries the count."""

    class Collect:
        def __init__(self) -> None:
            self.payloads: list[bytes] = []

        def add(self, transport: int, peer: str, payload: bytes) -> None:
            self.payloads.append(payload)

    receiver = Collect()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        server.bind(("127.0.0.1", 0))
        listener = _UdpListener(server, receiver, CollectorMetrics("udp-ancillary-test"))  # type: ignore[arg-type]
        for number in range(500):
            client.sendto(f"<14>flood {number}".encode(), server.getsockname())
        listener.readable()
        queued = len(receiver.payloads)
        assert listener.dropped == 0  # the queued datagrams were queued before any drop
        client.sendto(b"<14>after the flood", server.getsockname())
        listener.readable()
        assert receiver.payloads[-1] == b"<14>after the flood"
        assert listener.dropped == 500 - queued > 0
        listener.poll(final=True)  # /proc agrees: nothing counted twice
        assert listener.dropped == 500 - queued


def test_bsd_timestamps_use_the_configured_zone(tmp_path: Path) -> None:
    running = Server(tmp_path / "spool", [Listen("udp", "127.0.0.1", 0)], timezone="Asia/Ho_Chi_Minh")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"<13>Nov 22 10:00:00 dc-ad01 app: local time", ("127.0.0.1", running.ports["udp"]))
        event = running.wait_for(1)[0]
    finally:
        running.close()
    assert event["@timestamp"].endswith("-11-22T03:00:00.000Z")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed (self-signed test cert)")
def test_tls_listener(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    running = Server(tmp_path / "spool", [Listen("tls", "127.0.0.1", 0)], tls=tls_context(cert, key))
    try:
        context = ssl.create_default_context(cafile=str(cert))
        with socket.create_connection(("127.0.0.1", running.ports["tls"])) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as client:
            for number in range(3):
                message = f"<86>1 2026-11-22T10:00:0{number}Z dc-ad01 sshd 42 - - Accepted password for nva " \
                          f"from 10.10.250.5 port 5000{number} ssh2".encode()
                client.sendall(str(len(message)).encode() + b" " + message)
            # Wait before closing: the server's unread TLS session tickets would make our close
            # an RST, and an RST discards what the server has not read yet (TCP, not syslog).
            events = running.wait_for(3)
    finally:
        running.close()
    assert [e["source"]["port"] for e in events] == [50000, 50001, 50002]
    assert all(e["socflow"]["collector"]["input"] == "tls" for e in events)
    assert events[0]["log"]["syslog"]["facility"]["name"] == "authpriv"
    assert events[0]["event"]["outcome"] == "success"
