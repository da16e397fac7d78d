"""Issued reports kept under ``<data-dir>/reports/``: each file with its SHA-256 in
``index.json`` (newest last), the inventory snapshot the next report compares with, and the
digest recorded in the audit trail (action ``report.issue``) where this build has one.

The CLI, the scheduler (another process, or a CronJob) and the console may issue at once: the
index is re-read and rewritten under an exclusive ``flock`` on ``index.json.lock``, and an id
already in the index gets a suffix, so no issue overwrites another's entry or files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from alerts.filelock import exclusive

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
          now: datetime, actor: str, audit: Any = None, source_ip: str | None = None) -> dict[str, Any]:
    """Archive ``files`` (format -> bytes) of ``report``; record each digest; return the entry."""
    with exclusive(root / f"{INDEX}.lock"):
        return _issue(root, report, files, inventory=inventory, now=now, actor=actor, audit=audit,
                      source_ip=source_ip)


def _issue(root: Path, report: Mapping[str, Any], files: Mapping[str, bytes], *, inventory: Mapping[str, Any],
           now: datetime, actor: str, audit: Any, source_ip: str | None) -> dict[str, Any]:
    meta = report["report"]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{meta['kind']}-{meta['period']['label']}-{meta['scope']['label']}"
                  f"-{now:%Y%m%dT%H%M%S}")
    taken = {entry.get("id") for entry in _read_index(root)}
    base, copy = stem, 1
    while stem in taken:  # two issues of one report within a second
        copy += 1
        stem = f"{base}-{copy}"
    entry: dict[str, Any] = {"id": stem, "kind": meta["kind"], "title": meta["title"],
                             "period": meta["period"]["label"], "scope": meta["scope"]["label"],
                             "lang": meta.get("lang"), "issued_at": now.isoformat(), "issued_by": actor,
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
                              after={fmt: item["sha256"] for fmt, item in entry["files"].items()}, now=now,
                              source_ip=source_ip)
        entry["audit_seq"] = record.get("seq") if isinstance(record, Mapping) else None
    reports = [*_read_index(root), entry]
    _write_atomic(root / INDEX, (json.dumps({"reports": reports}, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return entry


def find(root: Path, report_id: str) -> dict[str, Any] | None:
    """The index's entry ``report_id`` (None when the index knows no such report)."""
    return next((entry for entry in _read_index(root) if entry.get("id") == report_id), None)


def file_path(root: Path, entry: Mapping[str, Any], fmt: str) -> Path | None:
    """The archived file of ``entry`` in ``fmt``: only a plain name inside ``root`` (an edited
    index naming ``../x`` or an absolute path gets None, never a file outside the archive)."""
    item = entry.get("files", {}).get(fmt)
    name = item.get("name") if isinstance(item, Mapping) else None
    if not isinstance(name, str) or not name or name != os.path.basename(name) or name.startswith("."):
        return None
    path = root / name
    return path if path.resolve().parent == root.resolve() else None


def verify(root: Path, entry: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each file's SHA-256 recomputed against the index: format -> {ok, sha256 (actual), reason}."""
    found: dict[str, dict[str, Any]] = {}
    for fmt, item in sorted(entry.get("files", {}).items()):
        path = file_path(root, entry, fmt)
        if path is None or not path.is_file():
            found[fmt] = {"ok": False, "sha256": None, "reason": "file missing from the archive"}
            continue
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        actual = digest.hexdigest()
        ok = actual == item.get("sha256")
        found[fmt] = {"ok": ok, "sha256": actual, "reason": None if ok else "digest differs from the index"}
    return found


def audit_trail(client: Any, index: str, head_file: Path) -> Any:
    """The hash-chained trail where this build has one (console-core), else None."""
    try:
        from alerts.audit.trail import AuditTrail
    except ImportError:
        return None
    return AuditTrail(client, index, head_file) if client is not None else None
