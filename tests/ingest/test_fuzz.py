"""Property-based fuzzing of every parser: nothing but ParseError escapes, and through the
collector every bad record becomes a dead letter with a reason (never a crash, never a loss)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.assets import AssetInventory
from ingest.errors import ParseError
from ingest.files import collect_paths
from ingest.net import protocols
from ingest.net.flows import FlowEngine
from ingest.normalize import loads_object, scrub_surrogates
from ingest.parsers import PARSERS
from ingest.parsers.syslog import parse_file_line, parse_message
from ingest.schema import StableIds, get_field, stable_id
from ingest.settings import CollectorSettings
from ingest.spool import dead_letters, read_batches
from tests.ingest.pcaps import HTTP_REQUEST, client_hello

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "ingest"
RECEIVED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

SAMPLES = [line for name in ("auth.log", "audit.log", "nginx-access.log", "apache-access_log", "eve.json",
                             "zeek-conn.log", "ecs.jsonl") for line in (DATA / name).read_text().splitlines()]


@st.composite
def mutated_lines(draw: st.DrawFn) -> str:
    """Real sample lines cut, spliced and sprinkled with odd characters, or plain random text."""
    if draw(st.booleans()):
        return draw(st.text(max_size=300))
    line = draw(st.sampled_from(SAMPLES))
    for _ in range(draw(st.integers(0, 4))):
        position = draw(st.integers(0, len(line)))
        action = draw(st.sampled_from(["cut", "insert", "delete"]))
        if action == "cut":
            line = line[:position]
        elif action == "insert":
            line = line[:position] + draw(st.text(max_size=8)) + line[position:]
        else:
            line = line[:position] + line[position + draw(st.integers(1, 10)):]
    return line


@FUZZ
@given(line=mutated_lines(), fmt=st.sampled_from(sorted(PARSERS)))
def test_line_parsers_raise_only_parse_errors(line: str, fmt: str) -> None:
    try:
        _, event = PARSERS[fmt](line, source="fuzz", hint="/var/log/auth.log")
    except ParseError as error:
        assert error.reason
        return
    json.dumps(event)  # whatever a parser returns must be serializable as it is


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-standard JSON constant {name}")


def decoded_by_json_module(text: str) -> str:
    """What loads_object gave when it used only the json module: the value's repr, or the reason."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        return f"not JSON: {error}"
    if not isinstance(value, dict):
        return f"not a JSON object but {type(value).__name__}"
    return repr(scrub_surrogates(value) if "\\ud" in text or "\\uD" in text else value)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers() | st.integers(-(2**65), 2**65) | st.integers(-(2**64), -(2**62))
    | st.text(max_size=20) | st.sampled_from(["\ud800", "a\udfffb", "\ud83d\ude00", "Nguyễn", "1" * 25]),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30)


@FUZZ
@given(line=st.one_of(
    st.builds(lambda value, ascii_only: json.dumps(value, ensure_ascii=ascii_only),
              st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=8), st.booleans()),
    mutated_lines(),
    st.sampled_from(['{"v": NaN}', '{"v": 1e400}', '{"v": -0}', '{"v": 12345678901234567890}', '{"a":1,"a":2}',
                     '{"v": ' + "[" * 1100 + "]" * 1100 + "}", '{"v": ' + "[" * 900 + "]" * 900 + "}"])))
def test_fast_json_decoding_gives_what_the_json_module_gives(line: str) -> None:
    # Value for value and type for type (repr tells 1 from 1.0 and keeps key order), or the same reason.
    try:
        ours = repr(loads_object(line))
    except ParseError as error:
        ours = error.reason
    assert ours == decoded_by_json_module(line)


INVENTORY = AssetInventory.load(REPO / "config" / "assets.yaml")
NODE_PATHS = ("host.ip", "observer.ip", "host.name", "host.hostname", "winlog.computer_name", "observer.hostname",
              "source.ip")
ADDRESSES = st.sampled_from(["10.10.1.20", "10.10.3.7", "203.0.113.70", "198.51.100.7", "fe80::1", "not an ip", ""])
HOST_NAMES = st.sampled_from(["dc-ad01", "DC-AD01.hoagiang.gov.vn", "ag-001-pc03", "ag-003-pc17", "nobody", ""])
FIELD_VALUES = st.one_of(ADDRESSES, HOST_NAMES, st.lists(ADDRESSES, max_size=3), st.none(), st.booleans(),
                         st.integers(-1, 2**32), st.floats(allow_nan=False), st.just({"nested": "x"}))


