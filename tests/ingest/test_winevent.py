"""Windows shapes (ingest.parsers.winevent) on hand-written samples, read through the file
collector and, for syslog, the real syslog collector: exact events against a golden file, and
every bad record a dead letter with its reason."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import ParseError
from ingest.files import collect_paths
from ingest.parsers import PARSERS, sniff
from ingest.parsers.winevent import FORMATS, parse_kvp, parse_xml_line, windows_json
from ingest.schema import canonical_json
from ingest.settings import CollectorSettings
from ingest.spool import dead_letters, read_batches

DATA = Path(__file__).resolve().parent.parent / "data" / "ingest" / "windows"
GOLDEN = Path(__file__).resolve().parent / "golden" / "windows_shapes.txt"
SETTINGS = CollectorSettings(commit_interval_s=0.5)
# (file, events, dead letters)
SAMPLES = (("nxlog.json", 3, 3), ("gelf.json", 1, 1), ("wevtutil.xml", 3, 1), ("export.xml", 2, 1),
           ("syslog-windows.log", 4, 2))


def _collect(tmp_path: Path, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    folder = tmp_path / name.replace(".", "-")
    folder.mkdir()
    shutil.copy(DATA / name, folder / name)
    spool = tmp_path / f"spool-{name}"
    collect_paths([folder], spool, settings=SETTINGS, progress=False)
    return [event for batch in read_batches(spool) for event in batch], list(dead_letters(spool))


def _stable(event: dict[str, Any]) -> dict[str, Any]:
    """The event less what depends on where the test ran (paths, collection time)."""
    event = dict(event)
    event["log"] = {key: value for key, value in event.get("log", {}).items() if key != "file"}
    event["event"] = {key: value for key, value in event["event"].items() if key not in ("created", "ingested")}
    if "winlog" not in event:  # an id from the file's path and inode, which differ per run
        event["event"]["id"] = "<position id>"
    if not event["log"]:
        del event["log"]
    return event


def test_samples_match_golden(tmp_path: Path) -> None:
    lines: list[str] = []
    for name, events_expected, dead_expected in SAMPLES:
        events, dead = _collect(tmp_path, name)
        assert (len(events), len(dead)) == (events_expected, dead_expected), (name, [d["reason"] for d in dead])
        lines.append(f"# {name}")
        lines.extend(canonical_json(_stable(event)) for event in events)
        lines.extend(f"dead letter: {letter['reason']}" for letter in dead)
    text = "\n".join(lines) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), "no golden file yet: run with UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_every_shape_gets_the_windows_logsource_and_the_evtx_event_id(tmp_path: Path) -> None:
    # The same Security 1102 record (SRV-DC01, record 3310245) as GELF, XML and Snare.
    ids = set()
    for name in ("gelf.json", "wevtutil.xml", "syslog-windows.log"):
        events, _ = _collect(tmp_path, name)
        cleared = [event for event in events if event["winlog"]["event_id"] == 1102]
        assert cleared, name
        assert cleared[0]["socflow"]["logsource"] == {"product": "windows", "service": "security"}
        ids.add(cleared[0]["event"]["id"])
    assert len(ids) == 1
    nxlog, _ = _collect(tmp_path, "nxlog.json")
    assert nxlog[0]["socflow"]["logsource"] == {"product": "windows", "service": "security",
                                                "category": "process_creation"}
    # Sysmon's EventData EventType ("SetValue") survives NXLog's field of the same name.
    assert nxlog[1]["winlog"]["event_data"]["EventType"] == "SetValue"
    assert "registry_set" in nxlog[1]["socflow"]["logsource"]["category"]


@pytest.mark.parametrize(("line", "reason"), [
    ('{"EventId": 4624, "LogName": "Security", "TargetUserName": "x"}',
     "looks like a Windows event ('EventId' and 'LogName') but matches no known shape"),
    ('{"EventID": "x", "Channel": "Security", "RecordNumber": 1, "EventTime": "2026-11-20T00:00:00Z"}',
     "bad EventID/EventRecordID"),
    ('{"EventID": 4624, "Channel": "Security", "EventTime": "2026-11-20T00:00:00Z"}', "without RecordNumber"),
    ('{"EventID": 4624, "Channel": "Security", "RecordNumber": 7}', "no System.TimeCreated"),
    ('{"EventID": 4624, "Channel": "Security", "RecordNumber": 7, "EventTime": "yesterday"}', "bad TimeCreated"),
    ('{"version": "1.1", "host": "h", "short_message": "m", "_EventID": 1, "_Channel": "Security"}',
     "GELF Windows event without timestamp"),
    ('{"winlog": {"event_id": "x", "channel": "Security"}, "@timestamp": "2026-11-20T00:00:00Z"}',
     "Winlogbeat event with event_id 'x'"),
])
def test_windows_look_alikes_that_cannot_be_mapped_are_dead_letters(line: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        PARSERS["json"](line, source="t")


def test_json_without_a_channel_is_not_windows() -> None:
    assert windows_json({"EventID": 17, "message": "x"}, source="t") is None
    fmt, event = PARSERS["json"]('{"EventID": 17, "message": "x"}', source="t")
    assert fmt == "json" and "winlog" not in event


def test_winlogbeat_text_event_id_becomes_a_number_and_the_evtx_id() -> None:
    line = ('{"@timestamp": "2026-11-20T03:00:00.123Z", "winlog": {"event_id": "4688", "channel": "Security", '
            '"computer_name": "PC-SOTC-012.tinh.gov", "record_id": "918273", "event_data": {"NewProcessName": "x"}}}')
    fmt, event = PARSERS["json"](line, source="t")
    nxlog = PARSERS["nxlog"]((DATA / "nxlog.json").read_text(encoding="utf-8").splitlines()[0], source="t")[1]
    assert fmt == "winlogbeat" and event["winlog"]["event_id"] == 4688
    assert event["event"]["id"] == nxlog["event"]["id"]


@pytest.mark.parametrize(("xml", "reason"), [
    ('<!DOCTYPE lol [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><Event xmlns="http://schemas.microsoft.com/'
     'win/2004/08/events/event"><System><EventID>&b;</EventID></System></Event>', "DTD"),
    ('<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System><EventID>1</EventID>',
     "bad XML: no element found"),
    ('<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System><EventID>1</EventID>'
     '<TimeCreated SystemTime="2026-11-20T00:00:00Z"/><EventRecordID>5</EventRecordID></System>'
     '<EventData><Data Name="a">&xxe;</Data></EventData></Event>', "bad XML: undefined entity"),
    ('<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"/><Event/>', "junk after document"),
])
def test_bad_xml_is_refused_with_the_reason(xml: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_xml_line(xml, source="t")


def test_control_characters_in_xml_survive() -> None:
    # Windows writes C0 characters raw (4661's PrivilegeList); XML 1.0 forbids them.
    line = ("<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><EventID>4661</EventID>"
            "<TimeCreated SystemTime='2026-11-20T00:00:00Z'/><EventRecordID>5</EventRecordID><Channel>Security"
            "</Channel><Computer>DC</Computer></System><EventData><Data Name='PrivilegeList'>\x02\x0f-</Data>"
            "</EventData></Event>")
    assert parse_xml_line(line, source="t")[1]["winlog"]["event_data"]["PrivilegeList"] == "\x02\x0f-"


def test_key_value_quoting() -> None:
    text = 'a=1 "Threat Name"="Trojan:Win32/X" b="say \\"hi\\"\\n" c=\'x y\''
    assert parse_kvp(text, source="t") == {"a": "1", "Threat Name": "Trojan:Win32/X", "b": 'say "hi"\n', "c": "x y"}
    with pytest.raises(ParseError, match="bad key=value text"):
        parse_kvp('a="open', source="t")


def test_catalogue_samples_parse_and_sniff() -> None:
    for source_format in FORMATS:
        assert source_format.parse is not None and source_format.looks_like is not None
        assert source_format.looks_like(source_format.sample), source_format.name
        assert sniff([source_format.sample]) == source_format.name
        _, event = source_format.parse(source_format.sample, source="t")
        assert event["winlog"]["event_id"] in (1, 1102, 4688), source_format.name


def test_syslog_windows_through_the_syslog_collector(tmp_path: Path) -> None:
    """The real syslog server: each syslog shape over UDP and TCP becomes the Windows event."""
    import socket

    from ingest.syslog import Listen
    from tests.ingest.test_syslog import Server

    lines = [line for line in (DATA / "syslog-windows.log").read_text(encoding="utf-8").splitlines() if line]
    # No syslog HOSTNAME: the event keeps the computer its payload names, beside the sender's address.
    nameless = ('<14>1 2026-11-20T10:00:50+07:00 - nxlog - - - {"EventTime":"2026-11-20T10:00:50+07:00",'
                '"Hostname":"PC-SOTC-013.tinh.gov","EventID":4625,"SourceName":"Microsoft-Windows-Security-'
                'Auditing","RecordNumber":77,"Channel":"Security","TargetUserName":"vanthu"}')
    lines.insert(0, nameless)
    server = Server(tmp_path / "spool", [Listen("udp", "127.0.0.1", 0), Listen("tcp", "127.0.0.1", 0)])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for line in lines[:3]:
                sender.sendto(line.encode("utf-8"), ("127.0.0.1", server.ports["udp"]))
        with socket.create_connection(("127.0.0.1", server.ports["tcp"])) as stream:
            stream.sendall("".join(line + "\n" for line in lines[3:]).encode("utf-8"))
        events = server.wait_for(len(lines))
        dead = list(dead_letters(server.spool))
    finally:
        server.close()
    assert (len(events), len(dead)) == (5, 2), [d["reason"] for d in dead]
    by_id = {event["winlog"]["event_id"]: event for event in events}
    assert sorted(by_id) == [3, 1102, 4625, 4688, 7045]
    assert by_id[4625]["host"] == {"name": "PC-SOTC-013.tinh.gov", "ip": "127.0.0.1"}
    assert all(event["socflow"]["logsource"]["product"] == "windows" for event in events)
    assert by_id[3]["socflow"]["logsource"]["category"] == "network_connection"
    assert by_id[1102]["log"]["source"]["address"].startswith("127.0.0.1")
    assert by_id[4688]["winlog"]["snare"]["message_only"] is True
    files, _ = _collect(tmp_path, "syslog-windows.log")
    assert {event["event"]["id"] for event in files} == {event["event"]["id"] for event in events} - {
        by_id[4625]["event"]["id"]}


def test_snare_sysmon_message_gives_back_the_eventdata() -> None:
    """Sysmon's message names its fields; Snare joins its lines with spaces (CR LF: two)."""
    line = ("<14>Nov 20 10:00:00 PC-SOTC-012 MSWinEventLog\t1\tMicrosoft-Windows-Sysmon/Operational\t2180\t"
            "Fri Nov 20 03:00:00 2026\t1\tMicrosoft-Windows-Sysmon\tNT AUTHORITY\\SYSTEM\tUser\tInformation\t"
            "PC-SOTC-012.tinh.gov\tProcess Create (rule: ProcessCreate)\tProcess Create:  RuleName: -  "
            "UtcTime: 2026-11-20 03:00:00.123  Image: C:\\Windows\\System32\\cmd.exe  CommandLine: cmd.exe /c "
            "\"echo  a\"   ParentImage: C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE\t\t55100")
    _, event = PARSERS["snare"](line, source="t")
    assert event["winlog"]["event_data"] == {
        "RuleName": "-", "UtcTime": "2026-11-20 03:00:00.123", "Image": "C:\\Windows\\System32\\cmd.exe",
        "CommandLine": 'cmd.exe /c "echo  a" ',
        "ParentImage": "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE"}
    assert event["winlog"]["snare"]["message_only"] is False
    assert event["process"]["parent"]["executable"].endswith("WINWORD.EXE")


def test_a_central_syslog_file_mixing_windows_and_linux(tmp_path: Path) -> None:
    """Sniffed from a Windows first line, the file's Linux messages are still read as syslog."""
    windows = (DATA / "syslog-windows.log").read_text(encoding="utf-8").splitlines()[0]
    linux = ("<38>Nov 20 10:00:02 dc-jump01 sshd[2211]: Failed password for invalid user admin from "
             "198.51.100.23 port 50122 ssh2")
    source = tmp_path / "input" / "central.log"
    source.parent.mkdir()
    source.write_text(f"{windows}\n{linux}\n", encoding="utf-8")
    assert sniff([windows]) == "snare"
    collect_paths([source.parent], tmp_path / "spool", settings=SETTINGS, progress=False)
    events = [event for batch in read_batches(tmp_path / "spool") for event in batch]
    assert [event["socflow"]["logsource"] for event in events] == [
        {"product": "windows", "service": "security", "category": "process_creation"},
        {"product": "linux", "service": "sshd"}]
