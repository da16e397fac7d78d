"""A versioned store of imported rule releases, with local tuning that outlives each release.

Layout under ``<data-dir>/rules/``::

    releases/<name>/...            the release's rule files, as they came (nothing else is kept)
    releases/<name>/RELEASE.json   name, digest, import time, source, every rule (id, path, level,
                                   status, logsource, file digest) and every file left out, with why
    CURRENT                        the name of the release in use
    tuning/filters/*.yml           local Sigma filter rules (``filter:`` documents)
    tuning/tuning.yaml             level overrides and disabled rules, each with its reason
    active/                        what the engine loads: the current release's selected rules with
                                   the tuning applied (rebuilt on every import and tuning change)
    active/ACTIVE.json             how ``active/`` was built: release, selection, tuning, orphans

A release's digest is SHA-256 over the sorted ``<path> <file SHA-256>`` lines of its rule files,
so the same rules give the same digest whatever the zip or folder they came in. Importing keeps
earlier releases side by side and says what changed since the current one (added, modified,
deprecated, removed rules, by level). Tuning lives apart from the releases and is re-applied to
each: a filter whose target rules are gone from a new release is *orphaned* — reported by the
import and left out of ``active/`` until fixed — and so are overrides of vanished rules.

Nothing here imports the Flink job; the engine reads ``active/`` like any rule directory.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from detectors.errors import DetectorError

MAX_RULE_BYTES = 10 * 1024 * 1024
MAX_RELEASE_BYTES = 1024 * 1024 * 1024
LEVEL_ORDER = ("informational", "low", "medium", "high", "critical")
STATUSES = ("stable", "test", "experimental", "deprecated", "unsupported")
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RuleStoreError(DetectorError):
    """A release or a tuning change the store refuses, with the reason."""


@dataclass(frozen=True)
class Selection:
    """Which rules of a release are enabled (from the settings model's ``rules`` section)."""

    statuses: frozenset[str] = frozenset({"stable", "test"})
    min_level: str = "low"
    # Logsources to take (each a {product, category, service} subset); empty: every logsource.
    logsources: tuple[Mapping[str, str], ...] = ()

    def takes(self, rule: Mapping[str, Any], level: str) -> bool:
        if rule.get("status") not in self.statuses:
            return False
        if _level_rank(level) < _level_rank(self.min_level):
            return False
        if not self.logsources:
            return True
        source = rule.get("logsource") or {}
        return any(all(source.get(key) == value for key, value in wanted.items()) for wanted in self.logsources)

    def to_json(self) -> dict[str, Any]:
        return {"statuses": sorted(self.statuses), "min_level": self.min_level,
                "logsources": [dict(item) for item in self.logsources]}


def _level_rank(level: str | None) -> int:
    return LEVEL_ORDER.index(level) if level in LEVEL_ORDER else LEVEL_ORDER.index("medium")


@dataclass
class ImportResult:
    name: str
    digest: str
    rules: int
    skipped: list[dict[str, str]]
    previous: str | None
    changes: dict[str, dict[str, list[str]]]  # kind -> level -> rule ids
    orphans: list[str]
    active: int
    unchanged: bool = False  # the same digest as the current release: nothing imported

    def counts(self) -> dict[str, dict[str, int]]:
        return {kind: {level: len(ids) for level, ids in by_level.items()} for kind, by_level in self.changes.items()}


@dataclass
class _Tuning:
    levels: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> {level, reason}
    disabled: dict[str, str] = field(default_factory=dict)  # id -> reason


class RuleStore:
    """The rule store rooted at ``<data-dir>/rules``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.releases = root / "releases"
        self.tuning_dir = root / "tuning"
        self.filters_dir = self.tuning_dir / "filters"
        self.tuning_file = self.tuning_dir / "tuning.yaml"
        self.active = root / "active"

    # ------------------------------------------------------------------ state

    @property
    def current(self) -> str | None:
        marker = self.root / "CURRENT"
        return marker.read_text(encoding="utf-8").strip() or None if marker.is_file() else None

    def manifest(self, name: str | None = None) -> dict[str, Any] | None:
        name = name or self.current
        if name is None:
            return None
        path = self.releases / name / "RELEASE.json"
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def release_names(self) -> list[str]:
        return sorted(p.name for p in self.releases.glob("*") if (p / "RELEASE.json").is_file())

    def _tuning(self) -> _Tuning:
        if not self.tuning_file.is_file():
            return _Tuning()
        data = yaml.safe_load(self.tuning_file.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise RuleStoreError("not a mapping of levels and disabled rules", source=str(self.tuning_file))
        return _Tuning(levels={str(k): dict(v) for k, v in (data.get("levels") or {}).items()},
                       disabled={str(k): str(v) for k, v in (data.get("disabled") or {}).items()})

    def _save_tuning(self, tuning: _Tuning) -> None:
        self.tuning_dir.mkdir(parents=True, exist_ok=True)
        text = ("# Local tuning, re-applied to every imported release (socflow rules tune ...).\n"
                + yaml.safe_dump({"levels": tuning.levels, "disabled": tuning.disabled}, sort_keys=True,
                                 allow_unicode=True))
        _write_atomic(self.tuning_file, text)

    # ------------------------------------------------------------------ import

    def import_release(self, source: Path, *, now: datetime, selection: Selection,
                       name: str | None = None) -> ImportResult:
        """Import a release zip or folder, make it current and rebuild ``active/``."""
        files, skipped = _read_release(source)
        rules: dict[str, dict[str, Any]] = {}
        for relpath, data in sorted(files.items()):
            entry = _rule_entry(relpath, data)
            if isinstance(entry, str):
                skipped.append({"path": relpath, "reason": entry})
                continue
            if entry["id"] in rules:
                skipped.append({"path": relpath, "reason": f"duplicate rule id {entry['id']} "
                                                           f"(first in {rules[entry['id']]['path']})"})
                continue
            rules[entry["id"]] = entry
        if not rules:
            raise RuleStoreError("no Sigma rule in the release", source=str(source))
        kept = {entry["path"]: files[entry["path"]] for entry in rules.values()}
        digest = release_digest(kept)
        previous = self.manifest()
        if previous is not None and previous["digest"] == digest:
            active = self.rebuild_active(selection)
            return ImportResult(previous["name"], digest, len(rules), skipped, previous["name"],
                                _changes(previous["rules"], rules), active["orphans"], active["rules"],
                                unchanged=True)
        name = name or _release_name(source)
        _check_name(name)
        target = self.releases / name
        if target.exists():
            raise RuleStoreError(f"a release named {name!r} is already in the store with another digest: "
                                 "give the import another --name", source=str(source))
        staging = self.releases / f".{name}.importing"
        if staging.exists():
            shutil.rmtree(staging)
        for relpath, data in kept.items():
            path = staging / relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        manifest = {"name": name, "digest": digest, "imported_at": now.isoformat(), "source": str(source),
                    "rules": rules, "skipped": skipped}
        (staging / "RELEASE.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        staging.rename(target)
        _write_atomic(self.root / "CURRENT", name + "\n")
        active = self.rebuild_active(selection)
        return ImportResult(name, digest, len(rules), skipped, previous["name"] if previous else None,
                            _changes(previous["rules"] if previous else {}, rules), active["orphans"],
                            active["rules"])

    # ------------------------------------------------------------------ tuning

    def add_filter(self, path: Path, selection: Selection) -> dict[str, Any]:
        """Copy a Sigma filter rule into the tuning (refused if it is not one)."""
        try:
            if path.stat().st_size > MAX_RULE_BYTES:
                raise RuleStoreError("larger than 10 MB: not a filter rule", source=str(path))
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise RuleStoreError(f"not a readable YAML file: {error}", source=str(path)) from error
        return self.add_filter_text(path.name, text, selection, source=str(path))

    def add_filter_text(self, name: str, text: str, selection: Selection, *, source: str | None = None
                        ) -> dict[str, Any]:
        """Save a Sigma filter rule given as text under ``filters/<name>`` (refused if it is not one)."""
        source = source or name
        if not name.endswith((".yml", ".yaml")) or "/" in name or "\\" in name or name.startswith("."):
            raise RuleStoreError(f"filter file name {name!r} is not a plain *.yml name", source=source)
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise RuleStoreError(f"not a readable YAML file: {error}", source=source) from error
        if not isinstance(document, dict) or not isinstance(document.get("filter"), dict):
            raise RuleStoreError("not a Sigma filter rule (no filter: section)", source=source)
        targets = document["filter"].get("rules")
        if not targets or not isinstance(targets, list | str):
            raise RuleStoreError("a filter must name the rules it applies to (filter.rules)", source=source)
        from sigma.exceptions import SigmaError
        from sigma.filters import SigmaFilter

        try:
            SigmaFilter.from_dict(document)
        except (SigmaError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise RuleStoreError(f"not valid Sigma: {error}", source=source) from error
        _write_atomic(self.filters_dir / name, text)
        return self.rebuild_active(selection)

    def tuning(self) -> dict[str, Any]:
        """The local tuning as data: ``levels`` (id -> {level, reason}), ``disabled`` (id -> reason)
        and ``filters`` (file name -> {rules: [ids or names], text})."""
        tuning = self._tuning()
        filters: dict[str, dict[str, Any]] = {}
        for path in sorted(self.filters_dir.glob("*.y*ml")) if self.filters_dir.is_dir() else []:
            text = path.read_text(encoding="utf-8")
            try:
                document = yaml.safe_load(text) or {}
                targets = document.get("filter", {}).get("rules") or []
            except (yaml.YAMLError, AttributeError):
                targets = []
            filters[path.name] = {"rules": [targets] if isinstance(targets, str) else [str(t) for t in targets],
                                  "text": text}
        return {"levels": tuning.levels, "disabled": tuning.disabled, "filters": filters}

    def snapshot(self) -> dict[str, str | None]:
        """The tuning files' texts (``None``: absent), to put back with :meth:`restore`."""
        files = [self.tuning_file, *(sorted(self.filters_dir.glob("*.y*ml")) if self.filters_dir.is_dir() else [])]
        return {str(path): path.read_text(encoding="utf-8") if path.is_file() else None for path in files}

    def restore(self, snapshot: Mapping[str, str | None], selection: Selection) -> dict[str, Any]:
        """Put the tuning back as :meth:`snapshot` saw it (a change whose audit record failed)."""
        present = {str(path) for path in self.filters_dir.glob("*.y*ml")} if self.filters_dir.is_dir() else set()
        for added in present - set(snapshot):
            Path(added).unlink()
        for name, text in snapshot.items():
            if text is None:
                Path(name).unlink(missing_ok=True)
            else:
                _write_atomic(Path(name), text)
        return self.rebuild_active(selection)

    def set_level(self, rule_id: str, level: str, reason: str, selection: Selection) -> dict[str, Any]:
        if level not in LEVEL_ORDER:
            raise RuleStoreError(f"level must be one of {', '.join(LEVEL_ORDER)}, not {level!r}")
        self._require_reason(reason)
        self._require_rule(rule_id)
        tuning = self._tuning()
        tuning.levels[rule_id] = {"level": level, "reason": reason}
        self._save_tuning(tuning)
        return self.rebuild_active(selection)

    def disable(self, rule_id: str, reason: str, selection: Selection) -> dict[str, Any]:
        self._require_reason(reason)
        self._require_rule(rule_id)
        tuning = self._tuning()
        tuning.disabled[rule_id] = reason
        self._save_tuning(tuning)
        return self.rebuild_active(selection)

    def enable(self, rule_id: str, selection: Selection) -> dict[str, Any]:
        tuning = self._tuning()
        if tuning.disabled.pop(rule_id, None) is None:
            raise RuleStoreError(f"rule {rule_id} is not disabled")
        self._save_tuning(tuning)
        return self.rebuild_active(selection)

    @staticmethod
    def _require_reason(reason: str) -> None:
        if not reason.strip():
            raise RuleStoreError("a reason is required (it is kept with the change)")

    def _require_rule(self, rule_id: str) -> None:
        manifest = self.manifest()
        if manifest is None:
            raise RuleStoreError("no release imported yet (socflow rules import)")
        if rule_id not in manifest["rules"]:
            raise RuleStoreError(f"no rule {rule_id} in the current release {manifest['name']}")

    # ------------------------------------------------------------------ the active set

    def rebuild_active(self, selection: Selection) -> dict[str, Any]:
        """Write ``active/`` from the current release, the selection and the tuning."""
        manifest = self.manifest()
        if manifest is None:
            raise RuleStoreError("no release imported yet (socflow rules import)")
        tuning = self._tuning()
        staging = self.root / ".active.building"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        enabled = self._write_rules(manifest, tuning, selection, staging / "release")
        filters, orphans = self._write_filters(manifest, staging / "local-filters")
        rules: dict[str, Any] = manifest["rules"]
        for rule_id in sorted(set(tuning.levels) | set(tuning.disabled)):
            if rule_id not in rules:
                kind = "level override" if rule_id in tuning.levels else "disabled entry"
                orphans.append(f"{kind} for rule {rule_id}: not in release {manifest['name']}")
        summary = {"release": manifest["name"], "digest": manifest["digest"], "selection": selection.to_json(),
                   "rules": len(enabled), "filters": filters, "level_overrides": len(tuning.levels),
                   "disabled": len(tuning.disabled), "orphans": orphans}
        (staging / "ACTIVE.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        # Swap: the old set stays whole until the new one is complete.
        old = self.root / ".active.old"
        if old.exists():
            shutil.rmtree(old)
        if self.active.exists():
            self.active.rename(old)
        staging.rename(self.active)
        if old.exists():
            shutil.rmtree(old)
        return summary

    def _write_rules(self, manifest: Mapping[str, Any], tuning: _Tuning, selection: Selection,
                     folder: Path) -> list[str]:
        release_dir = self.releases / manifest["name"]
        enabled: list[str] = []
        for rule_id, entry in sorted(manifest["rules"].items()):
            override = tuning.levels.get(rule_id)
            level = override["level"] if override else entry.get("level") or "medium"
            if rule_id in tuning.disabled or not selection.takes(entry, level):
                continue
            target = folder / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            if override:
                document = yaml.safe_load((release_dir / entry["path"]).read_text(encoding="utf-8"))
                document["level"] = level
                target.write_text(f"# {entry['path']} of release {manifest['name']}, level overridden locally: "
                                  f"{_one_line(override['reason'])}\n"
                                  + yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
            else:
                shutil.copyfile(release_dir / entry["path"], target)
            enabled.append(rule_id)
        return enabled

    def _write_filters(self, manifest: Mapping[str, Any], folder: Path) -> tuple[list[str], list[str]]:
        """Copy the local filters whose targets the release has; the others are orphans."""
        rules: Mapping[str, Any] = manifest["rules"]
        names = {entry.get("name") for entry in rules.values() if entry.get("name")}
        filters: list[str] = []
        orphans: list[str] = []
        for path in sorted(self.filters_dir.glob("*.y*ml")) if self.filters_dir.is_dir() else []:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            targets = document.get("filter", {}).get("rules") or []
            targets = [targets] if isinstance(targets, str) else [str(t) for t in targets]
            gone = [t for t in targets if t not in rules and t not in names]
            if gone:
                orphans.append(f"filter {path.name}: target rule(s) {', '.join(gone)} not in release "
                               f"{manifest['name']}: the filter is left out until it is fixed")
                continue
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / path.name)
            filters.append(path.name)
        return filters, orphans


# ---------------------------------------------------------------------- reading a release


def release_digest(files: Mapping[str, bytes]) -> str:
    """SHA-256 over the sorted ``<path> <SHA-256 of the file>`` lines."""
    lines = "".join(f"{path} {hashlib.sha256(data).hexdigest()}\n" for path, data in sorted(files.items()))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def _read_release(source: Path) -> tuple[dict[str, bytes], list[dict[str, str]]]:
    """Rule-like files (``*.yml`` / ``*.yaml``) of a zip or folder by relative path, and the skipped."""
    if source.is_dir():
        return _read_folder(source)
    if source.is_file() and zipfile.is_zipfile(source):
        return _read_zip(source)
    if not source.exists():
        raise RuleStoreError("no such file or folder", source=str(source))
    raise RuleStoreError("neither a folder nor a zip archive", source=str(source))


def _wanted(relpath: str) -> bool:
    return relpath.endswith((".yml", ".yaml")) and not relpath.endswith((".tests.yml", ".tests.yaml"))


def _read_folder(source: Path) -> tuple[dict[str, bytes], list[dict[str, str]]]:
    files: dict[str, bytes] = {}
    skipped: list[dict[str, str]] = []
    for path in sorted(source.rglob("*")):
        relpath = path.relative_to(source).as_posix()
        if not path.is_file() or not _wanted(relpath) or any(part.startswith(".") for part in path.parts):
            continue
        if path.is_symlink():
            skipped.append({"path": relpath, "reason": "a symbolic link: not followed"})
            continue
        size = path.stat().st_size
        if size > MAX_RULE_BYTES:
            skipped.append({"path": relpath, "reason": f"{size} bytes: larger than 10 MB"})
            continue
        files[relpath] = path.read_bytes()
    return files, skipped


def _read_zip(source: Path) -> tuple[dict[str, bytes], list[dict[str, str]]]:
    files: dict[str, bytes] = {}
    skipped: list[dict[str, str]] = []
    try:
        with zipfile.ZipFile(source) as archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
            for info in infos:
                name = PurePosixPath(info.filename.replace("\\", "/"))
                if name.is_absolute() or ".." in name.parts:
                    raise RuleStoreError(f"archive entry {info.filename!r} escapes the release folder: refused",
                                         source=str(source))
            if sum(info.file_size for info in infos) > MAX_RELEASE_BYTES:
                raise RuleStoreError("unpacks to more than 1 GB: refused", source=str(source))
            for info in infos:
                relpath = PurePosixPath(info.filename.replace("\\", "/")).as_posix()
                if not _wanted(relpath):
                    continue
                if info.file_size > MAX_RULE_BYTES:
                    skipped.append({"path": relpath, "reason": f"{info.file_size} bytes: larger than 10 MB"})
                    continue
                files[relpath] = archive.read(info)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise RuleStoreError(f"unreadable zip archive: {error}", source=str(source)) from error
    # A release zip usually holds one top folder (sigma-r2026-08-05/...): paths are kept below it.
    tops = {path.split("/", 1)[0] for path in files}
    if len(tops) == 1 and all("/" in path for path in files):
        top = tops.pop() + "/"
        files = {path[len(top):]: data for path, data in files.items()}
        skipped = [{**item, "path": item["path"][len(top):] if item["path"].startswith(top) else item["path"]}
                   for item in skipped]
    return files, skipped


def _rule_entry(relpath: str, data: bytes) -> dict[str, Any] | str:
    """The manifest entry of a rule file, or why the file is not taken."""
    try:
        documents = [doc for doc in yaml.load_all(data.decode("utf-8"), Loader=_LOADER) if doc is not None]
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except yaml.YAMLError as error:
        return f"not YAML: {_one_line(str(error))}"
    except RecursionError:
        return "not YAML: nested too deeply"
    rules = [doc for doc in documents if isinstance(doc, dict) and ("detection" in doc or "correlation" in doc)]
    if not rules:
        return "not a Sigma rule (no detection or correlation)"
    rule = rules[0]
    if rule.get("id") is None:
        return "a Sigma rule without an id: it cannot be tracked across releases"
    raw_logsource = rule.get("logsource")
    logsource: dict[str, Any] = raw_logsource if isinstance(raw_logsource, dict) else {}
    status = str(rule.get("status") or "experimental")
    if "/deprecated/" in f"/{relpath}":
        status = "deprecated"
    return {"id": str(rule["id"]), "path": relpath, "title": str(rule.get("title") or ""),
            "name": str(rule["name"]) if rule.get("name") else None,
            "level": str(rule.get("level") or "medium"), "status": status,
            "logsource": {k: str(v) for k, v in logsource.items() if k in ("product", "category", "service")},
            "sha256": hashlib.sha256(data).hexdigest()}


def _changes(old: Mapping[str, Mapping[str, Any]],
             new: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, list[str]]]:
    changes: dict[str, dict[str, list[str]]] = {"added": {}, "modified": {}, "deprecated": {}, "removed": {}}

    def put(kind: str, rule: Mapping[str, Any], rule_id: str) -> None:
        changes[kind].setdefault(str(rule.get("level") or "medium"), []).append(rule_id)

    for rule_id, rule in new.items():
        before = old.get(rule_id)
        if before is None:
            put("added", rule, rule_id)
        elif rule.get("status") == "deprecated" and before.get("status") != "deprecated":
            put("deprecated", rule, rule_id)
        elif rule.get("sha256") != before.get("sha256"):
            put("modified", rule, rule_id)
    for rule_id, rule in old.items():
        if rule_id not in new:
            put("removed", rule, rule_id)
    for by_level in changes.values():
        for ids in by_level.values():
            ids.sort()
    return changes


def _release_name(source: Path) -> str:
    name = source.name
    for suffix in (".zip",):
        name = name.removesuffix(suffix)
    return name or "release"


def _check_name(name: str) -> None:
    if not name or name.startswith(".") or "/" in name or "\\" in name or name in ("..", "."):
        raise RuleStoreError(f"release name {name!r} is not a plain folder name")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def iter_level_counts(changes: Mapping[str, Mapping[str, Sequence[str]]]) -> Iterator[tuple[str, str, int]]:
    """(kind, level, count) rows, levels from critical down."""
    for kind in ("added", "modified", "deprecated", "removed"):
        for level in reversed(LEVEL_ORDER):
            count = len(changes.get(kind, {}).get(level, ()))
            if count:
                yield kind, level, count
