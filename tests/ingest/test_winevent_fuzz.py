"""Fuzzing the Windows shapes (ingest.parsers.winevent): random bytes, truncated and spliced
lines, 1 MB lines, invalid UTF-8, damaged XML documents. Each record is parsed or becomes a dead
letter with a reason; nothing else escapes, and through the collector the counts add up."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import ParseError
from ingest.files import _kind_of, collect_paths
from ingest.parsers import PARSERS
from ingest.parsers import syslog as syslog_parser
from ingest.parsers.linux import enrich_program
from ingest.parsers.winevent import FORMATS, SAMPLE_KVP, iter_xml_events, windows_json
from ingest.settings import CollectorSettings
from ingest.spool import dead_letters, read_batches

DATA = Path(__file__).resolve().parents[1] / "data" / "ingest" / "windows"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FILES = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LINES = [line for name in ("nxlog.json", "gelf.json", "wevtutil.xml", "syslog-windows.log")
         for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line]
LINES += [source_format.sample for source_format in FORMATS]
WINDOWS_PARSERS = sorted({"json", "syslog", *(name for f in FORMATS for name in (f.name, *f.aliases))} - {"wef",
                                                                                                             "wevtutil"})
NXLOG = json.loads(LINES[0])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_lines(draw: st.DrawFn) -> str:
    """A sample line of a Windows shape cut, spliced and sprinkled with odd characters."""
    line = draw(st.sampled_from(LINES))
    for _ in range(draw(st.integers(0, 4))):
        position = draw(st.integers(0, len(line)))
        action = draw(st.sampled_from(["cut", "insert", "delete", "splice"]))
        if action == "cut":
            line = line[:position]
        elif action == "insert":
            line = line[:position] + draw(st.text(max_size=8)) + line[position:]
        elif action == "delete":
            line = line[:position] + line[position + draw(st.integers(1, 40)):]
        else:
            other = draw(st.sampled_from(LINES))
            line = line[:position] + other[draw(st.integers(0, len(other))):]
    return line


def _parse_or_reason(fmt: str, line: str) -> None:
    try:
        _, event = PARSERS[fmt](line, source="fuzz", hint="/var/log/windows.log")
    except ParseError as error:
        assert error.reason
        return
    json.dumps(event)  # whatever a parser returns is serializable as it is


@FUZZ
@given(line=mutated_lines(), fmt=st.sampled_from(WINDOWS_PARSERS))
def test_windows_line_parsers_raise_only_parse_errors(line: str, fmt: str) -> None:
    _parse_or_reason(fmt, line)


@FUZZ
@given(replacements=st.dictionaries(st.sampled_from(sorted(NXLOG)), JSON_VALUES, max_size=6),
       removed=st.lists(st.sampled_from(sorted(NXLOG)), max_size=4))
def test_nxlog_objects_with_any_values_map_or_give_a_reason(replacements: dict, removed: list[str]) -> None:
    record = {key: value for key, value in {**NXLOG, **replacements}.items() if key not in removed}
    try:
        found = windows_json(record, source="fuzz")
    except ParseError as error:
        assert error.reason
        return
    if found is not None:
        json.dumps(found[1])


@FUZZ
@given(line=mutated_lines())
def test_syslog_hook_raises_only_parse_errors(line: str) -> None:
    try:
        message = syslog_parser.parse_message(line, received=datetime(2026, 11, 20, tzinfo=UTC))
        event = syslog_parser.to_event(message, line)
        enrich_program(event, message)
    except ParseError as error:
        assert error.reason
        return
    json.dumps(event)


@st.composite
def damaged_bytes(draw: st.DrawFn) -> bytes:
    """Random bytes (invalid UTF-8 included), or sample lines with random bytes spliced in."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=400))
    data = "\n".join(draw(st.lists(mutated_lines(), min_size=1, max_size=8))).encode("utf-8", "surrogatepass")
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(data)))
        data = data[:position] + draw(st.binary(min_size=1, max_size=6)) + data[position:]
    return data


@FILES
@given(content=damaged_bytes(), fmt=st.sampled_from(["auto", "nxlog", "gelf", "snare", "json"]))
def test_collector_counts_every_damaged_line(tmp_path_factory, content: bytes, fmt: str) -> None:
    directory = tmp_path_factory.mktemp("winfuzz")
    source = directory / "input.log"
    source.write_bytes(content + b"\n")
    spool = directory / "spool"
    stats = collect_paths([source], spool, settings=CollectorSettings(), fmt=fmt, progress=False)
    events = [event for batch in read_batches(spool) for event in batch]
    letters = list(dead_letters(spool))
    assert (len(events), len(letters)) == (stats.events, stats.dead_letters)
    assert all(letter["reason"] for letter in letters)
    if _kind_of(source, fmt) not in ("winjson", "winxml"):  # read line by line: one record a line
        non_empty = sum(1 for line in source.read_bytes().split(b"\n") if line.strip())
        assert stats.events + stats.dead_letters == non_empty


@FILES
@given(data=st.data())
def test_damaged_xml_documents_give_events_and_dead_letters(tmp_path_factory, data: st.DataObject) -> None:
    sample = (DATA / "wevtutil.xml").read_bytes() + (DATA / "export.xml").read_bytes()
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(sample)))
        action = data.draw(st.sampled_from(["cut", "insert", "delete"]))
        if action == "cut":
            sample = sample[:position]
        elif action == "insert":
            sample = sample[:position] + data.draw(st.binary(min_size=1, max_size=8)) + sample[position:]
        else:
            sample = sample[:position] + sample[position + data.draw(st.integers(1, 60)):]
    directory = tmp_path_factory.mktemp("xmlfuzz")
    source = directory / "events.xml"
    source.write_bytes(sample)
    with source.open("rb") as handle:
        results = list(iter_xml_events(handle, source=str(source), chunk=97))  # chunks split tags
    assert all((event is None) == bool(reason) for _, event, reason in results)
    assert [position for position, _, _ in results] == list(range(1, len(results) + 1))
    for _, event, _ in results:
        if event is not None:
            json.dumps(event)


def test_one_megabyte_lines(tmp_path: Path) -> None:
    """A PowerShell script block of nearly 1 MB (the collector's longest whole line) in NXLog JSON
    and in key=value over syslog is read whole; a Snare record of 1 MB junk is a dead letter."""
    script = "IEX " + "A" * ((1 << 20) - 8192)
    lines = [json.dumps(dict(NXLOG, CommandLine=script)), SAMPLE_KVP.replace("cmd.exe /c whoami", script),
             "<14>Nov 20 10:00:00 PC MSWinEventLog\t" + "x" * ((1 << 20) - 8192)]
    source = tmp_path / "big.log"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spool = tmp_path / "spool"
    for fmt in ("nxlog", "snare"):
        stats = collect_paths([source], spool / fmt, settings=CollectorSettings(), fmt=fmt, progress=False)
        assert (stats.events, stats.dead_letters) == (1, 2)
    events = [event for batch in read_batches(spool / "nxlog") for event in batch]
    assert events[0]["winlog"]["event_data"]["CommandLine"] == script
    events = [event for batch in read_batches(spool / "snare") for event in batch]
    assert events[0]["winlog"]["event_data"]["CommandLine"] == script
    assert any("Snare record" in letter["reason"] for letter in dead_letters(spool / "snare"))
