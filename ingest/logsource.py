"""Tag events with their Sigma logsource (``socflow.logsource``) from ``config/logsources.yaml``.

Non-Windows collectors set the logsource themselves (they know what they parse); Windows
events are tagged here from channel and event id, the way SigmaHQ's own mapping does it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest.errors import ConfigError
from ingest.schema import Event, get_field


@dataclass(frozen=True)
class LogsourceTable:
    """Windows channel -> service, and (service, event id) -> category."""

    services: Mapping[str, str] = field(default_factory=dict)
    categories: Mapping[tuple[str, int], str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> LogsourceTable:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            windows = data.get("windows", {})
            services = {str(k).lower(): str(v) for k, v in (windows.get("services") or {}).items()}
            categories: dict[tuple[str, int], str] = {}
            for key, category in (windows.get("categories") or {}).items():
                service, _, code = str(key).rpartition(":")
                categories[(service, int(code))] = str(category)
        except (OSError, yaml.YAMLError, AttributeError, ValueError) as error:
            raise ConfigError(f"invalid logsource table: {error}", source=str(path)) from error
        return cls(services=services, categories=categories)

    def windows_logsource(self, channel: str, event_id: int) -> dict[str, str]:
        logsource = {"product": "windows"}
        service = self.services.get(channel.lower())
        if service:
            logsource["service"] = service
            category = self.categories.get((service, event_id))
            if category:
                logsource["category"] = category
        return logsource

    def tag(self, event: Event) -> Event:
        """Set ``socflow.logsource`` on a Windows event (in place) and return it."""
        channel = get_field(event, "winlog.channel")
        code: Any = get_field(event, "winlog.event_id")
        if isinstance(channel, str) and isinstance(code, int):
            event.setdefault("socflow", {})["logsource"] = self.windows_logsource(channel, code)
        return event
