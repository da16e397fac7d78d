"""No event, however damaged, makes the engine raise: it answers with the rules that match.

Events come from JSON inputs and collectors of other teams: a channel may be a list, an event id
a dict, an EventData value nested or huge. Real EVTX records from the corpus, with fields
replaced by such values, go through all SigmaHQ Windows process-creation and built-in-channel
rules (the engine's compiled build when present; tests/sigma/test_native.py shows it answers as
the sources do).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.sigma import SigmaEngine
from detectors.sigma.events import iter_windows_file
from ingest.logsource import LogsourceTable
from tests.sigma.conftest import CONFIG_DIR

pytestmark = pytest.mark.corpus

ODD = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
    st.just("x" * 5000), st.just("\x02\x03 İstanbul ǅ ß"), st.binary(max_size=8),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=8)), max_size=3),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=2),
)


@pytest.fixture(scope="module")
def loaded(sigma_corpus: Path, evtx_samples: Path) -> tuple[SigmaEngine, list[dict[str, Any]]]:
    windows = sigma_corpus / "rules" / "windows"
    engine, report = SigmaEngine.load([windows / "process_creation", windows / "builtin"], config_dir=CONFIG_DIR)
    assert report.loaded == report.total
    table = LogsourceTable.load(CONFIG_DIR / "logsources.yaml")
    paths = sorted(evtx_samples.rglob("*.evtx"))[:60]
    events = [event for path in paths for _, event in iter_windows_file(path, table=table)]
    return engine, events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_event_never_raises(loaded: tuple[SigmaEngine, list[dict[str, Any]]], data: st.DataObject) -> None:
    engine, events = loaded
    event = copy.deepcopy(data.draw(st.sampled_from(events)))
    winlog = event["winlog"]
    fields = data.draw(st.lists(st.sampled_from(["channel", "event_id", "event_data", "provider_name"]), max_size=2))
    event_data = winlog.get("event_data")
    if isinstance(event_data, dict) and event_data:
        for name in data.draw(st.lists(st.sampled_from(sorted(event_data)), max_size=4)):
            event_data[name] = data.draw(ODD)
    for name in fields:
        winlog[name] = data.draw(ODD)
    if data.draw(st.booleans()):
        event.setdefault("winlog", {})["event_data"] = data.draw(st.one_of(ODD, st.just({"Command Line": "x"})))
    matched = engine.match(event)
    assert all(rule.id for rule in matched)
