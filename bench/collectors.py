"""Collector throughput on one core: file and syslog collectors (events/s), the network sensor
(packets/s from a pcap), beside plain scapy dissection and tshark reading the same pcap.

    .venv/bin/python bench/collectors.py [--quick] [--only files|sources|syslog|sensor|windows] [--workdir DIR] [--json]

The benchmark process is pinned to one CPU (``sched_setaffinity``); the syslog sender runs
as a separate process on another CPU when there is one. Each figure is given twice: per
second of wall-clock time and per second of CPU time of the measured process (user +
system), the second being the one-core figure that stays meaningful on a shared machine, also
given as microseconds of CPU per item. Inputs are generated (JSON lines, nginx access lines,
syslog messages; Windows events in each shape by the converters of ``tests/ingest/windows_shapes.py``,
beside JSON lines measured in the same run) or crafted with scapy (``tests/ingest/pcaps.py``);
nothing third-party is read.
The Sysmon JSON lines are the ones ``bench/pipeline.py`` feeds to ``socflow collect files
--follow`` (its own line templates), read once and tailed with ``follow=True``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.net_sources import MAKERS as NET_MAKERS  # noqa: E402
from bench.pipeline import ATTACK, BENIGN, LineTemplates, calibrate  # noqa: E402
from ingest.files import collect_paths  # noqa: E402
from ingest.net.capture import read_pcap  # noqa: E402
from ingest.net.flows import FlowEngine  # noqa: E402
from ingest.net.sensor import collect_pcaps  # noqa: E402
from ingest.settings import CollectorSettings  # noqa: E402
from ingest.spool import SpoolWriter  # noqa: E402
from ingest.syslog import Listen, serve_syslog  # noqa: E402

SETTINGS = CollectorSettings(commit_interval_s=1.0, commit_events=50_000)


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def measure(run: Callable[[], int], who: int = resource.RUSAGE_SELF) -> tuple[int, float, float]:
    """``(items, wall seconds, cpu seconds)`` of ``run``."""
    cpu, wall = cpu_seconds(who), time.perf_counter()
    items = run()
    return items, time.perf_counter() - wall, cpu_seconds(who) - cpu


def row(name: str, unit: str, items: int, wall: float, cpu: float | None) -> dict[str, Any]:
    return {"name": name, "unit": unit, "items": items, "wall_s": round(wall, 3),
            "per_s_wall": round(items / wall) if wall else None,
            "cpu_s": None if cpu is None else round(cpu, 3),
            "per_s_cpu": round(items / cpu) if cpu else None,
            "us_cpu": round(cpu / items * 1e6, 1) if cpu and items else None}


# -- inputs ------------------------------------------------------------------------------------------

def make_jsonl(path: Path, count: int) -> Path:
    with path.open("w") as handle:
        for number in range(count):
            handle.write(json.dumps({
                "@timestamp": f"2026-11-22T10:{number // 60000 % 60:02d}:{number // 1000 % 60:02d}."
                              f"{number % 1000:03d}Z",
                "event": {"dataset": "app.audit", "action": "login" if number % 3 else "logout"},
                "host": {"name": f"ag-{number % 180 + 1:03d}-pc{number % 50}"},
                "user": {"name": f"user{number % 977}"}, "source": {"ip": f"10.20.{number % 180 + 1}.{number % 250}"},
                "message": "user session event " + "x" * 40,
            }) + "\n")
    return path


def make_access_log(path: Path, count: int) -> Path:
    agents = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
              "curl/8.5.0", "sqlmap/1.7.2#stable (https://sqlmap.org)"]
    with path.open("w") as handle:
        for number in range(count):
            handle.write(f'10.20.{number % 180 + 1}.{number % 250} - - [22/Nov/2026:10:{number // 60 % 60:02d}:'
                         f'{number % 60:02d} +0700] "GET /dichvucong/search?q={number} HTTP/1.1" '
                         f'{200 if number % 7 else 404} {number % 5000} "-" "{agents[number % 3]}"\n')
    return path


def make_sysmon_jsonl(path: Path, count: int, attack_every: int = 1000) -> Path:
    """Lines as bench/pipeline.py writes them: 20,000 events/s of written time, one attack in ``attack_every``."""
    templates = LineTemplates()
    started = time.time()
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            written = started + number // 2000 * 0.1  # the pipeline bench writes 100 ms slices
            if number % attack_every == attack_every - 1:
                line = templates.line(number, f"bench-{number:09d}.hoagiang.gov.vn", *ATTACK, written=written)
            else:
                host = f"ag-{number % 270:03d}-pc{number % 40:03d}"
                line = templates.line(number, host, *BENIGN[number % len(BENIGN)], written=written)
            handle.write(line + "\n")
    return path


def make_catalogued(path: Path, count: int, source: Any) -> Path:
    """``count`` lines of a catalogued format: its sample line, the numbers of its last address varied
    (``10.10.1.25`` -> ``10.10.1.N``) so that per-value caches see what a busy log gives them."""
    sample: str = source.sample
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            handle.write(sample.replace(".25", f".{number % 250}", 1) + "\n")
    return path


# -- benches -----------------------------------------------------------------------------------------

def bench_sources(work: Path, lines: int) -> list[dict[str, Any]]:
    """Every catalogued format (ingest.parsers.catalogue) read by ``collect_paths --format NAME``, beside
    JSON lines measured in the same run (the ratio column: 1.0 is the JSON lines rate)."""
    from ingest.parsers import catalogue

    reference = make_jsonl(work / "reference.jsonl", lines)
    shutil.rmtree(work / "spool-reference", ignore_errors=True)
    items, wall, cpu = measure(lambda: collect_paths([reference], work / "spool-reference", settings=SETTINGS,
                                                     progress=False, fmt="json").events)
    results = [row("sources: JSON lines (reference)", "events", items, wall, cpu)]
    base = results[0]["per_s_cpu"] or 1
    results[0]["ratio"] = 1.0
    # The text format that predates the catalogue, for scale: regexes and dicts built in Python.
    access = make_access_log(work / "reference-access.log", lines)
    shutil.rmtree(work / "spool-reference-access", ignore_errors=True)
    items, wall, cpu = measure(lambda: collect_paths([access], work / "spool-reference-access", settings=SETTINGS,
                                                     progress=False, fmt="access").events)
    results.append(row("sources: nginx access (built-in text format)", "events", items, wall, cpu))
    results[-1]["ratio"] = round((results[-1]["per_s_cpu"] or 0) / base, 2)
    for source in catalogue.registered():
        if source.parse is None:
            continue
        path = make_catalogued(work / f"{source.name}.log", lines, source)
        spool = work / f"spool-{source.name}"
        shutil.rmtree(spool, ignore_errors=True)
        items, wall, cpu = measure(lambda p=path, s=spool, f=source.name: collect_paths(
            [p], s, settings=SETTINGS, progress=False, fmt=f).events)
        result = row(f"sources: {source.name} ({source.title[:40]})", "events", items, wall, cpu)
        result["ratio"] = round((result["per_s_cpu"] or 0) / base, 2)
        results.append(result)
    return results


def bench_files(work: Path, lines: int) -> list[dict[str, Any]]:
    results = []
    for name, maker in (("files: JSON lines", make_jsonl), ("files: nginx access", make_access_log),
                        ("files: Sysmon JSON lines (bench/pipeline.py)", make_sysmon_jsonl), *NET_MAKERS):
        source = maker(work / f"{maker.__name__}.log", lines)
        spool = work / f"spool-{maker.__name__}"
        shutil.rmtree(spool, ignore_errors=True)
        items, wall, cpu = measure(lambda s=source, p=spool: collect_paths([s], p, settings=SETTINGS,
                                                                               progress=False).events)
        results.append(row(name, "events", items, wall, cpu))
    results.append(bench_follow(work / f"{make_sysmon_jsonl.__name__}.log", work / "spool-follow", lines))
    return results


def bench_follow(source: Path, spool: Path, lines: int) -> dict[str, Any]:
    """``collect_paths(follow=True)`` on a directory into which the written file is linked: the tail loop at full
    speed, as ``socflow collect files --follow`` runs it."""
    watched = spool.with_name(f"{spool.name}-input")
    shutil.rmtree(watched, ignore_errors=True)
    watched.mkdir()
    return bench_collector("files --follow: Sysmon JSON lines (bench/pipeline.py)", collect_paths, [watched],
                           spool, lines, feed=lambda: os.link(source, watched / source.name),
                           follow=True, progress=False)


_SENDER = r"""
import socket, sys, os
port, count, cpu = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
if cpu >= 0:
    os.sched_setaffinity(0, {cpu})
