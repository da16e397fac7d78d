"""Rule sets and events of the hot-reload tests: one rule that fires on every event, in two versions.

Every event matches the rule in both versions, so every event yields exactly one detection and
the version on it says which rule set judged it: "judged twice or not at all" becomes countable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RULE_ID = "5b0d7c7e-5f4e-4d0a-9a51-3c1f3f0e2a01"
START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def write_rule_set(directory: Path, *, level: str, title: str = "Hot-reload probe request") -> Path:
    """A rule directory holding the probe rule at ``level`` (a different level: a new version)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hotreload_probe.yml").write_text(
        f"""title: {title}
id: {RULE_ID}
status: test
description: Fires on every request under /hr/ (test rule of the hot-reload tests).
author: socflow
date: 2026-12-07
logsource:
  category: webserver
detection:
  selection:
    cs-uri-stem|startswith: '/hr/'
  condition: selection
level: {level}
""", encoding="utf-8")
    return directory


def events(start: int, count: int) -> list[dict[str, Any]]:
    """Events ``start`` .. ``start+count-1``, each with its own host (its own alert)."""
    out = []
    for number in range(start, start + count):
        moment = START + timedelta(milliseconds=10 * number)
        out.append({
            "@timestamp": moment.isoformat().replace("+00:00", "Z"),
            "event": {"id": f"hr-{number:07d}", "dataset": "iis.access"},
            "host": {"name": f"web-{number:07d}"},
            "socflow": {"logsource": {"category": "webserver", "service": "iis"}},
            "url": {"original": f"/hr/{number}", "path": f"/hr/{number}"},
        })
    return out
