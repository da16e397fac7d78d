"""A cache of loaded rule sets, so that a process starts in well under a second.

Loading 2,400 SigmaHQ rules costs seconds of CPU (YAML, then pySigma's parsing, then a compile of
every rule to surface its errors); the result depends only on the rule files, the configuration
that shapes loading (``config/sigma/`` field mappings, ``config/logsources.yaml``), and the code
that loads (socflow's version, the sources of this package, pySigma's version, the Python ABI).
A digest of all of those names a cache file under ``~/.cache/socflow/rulesets/``
(``SOCFLOW_CACHE_DIR`` moves the root; ``SOCFLOW_RULESET_CACHE=0`` turns it off) holding what
:meth:`SigmaEngine.load` produced: each rule's description, logsource and pySigma condition trees,
the resolved correlation rules and the load report.

Safety, because a cache must never give a wrong rule set or run someone else's code:

- any mismatch (another digest, another format, a file that does not unpickle into the
  expected shape) is a miss: the rules are loaded from their files and the cache rewritten;
- the file is read only from socflow's own cache directory, only when it and the directory are
  owned by this user and writable by nobody else (pickle runs code chosen by whoever wrote it);
- it is written to a temporary file in the same directory and renamed, so a reader sees a
  whole file or none, and two processes writing at once both leave a valid file.

Only plain classes are pickled (``RuleInfo``, pySigma objects, the report), not the engine's
mypyc-compiled ones: an extension class pickles only when built for it, and the compiled
predicates are closures. Cached, a load skips the compile check (its outcome is in the cached
report); routes compile their rules on first use, as they do after a load from files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import logging
import os
import pickle
import stat
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from detectors.model import RuleInfo
from detectors.sigma.engine import LoadedRule, SigmaEngine
from detectors.sigma.fieldmap import FieldMappings
from detectors.sigma.loader import DEFAULT_CONFIG_DIR, LoadReport, iter_rule_files
from ingest.logs import log_event
from ingest.logsource import LogsourceTable

LOGGER = logging.getLogger(__name__)

FORMAT = 1  # bump when the pickled state's shape changes
ENV_DIR = "SOCFLOW_CACHE_DIR"
ENV_SWITCH = "SOCFLOW_RULESET_CACHE"
KEEP = 16  # cache files kept, most recently used first: each is 1-50 MB, and a rule set edited
# many times (or loaded from temporary copies, as tests do) would otherwise leave one per version
PACKAGE_DIR = Path(__file__).resolve().parent
# Code whose change changes what a load produces, besides this package's own sources.
CODE_FILES = (PACKAGE_DIR.parent / "model.py", PACKAGE_DIR.parents[1] / "ingest" / "logsource.py")


@dataclass(frozen=True)
class CacheOutcome:
    """How a load went: ``hit``, ``miss`` (loaded from files, cache written), ``off``, or a
    miss with the ``reason`` the cache could not be used or written."""

    state: str
    path: Path | None = None
    reason: str = ""


def cache_root() -> Path:
    base = os.environ.get(ENV_DIR) or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "socflow" / "rulesets"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def _hash_file(digest: Any, path: Path, name: str | None = None) -> None:
    """The file's bytes under ``name`` (default its path: a rule's path is part of what loads)."""
    digest.update(b"\0file\0" + (name or str(path)).encode("utf-8", "surrogateescape") + b"\0")
    try:
        digest.update(path.read_bytes())
    except OSError as error:  # unreadable: loading reports it; the key must still differ
        digest.update(b"\0unreadable\0" + repr(error).encode())


def ruleset_digest(paths: list[Path], config_dir: Path) -> str:
    """The cache key: rule files (names and bytes), loading configuration and loading code."""
    digest = hashlib.sha256(f"socflow-ruleset\0{FORMAT}\0{sys.implementation.cache_tag}\0".encode())
    digest.update(f"{_version('socflow')}\0{_version('pysigma')}\0".encode())
    for code in (*sorted(PACKAGE_DIR.glob("*.py")), *CODE_FILES):
        _hash_file(digest, code, code.name)
    sigma_config = config_dir / "sigma"
    for config in (*sorted(p for p in sigma_config.rglob("*") if p.is_file()), config_dir / "logsources.yaml"):
        _hash_file(digest, config, str(config.relative_to(config_dir)))
    for named in paths:  # as named, so that the same files under other names are another set
        digest.update(b"\0path\0" + str(named).encode("utf-8", "surrogateescape"))
    for rule_file in iter_rule_files(paths):
        _hash_file(digest, rule_file)
    return digest.hexdigest()


def _private(info: os.stat_result) -> bool:
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read(path: Path, digest: str) -> tuple[Any, str]:  # noqa: PLR0911 - one return per reason
    """The cached state, or None and why not."""
    try:
        if not _private(os.stat(path.parent)):
            return None, "cache directory is not private to this user"
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None, "not cached yet"
    except OSError as error:
        return None, f"unreadable: {error}"
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or not _private(info):
            return None, "cache file is not a regular file private to this user"
        enabled = gc.isenabled()
        gc.disable()  # millions of small objects: the collector would run dozens of times (2.3 s vs 0.1 s)
        try:
            # Safe here: only a file of this user's private cache directory, checked above.
            state = pickle.load(handle)  # noqa: S301
        except Exception as error:  # noqa: BLE001 - a corrupt cache is a miss, whatever unpickling raised
            return None, f"corrupt: {type(error).__name__}: {error}"
        finally:
            if enabled:
                gc.enable()
    if not (isinstance(state, dict) and state.get("format") == FORMAT and state.get("digest") == digest
            and isinstance(state.get("rules"), list) and isinstance(state.get("report"), LoadReport)):
        return None, "another format or digest"
    return state, ""


def _write(path: Path, state: dict[str, Any]) -> str:
    """Write atomically; the reason it could not be written, or ''."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _private(os.stat(path.parent)):
            return "cache directory is not private to this user"
        descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".pickle", dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as handle:  # mkstemp: mode 0600
                pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError) as error:
        return f"not written: {type(error).__name__}: {error}"
    prune(path.parent, keep=KEEP)
    return ""