frames = []
for n in range(count):
    m = (f"<86>Nov 22 10:00:00 dc-jump01 sshd[2211]: Failed password for invalid user u{n % 500} "
         f"from 198.51.100.{n % 250} port {40000 + n % 20000} ssh2").encode()
    frames.append(str(len(m)).encode() + b" " + m)
payload = b"".join(frames)
with socket.create_connection(("127.0.0.1", port)) as s:
    s.sendall(payload)
"""


class _CountingSink(SpoolWriter):
    """A spool writer that signals once ``target`` events are committed."""

    target = 0
    done = threading.Event()
    total = 0

    def commit(self, offsets: Any = None) -> int:
        committed = super().commit(offsets)
        type(self).total += committed
        if type(self).total >= type(self).target:
            type(self).done.set()
        return committed


def bench_collector(name: str, collector: Callable[..., Any], inputs: Any, spool: Path, count: int, *,
                    feed: Callable[[], Any], started: Callable[[], Any] = lambda: None,
                    **options: Any) -> dict[str, Any]:
    """Run a long-running ``collector`` in a thread into a counting spool writer; measure from ``feed``
    (once ``started`` returns) until ``count`` events are committed."""
    shutil.rmtree(spool, ignore_errors=True)
    _CountingSink.target, _CountingSink.total, _CountingSink.done = count, 0, threading.Event()
    sink = _CountingSink(spool, spool.name, batch_size=SETTINGS.batch_size)
    stop = threading.Event()
    thread = threading.Thread(target=collector, args=(inputs, spool),
                              kwargs={"settings": SETTINGS, "sink": sink, "stop": stop, **options})
    thread.start()
    started()

    def run() -> int:
        feed()
        while thread.is_alive() and not _CountingSink.done.wait(0.1):
            pass  # a collector that died must not leave the bench waiting
        return _CountingSink.total

    try:
        items, wall, cpu = measure(run)
    finally:
        stop.set()
        thread.join(60)
    return row(name, "events", items, wall, cpu)


# -- Windows shapes ------------------------------------------------------------------------------

def windows_records(count: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Sysmon process creations and Security logons in the evtx JSON layout, with their events."""
    from ingest.windows import normalize_record

    records = []
    for number in range(count):
        moment = f"2026-11-22T10:{number // 60000 % 60:02d}:{number // 1000 % 60:02d}.{number % 1000:03d}1234Z"
        host = f"ag-{number % 270:03d}-pc{number % 40:03d}.hoagiang.gov.vn"
        system: dict[str, Any] = {
            "Version": 5, "Level": 4, "Opcode": 0, "TimeCreated": {"#attributes": {"SystemTime": moment}},
            "EventRecordID": number + 1, "Computer": host, "Security": {"#attributes": {"UserID": "S-1-5-18"}},
            "Execution": {"#attributes": {"ProcessID": 2940, "ThreadID": 3712}}}
        if number % 2:
            system.update({"Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon",
                                                        "Guid": "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"}},
                           "EventID": 1, "Task": 1, "Keywords": "0x8000000000000000",
                           "Channel": "Microsoft-Windows-Sysmon/Operational"})
            data: dict[str, Any] = {
                "RuleName": "-", "UtcTime": moment[:23].replace("T", " "), "ProcessGuid":
                "{3f1c2a77-0b1e-6735-2a01-000000001e00}", "ProcessId": 4000 + number % 1000,
                "Image": "C:\\Windows\\System32\\svchost.exe", "CommandLine":
                f"C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule {number}",
                "CurrentDirectory": "C:\\Windows\\system32\\", "User": "NT AUTHORITY\\SYSTEM",
                "LogonId": "0x3e7", "IntegrityLevel": "System", "Hashes": "SHA256=" + "AB" * 32,
                "ParentImage": "C:\\Windows\\System32\\services.exe",
                "ParentCommandLine": "C:\\Windows\\system32\\services.exe"}
        else:
            system.update({"Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing",
                                                        "Guid": "{54849625-5478-4994-A5BA-3E3B0328C30D}"}},
                           "EventID": 4624, "Task": 12544, "Keywords": "0x8020000000000000", "Channel": "Security"})
            data = {"SubjectUserSid": "S-1-5-18", "SubjectUserName": f"AG-{number % 270:03d}$",
                    "SubjectDomainName": "HOAGIANG", "SubjectLogonId": "0x3e7",
                    "TargetUserSid": f"S-1-5-21-1-2-3-{1000 + number % 977}", "TargetUserName": f"user{number % 977}",
                    "TargetDomainName": "HOAGIANG", "TargetLogonId": f"0x{number:x}", "LogonType": 3,
                    "LogonProcessName": "Kerberos", "AuthenticationPackageName": "Kerberos",
                    "WorkstationName": "-", "IpAddress": f"10.20.{number % 180 + 1}.{number % 250}",
                    "IpPort": str(40000 + number % 20000)}
        record = {"Event": {"System": system, "EventData": data}}
        records.append((record, normalize_record(record, source="bench")))
    return records


