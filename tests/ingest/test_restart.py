"""kill -9 mid-stream, restart: every event arrives exactly once downstream (file and syslog collectors).

The collectors run as real ``socflow collect`` processes and are killed with SIGKILL while
they read and commit; the spool (what the Flink job reads) must then hold every input record
exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ingest.spool import read_batches
from ingest.syslog import JournalReader

pytestmark = pytest.mark.slow
SOCFLOW = str(Path(sys.executable).with_name("socflow"))
ENV = {**os.environ, "SOCFLOW_COLLECTOR__COMMIT_INTERVAL_S": "0.05", "SOCFLOW_COLLECTOR__COMMIT_EVENTS": "300",
       "SOCFLOW_COLLECTOR__POLL_INTERVAL_S": "0.05"}


def spool_values(spool: Path, key: str) -> list[int]:
    values: list[int] = []
    for batch in read_batches(spool):
        for event in batch:
            values.append(int(event["message"].rsplit("=", 1)[1]) if key == "message" else int(event[key]))
    return values


def start(args: list[str], data_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([SOCFLOW, "--data-dir", str(data_dir), "collect", *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(30)


def test_file_collector_survives_kill_9(tmp_path: Path) -> None:
    logs, spool = tmp_path / "logs", tmp_path / "spool"
    logs.mkdir()
    total = 40_000
    written = threading.Event()

    def writer() -> None:
        live = logs / "app.log"
        handle = live.open("a")
        for number in range(total):
            handle.write(json.dumps({"n": number, "pad": "x" * 40}) + "\n")
            if number % 500 == 0:
                handle.flush()
                time.sleep(0.01)
            if number == total // 2:  # rotate by rename mid-stream
                handle.close()
                live.rename(logs / "app.log.1")
                handle = live.open("a")
        handle.close()
        written.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    args = ["files", str(logs), "--follow", "--spool", str(spool), "--no-progress"]
    kills = 0
    process = start(args, tmp_path / "data")
    try:
        for threshold in (2_000, 12_000, 25_000):
            wait_until(lambda t=threshold: (spool / "segments").is_dir() and len(spool_values(spool, "n")) >= t,
                       90, f"{threshold} events")
            process.send_signal(signal.SIGKILL)  # mid-stream: the writer is still writing
            process.wait(10)
            kills += 1
            process = start(args, tmp_path / "data")
        written.wait(120)
        wait_until(lambda: len(spool_values(spool, "n")) >= total, 120, "all events")
        time.sleep(0.5)  # anything extra (a duplicate) would show up now
    finally:
        stop(process)
    values = spool_values(spool, "n")
    assert kills == 3
    assert len(values) == total, f"{len(values) - len(set(values))} duplicates, {total - len(set(values))} missing"
    assert sorted(values) == list(range(total))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _journaled(journal: Path) -> int:
    if not journal.is_dir():
        return 0
    reader = JournalReader(journal)
    count = 0
    while True:
        got = reader.read(10_000)
        if not got:
            return count
        count += len(got)


def _send(port: int, numbers: range) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        chunk: list[bytes] = []
        for number in numbers:
            message = f"<14>1 2026-11-22T10:00:00Z cp-host app 1 - - n={number}".encode()
            chunk.append(str(len(message)).encode() + b" " + message)
            if len(chunk) == 500:
                client.sendall(b"".join(chunk))
                chunk = []
        client.sendall(b"".join(chunk))


@pytest.mark.skipif(sys.platform != "linux", reason="needs Linux")
def test_syslog_collector_survives_kill_9(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    journal = spool / "journal" / "syslog"
    port = _free_port()
    args = ["syslog", "--no-udp", "--tcp", f"127.0.0.1:{port}", "--spool", str(spool)]
    first, second = range(0, 60_000), range(60_000, 80_000)
    process = start(args, tmp_path / "data")
    try:
        wait_until(lambda: process.stdout is not None and b"listening" in process.stdout.readline(), 30, "listen")
        _send(port, first)
        # Everything the server has read is journaled before it is parsed; kill it while the
        # processor is part-way through committing it.
        wait_until(lambda: _journaled(journal) >= len(first), 60, "journal")
        wait_until(lambda: (spool / "segments").is_dir() and len(spool_values(spool, "message")) > 0, 60,
                   "first commits")
        committed_at_kill = len(spool_values(spool, "message"))
        print(f"committed at kill: {committed_at_kill} of {len(first)}")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        process = start(args, tmp_path / "data")
        wait_until(lambda: process.stdout is not None and b"listening" in process.stdout.readline(), 30, "listen")
        _send(port, second)
        total = len(first) + len(second)
        wait_until(lambda: len(spool_values(spool, "message")) >= total, 120, "all events")
        time.sleep(0.5)
    finally:
        stop(process)
    values = spool_values(spool, "message")
    assert committed_at_kill > 0
    assert len(values) == total, f"{len(values) - len(set(values))} duplicates, {total - len(set(values))} missing"
    assert sorted(values) == list(range(total))
