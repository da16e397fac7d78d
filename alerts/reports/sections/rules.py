"""Rule inventory and change log: the rule store's releases (rules enabled per release, what each
added, modified, deprecated and removed), local tuning (filters, level overrides, disabled rules
with reasons), and the suppressions with their owners and expiries.

Read from files (``<data-dir>/rules`` and the suppression files), not Elasticsearch: the source
named for each part is a path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from alerts.reports.sections.base import Context, section


def _releases(root: Path) -> list[dict[str, Any]]:
    """Each imported release (oldest first) with its rule count and what changed since the one before."""
    import json

    manifests = []
    for manifest_path in sorted((root / "releases").glob("*/RELEASE.json")):
        try:
            manifests.append(json.loads(manifest_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            manifests.append({"name": manifest_path.parent.name, "rules": {}, "error": "unreadable RELEASE.json"})
    manifests.sort(key=lambda m: (str(m.get("imported_at")), str(m.get("name"))))
    active_file = root / "active" / "ACTIVE.json"
    active = json.loads(active_file.read_text(encoding="utf-8")) if active_file.is_file() else {}
    found: list[dict[str, Any]] = []
    previous: dict[str, Any] = {}
    for manifest in manifests:
        rules = dict(manifest.get("rules") or {})
        found.append({"name": manifest.get("name"), "imported": manifest.get("imported_at"),
                      "digest": manifest.get("digest"), "rules": len(rules),
                      "enabled": active.get("rules") if active.get("release") == manifest.get("name") else None,
                      "added": len(set(rules) - set(previous)), "removed": len(set(previous) - set(rules)),
                      "modified": sum(1 for k in set(rules) & set(previous) if rules[k] != previous[k])})
        previous = rules
    return found


def _suppressions(paths: Sequence[Path], now: datetime) -> list[dict[str, Any]]:
    rows = []
    for path in paths:
        if not path.is_file():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for entry in data.get("suppressions") or []:
            until = str(entry.get("until", ""))
            try:
                expired = datetime.fromisoformat(until.replace("Z", "+00:00")) <= now
            except ValueError:
                expired = None
            rows.append({"name": entry.get("name"), "owner": entry.get("owner") or entry.get("created_by"),
                         "reason": entry.get("reason"), "rule": entry.get("rule"), "until": until,
                         "expired": expired, "file": path.name})
    return rows


def build(ctx: Context, *, rule_store: Path, suppression_files: Sequence[Path],
          project_rules: Path | None = None) -> dict[str, Any]:
    """``project_rules``: the project's rule directory (default: the repository's ``rules/``)."""
    # Paths as an operator names them (the data dir differs per machine; the report must not).
    sources = [{"path": f"<data-dir>/{rule_store.name}"}, *({"path": p.name} for p in suppression_files)]
    tuning_file = rule_store / "tuning" / "tuning.yaml"
    tuning = yaml.safe_load(tuning_file.read_text(encoding="utf-8")) if tuning_file.is_file() else None
    marker = rule_store / "CURRENT"
    current = marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
    releases = _releases(rule_store)
    rules_dir = project_rules or Path(__file__).resolve().parents[3] / "rules"
    project = sorted(p.name for p in rules_dir.rglob("*.yml") if not p.name.endswith(".tests.yml"))
    suppressions = _suppressions(suppression_files, ctx.now)
    return section("ok", sources, current_release=current, releases=releases,
                   store_note=None if releases else f"no imported release in {rule_store.name}/ (socflow rules import)",
                   project_rules=len(project), tuning=tuning or {}, suppressions=suppressions)
