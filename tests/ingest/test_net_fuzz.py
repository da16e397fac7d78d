"""Fuzzing the network sources' parsers (FortiGate, Cisco ASA, CEF/LEEF, filterlog, netfilter,
Squid, IIS): nothing but ParseError escapes a parser or a syslog hook, and through the file
collector every non-empty line is an event, a dead letter with its reason, or a skipped W3C
directive (counts compared), whatever the bytes: random, invalid UTF-8, cut short, 1 MB long,
IIS headers in the middle of a file, FortiGate values with their quote left open."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import ParseError, SkippedLineError
from ingest.parsers import PARSERS, fortigate, iis
from ingest.parsers import syslog as syslog_parser
from ingest.parsers.linux import enrich_program
from tests.ingest.fuzzing import collect_accounting, mutated

DATA = Path(__file__).resolve().parent.parent / "data" / "ingest" / "net"
FORMATS = ("fortigate", "asa", "cef", "filterlog", "netfilter", "squid", "iis")
SAMPLES = [line for path in sorted(DATA.iterdir()) for line in path.read_text(encoding="utf-8").splitlines()]
RECEIVED = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ODD = ('"', "\\", "|", "=", "\t", ",", "%ASA-", "#Fields: x", "\udcff", "CEF:0|", "LEEF:2.0|a|b|c|d|x|")
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _serializable(event: object) -> None:
    json.dumps(event)


@FUZZ
@given(line=mutated(SAMPLES, odd=ODD, min_edits=1), fmt=st.sampled_from(FORMATS))
def test_parsers_raise_only_parse_errors(line: str, fmt: str) -> None:
    try:
        _, event = PARSERS[fmt](line, source="fuzz", hint="")
    except SkippedLineError:
        assert line.startswith(iis.DIRECTIVES)
        return
    except ParseError as error:
        assert error.reason and error.source == "fuzz"
        return
    _serializable(event)
    assert event["@timestamp"].endswith("Z")


@FUZZ
@given(line=mutated(SAMPLES, odd=ODD, min_edits=1), pri=st.sampled_from(["<134>", "<4>", "<166>", "<189>", ""]))
def test_syslog_hooks_raise_only_parse_errors(line: str, pri: str) -> None:
    text = pri + line
    try:
        message = syslog_parser.parse_message(text, received=RECEIVED) if pri else syslog_parser.parse_file_line(
            text, received=RECEIVED)
        event = syslog_parser.to_event(message, text)
        enrich_program(event, message)
    except ParseError as error:
        assert error.reason
        return
    _serializable(event)


def _collect(directory: Path, content: bytes, fmt: str) -> tuple[int, list[dict], list[dict]]:
    found = collect_accounting(directory / "input.log", content, fmt)
    return found.skipped, found.events, found.letters


LINES = st.one_of(
    mutated(SAMPLES, odd=ODD, min_edits=1).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),  # random bytes, invalid UTF-8 among them
    st.sampled_from(SAMPLES).map(lambda text: text.encode()[: len(text) // 2] + b"\xff\xfe\xc3"),
)


@FEW
@given(lines=st.lists(LINES.filter(lambda raw: b"\n" not in raw), min_size=1, max_size=20),
       fmt=st.sampled_from(("auto", *FORMATS)))
def test_collector_accounts_for_every_line(tmp_path_factory, lines: list[bytes], fmt: str) -> None:
    _collect(tmp_path_factory.mktemp("netfuzz"), b"\n".join(lines) + b"\n", fmt)


def test_one_megabyte_lines(tmp_path: Path) -> None:
    big = 1_000_000
    content = b"\n".join([
        b"date=2026-12-07 time=09:15:02 devid=FG1 logid=0000000013 type=traffic msg=\"" + b"x" * big,  # quote open
        b"<134>Dec  7 09:20:11 waf01 CEF:0|V|P|1|s|n|5|msg=" + b"a\\=" * (big // 3),
        b"2026-12-07 02:00:01 " + b"y" * big,
        b"%ASA-6-302013: Built " + b"z" * big,
    ]) + b"\n"
    found = {}
    for fmt in ("auto", "fortigate", "cef", "iis", "asa"):
        directory = tmp_path / fmt
        directory.mkdir()
        found[fmt] = _collect(directory, content, fmt)
    events = found["fortigate"][1]
    assert events[0]["tags"] == ["socflow_unterminated_quote"]
    assert len(events[0]["fortinet"]["firewall"]["msg"]) == big


COLUMNS = ("s-sitename", "s-computername", "s-ip", "cs-method", "cs-uri-query", "s-port", "cs-username",
           "cs-version", "cs(User-Agent)", "cs(Referer)", "cs-host", "sc-status", "sc-substatus", "sc-win32-status",
           "sc-bytes", "cs-bytes", "time-taken", "X-Forwarded-For", "x-custom-field")


@FEW
@given(blocks=st.lists(st.tuples(st.permutations(COLUMNS), st.integers(0, len(COLUMNS)), st.integers(0, 4),
                                 st.booleans()), min_size=1, max_size=5))
def test_iis_headers_in_the_middle_switch_columns(tmp_path_factory, blocks: list[tuple[list[str], int, int, bool]]
                                                  ) -> None:
    """Each block: a header naming date, time, c-ip, cs-uri-stem and a random subset of other columns in a
    random order, then rows whose c-ip and stem say which block and row they are."""
    lines: list[str] = []
    expected: list[tuple[str, str]] = []
    for number, (order, size, rows, full_header) in enumerate(blocks):
        columns = ["date", "time", *order[:size]]
        columns.insert(2 + number % (size + 1), "c-ip")
        columns.append("cs-uri-stem")
        if full_header:
            lines += ["#Software: Microsoft Internet Information Services 10.0", "#Version: 1.0",
                      f"#Date: 2026-12-07 0{number}:00:00"]
        lines.append("#Fields: " + " ".join(columns))
        for row in range(rows):
            values = {"date": "2026-12-07", "time": f"0{number}:00:{row:02d}", "c-ip": f"10.0.{number}.{row}",
                      "cs-uri-stem": f"/b{number}/r{row}"}
            lines.append(" ".join(values.get(column, "200" if column.startswith("sc-") else "-")
                                  for column in columns))
            expected.append((values["c-ip"], values["cs-uri-stem"]))
    skipped, events, letters = _collect(tmp_path_factory.mktemp("iis"), ("\n".join(lines) + "\n").encode(), "auto")
    assert not letters
    assert skipped == sum(1 for line in lines if line.startswith("#"))
    assert [(event["source"]["ip"], event["url"]["path"]) for event in events] == expected


@FUZZ
@given(pairs=st.lists(st.tuples(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
                                st.text(alphabet=st.characters(blacklist_characters='"\\\n\r'), max_size=20)),
                      min_size=1, max_size=8, unique_by=lambda pair: pair[0]),
       tail=st.text(alphabet=st.characters(blacklist_characters='"\n\r'), max_size=30))
def test_fortigate_open_quote_keeps_the_fields_before_it(pairs: list[tuple[str, str]], tail: str) -> None:
    head = 'date=2026-12-07 time=09:15:02 devid="FG1" logid="0000000013" type="traffic"'
    body = " ".join(f'{key}="{value}"' for key, value in pairs if key not in ("date", "time", "devid", "logid",
                                                                              "type", "zz_open"))
    line = f'{head} {body} zz_open="{tail}'
    _, event = PARSERS["fortigate"](line, source="fuzz", hint="")
    fields = event["fortinet"]["firewall"]
    assert event["tags"] == ["socflow_unterminated_quote"]
    assert fields["zz_open"] == re.sub(r"\\(.)", r"\1", tail)  # an open quote's value runs to the end of the line
    for key, value in pairs:
        if key not in ("date", "time", "devid", "logid", "type", "zz_open"):
            assert fields[key] == value
    assert fortigate.looks_like(line)


@FUZZ
@given(pairs=st.lists(st.tuples(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
                                st.text(alphabet=st.characters(blacklist_characters='"\\\n\r'), max_size=20),
                                st.booleans()), min_size=1, max_size=10))
def test_fortigate_fast_path_reads_what_the_full_pattern_reads(pairs: list[tuple[str, str, bool]]) -> None:
    text = " ".join(f'{key}="{value}"' if quoted or not value or any(c.isspace() for c in value) else f"{key}={value}"
                    for key, value, quoted in pairs)
    found, open_quote = fortigate.pairs(text)
    slow = {key: value[1:-1] if value[:1] == '"' else value for key, value in fortigate._PAIR.findall(text)}
    assert (found, open_quote) == (slow, False)