def prune(directory: Path, *, keep: int) -> list[Path]:
    """Delete all but the ``keep`` most recently used cache files (a hit touches its file)."""
    try:
        files = sorted(directory.glob("*.pickle"), key=lambda item: item.stat().st_mtime, reverse=True)
    except OSError:
        return []
    removed = []
    for stale in files[keep:]:
        with contextlib.suppress(OSError):  # another process pruned it, or it is not ours to remove
            stale.unlink()
            removed.append(stale)
    return removed


def load_engine(paths: list[Path] | tuple[Path, ...], *, config_dir: Path | None = None, indexed: bool = True,
                use_cache: bool | None = None, freeze: bool = False) -> tuple[SigmaEngine, LoadReport, CacheOutcome]:
    """:meth:`SigmaEngine.load`, through the cache: the same engine and report, faster.

    ``freeze``: the rule set lives as long as the process (a replay, a Flink task), so it goes to
    the collector's permanent generation (``gc.freeze``) before the collector is back on: else its
    first collections walk the millions of objects just unpickled (7% of a replay's start-up).
    Not for long-lived processes that load rule sets again and drop them (the console)."""
    config = Path(config_dir or DEFAULT_CONFIG_DIR)
    rule_paths = [Path(p) for p in paths]
    if use_cache is None:
        use_cache = os.environ.get(ENV_SWITCH, "1") != "0"
    if not use_cache:
        engine, report = SigmaEngine.load(rule_paths, config_dir=config, indexed=indexed)
        if freeze:
            gc.freeze()
        return engine, report, CacheOutcome("off")
    digest = ruleset_digest(rule_paths, config)
    path = cache_root() / f"{digest}.pickle"
    enabled = gc.isenabled()
    # Millions of small objects come out of the file: with the collector on, it would walk them
    # dozens of times while they are made (2.3 s instead of 0.1 s for 2,400 rules) and while the
    # engine is built on them.
    gc.disable()
    try:
        state, reason = _read(path, digest)
        if state is not None:
            mappings = FieldMappings.load(config / "sigma")
            logsources = LogsourceTable.load(config / "logsources.yaml")
            loaded = [LoadedRule(info=info, source=source, conditions=conditions, path=where)
                      for info, source, conditions, where in state["rules"]]
            engine = SigmaEngine(loaded, state["correlations"], mappings, logsources, indexed=indexed)
            if freeze:
                gc.freeze()
    finally:
        if enabled:
            gc.enable()
    if state is not None:
        with contextlib.suppress(OSError):
            os.utime(path)  # most recently used: the last to be pruned
        log_event(LOGGER, "ruleset_cache_hit", path=str(path), rules=len(loaded))
        return engine, state["report"], CacheOutcome("hit", path)
    engine, report = SigmaEngine.load(rule_paths, config_dir=config, indexed=indexed)
    state = {"format": FORMAT, "digest": digest, "report": report, "correlations": list(engine.correlations),
             "rules": [(rule.info, rule.source, rule.conditions, rule.path) for rule in engine.loaded_rules()]}
    problem = _write(path, state)
    if freeze:
        gc.freeze()
    log_event(LOGGER, "ruleset_cache_miss", path=str(path), reason=reason, write=problem or "written")
    return engine, report, CacheOutcome("miss", path, "; ".join(filter(None, (reason, problem))))


def relocate(old_paths: list[Path], new_paths: list[Path], *, old_digest: str, config_dir: Path) -> CacheOutcome:
    """File the cache entry of rules loaded from ``old_paths`` under ``new_paths`` after the
    files moved there unchanged (``old_digest``: the old key, taken before the move). Publishing
    validates a rule set in a staging directory and renames it: without this, the job's first
    load of the published set would miss and parse every rule again (tens of seconds for 2,400
    rules, while the job waits to switch)."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return CacheOutcome("off")
    root = cache_root()
    state, reason = _read(root / f"{old_digest}.pickle", old_digest)
    if state is None:
        return CacheOutcome("miss", None, reason)
    renames = sorted(((str(old), str(new)) for old, new in zip(old_paths, new_paths, strict=True)),
                     key=lambda pair: -len(pair[0]))

    def moved(where: Any) -> Any:
        text = str(where)
        for old, new in renames:
            if text == old or text.startswith(old + os.sep):
                return type(where)(new + text[len(old):])
        return where

    new_digest = ruleset_digest(new_paths, config_dir)
    state["rules"] = [(_moved_info(info, moved), source, conditions, moved(where))
                      for info, source, conditions, where in state["rules"]]
    state["digest"] = new_digest
    target = root / f"{new_digest}.pickle"
    problem = _write(target, state)
    with contextlib.suppress(OSError):
        (root / f"{old_digest}.pickle").unlink()
    return CacheOutcome("miss" if problem else "hit", target, problem)


def _moved_info(info: Any, moved: Any) -> Any:
    """A rule's description names its file too (``RuleInfo.path``: rule versions are file digests)."""
    path = getattr(info, "path", None)
    return dataclasses.replace(info, path=moved(path)) if path and isinstance(info, RuleInfo) else info
