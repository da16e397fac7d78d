"""Differential test: every record of evtx-attack-samples, converted into each Windows shape
(Winlogbeat 8, NXLog JSON, NXLog GELF, rendered XML export and WEC stream, syslog carrying NXLog
JSON, key=value or evtx JSON), collected through the real file collector and replayed through the detection
core, gives exactly the alerts its EVTX file gives: rule for rule, record for record, with every
rule of the SigmaHQ corpus. Snare's tab-delimited record keeps only the rendered message of the
EventData, which names the fields in Sysmon's events only: there the test requires the EVTX
fields and alerts; elsewhere the same events (ids, Sigma service), flagged
``winlog.snare.message_only``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from detectors.pipeline import BatchProcessor
from detectors.sigma import SigmaEngine
from ingest.files import collect_paths
from ingest.settings import CollectorSettings
from ingest.spool import dead_letters, read_batches
from ingest.windows import iter_evtx, normalize_record
from tests.ingest import windows_shapes as shapes
from tests.sigma.conftest import CONFIG_DIR, RULE_FOLDERS, require_corpus

Record = tuple[dict[str, Any], dict[str, Any]]  # (evtx JSON record, EVTX-normalized event)
Writer = Callable[[Path, str, list[Record]], None]


def _lines(suffix: str, convert: Callable[[dict[str, Any], dict[str, Any]], str]) -> Writer:
    def write(folder: Path, name: str, records: list[Record]) -> None:
        with (folder / f"{name}{suffix}").open("w", encoding="utf-8") as handle:
            for record, event in records:
                handle.write(convert(record, event) + "\n")
    return write


def _xml_export(folder: Path, name: str, records: list[Record]) -> None:
    """Event Viewer's / wevtutil's export: an <Events> document, events spread over lines."""
    with (folder / f"{name}.xml").open("w", encoding="utf-8") as handle:
        handle.write('<?xml version="1.0" encoding="utf-8"?>\n<Events>\n')
        for number, (record, _) in enumerate(records):
            message = "A rendered message & <details>" if number % 3 == 0 else None
            handle.write(shapes.to_xml(record, one_line=False, message=message) + "\n")
        handle.write("</Events>\n")


def _snare(record: dict[str, Any], event: dict[str, Any]) -> str:
    return f"<14>{shapes.bsd_stamp()} {shapes._host(event)} {shapes.to_snare(record, event, counter=1)}"


SHAPES: dict[str, Writer] = {
    "winlogbeat": _lines(".json", shapes.to_winlogbeat),
    "nxlog-json": _lines(".json", shapes.to_nxlog_json),
    "gelf": _lines(".json", shapes.to_gelf),
    "xml-export": _xml_export,
    "xml-wec-stream": _lines(".xml", lambda record, _: shapes.to_xml(record, one_line=True)),
    "syslog3164-nxlog-json": _lines(".log", lambda r, e: shapes.syslog_3164(r, e, shapes.to_nxlog_json(r, e))),
    "syslog5424-kvp": _lines(".log", lambda r, e: shapes.syslog_5424(r, e, shapes.to_kvp(r, e))),
    "syslog5424-evtx-json": _lines(".log", lambda r, e: shapes.syslog_5424(
        r, e, json.dumps(r, ensure_ascii=False), msgid="MSWinEventLog-JSON")),
    "syslog3164-snare": _lines(".log", _snare),
}
EXACT_ALERTS = set(SHAPES) - {"syslog3164-snare"}


def _detections(engine: SigmaEngine, spool: Path) -> tuple[Counter[tuple[str, str]], dict[str, dict[str, Any]]]:
    processor = BatchProcessor(engine)
    found: Counter[tuple[str, str]] = Counter()
    events: dict[str, dict[str, Any]] = {}
    for batch in read_batches(spool):
        for event in batch:
            events[event["event"]["id"]] = event
        for detection in processor.process(batch).detections:
            found[(detection.rule.id, detection.event_ids[0])] += 1
    return found, events


NXLOG_SHAPES = {"nxlog-json", "gelf", "syslog3164-nxlog-json", "syslog5424-kvp"}


def _is_sysmon(event: dict[str, Any]) -> bool:
    return str(event["winlog"]["channel"]).lower() == "microsoft-windows-sysmon/operational"


def _lf(value: Any) -> Any:
    if isinstance(value, list):
        return [_lf(item) for item in value]
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


def _comparable(event: dict[str, Any], shape: str = "") -> dict[str, Any]:
    """What the rules see of an event: its winlog fields (values as text) and logsource, less
    what a shape cannot carry: EventData names an NXLog field of the same name hides; the list
    of unnamed <Data> elements, which key=value writes as one text; the CR of a line break in an
    XML document (XML parsers read CR LF as LF)."""
    winlog = dict(event["winlog"])
    shadowed = shapes.NXLOG_OWNED if shape in NXLOG_SHAPES else frozenset()
    data = {key: shapes.text(value) for key, value in winlog["event_data"].items()
            if value is not None and key not in shadowed}
    if shape == "syslog5424-kvp":
        data = {key: " ".join(value) if isinstance(value, list) else value for key, value in data.items()}
    if shape == "xml-export":
        data = {key: _lf(value) for key, value in data.items()}
    if shape == "syslog3164-snare":  # Snare writes a CR, LF or tab in a value as a space
        data = {key: value.replace("\r", " ").replace("\n", " ").replace("\t", " ") if isinstance(value, str)
                else value for key, value in data.items()}
        for key in ("level", "task", "opcode", "keywords", "version", "provider_guid", "process", "user",
                    "task_name", "snare"):
            winlog.pop(key, None)
    winlog["event_data"] = data
    if shape == "winlogbeat":  # names where EVTX has numbers, and an account name beside the SID
        for key in ("level", "task", "opcode", "keywords"):
            winlog.pop(key, None)
        winlog.pop("api", None)
        winlog.pop("user_data", None)  # kept as Winlogbeat sent it, and merged into event_data
        if "user" in winlog:
            winlog["user"] = {"identifier": winlog["user"]["identifier"]}
        winlog.setdefault("version", None)
    winlog.pop("task_name", None)
    winlog.pop("snare", None)
    stamp = event["@timestamp"][:19] if shape == "syslog3164-snare" else event["@timestamp"]  # Snare: seconds
    return {"@timestamp": stamp, "winlog": winlog, "logsource": event["socflow"]["logsource"]}


@pytest.mark.corpus
@pytest.mark.slow
def test_every_windows_shape_gives_the_alerts_of_the_evtx_files(tmp_path: Path) -> None:
    samples = require_corpus("evtx-attack-samples")
    sigma = require_corpus("sigma")
    engine, report = SigmaEngine.load([sigma / folder for folder in RULE_FOLDERS], config_dir=CONFIG_DIR)
    assert report.loaded > 2800
    settings = CollectorSettings()

    evtx_files = sorted(samples.rglob("*.evtx"))
    baseline_spool = tmp_path / "evtx-spool"
    stats = collect_paths(evtx_files, baseline_spool, settings=settings, writer_id="evtx", progress=False)
    assert stats.events == 8255
    expected, evtx_events = _detections(engine, baseline_spool)
    assert sum(expected.values()) > 1000  # agreement on nothing would prove little

    per_file = {path: [(record, normalize_record(record, source=str(path)))
                       for _, record, _ in iter_evtx(path) if record is not None] for path in evtx_files}
    failures: dict[str, Any] = {}
    for shape, write in SHAPES.items():
        folder = tmp_path / shape
        folder.mkdir()
        for number, (path, records) in enumerate(per_file.items()):
            write(folder, f"{number:03d}-{path.stem}", records)
        spool = tmp_path / f"{shape}-spool"
        stats = collect_paths([folder], spool, settings=settings, writer_id=shape, progress=False)
        dead = list(dead_letters(spool))
        got, events = _detections(engine, spool)
        problems: dict[str, Any] = {}
        if stats.events != 8255 or dead:
            problems["events"] = (stats.events, dead[:3])
        if set(events) != set(evtx_events):
            problems["event ids"] = (len(set(evtx_events) - set(events)), len(set(events) - set(evtx_events)))
        differing = [event_id for event_id, event in evtx_events.items()
                     if event_id in events and _comparable(events[event_id], shape) != _comparable(event, shape)]
        if shape in EXACT_ALERTS:
            if differing:
                sample = differing[0]
                problems["fields"] = (len(differing), _comparable(evtx_events[sample], shape),
                                      _comparable(events[sample], shape))
            if got != expected:
                problems["alerts"] = {"missing": sorted(expected - got)[:10], "extra": sorted(got - expected)[:10],
                                      "counts": (sum(expected.values()), sum(got.values()))}
        else:
            # Snare's record: the System fields, and the EventData only where the message names
            # the fields (Sysmon's): there the alerts must be the EVTX ones; elsewhere the events
            # (ids, Sigma service: the route of every Windows rule) and the message-only flag.
            sysmon = {event_id for event_id, event in evtx_events.items() if _is_sysmon(event)}
            services = [event_id for event_id, event in evtx_events.items() if event_id in events
                        and events[event_id]["socflow"]["logsource"].get("service")
                        != event["socflow"]["logsource"].get("service")]
            if services:
                problems["service"] = len(services)
            flags = {event_id for event_id, event in events.items() if event["winlog"]["snare"]["message_only"]}
            if flags & sysmon or (set(events) - sysmon) - flags:
                problems["message-only flags"] = (len(flags & sysmon), len((set(events) - sysmon) - flags))
            differing = [event_id for event_id in sysmon if event_id in events
                         and _comparable(events[event_id], shape) != _comparable(evtx_events[event_id], shape)]
            if differing:
                sample = differing[0]
                problems["sysmon fields"] = (len(differing), _comparable(evtx_events[sample], shape),
                                             _comparable(events[sample], shape))
            got_sysmon = Counter({key: n for key, n in got.items() if key[1] in sysmon})
            expected_sysmon = Counter({key: n for key, n in expected.items() if key[1] in sysmon})
            if got_sysmon != expected_sysmon:
                problems["sysmon alerts"] = {"missing": sorted(expected_sysmon - got_sysmon)[:10],
                                             "extra": sorted(got_sysmon - expected_sysmon)[:10]}
            others, others_expected = got - got_sysmon, expected - expected_sysmon
            print(f"Snare: {sum(expected_sysmon.values())} of {sum(expected.values())} EVTX detections are on "
                  f"Sysmon events, all given; on the others {sum((others & others_expected).values())} of "
                  f"{sum(others_expected.values())}, and {sum((others - others_expected).values())} the EVTX "
                  "files do not give (rules that only exclude by an EventData field)")
        if problems:
            failures[shape] = problems
    if failures:
        pytest.fail(json.dumps(failures, indent=1, default=str, ensure_ascii=False)[:20000])
