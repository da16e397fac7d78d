"""Audit log of the 1022 citizen hotline (call-center application) and of the IOC application.

The 1022 hotline takes citizens' requests and complaints by phone, Zalo and web; the IOC
(intelligent operations centre) shows the province's dashboards and cameras. Both applications,
built by the same integrator on one framework, write one JSON object per line for every
administrative or data-access action::

    {"ts":"2026-12-07T03:12:00.123Z","app":"hotline-1022","node":"hotline-crm01","actor":{"user":"op.lan",
     "role":"agent"},"action":"citizen_record.export","target":{"type":"citizen_request","id":"YC-2026-118204"},
     "count":1200,"client_ip":"10.10.5.44","result":"success","session":"c0f1..."}

(one line, wrapped here). ``app`` is ``hotline-1022`` or ``ioc``; ``action`` a dotted name
(``auth.login``, ``user.create``, ``user.role_change``, ``citizen_record.view`` / ``export`` /
``delete``, ``call_recording.download``, ``config.update``, ``audit.purge``); ``result``
``success`` / ``failure`` / ``denied``.

ECS: ``event.action`` (the action), ``event.outcome``, ``event.category`` (authentication, iam
for ``user.*``, configuration for ``config.*``, else database), ``user.name`` / ``user.roles``,
``user.target.name`` (``target.user``), ``source.ip``, ``host.name``; the record under
``callcenter``. Sigma logsource ``{product: callcenter, service: audit}`` for the hotline and
``{product: ioc, service: audit}`` for the IOC.
"""

from __future__ import annotations

import json
from typing import Any

from ingest.errors import ParseError
from ingest.parsers.catalogue import SourceFormat
from ingest.parsers.dns import endpoint
from ingest.schema import Event, format_timestamp, parse_timestamp, stable_id

LOGSOURCE = {"product": "callcenter", "service": "audit"}
IOC_LOGSOURCE = {"product": "ioc", "service": "audit"}
_APPS = {"hotline-1022": LOGSOURCE, "ioc": IOC_LOGSOURCE}
_OUTCOMES = {"success": "success", "failure": "failure", "denied": "failure"}


def _category(action: str) -> str:
    if action.startswith("auth."):
        return "authentication"
    if action.startswith("user."):
        return "iam"
    if action.startswith(("config.", "audit.")):
        return "configuration"
    return "database"


def _string(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    return value if isinstance(value, str) and value else None


def _object(record: dict[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def parse_line(line: str, *, source: str, hint: str = "") -> tuple[str, Event]:
    try:
        record = json.loads(line)
    except ValueError as error:
        raise ParseError(f"not a JSON audit record: {error}", source=source) from None
    if not isinstance(record, dict):
        raise ParseError("audit record is not a JSON object", source=source)
    app, action, stamp = _string(record, "app"), _string(record, "action"), _string(record, "ts")
    if app not in _APPS:
        raise ParseError(f"unknown application {str(record.get('app'))[:40]!r} (hotline-1022, ioc)", source=source)
    if action is None or stamp is None:
        raise ParseError("audit record without action or ts", source=source)
    try:
        timestamp = format_timestamp(parse_timestamp(stamp))
    except (ValueError, OverflowError) as error:
        raise ParseError(f"bad audit time {stamp[:40]!r}: {error}", source=source) from None
    event: Event = {
        "@timestamp": timestamp,
        "event": {"kind": "event", "module": app, "dataset": f"{app}.audit", "original": line,
                  "action": action, "category": [_category(action)],
                  "id": stable_id(app, stamp, _string(record, "session"), action, line)},
        "callcenter": record,
        "socflow": {"logsource": dict(_APPS[app])},
    }
    outcome = _OUTCOMES.get(_string(record, "result") or "")
    if outcome:
        event["event"]["outcome"] = outcome
    actor, target = _object(record, "actor"), _object(record, "target")
    user: dict[str, Any] = {}
    if _string(actor, "user"):
        user["name"] = actor["user"]
    if _string(actor, "role"):
        user["roles"] = [actor["role"]]
    if _string(target, "user"):
        user["target"] = {"name": target["user"]}
    if user:
        event["user"] = user
    if _string(record, "client_ip"):
        event["source"] = endpoint(record["client_ip"])
    if _string(record, "node"):
        event["host"] = {"name": record["node"]}
    return f"{app}.audit", event


def looks_like(line: str) -> bool:
    return line.startswith("{") and '"app":"' in line.replace(" ", "") and '"action"' in line and (
        "hotline-1022" in line or '"ioc"' in line)


FORMATS = (
    SourceFormat(
        name="callcenter", title="1022 hotline (call-center) and IOC application audit (JSON lines)",
        logsource=LOGSOURCE, produces=(IOC_LOGSOURCE,),
        sample='{"ts":"2026-12-07T03:12:00.123Z","app":"hotline-1022","node":"hotline-crm01","actor":{"user":"op.lan",'
               '"role":"agent"},"action":"citizen_record.export","target":{"type":"citizen_request",'
               '"id":"YC-2026-118204"},"count":1200,"client_ip":"10.10.5.44","result":"success"}',
        parse=parse_line, looks_like=looks_like, aliases=("hotline", "ioc")),
)
