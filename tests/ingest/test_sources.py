"""The DNS, mail and journald parsers (ingest/parsers/{bind,dnsmasq,windns,postfix,dovecot,zimbra,exchange,
journald}.py) over their sample files: exact ECS output per line (golden files), sniffing, the same
events through the file collector and through the syslog collector's path, and the catalogue's entries.

Regenerate the golden files with ``UPDATE_GOLDEN=1 pytest tests/ingest/test_sources.py`` after a
deliberate change. BSD syslog stamps carry no year: the parsers get a fixed reception time here.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from ingest.errors import ParseError, SkippedLineError
from ingest.files import collect_paths
from ingest.normalize import Normalizer
from ingest.parsers import PARSERS, catalogue, linux, sniff
from ingest.parsers.syslog import parse_message, to_event
from ingest.schema import canonical_json
from ingest.settings import CollectorSettings
from ingest.spool import dead_letters, read_batches

DATA = Path(__file__).resolve().parent.parent / "data" / "ingest"
GOLDEN = Path(__file__).resolve().parent / "golden" / "sources"
RECEIVED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SETTINGS = CollectorSettings(commit_interval_s=3600)

# sample file -> (format it sniffs as, events, dead letters, skipped header lines)
SAMPLES = {
    "postfix-mail.log": ("syslog", 12, 1, 0),
    "dovecot.log": ("syslog", 9, 0, 0),
    "zimbra-audit.log": ("zimbra", 5, 1, 0),
    "MSGTRK2026112203-1.LOG": ("exchange", 4, 1, 5),
    "bind-queries.log": ("bind", 5, 1, 0),
    "dnsmasq.log": ("syslog", 10, 0, 0),
    "windns-dns.log": ("windns", 5, 1, 7),
    "journald.json": ("journald", 7, 2, 0),
}


def _parse(fmt: str, line: str, path: Path) -> tuple[str, dict[str, Any]]:
    parser = PARSERS[fmt]
    options = {"received": RECEIVED} if "received" in inspect.signature(parser).parameters else {}
    return parser(line, source="sample", hint=str(path), **options)


def parsed_lines(name: str) -> list[dict[str, Any]]:
    """What the sniffed parser makes of each non-empty line of a sample: event, dead letter or skip."""
    path = DATA / name
    lines = path.read_text(encoding="utf-8").splitlines()
    fmt = sniff(lines[:5], str(path))
    results: list[dict[str, Any]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        try:
            dataset, event = _parse(fmt, line, path)
        except SkippedLineError as skipped:
            results.append({"line": number, "skipped": skipped.reason})
        except ParseError as error:
            results.append({"line": number, "dead_letter": error.reason})
        else:
            results.append({"line": number, "dataset": dataset, "event": event})
    return results


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_parsers_give_the_golden_events(name: str) -> None:
    results = parsed_lines(name)
    text = "".join(canonical_json(result) + "\n" for result in results)
    golden = GOLDEN / f"{name}.jsonl"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")
    fmt, events, dead, skipped = SAMPLES[name]
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    assert sniff(lines[:5], str(DATA / name)) == fmt
    assert (sum("event" in r for r in results), sum("dead_letter" in r for r in results),
            sum("skipped" in r for r in results)) == (events, dead, skipped)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_file_collector_writes_the_same_events(tmp_path: Path, name: str) -> None:
    source = tmp_path / name
    shutil.copy(DATA / name, source)
    labels = {"collector": "files", "outcome": "skipped"}
    skipped_before = REGISTRY.get_sample_value("socflow_collector_events_total", labels) or 0
    stats = collect_paths([source], tmp_path / "spool", settings=SETTINGS, progress=False)
    assert (REGISTRY.get_sample_value("socflow_collector_events_total", labels) or 0) - skipped_before == stats.skipped
    events = [event for batch in read_batches(tmp_path / "spool") for event in batch]
    letters = list(dead_letters(tmp_path / "spool"))
    _, expected_events, expected_dead, expected_skipped = SAMPLES[name]
    assert (stats.events, stats.dead_letters, stats.skipped) == (expected_events, expected_dead, expected_skipped)
    assert (len(events), len(letters)) == (expected_events, expected_dead)
    golden = [r["event"] for r in parsed_lines(name) if "event" in r]
    for event, expected in zip(events, golden, strict=True):
        assert event["event"]["id"] and event["log"]["file"]["path"] == str(source)
        assert event["@timestamp"][4:] == expected["@timestamp"][4:]  # a BSD stamp's year is the reception's
        assert _without_collector_fields(event) == _without_collector_fields(expected)
    assert all(letter["reason"] and letter["raw"] for letter in letters)


def _without_collector_fields(event: dict[str, Any]) -> dict[str, Any]:
    """The event minus what the collector adds (ids, node, collector, file position) and the timestamp."""
    copy = json.loads(json.dumps(event))
    copy.pop("@timestamp")
    if copy["event"].pop("id", None) and not event["event"].get("id", "").isalnum():
        raise AssertionError("event.id is not a hex id")
    for key in ("collector", "node"):
        copy["socflow"].pop(key, None)
    log = copy.get("log", {})
    for key in ("file", "offset"):
        log.pop(key, None)
    if not log:
        copy.pop("log", None)
    return copy


SYSLOG_BORNE = ("postfix-mail.log", "dovecot.log", "dnsmasq.log")


@pytest.mark.parametrize("name", SYSLOG_BORNE)
def test_syslog_messages_give_the_events_of_the_file_lines(name: str) -> None:
    # What the syslog collector does with a datagram (ingest/syslog.py): parse_message, to_event,
    # enrich_program (which offers the message to the catalogue's hooks first).
    golden = {r["line"]: r for r in parsed_lines(name)}
    for number, line in enumerate((DATA / name).read_text(encoding="utf-8").splitlines(), start=1):
        if "event" not in golden[number]:
            continue
        text = f"<22>{line}"
        message = parse_message(text, received=RECEIVED)
        event = linux.enrich_program(to_event(message, text), message)
        expected = golden[number]["event"]
        assert event["socflow"]["logsource"] == expected["socflow"]["logsource"]
        for key in ("dns", "user", "source", "destination", "email", "postfix", "dovecot"):
            assert event.get(key) == expected.get(key), (number, key)
        assert event["event"]["dataset"] == expected["event"]["dataset"]


def test_journald_sshd_is_the_auth_log_event() -> None:
    journal = [r["event"] for r in parsed_lines("journald.json") if "event" in r]
    auth_line = "Nov 22 09:58:01 dc-jump01 sshd[2211]: Failed password for admin from 198.51.100.23 port 50122 ssh2"
    _, from_auth_log = linux.parse_syslog_file_line(auth_line, source="auth", hint="/var/log/auth.log",
                                                    received=RECEIVED)
    sshd = journal[0]
    for key in ("user", "source", "linux", "socflow"):
        assert sshd[key] == from_auth_log[key], key
    for key in ("action", "outcome", "dataset", "category"):
        assert sshd["event"][key] == from_auth_log["event"][key], key
    assert sshd["@timestamp"] == "2026-11-22T09:58:01.123Z"
    assert sshd["systemd"] == {"unit": "ssh.service", "transport": "syslog"}
    sudo, postfix = journal[3], journal[5]
    assert sudo["socflow"]["logsource"] == {"product": "linux", "service": "sudo"}
    assert sudo["process"]["command_line"] == "/usr/bin/cat /etc/shadow"
    assert postfix["socflow"]["logsource"] == {"product": "socflow", "service": "mail-auth"}  # catalogue hooks
    binary = journal[6]
    assert binary["message"] == "Invalid user \ufffd\ufffd from 198.51.100.23 port 50200"
    assert binary["event"]["action"] == "invalid_user"


def test_mail_logons_of_every_server_share_one_logsource() -> None:
    failures = [r["event"] for name in ("postfix-mail.log", "dovecot.log", "zimbra-audit.log")
                for r in parsed_lines(name) if "event" in r and r["event"]["event"].get("outcome") == "failure"
                and r["event"]["socflow"]["logsource"].get("service") == "mail-auth"]
    assert {(e["event"]["module"], e.get("user", {}).get("name"), e["source"]["ip"]) for e in failures} == {
        ("postfix", "an.nguyen@hoagiang.gov.vn", "198.51.100.23"), ("postfix", None, "198.51.100.23"),
        ("dovecot", "an.nguyen@hoagiang.gov.vn", "198.51.100.23"), ("dovecot", "lan.pham@hoagiang.gov.vn",
                                                                    "198.51.100.23"),
        ("dovecot", "minh.tran@hoagiang.gov.vn", "198.51.100.23"), ("zimbra", "an.nguyen@hoagiang.gov.vn",
                                                                    "198.51.100.23")}


def test_exchange_uses_the_fields_header_of_its_file(tmp_path: Path) -> None:
    path = tmp_path / "MSGTRK-custom.LOG"
    header = "#Fields: date-time,event-id,source,sender-address,recipient-address,message-subject"
    record = "2026-11-22T03:10:00.123Z,RECEIVE,MAILBOXRULE,a@hoagiang.gov.vn,b@example.net;c@example.org,\"x, y\""
    with pytest.raises(SkippedLineError):
        PARSERS["exchange"](header, source="t", hint=str(path))
    _, event = PARSERS["exchange"](record, source="t", hint=str(path))
    assert event["email"] == {"from": {"address": ["a@hoagiang.gov.vn"]},
                              "to": {"address": ["b@example.net", "c@example.org"]}, "subject": "x, y"}
    with pytest.raises(ParseError, match="6 values for 30 fields"):
        PARSERS["exchange"](record, source="t", hint=str(tmp_path / "other.LOG"))  # the default field order


NORMALIZER = Normalizer.from_settings(CollectorSettings(), "files")


def test_catalogue_entries_are_complete_and_their_samples_parse() -> None:
    names: set[str] = set()
    for source in catalogue.registered():
        assert source.name not in names and not names & set(source.aliases)
        names.update((source.name, *source.aliases))
        assert source.title and source.logsource and source.sample and source.parse
        options = {"received": RECEIVED} if "received" in inspect.signature(source.parse).parameters else {}
        _, event = source.parse(source.sample, source="sample", hint="/var/log/sample.log", **options)
        if "winlog" in event:  # Windows events get their logsource from the channel table when normalized
            NORMALIZER.finish(event, source_id="sample", position=0, input_name="file")
        logsource = event["socflow"]["logsource"]
        assert all(logsource.get(key) == value for key, value in source.logsource.items()), source.name
        json.dumps(event)
        if source.looks_like is not None:
            assert sniff([source.sample]) == source.name


def test_journald_entries_among_other_json_lines_are_still_journald(tmp_path: Path) -> None:
    # A file sniffed as plain JSON lines (its first line is ECS): each line is recognised on its own.
    mixed = tmp_path / "mixed.jsonl"
    journal = (DATA / "journald.json").read_text(encoding="utf-8").splitlines()[0]
    mixed.write_text((DATA / "ecs.jsonl").read_text(encoding="utf-8").splitlines()[0] + "\n" + journal + "\n")
    collect_paths([mixed], tmp_path / "spool", settings=SETTINGS, progress=False)
    ecs, entry = [event for batch in read_batches(tmp_path / "spool") for event in batch]
    assert ecs["socflow"]["logsource"] == {"product": "portal"}
    assert entry["socflow"]["logsource"] == {"product": "linux", "service": "sshd"}
    assert entry["event"]["action"] == "ssh_login" and entry["user"]["name"] == "admin"


def test_readme_lists_every_format_with_a_line() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Log formats"):]
    missing = [source.name for source in catalogue.registered() if f"| `{source.name}` |" not in section]
    assert not missing, f"README's Log formats table lacks a row for {missing}"
