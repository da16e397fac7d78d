"""What the file collector writes for JSON lines, byte for byte (a golden file), read once or tailed.

The collector's hot path is tuned for speed (fast JSON decoding, cached node lookups); this pins
its output: the input mixes Sysmon events as bench/pipeline.py writes them with the lines a
fast path could get wrong (integers beyond 64 bits, surrogates, invalid UTF-8, NaN, flat dotted
keys, address lists, deep nesting, every JSON line parser). Where the input file lives (its
path, and the event ids hashed from its identity) is replaced by placeholders. Regenerate with
``UPDATE_GOLDEN=1 pytest tests/ingest/test_files_output.py`` after a deliberate change.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from ingest.files import collect_paths
from ingest.schema import stable_id
from ingest.settings import CollectorSettings
from ingest.spool import dead_letters, read_batches
from ingest.windows import iter_json_events
from tests.ingest.test_files import _follow, _wait_for

DATA = Path(__file__).resolve().parent.parent / "data" / "ingest"
GOLDEN = Path(__file__).resolve().parent / "golden" / "files_json_lines.txt"
# Commits by count only, so the segments (and the batches in them) do not depend on timing.
SETTINGS = CollectorSettings(batch_size=7, commit_interval_s=3600, commit_events=40)


def sysmon(record_id: int, host_name: str, **changes: Any) -> dict[str, Any]:
    """A Sysmon process creation in the shape bench/pipeline.py writes."""
    image, parent = "C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\System32\\services.exe"
    event: dict[str, Any] = {
        "@timestamp": "2026-11-23T07:17:15.095Z",
        "event": {"code": "1", "provider": "Microsoft-Windows-Sysmon", "module": "windows", "kind": "event",
                  "dataset": "windows.microsoft-windows-sysmon/operational", "created": "2026-11-23T07:17:15.095Z"},
        "host": {"name": host_name},
        "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 1,
                   "provider_name": "Microsoft-Windows-Sysmon", "computer_name": host_name, "record_id": record_id,
                   "event_data": {"UtcTime": "2026-11-23 07:17:15.095", "ProcessId": record_id % 60000,
                                  "Image": image, "CommandLine": f'"{image}" -k netsvcs -p',
                                  "User": "HOAGIANG\\lan.pham", "IntegrityLevel": "Medium", "ParentImage": parent,
                                  "ParentCommandLine": f'"{parent}"'}},
        "process": {"executable": image, "command_line": f'"{image}" -k netsvcs -p', "pid": record_id % 60000,
                    "parent": {"executable": parent}},
        "user": {"name": "HOAGIANG\\lan.pham"},
        "socflow": {"logsource": {"product": "windows", "category": "process_creation"}},
    }
    event.update(changes)
    return event


def registry(event_id: int, event_type: str) -> dict[str, Any]:
    """A Sysmon registry event without a logsource: the collector tags it from config/logsources.yaml."""
    event = sysmon(900 + event_id, "dc-ad01")
    del event["socflow"]
    event["winlog"]["event_id"] = event_id
    event["winlog"]["event_data"] = {"EventType": event_type, "TargetObject": "HKLM\\Software\\x"}
    return event


def input_lines() -> list[bytes]:
    objects: list[Any] = [
        *(sysmon(number, f"ag-{number % 270:03d}-pc{number % 40:03d}") for number in range(60)),
        sysmon(60, "bench-000000999.hoagiang.gov.vn"),
        sysmon(61, "portal-web01", socflow={}),  # no logsource: tagged from the channel
        registry(12, "CreateKey"), registry(12, "DeleteValue"), registry(13, "SetValue"),
        sysmon(62, "x", host={"ip": ["10.10.1.20", "fe80::1"], "name": "dc-ad01"}),
        sysmon(63, "x", host={"ip": 167772161}, observer={"ip": "10.10.3.7", "hostname": "mail-mx01"}),
        sysmon(64, "x", host={"hostname": "dms-app01"}, source={"ip": "203.0.113.70"}),
        {"@timestamp": "2026-11-20T08:00:00.000Z", "source": {"ip": "10.10.10.5"}, "winlog": "not a dict"},
        {"@timestamp": "2026-11-20T08:00:01+07:00", "host.name": "ag-003-pc17", "user.name": "lvb",
         "source.ip": "10.10.1.9", "event.id": "flat-id"},
        {"@timestamp": 1763625600, "host": "a string", "host.name": "dc-ad02", "event": "a string"},
        {"timestamp": 1763625600123.5, "event": {"id": "given-id"}, "observer.hostname": "dc-dns01"},
        {"time": "2026-11-20 08:00:00.1234567Z", "winlog": {"computer_name": "dc-pki01"}},
        {"@timestamp": "2026-11-20T08:00:00.000Z", "numbers": {
            "big": 2**70, "u64max": 2**64 - 1, "i64min": -(2**63), "small": -12,
            "floats": [1.5, 1e300, 5e-324, 0.1, -0.0, 1.0, 100.0, 2.5e-7], "digits": "1" * 25}},
        {"@timestamp": "2026-11-20T08:00:00.000Z", "below_i64": -(2**63) - 1, "above_i64": 2**63},
        {"@timestamp": "2026-11-20T08:00:00.000Z", "user": {"name": "Nguyễn Văn Thành"}, "emoji": "😀",
         "tab\tkey": "\u2028", "nul": "\u0000"},
        {"@timestamp": "2026-11-20T08:00:00.000Z", "deep": json.loads("[" * 600 + "]" * 600)},
        json.loads(next(iter((DATA / "zeek-conn.log").open()))),
        json.loads(next(iter((DATA / "eve.json").open()))),
        next(iter_json_events((DATA / "windows_export.json").read_text())),
    ]
    lines = [json.dumps(value, ensure_ascii=False).encode() for value in objects]
    lines += [
        b'{"@timestamp": "2026-11-20T08:00:00.000Z", "compact":1E2,"exp":-1e-5,"dup":1,"dup":2}',
        b'{"@timestamp": "2026-11-20T08:00:00.000Z", "lone": "\\ud800x", "pair": "\\ud83d\\ude00"}',
        b'{"@timestamp": "2026-11-20T08:00:00.000Z", "latin1": "caf\xe9", "big": 123456789012345678901234}',
        b'{"@timestamp": "2026-11-20T08:00:00.000Z", "huge": 1e400, "crlf": true}\r',
        b"", b"   \t",
        b'{"@timestamp": "2026-11-20T08:00:00.000Z", "v": NaN}',
        b'{"@timestamp": "2026-11-20T08:00:00.000Z", "v": -Infinity}',
        b'["an", "array"]', b"this line is not json", b'{"cut": ',
        b'{"@timestamp": "yesterday"}', b'{"@timestamp": true}',
        b'{"deep": ' + b"[" * 1100 + b"]" * 1100 + b"}",
        b'{"@timestamp": "2026-11-20T08:00:00.000Z", "last": "no newline"}',
    ]
    return lines


def write_input(path: Path) -> Path:
    path.parent.mkdir()
    path.write_bytes(b"\n".join(input_lines()))
    return path


def spool_text(spool: Path, source: Path) -> str:
    """Segments and dead letters as written, with the input's location replaced by placeholders."""
    parts = []
    for folder in ("segments", "deadletter"):
        for path in sorted((spool / folder).iterdir()):
            parts.append(f"# {folder}/{path.name}\n{path.read_text(encoding='utf-8')}")
    return placeholders("".join(parts), source)


