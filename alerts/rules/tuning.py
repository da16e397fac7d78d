"""Rule tuning and publishing: one code path for ``socflow rules tune|publish`` and the console.

A tuning change (disable, enable, level override, filter) is checked, written to the rule store
(``detectors.ruletools.store``: ``<data-dir>/rules/tuning``, re-applied into ``rules/active``),
and — from the console — recorded in the audit trail with the rule's tuning before and after,
then published through :func:`publish_rule_set`, the function behind ``socflow rules publish``
(``detectors.ruleset.publish``: the running job switches to the new version between batches).
A change whose audit record cannot be written is undone: no tuning without its record. A
publish the rule set refuses leaves the running version in place; the answer says which, and
why.

Filters from the console are built here from a small form (field, operator, values, reason):
the YAML is made with ``yaml.safe_dump`` (a value copied from a log cannot add keys) and loaded
with the engine together with its target rule before it is saved, so a filter that does not
load is refused with the engine's reason instead of breaking the next publish.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import re
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from alerts.errors import AlertsError
from alerts.filelock import exclusive
from alerts.settings import REPO_ROOT, Settings
from detectors.ruletools.store import LEVEL_ORDER, RuleStore, RuleStoreError
from ingest.logs import log_event

if TYPE_CHECKING:
    from detectors.ruleset import Published

LOGGER = logging.getLogger(__name__)
CONFIG_DIR = REPO_ROOT / "config"
KINDS = ("disable", "enable", "level", "filter")
OPERATORS = {"equals": "", "contains": "|contains", "startswith": "|startswith", "endswith": "|endswith"}
FIELD_NAME = re.compile(r"^[A-Za-z0-9_@][A-Za-z0-9_.@\-]{0,127}$")
MAX_REASON = 2_000
MAX_VALUES = 20
MAX_VALUE = 1_000
# A filter's id: the same form on the same rule gives the same id (and file), so a retried
# request replaces its own filter instead of adding a twin.
FILTER_NAMESPACE = uuid.UUID("8f4b0a52-6c1e-4c53-9b8e-3d7f0e1a2c44")
_THREAD_LOCK = threading.Lock()


class TuningRefusedError(AlertsError):
    """A tuning change that is not made; ``status`` is the HTTP answer (404, 409, 422)."""

    def __init__(self, message: str, *, status: int = 422, reasons: Sequence[str] = ()) -> None:
        self.status = status
        self.reasons = list(reasons)
        super().__init__(message)


class Audit(Protocol):
    def append(self, *, actor: str, action: str, target: str, before: object = None, after: object = None,
               now: datetime, source_ip: str | None = None, defer: bool = False) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Change:
    """One tuning change of one rule."""

    kind: str  # one of KINDS
    rule_id: str
    reason: str = ""
    level: str | None = None
    filter_name: str | None = None
    filter_text: str | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "rule": self.rule_id, "reason": self.reason}
        if self.level:
            out["level"] = self.level
        if self.filter_name:
            out["filter"] = self.filter_name
            out["filter_text"] = self.filter_text
        return out


def apply_change(store: RuleStore, change: Change, settings: Settings) -> dict[str, Any]:
    """Write ``change`` to the rule store and rebuild ``active/``; the store's summary."""
    selection = settings.rules.selection()
    if change.kind == "disable":
        return store.disable(change.rule_id, change.reason, selection)
    if change.kind == "enable":
        return store.enable(change.rule_id, selection)
    if change.kind == "level":
        return store.set_level(change.rule_id, change.level or "", change.reason, selection)
    if change.kind == "filter" and change.filter_name and change.filter_text is not None:
        return store.add_filter_text(change.filter_name, change.filter_text, selection)
    raise TuningRefusedError(f"unknown tuning change {change.kind!r}")


def rule_tuning(tuning: Mapping[str, Any], rule_id: str, rule_name: str | None = None) -> dict[str, Any]:
    """What the tuning says about one rule: disabled (reason), level override, filters on it."""
    names = {rule_id, *([rule_name] if rule_name else [])}
    return {
        "disabled": tuning["disabled"].get(rule_id),
        "level": tuning["levels"].get(rule_id),
        "filters": sorted(name for name, item in tuning["filters"].items() if names & set(item["rules"])),
    }


# ---------------------------------------------------------------------- publishing


@dataclass
class PublishOutcome:
    """What a publish did: the new version, or the refusal with the version left running."""

    published: bool
    version: str | None  # published: the new version; refused: the running one kept (None: nothing published yet)
    rules: int | None = None
    created: bool = False
    reason: str | None = None
    reasons: list[str] = field(default_factory=list)
    warning: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def job_rule_dirs(settings: Settings) -> list[Path]:
    return [settings.resolve(path) for path in settings.job.rule_dirs]


