"""Versioned rule sets: publish one atomically, load and switch to it in a running job.

A rule set is the Sigma rules (detections, filters, correlation rules) plus, optionally, the
suppressions and the detector settings. ``publish`` copies it into a staging directory, loads
every rule from that copy (a rule set that does not load entirely is refused with every reason,
never published half), then renames the copy to ``<store>/<version>/`` — the version is the
content digest, so a published directory is immutable and publishing the same content again
is a no-op — and replaces the ``current`` pointer file atomically (write + ``os.replace``).

The Flink job's batch operator holds a :class:`RuleSetWatcher`: between two batches it looks at
the pointer every ``interval_s`` (one small file read), loads a new version in a background
thread (off the batch path; the loaded engine is verified against its digest and must load
without a failure), and hands it over when ready; the operator then swaps its matcher between
two batches. A version that fails to load is refused once, logged and counted, and the running
one kept. Every detection carries the rule set version it was judged with
(``RuleInfo.ruleset_version``) and its rule's version (``RuleInfo.version``: the rule file's
digest), via :class:`StampedMatcher`.

Pure of Flink: time comes in as an argument, and the job, ``socflow rules publish`` and the
tests all run this same code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from detectors.errors import DetectorError
from detectors.model import RuleInfo
from ingest.logs import log_event

LOGGER = logging.getLogger(__name__)
POINTER = "current"
HISTORY = "history"  # every version ``current`` pointed at, oldest first (a job's fallbacks)
REFUSED = "refused"  # <version>.json: why a job refused that version (what it kept instead)
MANIFEST = "manifest.json"
RULES_DIR = "rules"
SUPPRESSIONS = "suppressions.yaml"
DETECTORS = "detectors.yaml"
VERSION_CHARS = 16  # hex digits of the sha256 content digest: a version name


class RuleSetRefused(DetectorError):  # noqa: N818 - "refused" says what happened to the rule set
    """A rule set that cannot be published or switched to; ``reasons`` lists every problem."""

    def __init__(self, message: str, reasons: Sequence[str] = (), *, source: str | None = None) -> None:
        self.reasons = list(reasons)
        super().__init__(message, source=source)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(root: Path) -> str:
    """Digest of every file under ``root`` (relative path and content), the manifest excepted."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST):
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        digest.update(file_digest(path).encode("ascii") + b"\n")
    return digest.hexdigest()[:VERSION_CHARS]


@dataclass(frozen=True)
class Published:
    version: str
    path: Path
    rules: int
    created: bool  # False: this content was already published (same digest)


def _stage(sources: Sequence[Path], staging: Path, suppressions: Path | None, detectors: Path | None) -> None:
    rules = staging / RULES_DIR
    rules.mkdir(parents=True)
    for index, source in enumerate(sources):
        if not source.exists():
            raise RuleSetRefused("rule source does not exist", [f"{source}: no such file or directory"],
                                 source=str(source))
        # Numbered, not named: two sources with one name must not collide, and the version is
        # the content's (the same rules published from another checkout are the same version).
        target = rules / f"{index:02d}"
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        else:
            target.mkdir()
            shutil.copy2(source, target / source.name)
    for given, name in ((suppressions, SUPPRESSIONS), (detectors, DETECTORS)):
        if given is not None:
            shutil.copy2(given, staging / name)


