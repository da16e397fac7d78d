"""``socflow sources``: the parser list (golden JSON), and with ``--since`` which node sent what, from an
event store on the real test Elasticsearch, filled with the DNS, mail and journald samples as the
collector writes them; a node that went quiet is listed with the last time it was seen. Without a
store, the command says so and still lists the parsers.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from elasticsearch import Elasticsearch, helpers

from alerts.cli import main
from ingest.files import collect_paths
from ingest.settings import CollectorSettings
from ingest.spool import read_batches
from tests.ingest.test_sources import DATA, SAMPLES

GOLDEN = Path(__file__).resolve().parent / "golden" / "sources"
INVENTORY = {
    "version": 1,
    "unknown_node": {"id": "unknown", "name": "Unknown source", "agency": "unknown", "district": "unknown",
                     "security_level": 3},
    "nodes": [
        {"id": "dc-mail", "name": "Official mail (Postfix, Dovecot, Zimbra, Exchange)", "agency": "ag-cds",
         "district": "d01", "security_level": 4, "hostnames": ["mail-mx01", "mail-imap01", "EX01"]},
        {"id": "dc-mgmt", "name": "Management jump hosts", "agency": "ag-cds", "district": "d01", "security_level": 5,
         "hostnames": ["dc-jump01"]},
        {"id": "dc-dns", "name": "DNS resolvers", "agency": "ag-cds", "district": "d01", "security_level": 5,
         "hostnames": ["dns01"], "networks": ["10.10.0.0/24"]},
        {"id": "cp-017", "name": "Connection point 17 \u202eevil\u202c firewall", "agency": "ag-017",
         "district": "d03", "security_level": 3, "hostnames": ["cp-017-fw"]},
        {"id": "cp-099", "name": "Connection point 99", "agency": "ag-099", "district": "d09", "security_level": 2},
    ],
}
MAPPING = {"dynamic": False, "properties": {
    "@timestamp": {"type": "date"},
    "event": {"properties": {"dataset": {"type": "keyword"}, "id": {"type": "keyword"}}},
    "socflow": {"properties": {
        "node": {"properties": {"id": {"type": "keyword"}, "name": {"type": "keyword"}}},
        "logsource": {"properties": {name: {"type": "keyword"} for name in ("product", "category", "service")}}}}}}


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_parser_list_is_golden(capsys: pytest.CaptureFixture[str]) -> None:
    result = _run(["sources", "--format", "json"], capsys)
    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    golden = GOLDEN / "sources_command.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")
    names = [row["name"] for row in result["parsers"]]
    assert names[:7] == ["json", "evtx", "winjson", "auth", "syslog", "auditd", "access"]
    assert {"postfix", "dovecot", "zimbra", "exchange", "bind", "dnsmasq", "windns", "journald"} <= set(names)


def test_without_an_event_store_it_says_so(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SOCFLOW_ELASTICSEARCH__URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    result = _run(["sources", "--since", "1d", "--format", "json"], capsys)
    assert result["event_store"].startswith("event store not available at http://127.0.0.1:9")
    assert result["parsers"] and "activity" not in result
    assert main(["sources", "--since", "1d"]) == 0
    assert "event store not available" in capsys.readouterr().out


@pytest.fixture
def event_store(tmp_path: Path, elasticsearch_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An index of the collected samples (plus one old event of cp-017) under a unique alias."""
    inventory = tmp_path / "assets.yaml"
    inventory.write_text(yaml.safe_dump(INVENTORY, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("SOCFLOW_ELASTICSEARCH__URL", elasticsearch_url)
    monkeypatch.setenv("SOCFLOW_COLLECTOR__ASSETS_PATH", str(inventory))
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in SAMPLES:
        shutil.copy(DATA / name, logs / name)
    (logs / "old-firewall.log").write_text(
        "Oct 10 08:00:00 cp-017-fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.5 DST=10.17.0.1 PROTO=TCP\n")
    spool = tmp_path / "spool"
    collect_paths([logs], spool, settings=CollectorSettings(assets_path=inventory), progress=False)
    events = [event for batch in read_batches(spool) for event in batch]
    for event in events:
        if event["@timestamp"][5:7] in ("10", "11") and event["@timestamp"][:4] != "2026":
            event["@timestamp"] = "2026" + event["@timestamp"][4:]  # BSD stamps: the year of the reception
    client = Elasticsearch(elasticsearch_url)
    alias = f"t-netsources2-{uuid.uuid4().hex[:12]}"
    index = f"{alias}-2026.11"
    client.indices.create(index=index, mappings=MAPPING, aliases={alias: {}})
    try:
        helpers.bulk(client, ({"_index": index, "_id": event["event"]["id"], "_source": event} for event in events),
                     refresh=True)
        yield alias
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)


def test_activity_by_node_and_silent_nodes(event_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = _run(["sources", "--since", "1d", "--until", "2026-11-23T00:00:00Z", "--index", event_store,
                   "--format", "json"], capsys)
    assert result["event_store"] == "available"
    rows = {(row["node"], row["logsource"], row["dataset"]): (row["events"], row["last_seen"])
            for row in result["activity"]}
    # Three from mail.log, one from the journal of mail-mx01.
    assert rows[("dc-mail", "product=socflow service=mail-auth", "postfix.log")] == (4, "2026-11-22T10:02:00.123Z")
    assert rows[("dc-mail", "product=exchange service=message-tracking", "exchange.message_tracking")] == (
        4, "2026-11-22T03:12:00.000Z")
    assert rows[("dc-dns", "category=dns", "bind.log")][0] == 4  # by the server address (not the IPv6 one)
    assert rows[("dc-mgmt", "product=linux service=sshd", "linux.auth")][0] == 4
    assert sum(count for count, _ in rows.values()) == sum(expected[1] for expected in SAMPLES.values())
    silent = {node["node"]: node["last_seen"] for node in result["silent_nodes"]}
    assert silent == {"cp-017": "2026-10-10T08:00:00.000Z", "cp-099": None}
    # The table view: the hostile node name is shown inert (the bidi override replaced).
    assert main(["sources", "--since", "1d", "--until", "2026-11-23T00:00:00Z", "--index", event_store]) == 0
    table = capsys.readouterr().out
    assert "Connection point 17 \ufffdevil\ufffd firewall" in table and "\u202e" not in table
    assert "never" in table and "2026-10-10T08:00:00.000Z" in table