def bench_windows(work: Path, count: int) -> list[dict[str, Any]]:
    """Each Windows shape through the file collector, beside the JSON-lines reference of the same run."""
    from tests.ingest import windows_shapes as shapes

    records = windows_records(count)
    writers: list[tuple[str, str, Callable[[dict[str, Any], dict[str, Any]], str]]] = [
        ("Windows evtx JSON lines (today)", ".json", lambda r, e: json.dumps(r)),
        ("Windows NXLog JSON (im_msvistalog + to_json)", ".json", shapes.to_nxlog_json),
        ("Windows NXLog GELF (xm_gelf)", ".json", shapes.to_gelf),
        ("Windows XML, one <Event> per line (WEC, wevtutil)", ".xml", lambda r, e: shapes.to_xml(r, one_line=True)),
        ("Windows syslog 3164 + NXLog JSON", ".log",
         lambda r, e: shapes.syslog_3164(r, e, shapes.to_nxlog_json(r, e))),
        ("Windows syslog 5424 + NXLog key=value", ".log", lambda r, e: shapes.syslog_5424(r, e, shapes.to_kvp(r, e))),
        ("Windows syslog 3164 + Snare MSWinEventLog", ".log",
         lambda r, e: f"<14>{shapes.bsd_stamp()} {shapes._host(e)} {shapes.to_snare(r, e, counter=1)}"),
    ]
    sources = []
    for number, (name, suffix, convert) in enumerate(writers):
        source = work / f"windows-{number}{suffix}"
        with source.open("w", encoding="utf-8") as handle:
            for record, event in records:
                handle.write(convert(record, event) + "\n")
        sources.append((name, source))
    # The records held in memory would make every garbage collection during the runs walk them.
    del records
    gc.collect()
    reference = make_jsonl(work / "reference.jsonl", count)
    results = []
    spool = work / "spool-reference"
    shutil.rmtree(spool, ignore_errors=True)
    reference_row = row("files: JSON lines (reference, this run)", "events",
                        *measure(lambda: collect_paths([reference], spool, settings=SETTINGS, progress=False).events))
    reference_row["bytes_per_event"] = round(reference.stat().st_size / count)
    results.append(reference_row)
    windows_reference: float | None = None
    for number, (name, source) in enumerate(sources):
        spool = work / f"spool-windows-{number}"
        shutil.rmtree(spool, ignore_errors=True)
        result = row(f"files: {name}", "events",
                     *measure(lambda s=source, p=spool: collect_paths([s], p, settings=SETTINGS,
                                                                     progress=False).events))
        result["bytes_per_event"] = round(source.stat().st_size / count)
        if reference_row["per_s_cpu"] and result["per_s_cpu"]:
            result["vs_json_lines"] = round(result["per_s_cpu"] / reference_row["per_s_cpu"], 2)
            windows_reference = windows_reference or result["per_s_cpu"]  # the first: evtx JSON, today's path
            result["vs_evtx_json"] = round(result["per_s_cpu"] / windows_reference, 2)
        results.append(result)
    return results