def publish(
    sources: Sequence[Path],
    store: Path,
    *,
    config_dir: Path,
    suppressions: Path | None = None,
    detectors: Path | None = None,
    now: str = "",
) -> Published:
    """Validate and publish a rule set; raise :class:`RuleSetRefused` with every reason if it
    does not load entirely (nothing of it is left in the store then)."""
    store.mkdir(parents=True, exist_ok=True)
    staging = store / f".staging-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _stage(sources, staging, suppressions, detectors)
        version = tree_digest(staging)
        try:
            loaded = _load_dir(staging, version, config_dir)
        except RuleSetRefused as error:
            # Name the files the user gave, not their staged copies.
            copies = {str(staging / RULES_DIR / f"{i:02d}"): str(s) for i, s in enumerate(sources)}
            copies[str(staging)] = str(store)

            def original(text: str) -> str:
                for copy, given in sorted(copies.items(), key=lambda pair: -len(pair[0])):
                    text = text.replace(copy, given)
                return text

            raise RuleSetRefused(original(error.reason), [original(r) for r in error.reasons],
                                 source=", ".join(str(s) for s in sources)) from error
        manifest = {"version": version, "published": now, "sources": [str(s) for s in sources],
                    "rules": loaded.rules_loaded,
                    "rule_versions": dict(sorted(loaded.rule_versions.items()))}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        final = store / version
        created = not final.exists()
        if created:
            from detectors.sigma.cache import relocate, ruleset_digest  # pySigma: loaded only when used

            staged_key = ruleset_digest([staging / RULES_DIR], config_dir)
            os.replace(staging, final)  # atomic: a reader sees no directory or the whole one
            # The job will load the set from its final place: hand it the parse just done.
            relocate([staging / RULES_DIR], [final / RULES_DIR], old_digest=staged_key, config_dir=config_dir)
        set_current(store, version)
        return Published(version=version, path=final, rules=loaded.rules_loaded, created=created)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def set_current(store: Path, version: str) -> None:
    """Point ``current`` at a published version (write a temporary file, then rename over)."""
    if not (store / version / MANIFEST).is_file():
        raise RuleSetRefused("no such published rule set", [version], source=str(store))
    temporary = store / f".{POINTER}.{os.getpid()}.{threading.get_ident()}"
    temporary.write_text(version + "\n", encoding="utf-8")
    with (store / HISTORY).open("a", encoding="utf-8") as history:
        history.write(version + "\n")
        history.flush()
        os.fsync(history.fileno())
    os.replace(temporary, store / POINTER)


def candidates(store: Path) -> list[str]:
    """Versions a starting job tries in turn: ``current``, then earlier ones newest first (a job
    restarted while ``current`` names a set that does not load keeps the last good one)."""
    out: list[str] = []
    named = current_version(store)
    if named:
        out.append(named)
    try:
        lines = (store / HISTORY).read_text(encoding="utf-8").split()
    except FileNotFoundError:
        lines = []
    for version in reversed(lines):
        if version not in out:
            out.append(version)
    return out