@st.composite
def events_naming_nodes(draw: st.DrawFn) -> dict[str, object]:
    """Events whose node fields are nested, flat dotted keys, both, or under a parent that is not a dict."""
    event: dict[str, object] = {}
    for path in draw(st.lists(st.sampled_from(NODE_PATHS), max_size=5)):
        parent, child = path.split(".")
        style = draw(st.sampled_from(["nested", "nested", "flat", "parent not a dict"]))
        if style == "flat":
            event[path] = draw(FIELD_VALUES)
        elif style == "nested" and isinstance(event.setdefault(parent, {}), dict):
            event[parent][child] = draw(FIELD_VALUES)  # type: ignore[index]
        else:
            event[parent] = draw(st.sampled_from(["text", 7, None, ["x"]]))
    return event


@FUZZ
@given(events=st.lists(events_naming_nodes(), min_size=1, max_size=4))
def test_node_lookup_reads_fields_as_get_field_does(events: list[dict[str, object]]) -> None:
    for event in events * 2:  # the second time through, from the cache
        expected = INVENTORY._node_for_fields(tuple(get_field(event, path) for path in NODE_PATHS))
        assert INVENTORY.node_for(event) == expected
        assert INVENTORY.enrich(event)["socflow"]["node"] == expected.as_event_field()  # type: ignore[index]


PATTERNED = AssetInventory.from_mapping({"nodes": [
    {"id": "district", "host_patterns": ["d03-*", "d0?-*"]}, {"id": "commune", "host_patterns": ["d03-c04-*"]},
    {"id": "gateway", "host_patterns": ["*-gw", "[ab]x-*"]}, {"id": "exact", "host_patterns": ["d03-c04-pc1"]},
    *({"id": f"ag-{n}", "host_patterns": [f"ag-{n:03d}-*"]} for n in range(1, 40))]})


@FUZZ
@given(name=st.one_of(st.text(alphabet="abdgx03c4-.*?[]pc1", max_size=14), st.sampled_from(
    ["d03-c04-pc1", "D03-C04-PC2.example", "d05-x", "ax-1", "core-gw", "ag-007-pc3", "ag-077-pc3", ""])))
def test_host_patterns_are_tried_in_order_of_length(name: str) -> None:
    short = name.lower().split(".", 1)[0]
    first_match = next((node for pattern, node in PATTERNED._by_pattern if fnmatchcase(short, pattern)), None)
    assert PATTERNED._lookup_host_uncached(name) == first_match


ID_PARTS = st.one_of(st.text(max_size=12), st.sampled_from(["a\udc80", "Nguyễn"]), st.integers(), st.none())


@FUZZ
@given(prefix=st.lists(ID_PARTS, max_size=3), lasts=st.lists(ID_PARTS, min_size=1, max_size=4))
def test_ids_under_a_prefix_are_stable_ids(prefix: list[object], lasts: list[object]) -> None:
    ids = StableIds(*prefix)
    assert [ids(last) for last in lasts] == [stable_id(*prefix, last) for last in lasts]


@FUZZ
@given(text=st.one_of(st.text(max_size=300), mutated_lines().map(lambda s: "<13>" + s),
                      st.text(max_size=200).map(lambda s: "<165>1 2026-11-22T10:00:00Z h a p m " + s)))
def test_syslog_parser_raises_only_parse_errors(text: str) -> None:
    for parse in (parse_message, parse_file_line):
        try:
            parse(text, received=RECEIVED)
        except ParseError as error:
            assert error.reason


