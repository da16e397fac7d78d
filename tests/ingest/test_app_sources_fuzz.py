"""Fuzzing the data-center application parsers (LGSP gateway, MCU audit, 1022 hotline / IOC audit):
random text, truncated and spliced sample lines, odd characters, 1 MB lines and invalid UTF-8. Each
line is an event or a dead letter with a reason; no parser raises anything but ParseError, and the
file collector's counts add up to the lines written."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.fuzzing import collect_accounting, file_lines, mutated, parsed_or_refused, samples_of

FILES = {"lgsp": "lgsp-apim_metrics.log", "mcu": "mcu-audit.log", "callcenter": "callcenter-audit.jsonl"}
SAMPLES, ALL_SAMPLES = samples_of(FILES)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(line=mutated(ALL_SAMPLES), fmt=st.sampled_from(sorted(FILES)))
def test_parsers_raise_only_parse_errors(line: str, fmt: str) -> None:
    event = parsed_or_refused(fmt, line, f"/var/log/{FILES[fmt]}")
    if event is not None:
        assert event["@timestamp"].endswith("Z") and event["event"]["id"] and event["socflow"]["logsource"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), fmt=st.sampled_from(sorted(FILES)), forced=st.booleans())
def test_collector_accounts_for_every_line(tmp_path_factory, data: st.DataObject, fmt: str, forced: bool) -> None:
    directory = tmp_path_factory.mktemp("app-sources-fuzz")
    lines = file_lines(data.draw, [s for s in SAMPLES[fmt] if s.strip()], ALL_SAMPLES)
    if data.draw(st.booleans()):
        lines.insert(data.draw(st.integers(0, len(lines))), SAMPLES[fmt][0].encode() + b"x" * (1 << 20))
    collect_accounting(directory / FILES[fmt], b"\n".join(lines) + b"\n", fmt if forced else "auto")
