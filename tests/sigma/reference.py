"""An independent Sigma implementation to check the engine against: pySigma's SQLite backend.

Events are flattened into one SQLite table (text columns with case-insensitive collation,
missing fields as NULL; the backend itself treats NOT over NULL as true), each rule is compiled
by ``pysigma-backend-sqlite`` and run as a query restricted to the events of the rule's
logsource. Routing and the field *mapping* are configuration shared with the engine; what is
checked independently is the matching semantics (modifiers, wildcards, conditions).

Known limits of the reference (where it is the one that is wrong): SQLite folds case for ASCII
only, compares gt/lt operands as text, and cannot compile keyword rules or ``expand``
placeholders.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sigma.backends.sqlite import sqliteBackend
from sigma.backends.sqlite.runtime import ensure_fields
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError

_SYSTEM = {"EventID": "event_id", "Channel": "channel", "Provider_Name": "provider_name",
           "Computer": "computer_name"}
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")

Route = tuple[Any, ...]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        # Unnamed <Data> elements: one text, so `Data|contains` sees every element.
        return "\n".join("" if item is None else str(item) for item in value)
    if isinstance(value, dict):
        return None
    return str(value)


def flatten_windows(event: Mapping[str, Any], route: Route) -> dict[str, str | None]:
    """Sigma-named columns of a Windows event (the mapping of config/sigma/windows.yml)."""
    winlog = event["winlog"]
    data = winlog.get("event_data") or {}
    columns: dict[str, str | None] = {name: _text(winlog.get(key)) for name, key in _SYSTEM.items()}
    for key, value in data.items():
        columns.setdefault(key, _text(value))
        columns.setdefault(_NON_ALNUM.sub("", key), _text(value))
    _, service, categories = route
    if service == "security" and "process_creation" in categories:
        columns["Image"] = _text(data.get("NewProcessName"))
        columns["ParentImage"] = _text(data.get("ParentProcessName"))
    if "antivirus" in categories:
        columns["Signature"] = _text(data.get("Threat Name", data.get("ThreatName")))
        columns["Filename"] = _text(data.get("Path"))
    return columns


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _regexp(pattern: str, value: str | None) -> bool | None:
    if value is None:
        return None
    return re.search(pattern, value) is not None


class SqliteReference:
    """Flattened events in an in-memory SQLite table, queried with pySigma's SQLite backend."""

    def __init__(self, rows: Sequence[tuple[Route, Mapping[str, str | None]]]) -> None:
        self.connection = sqlite3.connect(":memory:")
        self.connection.create_function("REGEXP", 2, _regexp, deterministic=True)
        self.routes = sorted({route for route, _ in rows}, key=repr)
        names: dict[str, str] = {}
        for _, columns in rows:
            for name in columns:
                names.setdefault(name.lower(), name)
        column_sql = ", ".join(f"{_quote(name)} TEXT COLLATE NOCASE" for name in names.values())
        self.connection.execute(
            f"CREATE TABLE logs (rowid INTEGER PRIMARY KEY, route TEXT{', ' if column_sql else ''}{column_sql})"
        )
        for position, (route, columns) in enumerate(rows):
            values = {names[name.lower()]: value for name, value in columns.items()}
            keys = list(values)
            self.connection.execute(
                f"INSERT INTO logs (rowid, route{''.join(', ' + _quote(k) for k in keys)}) "
                f"VALUES (?, ?{', ?' * len(keys)})",
                [position, json.dumps(route), *values.values()],
            )
        self.connection.execute("CREATE INDEX logs_route ON logs (route)")
        self.backend = sqliteBackend()

    def match(self, rule_path: Path, rule_id: str, logsource: Mapping[str, str]) -> set[int] | str:
        """Row positions the rule matches, or the reason the reference cannot run it."""
        try:
            collection = SigmaCollection.from_yaml(rule_path.read_text(encoding="utf-8"))
            rule = next(r for r in collection.rules if str(r.id) == rule_id)
            query = self.backend.convert_rule(rule)[0]
            ensure_fields(self.connection, {"logs": self.backend.required_fields(rule)})
        except (SigmaError, StopIteration, NotImplementedError) as error:
            return f"{type(error).__name__}: {error}"
        routes = [json.dumps(route) for route in self.routes if applies(logsource, route)]
        if not routes:
            return set()
        found = re.match(r"SELECT \* FROM logs WHERE (.*)$", query, re.S)
        assert found, query
        sql = f"SELECT rowid FROM logs WHERE route IN ({', '.join('?' * len(routes))}) AND ({found.group(1)})"
        return {row[0] for row in self.connection.execute(sql, routes)}


def applies(logsource: Mapping[str, str], route: Iterable[Any]) -> bool:
    """A rule's logsource covers an event route when every field it names agrees."""
    product, service, categories = route
    if logsource.get("product") and logsource["product"] != product:
        return False
    if logsource.get("service") and logsource["service"] != service:
        return False
    return not (logsource.get("category") and logsource["category"] not in categories)
