"""Fuzzing the DNS, mail and journald parsers: random bytes, truncated and spliced sample lines, 1 MB
lines, invalid UTF-8. Each line is an event, a dead letter with a reason or a counted header line;
no parser raises anything but ParseError, and the collector's counts add up to the lines written."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import ParseError
from ingest.files import CHUNK, collect_paths
from ingest.parsers import PARSERS, linux
from ingest.parsers.syslog import parse_message, to_event
from ingest.settings import CollectorSettings
from ingest.spool import dead_letters, read_batches

DATA = Path(__file__).resolve().parent.parent / "data" / "ingest"
FILES = {"postfix": "postfix-mail.log", "dovecot": "dovecot.log", "zimbra": "zimbra-audit.log",
         "exchange": "MSGTRK2026112203-1.LOG", "bind": "bind-queries.log", "dnsmasq": "dnsmasq.log",
         "windns": "windns-dns.log", "journald": "journald.json"}
SAMPLES = {fmt: (DATA / name).read_text(encoding="utf-8").splitlines() for fmt, name in FILES.items()}
ALL_SAMPLES = [line for lines in SAMPLES.values() for line in lines if line.strip()]
RECEIVED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A sample line cut, spliced with odd characters or another line, or random text."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=300))
    line = draw(st.sampled_from(ALL_SAMPLES))
    for _ in range(draw(st.integers(0, 4))):
        position = draw(st.integers(0, len(line)))
        action = draw(st.sampled_from(["cut", "insert", "delete", "splice", "quote"]))
        if action == "cut":
            line = line[:position]
        elif action == "insert":
            line = line[:position] + draw(st.text(max_size=8)) + line[position:]
        elif action == "delete":
            line = line[:position] + line[position + draw(st.integers(1, 10)):]
        elif action == "splice":
            line = line[:position] + draw(st.sampled_from(ALL_SAMPLES))[position:]
        else:
            line = line[:position] + draw(st.sampled_from(['"', "[", "(", "<", "\\", "=", ";", ","])) + line[position:]
    return line


@FUZZ
@given(line=mutated(), fmt=st.sampled_from(sorted(FILES)))
def test_parsers_raise_only_parse_errors(line: str, fmt: str) -> None:
    try:
        _, event = PARSERS[fmt](line, source="fuzz", hint=f"/var/log/{FILES[fmt]}")
    except ParseError as error:
        assert error.reason
        return
    json.dumps(event)


@FUZZ
@given(line=mutated())
def test_syslog_hooks_raise_only_parse_errors(line: str) -> None:
    # The syslog collector offers every message to the catalogue's hooks (ingest.parsers.linux.enrich_program).
    text = f"<22>{line}"
    try:
        message = parse_message(text, received=RECEIVED)
    except ParseError:
        return
    json.dumps(linux.enrich_program(to_event(message, text), message))


def _lines(draw: st.DrawFn, fmt: str) -> list[bytes]:
    lines: list[bytes] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["sample", "sample", "mutated", "bytes", "bad utf-8"]))
        if kind == "sample":
            lines.append(draw(st.sampled_from([s for s in SAMPLES[fmt] if s.strip()])).encode())
        elif kind == "mutated":
            lines.append(draw(mutated()).encode("utf-8", "surrogatepass"))
        elif kind == "bytes":
            lines.append(draw(st.binary(max_size=200)))
        else:
            line = draw(st.sampled_from(SAMPLES[fmt])).encode()
            position = draw(st.integers(0, len(line)))
            lines.append(line[:position] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80"]))
                         + line[position:])
    return [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), fmt=st.sampled_from(sorted(FILES)), forced=st.booleans())
def test_collector_accounts_for_every_line(tmp_path_factory, data: st.DataObject, fmt: str, forced: bool) -> None:
    directory = tmp_path_factory.mktemp("sources-fuzz")
    lines = _lines(data.draw, fmt)
    if data.draw(st.booleans()):
        # A 1 MB line: a sample line padded past the collector's read chunk.
        lines.insert(data.draw(st.integers(0, len(lines))), SAMPLES[fmt][-1].encode() + b"x" * (1 << 20))
    source = directory / FILES[fmt]
    source.write_bytes(b"\n".join(lines) + b"\n")
    spool = directory / "spool"
    stats = collect_paths([source], spool, settings=CollectorSettings(), fmt=fmt if forced else "auto",
                          progress=False)
    # A line longer than the collector's read chunk is read as pieces of CHUNK bytes, each a record.
    non_empty = sum(-(-len(line) // CHUNK) for line in source.read_bytes().split(b"\n") if line.strip())
    events = [event for batch in read_batches(spool) for event in batch]
    letters = list(dead_letters(spool))
    assert stats.events + stats.dead_letters + stats.skipped == non_empty
    assert (len(events), len(letters)) == (stats.events, stats.dead_letters)
    assert all(letter["reason"] and letter["source"].startswith(str(source)) for letter in letters)
    assert all(event["@timestamp"].endswith("Z") and event["event"]["id"] for event in events)