def current_version(store: Path) -> str | None:
    """The version ``current`` names, or None when nothing was published."""
    try:
        text = (store / POINTER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text or None


class StampedMatcher:
    """The engine's matches with the rule set version and each rule's version on them."""

    def __init__(self, engine: Any, ruleset_version: str, rule_versions: Mapping[str, str]) -> None:
        self.engine = engine
        self.ruleset_version = ruleset_version
        self.rule_versions = dict(rule_versions)
        self._stamped: dict[int, RuleInfo] = {}  # id() of the engine's RuleInfo -> stamped copy

    def match(self, event: Mapping[str, Any]) -> list[RuleInfo]:
        out = []
        for info in self.engine.match(event):
            stamped = self._stamped.get(id(info))
            if stamped is None:
                stamped = replace(info, version=self.rule_versions.get(info.id, ""),
                                  ruleset_version=self.ruleset_version)
                self._stamped[id(info)] = stamped
            out.append(stamped)
        return out


@dataclass
class LoadedRuleSet:
    """A rule set ready to judge events: its engine (stamping) and what else it carries."""

    version: str
    engine: Any  # detectors.sigma.SigmaEngine
    matcher: StampedMatcher
    rules_loaded: int
    rule_versions: dict[str, str] = field(default_factory=dict)
    suppressions_path: Path | None = None
    detectors_path: Path | None = None
    path: Path | None = None
    plan: Any = None  # detectors.stateful.StatefulPlan of its correlations and detectors, once built


def rule_versions(engine: Any) -> dict[str, str]:
    """Rule id -> the digest of its file (a rule's version; a changed file is a new version)."""
    versions: dict[str, str] = {}
    for info in engine.rules:
        if isinstance(info, RuleInfo) and info.path and Path(info.path).is_file():
            versions[info.id] = file_digest(Path(info.path))[:12]
    return versions


def _load_dir(root: Path, version: str, config_dir: Path) -> LoadedRuleSet:
    return load_sources([root / RULES_DIR], version, config_dir,
                        suppressions=root / SUPPRESSIONS, detectors=root / DETECTORS, path=root)


def load_sources(
    paths: Sequence[Path],
    version: str,
    config_dir: Path,
    *,
    suppressions: Path | None = None,
    detectors: Path | None = None,
    path: Path | None = None,
) -> LoadedRuleSet:
    """Load rules (and check the suppressions and detector settings beside them); refuse the
    whole set on any failure."""
    from detectors.anomaly.config import StatefulSettings
    from detectors.dedup import Suppressor
    from detectors.sigma.cache import load_engine

    reasons: list[str] = []
    try:
        # Through the rule-set cache: the job's batch and keyed operators load one version each.
        engine, report, _ = load_engine(list(paths), config_dir=config_dir)
    except DetectorError as error:
        raise RuleSetRefused("rule set does not load", [str(error)], source=str(path or paths[0])) from error
    reasons.extend(f"{f.path}: {f.rule_id or ''} {f.reason}".replace("  ", " ") for f in report.failures)
    if report.total == 0:
        reasons.append("no rules in the rule set")
    kept: dict[str, Path | None] = {"suppressions": None, "detectors": None}
    for name, given, check in (("suppressions", suppressions, Suppressor.load),
                               ("detectors", detectors, StatefulSettings.load)):
        if given is not None and given.exists():
            try:
                check(given)
                kept[name] = given
            except DetectorError as error:
                reasons.append(str(error))
    if reasons:
        raise RuleSetRefused(f"rule set refused: {len(reasons)} problem(s)", reasons, source=str(path or paths[0]))
    versions = rule_versions(engine)
    return LoadedRuleSet(version=version, engine=engine, matcher=StampedMatcher(engine, version, versions),
                         rules_loaded=report.loaded, rule_versions=versions,
                         suppressions_path=kept["suppressions"], detectors_path=kept["detectors"], path=path)


def plan_of(loaded: LoadedRuleSet, config_dir: Path) -> Any:
    """The stateful plan of a rule set: its correlation rules, and the detector settings it was
    published with (else ``config_dir``'s), its detections stamped with its version."""
    from detectors.anomaly.config import StatefulSettings
    from detectors.stateful import StatefulPlan

    if loaded.plan is None:
        settings = StatefulSettings.load(loaded.detectors_path or config_dir / DETECTORS)
        loaded.plan = StatefulPlan.build(settings, loaded.engine.correlations, loaded.engine.rules,
                                         ruleset_version=loaded.version)
    return loaded.plan


def load_plan(store: Path, version: str, config_dir: Path) -> Any:
    """The stateful plan of a published version (the job's keyed operators: hot reload)."""
    return plan_of(load_published(store, version, config_dir), config_dir)


def plan_fits(plan: Any, levels: int) -> list[str]:
    """Why a rule set's plan cannot run in a job built with ``levels`` keyed operators in a row
    (0: none), or []. The keyed operators are wired when the job starts: a deeper correlation
    chain, or correlations and detectors in a job built without any, need a restart."""
    reasons = []
    if levels == 0 and (plan.correlations.specs or plan.anomalies.detectors):
        reasons.append("the running job has no correlation or detector stage (it started without any): "
                       "restart the job to add one")
    elif plan.levels > levels:
        reasons.append(f"correlation chains {plan.levels} deep; the running job has {levels} keyed "
                       "level(s): restart the job to apply it")
    return reasons


def load_published(store: Path, version: str, config_dir: Path) -> LoadedRuleSet:
    """Load a published version, verifying that its files still hash to its name."""
    root = store / version
    if not (root / MANIFEST).is_file():
        raise RuleSetRefused("no such published rule set", [f"{root}: no {MANIFEST}"], source=str(root))
    actual = tree_digest(root)
    if actual != version:
        raise RuleSetRefused("published rule set was modified", [f"content digest {actual} != {version}"],
                             source=str(root))
    return _load_dir(root, version, config_dir)


def sources_version(paths: Sequence[Path]) -> str:
    """The version of unpublished rule directories (the job started from ``rule_dirs``)."""
    digest = hashlib.sha256()
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for file in files:
            digest.update(file.name.encode("utf-8") + b"\0" + file_digest(file).encode("ascii") + b"\n")
    return digest.hexdigest()[:VERSION_CHARS]


class VersionedSuppressors:
    """The suppressions a detection is judged by: those of the rule set that judged it.

    A detection carries its rule set version (``RuleInfo.ruleset_version``), so the alert
    grouping applies that set's ``suppressions.yaml`` — the same rule set for rules and
    suppressions, whatever the interleaving of operators, and the same again after a restore.
    Detections without a published version (correlation and detector detections, rule sets not
    published) get ``fallback``. A version whose suppressions cannot be read (it was validated
    at publish) also gets ``fallback``, logged once.
    """

    def __init__(self, store: Path | None, fallback: Any) -> None:
        self.store = store
        self.fallback = fallback
        self._by_version: dict[str, Any] = {}

    def for_version(self, version: str) -> Any:
        if not version or self.store is None:
            return self.fallback
        known = self._by_version.get(version)
        if known is None:
            known = self._load(version)
            self._by_version[version] = known
        return known

    def _load(self, version: str) -> Any:
        from detectors.dedup import Suppressor

        root = self.store / version if self.store is not None else None
        if root is None or not (root / MANIFEST).is_file():
            return self.fallback  # not a published version (rule directories of the job)
        try:
            return Suppressor.load(root / SUPPRESSIONS)  # none published: no suppressions
        except DetectorError as error:
            log_event(LOGGER, "ruleset_suppressions_unreadable", logging.ERROR, version=version, error=str(error))
            return self.fallback


Loader = Callable[[Path, str, Path], Any]  # a LoadedRuleSet, or what the caller builds from one


class RuleSetWatcher:
    """Looks for a new ``current`` version every ``interval_s`` and loads it off the batch path.

    ``poll(now)`` is called between batches: it returns a newly loaded rule set once (switch to
    it now) or None. A version that fails to load is refused: ``on_refused(version, reasons)``
    is called once and the version is not tried again (publishing anew makes a new version).
    """

    def __init__(
        self,
        store: Path,
        config_dir: Path,
        *,
        active: str | None,
        interval_s: float = 5.0,
        background: bool = True,
        loader: Loader = load_published,
        on_refused: Callable[[str, list[str]], None] | None = None,
    ) -> None:
        self.store = store
        self.config_dir = config_dir
        self.active = active
        self.interval_s = interval_s
        self.background = background
        self.loader = loader
        self.on_refused = on_refused
        self.refused: set[str] = set()
        self._next_check = float("-inf")
        self._pending: tuple[str, Future[Any]] | None = None

    def poll(self, now: float) -> Any:
        if self._pending is not None:
            waiting, loading = self._pending
            if not loading.done():
                return None
            self._pending = None
            return self._finish(waiting, loading)
        if now < self._next_check:
            return None
        self._next_check = now + self.interval_s
        version = current_version(self.store)
        if version is None or version == self.active or version in self.refused:
            return None
        future: Future[Any] = Future()
        if self.background:
            threading.Thread(target=self._run, args=(version, future), name=f"ruleset-load-{version}",
                             daemon=True).start()
            self._pending = (version, future)
            return None
        self._run(version, future)
        return self._finish(version, future)

    def _run(self, version: str, future: Future[Any]) -> None:
        try:
            future.set_result(self.loader(self.store, version, self.config_dir))
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread via the future
            future.set_exception(error)

    def _finish(self, version: str, future: Future[Any]) -> Any:
        error = future.exception()
        if error is None:
            self.active = version
            return future.result()
        reasons = error.reasons if isinstance(error, RuleSetRefused) else [repr(error)]
        self.refused.add(version)
        log_event(LOGGER, "ruleset_refused", logging.ERROR, version=version, kept=self.active,
                  reason=str(error), reasons=reasons[:20])
        record_refusal(self.store, version, reasons, kept=self.active)
        if self.on_refused is not None:
            self.on_refused(version, reasons)
        return None


def record_refusal(store: Path, version: str, reasons: Sequence[str], *, kept: str | None) -> None:
    """Leave the refusal where the publisher looks (``<store>/refused/<version>.json``): a job's
    own log may be on another machine. Best effort: the refusal is logged and counted anyway."""
    try:
        folder = store / REFUSED
        folder.mkdir(exist_ok=True)
        temporary = folder / f".{version}.{os.getpid()}.{threading.get_ident()}"
        temporary.write_text(json.dumps({"version": version, "kept": kept, "reasons": list(reasons)[:100]},
                                        indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, folder / f"{version}.json")
    except OSError as error:
        log_event(LOGGER, "ruleset_refusal_not_recorded", logging.WARNING, version=version, error=repr(error))
