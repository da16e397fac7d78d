"""The data-center application parsers (ingest/parsers/{lgsp,mcu,callcenter}.py) over their sample
files: exact ECS output per line (golden files), sniffing, the same events through the file
collector, the catalogue's entries, and the fields the project rules read.

Regenerate the golden files with ``UPDATE_GOLDEN=1 pytest tests/ingest/test_app_sources.py`` after a
deliberate change.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ingest.errors import ParseError
from ingest.files import collect_paths
from ingest.parsers import PARSERS, catalogue, sniff
from ingest.schema import canonical_json
from ingest.settings import CollectorSettings
from ingest.spool import dead_letters, read_batches
from tests.ingest.test_sources import parsed_lines

DATA = Path(__file__).resolve().parent.parent / "data" / "ingest"
GOLDEN = Path(__file__).resolve().parent / "golden" / "sources"
SETTINGS = CollectorSettings(commit_interval_s=3600)

# sample file -> (format it sniffs as, events, dead letters)
SAMPLES = {
    "lgsp-apim_metrics.log": ("lgsp", 5, 1),
    "mcu-audit.log": ("mcu", 6, 1),
    "callcenter-audit.jsonl": ("callcenter", 6, 1),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_parsers_give_the_golden_events(name: str) -> None:
    results = parsed_lines(name)
    text = "".join(canonical_json(result) + "\n" for result in results)
    golden = GOLDEN / f"{name}.jsonl"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")
    fmt, events, dead = SAMPLES[name]
    assert sniff((DATA / name).read_text(encoding="utf-8").splitlines()[:5], str(DATA / name)) == fmt
    assert (sum("event" in r for r in results), sum("dead_letter" in r for r in results)) == (events, dead)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_file_collector_writes_the_same_events(tmp_path: Path, name: str) -> None:
    source = tmp_path / name
    shutil.copy(DATA / name, source)
    stats = collect_paths([source], tmp_path / "spool", settings=SETTINGS, progress=False)
    events = [event for batch in read_batches(tmp_path / "spool") for event in batch]
    letters = list(dead_letters(tmp_path / "spool"))
    _, expected_events, expected_dead = SAMPLES[name]
    assert (stats.events, stats.dead_letters) == (expected_events, expected_dead)
    assert len(events) == expected_events and len(letters) == expected_dead
    golden = [r["event"] for r in parsed_lines(name) if "event" in r]
    for event, expected in zip(events, golden, strict=True):
        assert event["event"]["id"] == expected["event"]["id"] and event["@timestamp"] == expected["@timestamp"]
        assert event["socflow"]["logsource"] == expected["socflow"]["logsource"]
    assert all(letter["reason"] and letter["raw"] for letter in letters)


def test_lgsp_event_carries_consumer_service_and_error() -> None:
    events = [r["event"] for r in parsed_lines("lgsp-apim_metrics.log") if "event" in r]
    call, _, forbidden, *_ = events
    assert call["lgsp"]["consumer"]["name"] == "MotCua-SoTNMT" and call["lgsp"]["service"]["name"] == "CSDLDanCu"
    assert call["source"]["ip"] == "10.41.2.15" and call["url"]["path"] == "/csdldc/1.0/congdan/{cccd}"
    assert call["event"]["outcome"] == "success" and call["http"]["response"]["status_code"] == 200
    assert forbidden["error"] == {"code": "900908", "type": "AUTH", "message": "Resource forbidden"}
    assert forbidden["event"]["outcome"] == "failure" and forbidden["socflow"]["logsource"] == {
        "product": "lgsp", "service": "gateway"}


def test_mcu_record_unescapes_values_and_reads_utc_time() -> None:
    events = [r["event"] for r in parsed_lines("mcu-audit.log") if "event" in r]
    change = next(e for e in events if e["event"]["action"] == "configuration-changed")
    assert change["mcu"]["audit"]["Detail"] == 'xConfiguration Conference Streaming Address: "rtmp://203.0.113.80/live"'
    assert change["@timestamp"] == "2026-12-07T03:09:40.611Z" and change["user"]["name"] == "vtc-admin"
    failure = events[0]
    assert failure["event"]["outcome"] == "failure" and failure["source"] == {"ip": "198.51.100.23", "port": 51514}


def test_callcenter_apps_get_their_own_logsource() -> None:
    events = [r["event"] for r in parsed_lines("callcenter-audit.jsonl") if "event" in r]
    assert {e["socflow"]["logsource"]["product"] for e in events} == {"callcenter", "ioc"}
    role = next(e for e in events if e["event"]["action"] == "user.role_change")
    assert role["user"] == {"name": "sup.minh", "roles": ["admin"], "target": {"name": "op.lan"}}
    assert role["event"]["category"] == ["iam"]


HEAD = "10:18:05,000 [n] [t] INFO ELKCounterMetric apimMetrics: apim:"


@pytest.mark.parametrize("rest", [
    'response, properties :{"apiName":"x"}',
    'response, properties :{"requestTimestamp":"yesterday"}',
    'request, properties :{"requestTimestamp":"2026-12-07T03:18:00Z"}',
    "response, properties :[1]",
    'response, properties :{"requestTimestamp":"2026-12-07T03:18:00Z",}',
])
def test_lgsp_bad_records_are_dead_letters_with_a_reason(rest: str) -> None:
    with pytest.raises(ParseError) as error:
        PARSERS["lgsp"](HEAD + rest, source="t")
    assert error.value.reason


@pytest.mark.parametrize(("fmt", "line"), [
    ("mcu", '2026-12-07T10:02:11+07:00 mcu-dc01 audit: Module="Web" User="admin"'),
    ("mcu", '2026-12-07T10:02:11+07:00 mcu-dc01 audit: Event="X" UTCTime="2026-13-45 99:00:00,000"'),
    ("callcenter", '{"app":"ioc","action":"auth.login"}'),
    ("callcenter", '{"app":"ioc","action":"auth.login","ts":"not a time"}'),
    ("callcenter", '["hotline-1022"]'),
])
def test_mcu_and_callcenter_bad_records_are_dead_letters(fmt: str, line: str) -> None:
    with pytest.raises(ParseError) as error:
        PARSERS[fmt](line, source="t")
    assert error.value.reason


def test_catalogue_lists_the_application_formats() -> None:
    formats = {source.name: source for source in catalogue.registered()}
    assert formats["lgsp"].logsource == {"product": "lgsp", "service": "gateway"}
    assert formats["mcu"].logsource == {"product": "mcu", "service": "audit"}
    assert {"product": "ioc", "service": "audit"} in formats["callcenter"].produces
    for name in ("lgsp", "mcu", "callcenter"):
        source = formats[name]
        assert source.parse is not None and source.looks_like is not None and source.looks_like(source.sample)
        _, event = source.parse(source.sample, source="sample")
        assert event["socflow"]["logsource"] == dict(source.logsource)


def test_project_rules_fire_on_the_parsed_samples() -> None:
    """The parsers write the fields the project rules read: each sample's telling line fires its rule."""
    from detectors.sigma import SigmaEngine

    engine, report = SigmaEngine.load([Path(__file__).resolve().parents[2] / "rules"],
                                      config_dir=Path(__file__).resolve().parents[2] / "config")
    assert not report.failures
    fired: dict[str, set[int]] = {}
    for name in SAMPLES:
        for result in parsed_lines(name):
            if "event" in result:
                for rule in engine.match(result["event"]):
                    fired.setdefault(str(rule.name), set()).add(result["line"])
    assert fired["socflow_lgsp_unsubscribed_service_call"] == {3}
    assert fired["socflow_lgsp_api_call"] == {1, 2}
    assert fired["socflow_mcu_admin_login_failed"] == {1, 2}
    assert fired["socflow_mcu_streaming_or_recording_changed"] == {4}
    assert fired["socflow_mcu_admin_account_created"] == {5}
    assert fired["socflow_callcenter_bulk_citizen_export"] == {3}
    assert fired["socflow_callcenter_admin_role_granted"] == {4}
    assert "socflow_ioc_admin_action_outside_management" not in fired  # the IOC change came from its own network
