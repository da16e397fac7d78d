"""``socflow events``: the timeline of a host, user or source address from the event store
(real Elasticsearch), its JSON output against a golden file, ``--around`` an alert, and hostile
strings kept inert in the table."""

from __future__ import annotations

import io
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import helpers
from rich.console import Console

from alerts.cli import build_parser
from alerts.commands import events as events_command
from alerts.commands.replay import alert_documents, replay
from alerts.eventstore.timeline import Entity, entity_events
from alerts.hunt import HuntError
from alerts.indexer import install_template
from alerts.scenario import PORTAL_HOST, SPRAYER, generate
from tests.hunt.conftest import REPO, Store

pytestmark = pytest.mark.integration
START = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
GOLDEN = REPO / "tests" / "golden" / "events_timeline.json"
HOSTILE = "pc\x1b[2J\x1b]0;owned\x07-\u202egpj.exe[bold]x[/bold]"


def _run(store: Store, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    args = build_parser().parse_args(["events", *argv])
    code = events_command.handler(args, store.settings, now=START + timedelta(hours=3))
    return code, capsys.readouterr().out


@pytest.fixture
def demo(store: Store, tmp_path: Path) -> tuple[Store, list[Path]]:
    files = generate(tmp_path / "inputs", START)
    hostile = tmp_path / "inputs" / "hostile.jsonl"
    hostile.write_text(json.dumps({
        "@timestamp": "2026-11-20T09:30:30.000Z", "event": {"dataset": "test", "action": "login\r\n\x1b[31m"},
        "host": {"name": HOSTILE}, "source": {"ip": SPRAYER}, "user": {"name": "HOA.LE@hoagiang.gov.vn"},
        "message": "\x1b[1;31mred\x1b[0m \u202eevil [link=http://x]click[/link]",
        "socflow": {"logsource": {"product": "test"}}}) + "\n", encoding="utf-8")
    paths = [files.mail, files.portal, files.windows, hostile]
    store.put(paths, tmp_path / "spool")
    return store, paths


def _placeholders(text: str, inputs: Path) -> str:
    # event ids hash the input file's identity (path, inode): different on every run
    return re.sub(r'"[0-9a-f]{32}"', '"<id>"', text.replace(str(inputs), "<inputs>"))


def test_timeline_json_matches_golden(demo: tuple[Store, list[Path]], capsys: pytest.CaptureFixture[str]) -> None:
    store, paths = demo
    code, out = _run(store, ["--host", PORTAL_HOST, "--at", "2026-11-20T09:00:05Z", "--window", "4m",
                             "--format", "json"], capsys)
    assert code == 0
    record = json.loads(out)
    times = [event["@timestamp"] for event in record["events"]]
    assert times == sorted(times) and len(times) == record["count"] > 0  # oldest first
    assert all("2026-11-20T08:58:05" <= t <= "2026-11-20T09:02:05" for t in times)
    # Events of one millisecond come in event.id order, and ids hash the input files' inodes:
    # the golden file orders them by content instead.
    events = [json.loads(_placeholders(json.dumps(e, sort_keys=True), paths[0].parent)) for e in record["events"]]
    record["events"] = sorted(events, key=lambda e: (e["@timestamp"], json.dumps(e, sort_keys=True)))
    text = json.dumps(record, ensure_ascii=True, sort_keys=True, indent=1) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), "no golden file yet: run with UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_entities_limit_and_case(demo: tuple[Store, list[Path]]) -> None:
    store, _ = demo
    at = START + timedelta(hours=2, minutes=2)
    by_source = entity_events(store.client, store.settings, Entity("source", SPRAYER), at, timedelta(hours=1))
    assert len(by_source.events) == 42 and not by_source.truncated  # 40 failures, 1 success, the hostile one
    block = entity_events(store.client, store.settings, Entity("source", "198.51.100.0/24"), at, timedelta(hours=1))
    assert [e["event"]["id"] for e in block.events] == [e["event"]["id"] for e in by_source.events]
    # user names match whatever their case
    user = entity_events(store.client, store.settings, Entity("user", "hoa.le@HOAGIANG.gov.vn"), at,
                         timedelta(hours=3))
    assert {e["user"]["name"] for e in user.events} == {"hoa.le@hoagiang.gov.vn", "HOA.LE@hoagiang.gov.vn"}
    cut = entity_events(store.client, store.settings, Entity("source", SPRAYER), at, timedelta(hours=1), limit=5)
    assert cut.truncated and [e["event"]["id"] for e in cut.events] == [e["event"]["id"]
                                                                       for e in by_source.events[:5]]
    with pytest.raises(HuntError, match="not an IP address"):
        Entity("source", "not-an-ip")


def test_around_an_alert(demo: tuple[Store, list[Path]], capsys: pytest.CaptureFixture[str]) -> None:
    store, paths = demo
    prefix = store.settings.elasticsearch.index_prefix
    install_template(store.client, prefix)
    result = replay([REPO / "rules" / "mail"], paths[:1], store.settings)
    documents: list[dict[str, Any]] = list(alert_documents(result.detections, prefix))
    helpers.bulk(store.client, documents, refresh="wait_for")
    spray = next(doc for doc in documents if doc.get("source", {}).get("ip") == SPRAYER)
    code, out = _run(store, ["--around", spray["_id"], "--window", "30m", "--format", "json"], capsys)
    assert code == 0
    record = json.loads(out)
    assert record["entity"] == {"kind": "source", "field": "source.ip", "value": SPRAYER}
    assert record["count"] >= 41
    with pytest.raises(HuntError, match="no alert with id"):
        _run(store, ["--around", "0" * 32], capsys)


def test_hostile_strings_never_reach_the_terminal_raw(demo: tuple[Store, list[Path]],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = demo
    code, out = _run(store, ["--source", SPRAYER, "--at", "2026-11-20T09:30:30Z", "--window", "2m"], capsys)
    assert code == 0
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out and "\r" not in out
    assert "\\x1b" in out and "\\u202e" in out
    wide = Console(record=True, width=400, color_system=None, file=io.StringIO())
    events_command.show(entity_events(store.client, store.settings, Entity("source", SPRAYER),
                                      datetime(2026, 11, 20, 9, 30, 30, tzinfo=UTC), timedelta(minutes=2)), wide)
    shown = wide.export_text()
    assert "[bold]x[/bold]" in shown and "[link=http://x]click[/link]" in shown  # markup shown, not applied
    assert "\x1b" not in shown and "\\x1b[2J" in shown
    code, out = _run(store, ["--source", SPRAYER, "--at", "2026-11-20T09:30:30Z", "--window", "2m",
                             "--format", "json"], capsys)
    assert "\x1b" not in out and "\u202e" not in out  # JSON escapes them
    assert HOSTILE in [event["host"]["name"] for event in json.loads(out)["events"]]


def test_demo_ends_with_the_timeline_of_its_most_severe_alert(demo: tuple[Store, list[Path]]) -> None:
    from alerts.commands.demo import show_timeline

    store, paths = demo
    result = replay([REPO / "rules"], paths, store.settings)
    hits = [doc | {"_id": doc["_id"]} for doc in alert_documents(result.detections, "x")]
    out = Console(record=True, width=200, color_system=None, file=io.StringIO())
    timeline = show_timeline(store.client, store.settings, hits, out)
    assert timeline is not None and timeline.entity.kind == "host" and timeline.events
    text = " ".join(out.export_text().split())
    assert "Timeline of alert" in text and "socflow events --around" in text
    assert timeline.entity.value in text