def publish_rule_set(settings: Settings, *, paths: Sequence[Path] = (), config_dir: Path = CONFIG_DIR,
                     suppressions: Path | None = None, detectors: Path | None = None, now: datetime) -> Published:
    """Publish ``paths`` (default: the job's ``rule_dirs``) with the suppressions and detector
    settings, exactly as ``socflow rules publish`` does; raises ``RuleSetRefused``."""
    from detectors.ruleset import publish

    sources = list(paths) or job_rule_dirs(settings)
    suppressions = suppressions or settings.resolve(settings.job.suppressions_path)
    detectors = detectors or config_dir / "detectors.yaml"
    return publish(sources, settings.ruleset_store_dir, config_dir=config_dir,
                   suppressions=suppressions if suppressions.exists() else None,
                   detectors=detectors if detectors.exists() else None, now=now.isoformat())


def publish_outcome(settings: Settings, *, now: datetime, config_dir: Path = CONFIG_DIR) -> PublishOutcome:
    """Publish the job's rule set and say what happened (a refusal is an outcome, not an error)."""
    from detectors.ruleset import RuleSetRefused, current_version

    warning = None
    active = RuleStore(settings.rule_store_dir).active.resolve()
    if all(path.resolve() != active for path in job_rule_dirs(settings)):
        warning = (f"the job's rule_dirs do not include the rule store's active set ({active}): the tuning is "
                   "saved, but the published rule set does not contain it")
    try:
        published = publish_rule_set(settings, config_dir=config_dir, now=now)
    except RuleSetRefused as error:
        running = current_version(settings.ruleset_store_dir)
        log_event(LOGGER, "ruleset_publish_refused", logging.WARNING, reason=error.reason, kept=running)
        return PublishOutcome(False, running, reason=error.reason, reasons=error.reasons[:50], warning=warning)
    log_event(LOGGER, "ruleset_published", version=published.version, rules=published.rules)
    return PublishOutcome(True, published.version, published.rules, published.created, warning=warning)


# ---------------------------------------------------------------------- the console's change


@dataclass
class TuneResult:
    change: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]
    publish: PublishOutcome

    def to_json(self) -> dict[str, Any]:
        return {"change": self.change, "before": self.before, "after": self.after, "publish": self.publish.to_json()}


@contextmanager
def _store_lock(store: RuleStore) -> Iterator[None]:
    """One tuning change at a time: threads of this console and other processes (the CLI)."""
    with _THREAD_LOCK, exclusive(store.root / ".tuning.lock"):
        yield


def require_tunable(store: RuleStore, rule_id: str) -> dict[str, Any]:
    """The rule's entry in the store's current release, or 404 saying why it cannot be tuned."""
    manifest = store.manifest()
    if manifest is None:
        raise TuningRefusedError("no rule release imported into the rule store (socflow rules import): only "
                            "imported rules can be tuned", status=409)
    entry: dict[str, Any] | None = manifest["rules"].get(rule_id)
    if entry is None:
        raise TuningRefusedError(f"rule {rule_id} is not in the rule store's current release {manifest['name']}: "
                            "rules from other directories change by editing their files", status=404)
    return entry


def tune_and_publish(settings: Settings, audit: Audit, change: Change, *, actor: str, now: datetime,
                     source_ip: str | None = None, config_dir: Path = CONFIG_DIR) -> TuneResult:
    """Make ``change``, record it in the audit trail, then publish; undone if the record fails."""
    store = RuleStore(settings.rule_store_dir)
    with _store_lock(store):
        entry = require_tunable(store, change.rule_id)
        if change.kind == "filter":
            check_filter(store, entry, change.filter_text or "", config_dir=config_dir)
        before = rule_tuning(store.tuning(), change.rule_id, entry.get("name"))
        snapshot = store.snapshot()
        try:
            apply_change(store, change, settings)
        except RuleStoreError as error:
            raise TuningRefusedError(error.reason, status=409 if "not disabled" in error.reason else 422) from error
        after = rule_tuning(store.tuning(), change.rule_id, entry.get("name"))
        try:
            audit.append(actor=actor, action=f"rule.{change.kind}", target=f"rule:{change.rule_id}",
                         before=before, after={**after, "change": change.describe()}, now=now, source_ip=source_ip)
        except Exception:
            store.restore(snapshot, settings.rules.selection())
            log_event(LOGGER, "rule_tuning_undone", logging.ERROR, rule=change.rule_id, kind=change.kind)
            raise
        outcome = publish_outcome(settings, now=now, config_dir=config_dir)
    # The publication is on the record too; deferred (kept in pending.jsonl and chained with
    # the next record) rather than failing a change that is already made and running.
    audit.append(actor=actor, action="ruleset.publish" if outcome.published else "ruleset.publish_refused",
                 target=f"ruleset:{outcome.version or '-'}", after=outcome.to_json(), now=now,
                 source_ip=source_ip, defer=True)
    log_event(LOGGER, "rule_tuned", rule=change.rule_id, kind=change.kind, actor=actor,
              published=outcome.published, version=outcome.version)
    return TuneResult(change.describe(), before, after, outcome)


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


