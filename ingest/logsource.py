"""Tag events with their Sigma logsource (``socflow.logsource``) from ``config/logsources.yaml``.

Non-Windows collectors set the logsource themselves (they know what they parse); Windows
events are tagged here from channel and event id, the way SigmaHQ's own mapping does it.

One Windows event can belong to several Sigma categories (Sysmon 13 is both ``registry_set``
and ``registry_event``); :meth:`LogsourceTable.windows_categories` gives all of them, and the
first is the one written to ``socflow.logsource.category``. The Sigma engine routes rules by
the full set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest.errors import ConfigError
from ingest.schema import Event, get_field

# libyaml's safe loader when built (the same documents, parsed 10x as fast): read at every start-up.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class ExtraCategory:
    """A further category of ``(service, event id)``, optionally only when EventData fields match."""

    category: str
    when: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def applies(self, event_data: Mapping[str, Any] | None) -> bool:
        if not self.when:
            return True
        if not isinstance(event_data, Mapping):
            return False
        return all(str(event_data.get(name, "")).lower() in allowed for name, allowed in self.when.items())


@dataclass(frozen=True)
class LogsourceTable:
    """Windows channel -> service, and (service, event id) -> category (or several)."""

    services: Mapping[str, str] = field(default_factory=dict)
    categories: Mapping[tuple[str, int], str] = field(default_factory=dict)
    extra: Mapping[tuple[str, int], tuple[ExtraCategory, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> LogsourceTable:
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}  # noqa: S506 - a safe loader
            windows = data.get("windows", {})
            services = {str(k).lower(): str(v) for k, v in (windows.get("services") or {}).items()}
            categories: dict[tuple[str, int], str] = {}
            for key, category in (windows.get("categories") or {}).items():
                categories[_key(key)] = str(category)
            extra: dict[tuple[str, int], list[ExtraCategory]] = {}
            for item in windows.get("also") or ():
                when = {
                    str(name): frozenset(str(v).lower() for v in (values if isinstance(values, list) else [values]))
                    for name, values in (item.get("when") or {}).items()
                }
                extra.setdefault(_key(item["key"]), []).append(ExtraCategory(str(item["category"]), when))
        except (OSError, yaml.YAMLError, AttributeError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"invalid logsource table: {error}", source=str(path)) from error
        return cls(services=services, categories=categories, extra={k: tuple(v) for k, v in extra.items()})

    @property
    def condition_fields(self) -> tuple[str, ...]:
        """EventData fields that ``also`` entries test (part of a routing cache key)."""
        names = {name for entries in self.extra.values() for entry in entries for name in entry.when}
        return tuple(sorted(names))

    def windows_categories(
        self, channel: str, event_id: int, event_data: Mapping[str, Any] | None = None
    ) -> tuple[str | None, tuple[str, ...]]:
        """``(service, categories)`` of a Windows event; categories may be empty."""
        service = self.services.get(channel.lower())
        if not service:
            return None, ()
        found: list[str] = []
        primary = self.categories.get((service, event_id))
        if primary:
            found.append(primary)
        for entry in self.extra.get((service, event_id), ()):
            if entry.category not in found and entry.applies(event_data):
                found.append(entry.category)
        return service, tuple(found)

    def conditional(self, channel: str, event_id: int) -> bool:
        """Whether an EventData field decides part of this event kind's categories."""
        service = self.services.get(channel.lower())
        return any(entry.when for entry in self.extra.get((service or "", event_id), ()))

    def windows_logsource(
        self, channel: str, event_id: int, event_data: Mapping[str, Any] | None = None
    ) -> dict[str, str]:
        logsource = {"product": "windows"}
        service, categories = self.windows_categories(channel, event_id, event_data)
        if service:
            logsource["service"] = service
            if categories:
                logsource["category"] = categories[0]
        return logsource

    def tag(self, event: Event) -> Event:
        """Set ``socflow.logsource`` on a Windows event (in place) and return it."""
        channel = get_field(event, "winlog.channel")
        code: Any = get_field(event, "winlog.event_id")
        if isinstance(channel, str) and isinstance(code, int):
            data = get_field(event, "winlog.event_data")
            event.setdefault("socflow", {})["logsource"] = self.windows_logsource(
                channel, code, data if isinstance(data, Mapping) else None
            )
        return event


def _key(text: Any) -> tuple[str, int]:
    service, _, code = str(text).rpartition(":")
    return service, int(code)
