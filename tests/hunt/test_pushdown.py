"""Rule literals pushed into the candidate query (alerts/hunt/pushdown.py) keep hunt = replay.

Differential on the real Elasticsearch, with events built to catch an inexact pushdown: Sigma
folds case with ``str.casefold`` (U+017F long s is ``s``, U+212A KELVIN SIGN is ``k``), values longer
than the keyword limit are not indexed, lists match on any element, and the engine reads the
first present of a field's paths. Every one of them must still reach the engine; the plain
events without the rules' literals must not (that is the point of the pushdown).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.commands.replay import alert_documents, load_rules, replay
from alerts.eventstore.template import KEYWORDS
from alerts.hunt.pushdown import FOLDS_TO_ASCII, atom_query, pushable, rule_restrictions
from alerts.hunt.run import hunt
from alerts.nodes import NodeResolver
from detectors.sigma.fieldmap import FieldMappings
from ingest.schema import canonical_json
from tests.hunt.conftest import REPO, Store

WEB = REPO / "rules" / "web"
SQL_INJECTION = WEB / "web_portal_sql_injection.yml"
API_ERRORS = WEB / "web_portal_api_client_error.yml"
ENCODED = REPO / "rules" / "windows" / "proc_creation_win_powershell_encoded_command.yml"


def test_folds_to_ascii_lists_every_such_character() -> None:
    found = "".join(chr(code) for code in range(128, sys.maxunicode + 1)
                    if not 0xD800 <= code <= 0xDFFF and any(ord(c) < 128 for c in chr(code).casefold()))
    assert found == FOLDS_TO_ASCII


def test_literals_and_queries() -> None:
    assert pushable("union select") and pushable("/api/")
    assert not pushable("5") and not pushable("1.5e+3") and not pushable("stra\u00dfe")  # a number; not ASCII
    assert atom_query("url.query", "contains", "a*b?c\\d") == {"wildcard": {"url.query": {
        "value": "*a\\*b\\?c\\\\d*", "case_insensitive": True}}}
    assert atom_query("url.path", "startswith", "/api/") == {"prefix": {"url.path": {
        "value": "/api/", "case_insensitive": True}}}


def _restrictions(rule: Path) -> dict[Any, Any]:
    engine, _ = load_rules([rule])
    return rule_restrictions(engine.loaded_rules(), FieldMappings.load(REPO / "config" / "sigma"), KEYWORDS)


def test_windows_event_data_is_not_pushed_web_fields_are() -> None:
    # winlog.event_data is not indexed: a Windows rule keeps its channel / event id routes only
    assert _restrictions(ENCODED) == {("windows", "process_creation", None): None}
    text = json.dumps(list(_restrictions(SQL_INJECTION).values()))
    assert '"url.query": {"value": "*union select*", "case_insensitive": true}' in text
    assert "winlog.channel" in text  # events the engine would read the Windows way stay candidates


def _event(number: int, *, query: Any = None, path: str = "/tra-cuu-ho-so", status: int = 200,
           url: Any = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "@timestamp": f"2026-11-20T08:{number // 60:02d}:{number % 60:02d}.000Z",
        "event": {"id": f"pushdown-{number}"}, "source": {"ip": f"203.0.113.{number % 250 + 1}"},
        "http": {"response": {"status_code": status}},
        "url": url if url is not None else {"path": path, "original": path, **({"query": query} if query else {})},
        "socflow": {"logsource": {"category": "webserver"}},
    }
    return event


EVENTS = [
    _event(1, query="id=1 UNION SELECT name FROM users"),             # case
    _event(2, query="q=information_\u017fchema.tables"),                  # long s folds to s: matches in Sigma
    _event(3, query="q=' OR 1=1" + "x" * 1100),                      # over ignore_above: not indexed
    _event(4, query=["page=2", "q=pg_sleep(10)"]),                  # a list: any element
    _event(5, url=[{"query": "union select"}]),                      # an array of objects: not for Python
    _event(6, path="/API/v1/ho-so/H12", status=404),                 # case, on url.path
    _event(7, status=404, url={"path": "/other", "original": "/Api/v1/x"}),  # the engine reads url.path
    _event(8, path="/\u212a/api/x", status=404),                      # KELVIN SIGN: read, no match
    *(_event(10 + n, query=f"trang={n}&loai=dat-dai") for n in range(30)),    # plain: no literal
    *(_event(50 + n, path=f"/api/v1/ho-so/H{n}", status=200) for n in range(10)),  # /api/ but 200
]


@pytest.mark.integration
def test_hunt_equals_replay_with_hostile_values(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "portal.json"
    source.write_text("".join(json.dumps(event) + "\n" for event in EVENTS), encoding="utf-8")
    stored = store.put([source], tmp_path / "spool")
    assert stored == len(EVENTS)
    start, end = datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC)
    for rules in ([SQL_INJECTION], [API_ERRORS], [WEB]):
        expected = replay(rules, [source], store.settings)
        outcome = hunt(store.client, store.settings, rules, start, end)
        assert _documents(outcome.result.detections, store) == _documents(expected.detections, store), rules
    sql = hunt(store.client, store.settings, [SQL_INJECTION], start, end)
    # events 1-5 reach the engine (5 only because Elasticsearch flattens the array), 1-4 match
    assert sql.result.events == sql.candidates == 5
    assert sql.matches == 4
    api = hunt(store.client, store.settings, [API_ERRORS], start, end)
    # event 6 matches; 7 (url.original matches, url.path, which the engine reads first, does not),
    # 8 and the ten /api/ requests answered 200 are read only
    assert api.matches == 1
    assert api.result.events == 13


def _documents(detections: Any, store: Store) -> list[str]:
    settings = store.settings
    return [canonical_json(doc) for doc in alert_documents(
        detections, settings.elasticsearch.index_prefix, NodeResolver.load(settings.collector))]
