"""The end of ``socflow demo``: the console over the demo's alerts, and a login to try it.

Writes ``<demo data dir>/console.yaml`` (the settings of ``config/socflow.yaml`` pointed at the
demo's own indices: its alerts alias, event store, audit trail, incidents and saved filters,
never mixed with real ones), creates the analyst ``demo`` with a fresh random password
(audited, like any user change) and returns the lines that say how to open it. Each demo run
starts the console's demo state afresh: the demo's audit, incidents and saved-filter indices
are deleted with the data dir they belong to.
"""

from __future__ import annotations

import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from alerts.settings import DEFAULT_CONFIG, Settings, load_settings

DEMO_USER = "demo"
DEMO_INDICES = {"audit": "socflow-demo-audit", "incidents": "socflow-demo-incidents",
                "filters": "socflow-demo-saved-filters", "events": "socflow-demo-events"}


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = _merge(merged.get(key) or {}, value) if isinstance(value, dict) else value
    return merged


def prepare_console(settings: Settings, client: Any, *, es_url: str, alerts_prefix: str,
                    indices: dict[str, str] | None = None, now: datetime | None = None) -> tuple[Path, str]:
    """Write the demo console's settings file and create its analyst; returns (file, password)."""
    from alerts.audit.trail import AuditTrail
    from alerts.users import service
    from alerts.users.store import UserStore

    names = indices or DEMO_INDICES
    # Afresh each run (also with --keep): the demo's audit chain, its head file and its users go
    # together, or the next `audit verify` would find a head without its chain.
    for key in ("audit", "incidents", "filters"):
        client.indices.delete(index=names[key], ignore_unavailable=True)
    shutil.rmtree(settings.audit_dir, ignore_errors=True)
    (settings.console_dir / "users.json").unlink(missing_ok=True)
    base = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8")) if DEFAULT_CONFIG.exists() else {}
    config = _merge(base or {}, {
        "data_dir": str(settings.data_dir),
        "elasticsearch": {"url": es_url, "index_prefix": alerts_prefix},
        "console": {"audit_index": names["audit"]},
        "triage": {"incidents_index": names["incidents"], "filters_index": names["filters"],
                   "events_alias": names["events"]},
    })
    path = settings.data_dir / "console.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# The console over socflow demo's alerts (written by socflow demo; see README).\n"
                    + yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    console_settings = load_settings(path)
    password = secrets.token_urlsafe(12)
    store = UserStore(console_settings.console_dir / "users.json",
                      min_password_length=console_settings.console.min_password_length)
    audit = AuditTrail(client, names["audit"], console_settings.audit_dir / "chain-head")
    actor = service.Actor(name="socflow-demo", now=now or datetime.now(UTC))
    service.add_user(store, audit, actor, DEMO_USER, role="analyst", password=password)
    return path, password


def invitation(path: Path, password: str, settings: Settings) -> list[str]:
    """What the demo prints last."""
    options = load_settings(path).console
    return [
        "The analysts' console over these alerts:",
        f"  socflow --config {path} serve",
        f"  then open http://{options.host}:{options.port}/queue and log in as "
        f"{DEMO_USER} / {password} (analyst; the demo's alerts are waiting in the queue)",
    ]
