"""The pure parts of the event store: checks, truncation, moving refused fields, the mapping's shape."""

from __future__ import annotations

import pytest

from alerts.eventstore import documents
from alerts.eventstore.template import event_mappings, event_template
from alerts.settings import EventStoreSettings


def _leaves(properties: dict, prefix: str = "") -> dict[str, str]:
    found: dict[str, str] = {}
    for name, mapping in properties.items():
        if "properties" in mapping:
            found.update(_leaves(mapping["properties"], f"{prefix}{name}."))
        else:
            found[f"{prefix}{name}"] = mapping.get("type", "object")
    return found


def test_the_mapping_types_the_contract_fields_and_maps_nothing_dynamically() -> None:
    mapping = event_mappings()
    leaves = _leaves(mapping["properties"])
    for path in ("event.id", "event.code", "host.name", "user.name", "process.executable", "process.command_line",
                 "socflow.node.id", "socflow.logsource.product", "winlog.channel", "dns.question.name",
                 "url.original", "network.transport"):
        assert leaves[path] == "keyword", path
    for path in ("source.ip", "destination.ip", "host.ip"):
        assert leaves[path] == "ip"
    for path in ("source.port", "destination.port", "winlog.event_id", "winlog.record_id"):
        assert leaves[path] == "long"
    assert leaves["@timestamp"] == "date"
    assert "event.original" not in leaves  # in _source, not indexed

    def objects(properties: dict) -> list[dict]:
        return [m for m in properties.values() if "properties" in m] + [
            inner for m in properties.values() if "properties" in m for inner in objects(m["properties"])]

    assert mapping["dynamic"] is False
    assert all(obj.get("dynamic") is False for obj in objects(mapping["properties"]))
    assert "winlog.event_data" not in leaves


def test_prefixes_must_not_overlap_the_wrong_way() -> None:
    from pydantic import ValidationError

    EventStoreSettings(index_prefix="x", deadletter_prefix="x-dl")  # the dead letters' template has priority
    for events, letters in (("x", "x"), ("x-dl-events", "x-dl")):
        with pytest.raises(ValidationError, match="must differ"):
            EventStoreSettings(index_prefix=events, deadletter_prefix=letters)


def test_the_template_names_the_alias_and_limits() -> None:
    body = event_template(EventStoreSettings(index_prefix="x-events"))
    assert body["index_patterns"] == ["x-events-*"] and body["template"]["aliases"] == {"x-events": {}}
    limits = body["template"]["settings"]["mapping"]
    assert limits["ignore_malformed"] is True
    assert limits["total_fields"]["ignore_dynamic_beyond_limit"] is True


@pytest.mark.parametrize(("record", "reason"), [
    ("text", "not a JSON object"),
    ({"@timestamp": "2026-11-20T07:30:00.000Z"}, "no event.id"),
    ({"@timestamp": "2026-11-20T07:30:00.000Z", "event": {"id": 7}}, "no event.id"),
    ({"@timestamp": "2026-11-20 07:30", "event": {"id": "a"}}, "@timestamp"),
])
def test_check_gives_the_dead_letter_reason(record: object, reason: str) -> None:
    with pytest.raises(documents.NotAnEventError, match=reason):
        documents.check(record)


def test_check_and_daily_index() -> None:
    event_id, stamp = documents.check({"@timestamp": "2026-11-20T23:59:59.999Z", "event": {"id": "a"}})
    assert (event_id, documents.index_of("p", stamp)) == ("a", "p-2026.11.20")


def test_truncate_cuts_long_strings_and_says_which() -> None:
    event = {"message": "x" * 100, "winlog": {"event_data": {"Big": "y" * 50, "Small": "z"}}, "list": ["w" * 60]}
    cut = documents.truncate(event, 1234, 40)
    assert cut["message"] == "x" * 40 and cut["winlog"]["event_data"] == {"Big": "y" * 40, "Small": "z"}
    assert cut["list"] == ["w" * 40]
    assert cut["socflow"]["store"] == {"truncated": ["list", "message", "winlog.event_data.Big"],
                                       "original_bytes": 1234}
    assert event["message"] == "x" * 100  # a copy: the input is untouched


def test_move_field_nested_and_flat_dotted_keys() -> None:
    event = {"host": {"name": {"a": 1}, "os": {"name": "w"}}, "source": {"ip.v4": {"x": 1}}}
    assert documents.move_field(event, "host.name")
    assert documents.move_field(event, "source.ip.v4")
    assert not documents.move_field(event, "user.name")
    assert not documents.move_field(event, "socflow.store.moved")  # never nested into itself
    assert event["host"] == {"os": {"name": "w"}} and event["source"] == {}
    assert event["socflow"]["store"]["moved"] == {"host.name": {"a": 1}, "source.ip.v4": {"x": 1}}
    assert event["socflow"]["store"]["moved_fields"] == ["host.name", "source.ip.v4"]


def test_refused_field_reads_the_parsing_error() -> None:
    error = {"type": "document_parsing_exception",
             "reason": "[1:82] failed to parse field [host.name] of type [keyword] in document with id 'b'."}
    assert documents.refused_field(error) == "host.name"
    assert documents.refused_field({"type": "document_parsing_exception", "reason": "depth"}) is None
    assert documents.refused_field({"type": "version_conflict_engine_exception"}) is None


def test_split_batch_keeps_each_event_as_written_and_reads_only_id_and_time() -> None:
    line = (b'[{"@timestamp":"2026-11-20T07:30:00.000Z","event":{"id":"a","code":"1"},"n":123456789012345678901234},'
            b' {"@timestamp": "2026-11-20T07:30:01.000Z" , "event": {"id": "b"}},'
            b'{"event":{"id":"no-time"}},"text",{"@timestamp":"2026-11-20T07:30:00.000Z","event":"flat"}]')
    split = documents.split_batch(line)
    assert split is not None
    assert [(bytes(raw), event_id, stamp) for raw, event_id, stamp in split] == [
        (b'{"@timestamp":"2026-11-20T07:30:00.000Z","event":{"id":"a","code":"1"},"n":123456789012345678901234}',
         "a", "2026-11-20T07:30:00.000Z"),
        (b'{"@timestamp": "2026-11-20T07:30:01.000Z" , "event": {"id": "b"}}', "b", "2026-11-20T07:30:01.000Z"),
        (b'{"event":{"id":"no-time"}}', None, ""),  # left to check() for the reason
        (b'"text"', None, ""),
        (b'{"@timestamp":"2026-11-20T07:30:00.000Z","event":"flat"}', None, ""),
    ]


@pytest.mark.parametrize("line", [
    b'[{"@timestamp": "2026-11-20T08:00:00.000Z", "event": {"id": "torn"}',  # torn
    b'{"@timestamp":"2026-11-20T08:00:00.000Z","event":{"id":"lone"}}',  # an object, not a batch
    b'[{"a": NaN}]', b'[{"a": "\\ud800"}]', b"[" + b'{"a":' * 2000 + b"1" + b"}" * 2000 + b"]",
])
def test_split_batch_leaves_what_it_cannot_read_to_the_decoder(line: bytes) -> None:
    assert documents.split_batch(line) is None
