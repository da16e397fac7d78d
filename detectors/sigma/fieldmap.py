"""Where a Sigma field name lives in a socflow event: the mapping files in ``config/sigma/``.

pySigma's processing pipelines rewrite a *rule* for one backend. Here the same rule must meet
events of several shapes (a ``process_creation`` rule sees Sysmon 1 and Security 4688, whose
field names differ), so the choice depends on the event's route as well as on the rule. The
files therefore hold a list of ``mappings`` entries, applied in order (later ones win)::

    mappings:
      - name: windows-security-process-creation
        event: {product: windows, service: security}   # the event's logsource must have these
                                                        # ("!x": must not be x)
        rule: {category: process_creation}              # the rule's logsource must name these
        default: winlog.event_data.{field}              # where unmapped fields live (a path
                                                        # or a list; {service}, {product} are
                                                        # the event's)
        fields: {Image: winlog.event_data.NewProcessName, ...}   # a path or a list of paths

A field mapped to a list of paths takes the first path present in the event. ``event.category``
is tested against every category the event belongs to.

Placeholders for the ``expand`` modifier are read from ``placeholders.yml`` in the same folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from detectors.errors import RuleLoadError

# (product, service, categories) of an event, as the engine routes it.
EventRoute = tuple[str | None, str | None, tuple[str, ...]]
# (product, category, service) of a rule.
RuleSource = tuple[str | None, str | None, str | None]

# libyaml's safe loader when built (the same documents, parsed 10x as fast): read at every start-up.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class MappingEntry:
    name: str
    event: Mapping[str, str] = field(default_factory=dict)
    rule: Mapping[str, str] = field(default_factory=dict)
    default: tuple[str, ...] | None = None
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def applies(self, route: EventRoute, source: RuleSource) -> bool:
        product, service, categories = route
        for key, wanted in self.event.items():
            negate = wanted.startswith("!")
            value = wanted[1:] if negate else wanted
            if key == "product":
                found = product == value
            elif key == "service":
                found = service == value
            else:
                found = value in categories
            if found == negate:
                return False
        rule_values = {"product": source[0], "category": source[1], "service": source[2]}
        return all(rule_values.get(key) == wanted for key, wanted in self.rule.items())


@dataclass(frozen=True)
class FieldMap:
    """The resolved mapping for one (event route, rule logsource) pair."""

    default: tuple[str, ...]
    fields: Mapping[str, tuple[str, ...]]
    # Paths by field name: one map serves every rule of a logsource on a route (the engine
    # keeps it), and their fields recur.
    _paths: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    def paths(self, sigma_field: str) -> tuple[str, ...]:
        found = self._paths.get(sigma_field)
        if found is None:
            found = self.fields.get(sigma_field) or tuple(
                dict.fromkeys(template.replace("{field}", sigma_field) for template in self.default))
            self._paths[sigma_field] = found
        return found

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.default, tuple(sorted(self.fields.items())))


@dataclass(frozen=True)
class FieldMappings:
    entries: tuple[MappingEntry, ...]
    placeholders: Mapping[str, tuple[str, ...]]

    @classmethod
    def load(cls, directory: Path) -> FieldMappings:
        entries: list[MappingEntry] = []
        placeholders: dict[str, tuple[str, ...]] = {}
        if not directory.is_dir():
            raise RuleLoadError("Sigma mapping folder not found", source=str(directory))
        for path in sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")]):
            try:
                data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}  # noqa: S506 - a safe loader
                for item in data.get("mappings") or ():
                    entries.append(
                        MappingEntry(
                            name=str(item.get("name", path.stem)),
                            event={str(k): str(v) for k, v in (item.get("event") or {}).items()},
                            rule={str(k): str(v) for k, v in (item.get("rule") or {}).items()},
                            default=_paths(item["default"]) if item.get("default") else None,
                            fields={str(k): _paths(v) for k, v in (item.get("fields") or {}).items()},
                        )
                    )
                for name, values in (data.get("placeholders") or {}).items():
                    placeholders[str(name)] = tuple(str(v) for v in (values or ()))
            except (OSError, yaml.YAMLError, AttributeError, TypeError) as error:
                raise RuleLoadError(f"invalid Sigma mapping file: {error}", source=str(path)) from error
        return cls(entries=tuple(entries), placeholders=placeholders)

    def resolve(self, route: EventRoute, source: RuleSource) -> FieldMap:
        default: tuple[str, ...] = ("{field}",)
        fields: dict[str, tuple[str, ...]] = {}
        for entry in self.entries:
            if entry.applies(route, source):
                if entry.default:
                    default = entry.default
                fields.update(entry.fields)
        product, service, _ = route

        def fill(paths: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(p.replace("{service}", service or "").replace("{product}", product or "") for p in paths)

        return FieldMap(default=fill(default), fields={name: fill(paths) for name, paths in fields.items()})


def _paths(value: Any) -> tuple[str, ...]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(str(v) for v in value)
    return (str(value),)
