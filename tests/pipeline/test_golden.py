"""Golden file of the alert documents the demo scenario produces (replay core, no services).

Fields derived from where the input files happen to live (paths, file-identity-based event and
alert ids) are replaced by placeholders; everything else must match byte for byte. Regenerate
with ``UPDATE_GOLDEN=1 pytest tests/pipeline/test_golden.py`` after a deliberate change.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts.commands.replay import alert_documents, replay
from alerts.nodes import NodeResolver
from alerts.scenario import generate
from alerts.settings import load_settings
from ingest.schema import canonical_json

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "demo_alerts.jsonl"


def _placeholders(document: dict[str, Any], inputs: Path) -> dict[str, Any]:
    # Event ids hash the input file's identity (path, inode), which differs per run; their
    # agreement between Flink and replay is checked id for id in test_end_to_end.
    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            items = [walk(v, key) for v in value]
            return sorted(items) if key == "original_ids" else items
        if isinstance(value, str):
            if str(inputs) in value:
                return value.replace(str(inputs), "<inputs>")
            if key in ("_id", "id", "original_ids") and len(value) == 32:
                return "<id>"
        return value

    return walk(document)


def test_demo_alert_documents_match_golden(tmp_path: Path) -> None:
    files = generate(tmp_path / "inputs", datetime(2026, 11, 20, 7, 30, tzinfo=UTC))
    settings = load_settings(data_dir=tmp_path / "data")
    result = replay([REPO / "rules"], [files.mail, files.portal, files.windows], settings)
    documents = [_placeholders(doc, tmp_path / "inputs")
                 for doc in alert_documents(result.detections, settings.elasticsearch.index_prefix,
                                            NodeResolver.load(settings.collector))]
    text = "".join(canonical_json(doc) + "\n" for doc in documents)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), "no golden file yet: run with UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text(encoding="utf-8")