def bench_syslog(work: Path, count: int, sender_cpu: int) -> dict[str, Any]:
    ports: dict[str, int] = {}
    listening = threading.Event()
    return bench_collector(
        "syslog: TCP octet-counted, RFC 3164 sshd", serve_syslog, [Listen("tcp", "127.0.0.1", 0)],
        work / "spool-syslog", count, started=lambda: listening.wait(30),
        feed=lambda: subprocess.run([sys.executable, "-c", _SENDER, str(ports["tcp"]), str(count), str(sender_cpu)],
                                    check=True),
        ready=lambda bound: (ports.update(bound), listening.set()))


def bench_sensor(work: Path, flows: int, scapy_packets: int) -> list[dict[str, Any]]:
    from tests.ingest.pcaps import bulk

    pcap = work / f"bulk-{flows}.pcap"
    if not pcap.exists():
        bulk(pcap, flows=flows)
    packets = sum(1 for _ in read_pcap(pcap))
    results = []
    spool = work / "spool-net"
    shutil.rmtree(spool, ignore_errors=True)
    items, wall, cpu = measure(lambda: collect_pcaps([pcap], spool, settings=SETTINGS).packets)
    events = sum(1 for _ in spool.glob("segments/*"))
    results.append(row(f"sensor: pcap -> flow/DNS/HTTP/TLS events -> spool ({flows} flows)", "packets", items,
                       wall, cpu))
    del events

    def engine_only() -> int:
        engine = FlowEngine(lambda kind, record, position: None)
        engine.feed(read_pcap(pcap))
        engine.flush()
        return engine.packets

    results.append(row("sensor: decode + flow table + records only (no transport)", "packets",
                       *measure(engine_only)))

    def scapy_dissect() -> int:
        from scapy.utils import PcapReader

        seen = 0
        with PcapReader(str(pcap)) as reader:
            for packet in reader:
                packet.summary()  # a real dissection touches every layer
                seen += 1
                if seen >= scapy_packets:
                    break
        return seen

    results.append(row(f"scapy: PcapReader full dissection (first {scapy_packets} packets)", "packets",
                       *measure(scapy_dissect)))
    tshark = shutil.which("tshark")
    if tshark:
        def run_tshark() -> int:
            with open(os.devnull, "w") as sink:
                subprocess.run([tshark, "-r", str(pcap), "-n", "-T", "fields", "-e", "frame.number",
                                "-e", "ip.src", "-e", "tcp.srcport", "-e", "dns.qry.name", "-e", "http.host",
                                "-e", "tls.handshake.extensions_server_name"], stdout=sink,
                               stderr=subprocess.DEVNULL, check=True)
            return packets

        results.append(row("tshark: read + dissect the same pcap (fields out)", "packets",
                           *measure(run_tshark, resource.RUSAGE_CHILDREN)))
    else:
        results.append({"name": "tshark: not installed", "unit": "packets", "items": 0})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs (a smoke run)")
    parser.add_argument("--workdir", type=Path, help="where inputs and spools go (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin the benchmark to")
    parser.add_argument("--only", choices=("files", "sources", "syslog", "sensor", "windows"), action="append",
                        help="run only these benches (repeatable; default all)")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {args.cpu})
    sender_cpu = next((c for c in cpus if c != args.cpu), -1)
    lines, messages, flows, scapy_packets = ((20_000, 20_000, 1_000, 5_000) if args.quick
                                             else (200_000, 200_000, 20_000, 50_000))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="socflow-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    only = set(args.only or ("files", "sources", "syslog", "sensor", "windows"))
    results = bench_files(work, lines) if "files" in only else []
    if "sources" in only:
        results.extend(bench_sources(work, lines // 4))
    if "windows" in only:
        results.extend(bench_windows(work, lines // 4))
    if "syslog" in only:
        results.append(bench_syslog(work, messages, sender_cpu))
    if "sensor" in only:
        results.extend(bench_sensor(work, flows, scapy_packets))
    reference = calibrate()
    if args.json:
        print(json.dumps({"reference_loop_us": reference, "results": results}, indent=2))
    else:
        print(f"socflow collector benchmark (pinned to CPU {args.cpu}; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print(f"reference: sum(range(1000)) takes {reference:.1f} us here (about 10 us on an idle modern core; "
              "scale the figures by that ratio)")
        print(f"{'what':<66} {'items':>9} {'per s (wall)':>13} {'per s (cpu)':>12} {'us (cpu)':>9}")
        for item in results:
            extra = f"  {item['ratio']:.2f} x JSON lines" if "ratio" in item else ""
            if "bytes_per_event" in item:
                extra = f"  {item['bytes_per_event']} B/event"
                if "vs_json_lines" in item:
                    extra += f", {item['vs_json_lines']:.2f}x JSON lines, {item['vs_evtx_json']:.2f}x evtx JSON"
            print(f"{item['name']:<66} {item.get('items', 0):>9} {item.get('per_s_wall') or '-':>13} "
                  f"{item.get('per_s_cpu') or '-':>12} {item.get('us_cpu') or '-':>9}  per {item['unit'][:-1]}{extra}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    socket.setdefaulttimeout(60)
    sys.exit(main())
