"""Windows normalization: EVTX and its JSON twin give the same events; bad records are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.errors import ParseError
from ingest.logsource import LogsourceTable
from ingest.windows import iter_evtx, iter_json_events, normalize_record

REPO = Path(__file__).resolve().parents[2]


def _sysmon(event_id: int = 1, **data: object) -> dict:
    return {"Event": {
        "System": {"Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}, "EventID": event_id,
                   "TimeCreated": {"#attributes": {"SystemTime": "2026-11-20T10:00:00.1234567Z"}},
                   "EventRecordID": 42, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "PC1"},
        "EventData": data}}


def test_normalized_fields() -> None:
    event = normalize_record(_sysmon(Image="C:\\x.exe", CommandLine="x -a", ParentImage="C:\\p.exe"), source="t")
    assert event["@timestamp"] == "2026-11-20T10:00:00.123Z"
    assert event["winlog"]["event_id"] == 1
    assert event["winlog"]["record_id"] == 42
    assert event["winlog"]["event_data"]["Image"] == "C:\\x.exe"
    assert event["process"] == {"executable": "C:\\x.exe", "command_line": "x -a",
                                "parent": {"executable": "C:\\p.exe"}}
    assert len(event["event"]["id"]) == 32


def test_logsource_tags_process_creation_for_sysmon_and_security() -> None:
    table = LogsourceTable.load(REPO / "config" / "logsources.yaml")
    assert table.windows_logsource("Microsoft-Windows-Sysmon/Operational", 1) == {
        "product": "windows", "service": "sysmon", "category": "process_creation"}
    assert table.windows_logsource("Security", 4688)["category"] == "process_creation"
    assert table.windows_logsource("Some/Unknown", 7) == {"product": "windows"}


def test_event_id_is_the_same_for_evtx_and_json_exports() -> None:
    a = normalize_record(_sysmon(), source="a.evtx")
    b = normalize_record(_sysmon(), source="b.json")
    assert a["event"]["id"] == b["event"]["id"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({}, "not a Windows event"),
        ({"Event": {"System": {"EventID": "x"}}}, "bad EventID"),
        ({"Event": {"System": {"EventID": 1, "EventRecordID": 1}}}, "TimeCreated"),
        ({"Event": {"System": {"EventID": 1, "TimeCreated": {"#attributes": {"SystemTime": "yesterday"}}}}},
         "bad TimeCreated"),
    ],
)
def test_bad_records_are_parse_errors(record: dict, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        normalize_record(record, source="t")


def test_userdata_and_unnamed_data_are_kept() -> None:
    record = _sysmon()
    record["Event"]["EventData"] = {"Data": ["a", {"#text": "b"}]}
    record["Event"]["UserData"] = {"LogFileCleared": {"SubjectUserName": "bob"}}
    data = normalize_record(record, source="t")["winlog"]["event_data"]
    assert data == {"Data": ["a", "b"], "SubjectUserName": "bob"}


def test_concatenated_json_objects() -> None:
    assert list(iter_json_events('{"a": 1}{"b": 2}\n {"c": 3}\n')) == [{"a": 1}, {"b": 2}, {"c": 3}]


@pytest.mark.corpus
def test_corpus_evtx_and_json_twin_agree(corpora: Path) -> None:
    twins = sorted((corpora / "sigma" / "regression_data").rglob("*.evtx"))[:5]
    if not twins:
        pytest.skip("no SigmaHQ regression EVTX files in the corpus")
    for evtx_path in twins:
        from_evtx = [normalize_record(r, source=str(evtx_path)) for _, r, _ in iter_evtx(evtx_path) if r]
        json_path = evtx_path.with_suffix(".json")
        from_json = [normalize_record(r, source=str(json_path))
                     for r in iter_json_events(json_path.read_text(encoding="utf-8"))]
        assert [e["event"]["id"] for e in from_evtx] == [e["event"]["id"] for e in from_json]
        assert [e["winlog"]["event_data"] for e in from_evtx] == [e["winlog"]["event_data"] for e in from_json]
