"""``socflow hunt`` equals ``socflow replay`` on evtx-attack-samples with every Windows rule of
the SigmaHQ corpus (differential, real Elasticsearch).

The corpus's EVTX files go through the files collector into a spool, the event writer stores
the spool; replay reads the same files. The Sigma and correlation alerts must be equal, alert
for alert. The anomaly detectors are left out here: the corpus mixes machines and years file by
file, so replay meets events out of time order (a first-seen detector learns from whichever
comes first, the volume baselines count per bucket as events arrive), while the store gives
them in time order; tests/hunt/test_hunt_demo.py compares them on the demo, whose files are
in order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.commands.replay import alert_documents, replay
from alerts.hunt.run import hunt
from alerts.nodes import NodeResolver
from ingest.schema import canonical_json
from tests.hunt.conftest import Store
from tests.sigma.conftest import RULE_FOLDERS, require_corpus

pytestmark = [pytest.mark.integration, pytest.mark.corpus]
RANGE = (datetime(1990, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def windows_rule_files(corpus: Path) -> list[Path]:
    """Rule files of the corpus whose logsource product is windows (as bench/sigma_engine.py)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found = []
    for folder in RULE_FOLDERS:
        for path in sorted((corpus / folder).rglob("*.yml")):
            documents = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader))
            if any(isinstance(d, dict) and (d.get("logsource") or {}).get("product") == "windows" for d in documents):
                found.append(path)
    return found


def _documents(detections: Any, store: Store) -> list[str]:
    settings = store.settings
    return [canonical_json(doc) for doc in alert_documents(
        detections, settings.elasticsearch.index_prefix, NodeResolver.load(settings.collector))]


def test_hunt_equals_replay_on_evtx_attack_samples(store: Store, tmp_path: Path) -> None:
    samples = require_corpus("evtx-attack-samples")
    rules = windows_rule_files(require_corpus("sigma"))
    assert len(rules) > 1500

    expected = replay(rules, [samples], store.settings)
    want = _documents(expected.detections, store)
    store.put([samples], tmp_path / "spool")
    # Documents, not the writer's count: a bulk retried after a timeout finds its events present.
    stored = int(store.client.count(index=store.settings.event_store.index_prefix)["count"])
    # The corpus holds the same records in several files (13): the same event.id, stored once
    # (op create). Records of one computer and channel that share a record number (logs
    # cleared) differ by their time, so by their event.id: all 19 are stored. Replay folds
    # repeated detections into one (same detection id).
    assert stored == expected.events - 13

    rules_only = hunt(store.client, store.settings, rules, *RANGE, on_total=lambda total: None)
    sigma_only = [doc for doc in want if json.loads(doc)["socflow"]["alert"]["kind"] != "anomaly"]
    got = _documents(rules_only.result.detections, store)
    assert got == sigma_only, _difference(got, sigma_only)
    assert len(sigma_only) > 500  # the corpus's attacks fire hundreds of rules
    assert [f.path for f in rules_only.result.rule_failures] == [f.path for f in expected.rule_failures]
    # Some rules name product windows alone: every Windows event is a candidate, read once.
    assert rules_only.result.events == rules_only.candidates == stored


def _difference(got: list[str], want: list[str]) -> str:
    def ids(documents: list[str]) -> set[tuple[str, str]]:
        return {(json.loads(d)["_id"], json.loads(d)["rule"]["name"]) for d in documents}

    missing, extra = sorted(ids(want) - ids(got))[:10], sorted(ids(got) - ids(want))[:10]
    return f"{len(got)} alerts, replay {len(want)}; missing {missing}; extra {extra}"