# ---------------------------------------------------------------------- filters from a form


def build_filter(entry: Mapping[str, Any], *, field_name: str, operator: str, values: Sequence[str], reason: str,
                 actor: str, now: datetime) -> tuple[str, str]:
    """(file name, YAML text) of a Sigma filter rule: ``field|operator`` in ``values`` is not an
    alert of rule ``entry`` (its id, title and logsource as the store's manifest has them)."""
    reason = " ".join(reason.split())
    if not reason:
        raise TuningRefusedError("a reason is required (it is kept with the filter)")
    if len(reason) > MAX_REASON:
        raise TuningRefusedError(f"the reason is longer than {MAX_REASON} characters")
    if not FIELD_NAME.match(field_name):
        raise TuningRefusedError("the field must be a Sigma field name (letters, digits, . _ - @; up to 128)")
    if operator not in OPERATORS:
        raise TuningRefusedError(f"the operator must be one of {', '.join(OPERATORS)}")
    kept = [value for value in (v.strip("\r\n") for v in values) if value.strip()]
    if not kept:
        raise TuningRefusedError("give at least one value")
    if len(kept) > MAX_VALUES or any(len(value) > MAX_VALUE for value in kept):
        raise TuningRefusedError(f"at most {MAX_VALUES} values of at most {MAX_VALUE} characters each")
    rule_id = str(entry["id"])
    key = f"{field_name}{OPERATORS[operator]}"
    identity = "\n".join([rule_id, key, *kept])
    filter_id = uuid.uuid5(FILTER_NAMESPACE, identity)
    document: dict[str, Any] = {
        "title": f"Not an alert: {field_name} {operator} {kept[0][:60]}"[:200],
        "id": str(filter_id),
        "description": reason,
        "author": actor,
        "date": now.date().isoformat(),
        "logsource": dict(entry.get("logsource") or {}),
        "filter": {"rules": [rule_id], "selection": {key: kept if len(kept) > 1 else kept[0]},
                   "condition": "not selection"},
    }
    text = ("# Made in the socflow console by " + _comment(actor) + " on " + now.isoformat(timespec="seconds")
            + "\n" + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1000))
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:10]
    return f"console-{_slug(rule_id)}-{digest}.yml", text


def filter_change(settings: Settings, rule_id: str, *, field_name: str, operator: str, values: Sequence[str],
                  reason: str, actor: str, now: datetime) -> Change:
    """The change that adds the filter a console form describes (built, not yet checked or saved)."""
    entry = require_tunable(RuleStore(settings.rule_store_dir), rule_id)
    name, text = build_filter(entry, field_name=field_name, operator=operator, values=values, reason=reason,
                              actor=actor, now=now)
    return Change("filter", rule_id, " ".join(reason.split()), filter_name=name, filter_text=text)


def check_filter(store: RuleStore, entry: Mapping[str, Any], text: str, *, config_dir: Path) -> None:
    """Load the filter with its target rule through the engine; refuse it with the engine's reasons."""
    from detectors.errors import DetectorError
    from detectors.sigma import SigmaEngine

    manifest = store.manifest() or {}
    rule_file = store.releases / str(manifest.get("name")) / str(entry["path"])
    with tempfile.TemporaryDirectory(prefix="socflow-filter-") as folder:
        root = Path(folder)
        (root / "rule.yml").write_bytes(rule_file.read_bytes())
        (root / "filter.yml").write_text(text, encoding="utf-8")
        try:
            _engine, report = SigmaEngine.load([root], config_dir=config_dir)
        except DetectorError as error:
            raise TuningRefusedError("the filter does not load with its rule", reasons=[str(error)]) from error
    if report.failures:
        reasons = [f"{failure.reason}" for failure in report.failures]
        raise TuningRefusedError(f"the filter does not load with its rule: {reasons[0]}", reasons=reasons)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", text)[:40].strip("-") or "rule"


def _comment(text: str) -> str:
    return " ".join(text.split())[:100]


def level_choices() -> tuple[str, ...]:
    return LEVEL_ORDER