@st.composite
def mutated_bytes(draw: st.DrawFn, sample: bytes) -> bytes:
    """``sample`` with a few bytes changed and maybe cut short, or random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=400))
    data = bytearray(sample)
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


def _dns_sample() -> bytes:
    from scapy.layers.dns import DNS, DNSQR, DNSRR

    return bytes(DNS(id=1, qr=1, qd=DNSQR(qname="a.example"),
                     an=[DNSRR(rrname="a.example", rdata="10.0.0.1"), DNSRR(rrname="a.example", type="CNAME",
                                                                          rdata="b.example")]))


DNS_SAMPLE = _dns_sample()
HELLO_SAMPLE = client_hello()


@FUZZ
@given(dns=mutated_bytes(DNS_SAMPLE), hello=mutated_bytes(HELLO_SAMPLE), http=mutated_bytes(HTTP_REQUEST))
def test_binary_decoders_raise_only_parse_errors(dns: bytes, hello: bytes, http: bytes) -> None:
    for decode, blob in ((protocols.parse_dns, dns), (protocols.parse_client_hello, hello),
                         (protocols.parse_http_request, http)):
        try:
            json.dumps(decode(blob))
        except ParseError as error:
            assert error.reason
    protocols.parse_http_status(http)


@FUZZ
@given(frames=st.lists(st.binary(min_size=0, max_size=120), max_size=30), linktype=st.sampled_from([1, 101, 113, 0]))
def test_flow_engine_survives_garbage_frames(frames: list[bytes], linktype: int) -> None:
    records: list[dict] = []
    engine = FlowEngine(lambda kind, record, position: records.append(record), linktype=linktype)
    engine.feed((1_700_000_000.0 + index, frame) for index, frame in enumerate(frames))
    engine.flush()
    for record in records:
        json.dumps(record)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(mutated_lines().filter(lambda s: "\n" not in s and "\r" not in s), min_size=1, max_size=25),
       fmt=st.sampled_from(["auto", "json", "auth", "auditd", "access"]))
def test_collector_routes_every_bad_line_to_a_dead_letter(tmp_path_factory, lines: list[str], fmt: str) -> None:
    directory = tmp_path_factory.mktemp("fuzz")
    source = directory / "input.log"
    source.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))
    spool = directory / "spool"
    stats = collect_paths([source], spool, settings=CollectorSettings(), fmt=fmt)
    non_empty = sum(1 for line in source.read_bytes().split(b"\n") if line.strip())
    events = [event for batch in read_batches(spool) for event in batch]
    letters = list(dead_letters(spool))
    assert stats.events + stats.dead_letters + stats.skipped == non_empty
    assert (len(events), len(letters)) == (stats.events, stats.dead_letters)
    assert all(letter["reason"] and letter["source"].startswith(str(source)) for letter in letters)
    assert all(event["@timestamp"].endswith("Z") and event["event"]["id"] for event in events)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
WINDOWS_SAMPLES = [value for value in __import__("ingest.windows", fromlist=["iter_json_events"]).iter_json_events(
    (DATA / "windows_export.json").read_text())]


@st.composite
def windows_records(draw: st.DrawFn) -> object:
    """A real Windows record with parts replaced by random JSON, or random JSON outright."""
    if draw(st.booleans()):
        return draw(JSON_VALUES)
    record = json.loads(json.dumps(draw(st.sampled_from(WINDOWS_SAMPLES))))
    for _ in range(draw(st.integers(1, 3))):
        event = record["Event"]
        containers = [event] + [event[k] for k in ("System", "EventData") if isinstance(event.get(k), dict)]
        target = draw(st.sampled_from(containers))
        keys = sorted(target) or ["x"]
        target[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
    return record


@FUZZ
@given(record=windows_records())
def test_windows_normalizer_raises_only_parse_errors(record: object) -> None:
    from ingest.windows import normalize_record

    try:
        event = normalize_record(record, source="fuzz")  # type: ignore[arg-type]
    except ParseError as error:
        assert error.reason
        return
    json.dumps(event)


@st.composite
def damaged(draw: st.DrawFn, sample: bytes, header: int) -> bytes:
    """``sample`` with bytes changed in its first ``header`` bytes or anywhere, maybe cut short."""
    data = bytearray(sample)
    for _ in range(draw(st.integers(1, 8))):
        region = draw(st.sampled_from([min(header, len(data)), len(data)]))
        data[draw(st.integers(0, region - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))):]
    return bytes(data)


def _collect_one(directory: Path, name: str, content: bytes) -> None:
    """Collect one file; every record is an event or a dead letter with a reason, nothing escapes."""
    source = directory / name
    source.write_bytes(content)
    spool = directory / "spool"
    stats = collect_paths([source], spool, settings=CollectorSettings())
    events = [event for batch in read_batches(spool) for event in batch]
    letters = list(dead_letters(spool))
    assert (len(events), len(letters)) == (stats.events, stats.dead_letters)
    assert all(letter["reason"] for letter in letters)


def _smallest_evtx(corpora: Path) -> bytes:
    samples = sorted((corpora / "evtx-attack-samples").rglob("*.evtx"), key=lambda path: path.stat().st_size)
    if not samples:
        pytest.skip("no EVTX sample in the corpora")
    return samples[0].read_bytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_evtx_files_become_dead_letters(tmp_path_factory, corpora: Path, data: st.DataObject) -> None:
    # EVTX: a 4 KiB file header, then 64 KiB chunks with their own headers.
    content = data.draw(damaged(_smallest_evtx(corpora), header=4096 + 512))
    _collect_one(tmp_path_factory.mktemp("evtx"), "damaged.evtx", content)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=damaged((DATA / "windows_export.json").read_bytes(), header=64))
def test_damaged_windows_json_exports_become_dead_letters(tmp_path_factory, content: bytes) -> None:
    _collect_one(tmp_path_factory.mktemp("winjson"), "export.json", content)
