"""Replay streams events from the reader to the matcher: the same alerts as through a spool.

``socflow replay`` no longer writes a temporary spool (``--spool`` still does) and folds each
detection into its alert as it is made; both must give exactly what the spool path gives, on the
whole evtx-attack-samples corpus with every SigmaHQ Windows rule (real files, real rules).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alerts.commands.replay import alert_documents, replay
from alerts.settings import load_settings
from ingest.schema import canonical_json

REPO = Path(__file__).resolve().parents[2]
CORPORA = Path(os.environ.get("SOCFLOW_CORPORA", REPO.parent / "shared" / "corpora"))


def _documents(rules: list[Path], events: list[Path], *, spool: bool) -> tuple[list[str], int, list[str]]:
    settings = load_settings()
    result = replay(rules, events, settings, spool=spool)
    documents = [canonical_json(d) for d in alert_documents(result.detections, settings.elasticsearch.index_prefix)]
    return documents, result.events, [canonical_json(d) for d in result.dead_letters]


def test_streamed_replay_equals_spooled_replay_on_the_attack_corpus() -> None:
    samples, windows = CORPORA / "evtx-attack-samples", CORPORA / "sigma" / "rules" / "windows"
    if not samples.is_dir() or not windows.is_dir():
        pytest.skip(f"corpus not found under {CORPORA} (set SOCFLOW_CORPORA to the shared corpora folder)")
    rules = [windows, REPO / "rules"]
    streamed = _documents(rules, [samples], spool=False)
    spooled = _documents(rules, [samples], spool=True)
    assert streamed[1] == spooled[1] > 8000
    assert len(streamed[0]) > 500
    assert streamed == spooled


def test_streamed_replay_keeps_the_collectors_dead_letters(tmp_path: Path) -> None:
    good = '{"@timestamp": "2026-11-20T08:00:00Z", "message": "hello", "host": {"name": "pc-1"}}'
    (tmp_path / "mixed.jsonl").write_text(f"{good}\nnot json at all\n[1, 2]\n", encoding="utf-8")
    streamed = _documents([REPO / "rules"], [tmp_path / "mixed.jsonl"], spool=False)
    spooled = _documents([REPO / "rules"], [tmp_path / "mixed.jsonl"], spool=True)
    assert streamed == spooled
    assert streamed[1] == 1 and len(streamed[2]) == 2
