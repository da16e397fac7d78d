"""Issued reports kept under ``<data-dir>/reports/``: each file with its SHA-256 in
``index.json`` (newest last), the inventory snapshot the next report compares with, and the
digest recorded in the audit trail (action ``report.issue``) where this build has one."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

INDEX = "index.json"


def _read_index(root: Path) -> list[dict[str, Any]]:
    path = root / INDEX
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data.get("reports", []))


def list_reports(root: Path) -> list[dict[str, Any]]:
    """Issued reports, newest first (what the console's auditor page lists)."""
    return list(reversed(_read_index(root)))


def previous_inventory(root: Path, current_digest: str) -> dict[str, list[Any]] | None:
    """The inventory snapshot of the newest issued report (None when none was issued)."""
    for entry in reversed(_read_index(root)):
        snapshot = root / "inventory" / f"{entry.get('inventory_sha256')}.json"
        if snapshot.is_file():
            data: dict[str, list[Any]] = json.loads(snapshot.read_text(encoding="utf-8"))
            return data
    return None


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def issue(root: Path, report: Mapping[str, Any], files: Mapping[str, bytes], *, inventory: Mapping[str, Any],
          now: datetime, actor: str, audit: Any = None) -> dict[str, Any]:
    """Archive ``files`` (format -> bytes) of ``report``; record each digest; return the entry."""
    meta = report["report"]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{meta['kind']}-{meta['period']['label']}-{meta['scope']['label']}"
                  f"-{now:%Y%m%dT%H%M%S}")
    entry: dict[str, Any] = {"id": stem, "kind": meta["kind"], "title": meta["title"],
                             "period": meta["period"]["label"], "scope": meta["scope"]["label"],
                             "issued_at": now.isoformat(), "issued_by": actor,
                             "inventory_sha256": meta["inventory_sha256"], "files": {}}
    for fmt, data in sorted(files.items()):
        name = f"{stem}.{fmt}"
        _write_atomic(root / name, data)
        entry["files"][fmt] = {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    snapshot = root / "inventory" / f"{meta['inventory_sha256']}.json"
    if not snapshot.exists():
        _write_atomic(snapshot, json.dumps(dict(inventory), sort_keys=True).encode("utf-8"))
    if audit is not None:
        record = audit.append(actor=actor, action="report.issue", target=f"report:{stem}",
                              after={fmt: item["sha256"] for fmt, item in entry["files"].items()}, now=now)
        entry["audit_seq"] = record.get("seq") if isinstance(record, Mapping) else None
    reports = [*_read_index(root), entry]
    _write_atomic(root / INDEX, (json.dumps({"reports": reports}, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return entry


def audit_trail(client: Any, index: str, head_file: Path) -> Any:
    """The hash-chained trail where this build has one (console-core), else None."""
    try:
        from alerts.audit.trail import AuditTrail
    except ImportError:
        return None
    return AuditTrail(client, index, head_file) if client is not None else None
