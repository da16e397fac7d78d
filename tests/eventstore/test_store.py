"""The event store on the real test Elasticsearch: exactly the collected events, once, and bad input kept.

Events reach the spool the real way (``ingest.files.collect_paths`` over the demo scenario's
files); hostile events go through the spool writer the collectors use, so the writer meets
them exactly as it would meet a collector's output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from alerts.eventstore.writer import EventWriter
from alerts.scenario import generate
from alerts.settings import EventStoreSettings, load_settings
from ingest.files import collect_paths
from ingest.spool import SpoolWriter, sealed_segments
from tests.eventstore.helpers import drop, run_writer, spool_ids, stored, unique_settings

pytestmark = pytest.mark.integration
START = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)


@pytest.fixture
def client(elasticsearch_url: str) -> Elasticsearch:
    return Elasticsearch(elasticsearch_url, request_timeout=60)


@pytest.fixture
def store(client: Elasticsearch) -> Iterator[EventStoreSettings]:
    settings = unique_settings(bulk_size=300)
    yield settings
    drop(client, settings)


def _collect_scenario(tmp_path: Path, days: int = 2) -> Path:
    spool = tmp_path / "spool"
    collector = load_settings().collector
    for day in range(days):
        files = generate(tmp_path / f"in-{day}", START.replace(day=START.day + day))
        # The generator gives each day's Windows events the same record ids (a log cleared
        # every day): the Windows log of the first day only, enough for these tests.
        paths = [files.mail, files.portal] + ([files.windows] if day == 0 else [])
        collect_paths(paths, spool, settings=collector, writer_id=f"day{day}", progress=False)
    return spool


def test_stores_exactly_the_collected_events_and_a_second_run_changes_nothing(
        tmp_path: Path, client: Elasticsearch, store: EventStoreSettings) -> None:
    spool = _collect_scenario(tmp_path)
    expected = spool_ids(spool)
    assert len(expected) == len(set(expected)) > 1000
    first = run_writer(client, spool, store)
    assert (first.indexed, first.already_present, first.dead_lettered) == (len(expected), 0, 0)
    assert first.bulks > 2  # several bulks, several positions committed
    documents = stored(client, store.index_prefix)
    assert sorted(documents) == sorted(expected)
    # Each document is the event exactly as the collector wrote it, in its day's index.
    by_id = {event["event"]["id"]: event for batch in _batches(spool) for event in batch}
    for event_id, document in documents.items():
        index = document.pop("_index")
        document.pop("_ignored")
        assert document == by_id[event_id]
        assert index == f"{store.index_prefix}-{document['@timestamp'][:10].replace('-', '.')}"
    days = {document["@timestamp"][:10] for document in by_id.values()}
    assert len(client.indices.get(index=f"{store.index_prefix}-*")) == len(days) >= 2
    # The collectors' dead letters (the scenario holds a few broken lines) with their reason.
    letters = stored(client, store.deadletter_prefix)
    assert first.deadletters_stored == len(letters) > 0
    assert all(letter["reason"] and letter["stage"] == "ingest" for letter in letters.values())

    again = run_writer(client, spool, store)  # the position says everything is done
    assert (again.indexed, again.already_present, again.deadletters_stored) == (0, 0, 0)
    # A lost position (a restore of the writer's state from an old backup): everything is sent
    # again, found present, and nothing is doubled.
    (spool / "consumers" / "event-store.json").unlink()
    replayed = run_writer(client, spool, store)
    assert (replayed.indexed, replayed.already_present) == (0, len(expected))
    assert replayed.deadletters_present == len(letters)
    assert sorted(stored(client, store.index_prefix)) == sorted(expected)
    assert len(stored(client, store.deadletter_prefix)) == len(letters)


def _batches(spool: Path) -> Iterator[list[dict]]:
    from ingest.spool import read_batches

    return read_batches(spool)


def _hostile_spool(tmp_path: Path) -> tuple[Path, dict[str, dict]]:
    spool = tmp_path / "spool"
    writer = SpoolWriter(spool, "hostile", batch_size=3)
    base = {"@timestamp": "2026-11-20T08:00:00.000Z", "socflow": {"node": {"id": "n1", "security_level": 2}}}

    def deep(levels: int) -> dict:
        value: dict = {"leaf": "bottom"}
        for level in range(levels):
            value = {f"k{level}": value}
        return value

    events = {
        "plain": {"host": {"name": "ws-1"}, "source": {"ip": "10.0.0.1", "port": 445}},
        "one-megabyte": {"message": "A" * (1024 * 1024), "host": {"name": "ws-2"}},
        "deeply-nested": {"winlog": {"event_data": deep(200)}, "host": deep(40)},
        "type-conflict-object": {"host": {"name": {"first": "ws", "second": 3}}, "user": {"name": "u"}},
        "type-conflict-value": {"source": {"ip": "not-an-address", "port": "http"}, "winlog": {"event_id": "x"}},
        "many-keys": {"winlog": {"event_data": {f"Field{n}": n for n in range(5000)}}},
        "bad-date-inside": {"event": {"created": "yesterday"}, "host": {"name": "ws-3"}},
    }
    expected: dict[str, dict] = {}
    for name, fields in events.items():
        event = json.loads(json.dumps(base)) | fields
        event["event"] = {**fields.get("event", {}), "id": name}
        writer.append(event)
        expected[name] = event
    writer.append({"event": {"id": "no-timestamp"}})
    writer.append({"@timestamp": "2026-11-20T08:00:00.000Z", "event": {"code": 4624}})  # no id
    writer.commit({"hostile": 1})
    # A torn line and an element that is no object, as no collector writes them but a disk might.
    segment = sealed_segments(spool)[-1]
    with segment.open("ab") as handle:
        handle.write(b'[{"@timestamp": "2026-11-20T08:00:00.000Z", "event": {"id": "torn"\n')
        handle.write(b'["just a string", 42]\n')
        # Stored as written, except what Elasticsearch reads otherwise: a key given twice (which
        # it refuses) is stored as the decoder reads it, the last value.
        handle.write(b'[{"@timestamp": "2026-11-20T08:00:00.000Z", "event": {"id": "spaced"} , "host": {"name": "s"}},'
                     b'{"@timestamp":"2026-11-20T08:00:00.000Z","event":{"id":"twice"},"host":{"name":"first"},'
                     b'"host":{"name":"last"}}]\n')
    expected["spaced"] = {"@timestamp": "2026-11-20T08:00:00.000Z", "event": {"id": "spaced"}, "host": {"name": "s"}}
    expected["twice"] = {"@timestamp": "2026-11-20T08:00:00.000Z", "event": {"id": "twice"}, "host": {"name": "last"}}
    return spool, expected


def test_hostile_events_are_stored_or_dead_lettered_with_the_reason(
        tmp_path: Path, client: Elasticsearch, store: EventStoreSettings) -> None:
    spool, expected = _hostile_spool(tmp_path)
    stats = run_writer(client, spool, store)
    documents = stored(client, store.index_prefix)
    assert sorted(documents) == sorted(expected)  # every event with an id and a time is stored
    assert stats.indexed == len(expected)
    assert documents["plain"]["host"]["name"] == "ws-1"
    # 1 MB: stored with its long strings cut, and says so.
    big = documents["one-megabyte"]
    assert stats.truncated == 1 and len(big["message"]) == store.truncate_strings_to
    assert big["socflow"]["store"]["truncated"] == ["message"]
    assert big["socflow"]["store"]["original_bytes"] > 1024 * 1024
    # Deep nesting: kept whole (unmapped objects are not parsed into the mapping).
    assert documents["deeply-nested"]["winlog"] == expected["deeply-nested"]["winlog"]
    assert documents["deeply-nested"]["host"] == expected["deeply-nested"]["host"]
    # An object where the mapping has a keyword: the field moved aside, the rest indexed.
    conflict = documents["type-conflict-object"]
    assert stats.repaired == 1
    assert conflict["socflow"]["store"]["moved"] == {"host.name": {"first": "ws", "second": 3}}
    assert conflict["socflow"]["store"]["moved_fields"] == ["host.name"]
    hits = client.search(index=store.index_prefix, query={"term": {"socflow.store.moved_fields": "host.name"}})
    assert [hit["_id"] for hit in hits["hits"]["hits"]] == ["type-conflict-object"]
    # Values that do not parse as their field's type: stored as they are, named in _ignored.
    assert documents["type-conflict-value"]["source"] == {"ip": "not-an-address", "port": "http"}
    assert set(documents["type-conflict-value"]["_ignored"]) == {"source.ip", "source.port", "winlog.event_id"}
    assert len(documents["many-keys"]["winlog"]["event_data"]) == 5000
    for name in ("spaced", "twice"):
        assert {k: v for k, v in documents[name].items() if k not in ("_index", "_ignored")} == expected[name]
    # The mapping did not grow with the hostile events: it is the template's, field for field.
    mappings = client.indices.get_mapping(index=store.index_prefix)
    (mapping,) = [entry["mappings"] for entry in mappings.values()]
    assert "Field1" not in json.dumps(mapping) and "k0" not in json.dumps(mapping)
    # What is not an event went to the dead letters, with the reason: nothing lost.
    letters = stored(client, store.deadletter_prefix)
    reasons = sorted(letter["reason"].split(":")[0] for letter in letters.values())
    assert stats.dead_lettered == len(letters) == 5  # no time, no id, the torn line, a string, a number
    assert reasons == ["not a storable event"] * 4 + ["unreadable spool batch"]
    assert any("no event.id" in letter["reason"] for letter in letters.values())
    assert any("@timestamp" in letter["reason"] for letter in letters.values())
    assert any('"torn"' in letter["raw"] for letter in letters.values())


def test_resumes_from_its_position_and_waits_for_new_segments(
        tmp_path: Path, client: Elasticsearch, store: EventStoreSettings) -> None:
    spool = _collect_scenario(tmp_path, days=1)
    writer = EventWriter(client, spool, store, sleep=lambda _s: None)
    first = writer.run_once()
    position = json.loads((spool / "consumers" / "event-store.json").read_text(encoding="utf-8"))
    assert position["done"] == [path.name for path in sealed_segments(spool)]
    files = generate(tmp_path / "in-later", START.replace(day=25))
    collect_paths([files.mail], spool, settings=load_settings().collector, writer_id="later", progress=False)
    second = EventWriter(client, spool, store).run_once()  # a new process: from the saved position
    assert second.already_present == 0 and second.indexed > 0
    assert len(stored(client, store.index_prefix)) == first.indexed + second.indexed == len(spool_ids(spool))
