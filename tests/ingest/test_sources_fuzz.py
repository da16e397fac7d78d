"""Fuzzing the DNS, mail and journald parsers: random bytes, truncated and spliced sample lines, 1 MB
lines, invalid UTF-8. Each line is an event, a dead letter with a reason or a counted header line;
no parser raises anything but ParseError, and the collector's counts add up to the lines written."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import ParseError
from ingest.parsers import linux
from ingest.parsers.syslog import parse_message, to_event
from tests.ingest.fuzzing import collect_accounting, file_lines, mutated, parsed_or_refused, samples_of

FILES = {"postfix": "postfix-mail.log", "dovecot": "dovecot.log", "zimbra": "zimbra-audit.log",
         "exchange": "MSGTRK2026112203-1.LOG", "bind": "bind-queries.log", "dnsmasq": "dnsmasq.log",
         "windns": "windns-dns.log", "journald": "journald.json"}
SAMPLES, ALL_SAMPLES = samples_of(FILES)
RECEIVED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(line=mutated(ALL_SAMPLES), fmt=st.sampled_from(sorted(FILES)))
def test_parsers_raise_only_parse_errors(line: str, fmt: str) -> None:
    parsed_or_refused(fmt, line, f"/var/log/{FILES[fmt]}")


@FUZZ
@given(line=mutated(ALL_SAMPLES))
def test_syslog_hooks_raise_only_parse_errors(line: str) -> None:
    # The syslog collector offers every message to the catalogue's hooks (ingest.parsers.linux.enrich_program).
    text = f"<22>{line}"
    try:
        message = parse_message(text, received=RECEIVED)
    except ParseError:
        return
    json.dumps(linux.enrich_program(to_event(message, text), message))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), fmt=st.sampled_from(sorted(FILES)), forced=st.booleans())
def test_collector_accounts_for_every_line(tmp_path_factory, data: st.DataObject, fmt: str, forced: bool) -> None:
    directory = tmp_path_factory.mktemp("sources-fuzz")
    lines = file_lines(data.draw, [s for s in SAMPLES[fmt] if s.strip()], ALL_SAMPLES)
    if data.draw(st.booleans()):
        # A 1 MB line: a sample line padded past the collector's read chunk.
        lines.insert(data.draw(st.integers(0, len(lines))), SAMPLES[fmt][-1].encode() + b"x" * (1 << 20))
    collect_accounting(directory / FILES[fmt], b"\n".join(lines) + b"\n", fmt if forced else "auto")