def placeholders(text: str, source: Path) -> str:
    file_id = stable_id("file", str(source), source.stat().st_ino, 0)
    offset = 0
    for line in source.read_bytes().split(b"\n"):
        text = text.replace(stable_id(file_id, offset), f"<file id @{offset}>")
        offset += len(line) + 1
    return text.replace(str(source), "<input>")


def test_json_lines_spool_matches_golden(tmp_path: Path) -> None:
    source = write_input(tmp_path / "input" / "events.jsonl")
    spool = tmp_path / "spool"
    stats = collect_paths([source], spool, settings=SETTINGS, progress=False)
    assert (stats.events, stats.dead_letters, stats.bytes) == (85, 8, source.stat().st_size)
    text = spool_text(spool, source)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), "no golden file yet: run with UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_follow_writes_the_same_events(tmp_path: Path) -> None:
    once, tailed = tmp_path / "once" / "events.jsonl", tmp_path / "tailed" / "events.jsonl"
    for path in (once, tailed):
        write_input(path)
    with tailed.open("ab") as handle:
        handle.write(b"\n")  # a tailing collector waits for a line's newline
    collect_paths([once], tmp_path / "spool-once", settings=SETTINGS, progress=False)
    stop = threading.Event()
    thread = _follow([tailed], tmp_path / "spool-tailed", stop)
    try:
        _wait_for(lambda: len(list(dead_letters(tmp_path / "spool-tailed"))) == 8
                  and sum(map(len, read_batches(tmp_path / "spool-tailed"))) == 85)
    finally:
        stop.set()
        thread.join(10)

    def decoded(spool: Path, source: Path) -> tuple[list[Any], list[Any]]:
        events = [event for batch in read_batches(spool) for event in batch]
        letters = list(dead_letters(spool))
        return json.loads(placeholders(json.dumps(events), source)), json.loads(
            placeholders(json.dumps(letters), source))

    assert decoded(tmp_path / "spool-tailed", tailed) == decoded(tmp_path / "spool-once", once)
