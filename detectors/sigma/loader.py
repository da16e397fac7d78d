"""Read Sigma rule files with pySigma and account for every one of them.

Rules come from files or directories (recursively ``*.yml`` / ``*.yaml``, e.g. a SigmaHQ
release folder). Each file is parsed on its own, so one broken file cannot hide the others;
Sigma filters (``filter:`` documents) are applied to the rules they name and correlation rules
are resolved against the whole set. Whatever cannot be used lands in the :class:`LoadReport`
with its reason: nothing is dropped silently.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.filters import SigmaFilter
from sigma.rule import SigmaRule

from detectors.sigma.modifiers import register as register_modifiers

# Here, not in engine.py: a module compiled by mypyc (see detectors/sigma/native.py) does not see
# its own path in __file__ while it initializes.
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

register_modifiers()  # before any rule is parsed: see detectors.sigma.modifiers


@dataclass(frozen=True)
class RuleFailure:
    """A rule (or rule file) that could not be loaded, and why."""

    path: str
    rule_id: str | None
    title: str | None
    reason: str


@dataclass
class LoadReport:
    """What loading a rule set did: ``loaded`` of ``total`` rules, and every failure."""

    total: int = 0
    loaded: int = 0
    failures: list[RuleFailure] = field(default_factory=list)
    # Not failures: facts an operator should know (e.g. a regex that RE2 cannot run).
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def render(self) -> str:
        """The text report; its last line is ``loaded N of M rules``."""
        lines: list[str] = []
        for failure in sorted(self.failures, key=lambda f: (f.path, f.rule_id or "")):
            what = " ".join(part for part in (failure.rule_id, f"({failure.title})" if failure.title else None) if part)
            lines.append(f"FAILED {failure.path}{' ' + what if what else ''}: {failure.reason}")
        lines.extend(f"note: {note}" for note in self.notes)
        lines.append(f"loaded {self.loaded} of {self.total} rules")
        return "\n".join(lines)


@dataclass
class ParsedRuleSet:
    """Parsed pySigma objects with the file each came from."""

    rules: list[tuple[SigmaRule, str]] = field(default_factory=list)
    correlations: list[tuple[SigmaCorrelationRule, str]] = field(default_factory=list)
    filters: list[tuple[SigmaFilter, str]] = field(default_factory=list)


def iter_rule_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Rule files named directly, and ``*.yml`` / ``*.yaml`` under directories, sorted."""
    for path in paths:
        if path.is_dir():
            # "<rule>.tests.yml" beside a project rule holds its test events, not a rule.
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()
                              and not p.name.endswith((".tests.yml", ".tests.yaml")))
        else:
            yield path


def _describe(document: Any) -> tuple[str | None, str | None]:
    if isinstance(document, dict):
        rule_id = document.get("id")
        title = document.get("title")
        return (str(rule_id) if rule_id is not None else None, str(title) if title is not None else None)
    return None, None


def parse_files(paths: Sequence[Path], report: LoadReport) -> ParsedRuleSet:
    parsed = ParsedRuleSet()
    for path in iter_rule_files(paths):
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
            # libyaml's C loader: YAML parsing is most of the load time of a large rule set.
            documents = [doc for doc in yaml.load_all(text, Loader=_LOADER) if doc is not None]
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            report.total += 1
            report.failures.append(RuleFailure(where, None, None, f"unreadable YAML: {error}"))
            continue
        if not documents:
            report.total += 1
            report.failures.append(RuleFailure(where, None, None, "no YAML document in file"))
            continue
        for document in documents:
            if isinstance(document, dict) and document.get("action") in ("global", "reset"):
                # Legacy multi-document collections: let pySigma merge them below.
                continue
            report.total += 1
        try:
            collection = SigmaCollection.from_dicts(
                copy.deepcopy(documents), collect_errors=True, collect_filters=True, resolve_references=False
            )
        except (SigmaError, ValueError, TypeError, KeyError, AttributeError) as error:
            rule_id, title = _describe(documents[0])
            report.failures.append(RuleFailure(where, rule_id, title, f"{type(error).__name__}: {error}"))
            continue
        seen_failures = 0
        for item in [*collection.rules, *collection.filters]:
            if item.errors:
                seen_failures += 1
                rule_id = str(item.id) if item.id else None
                reason = "; ".join(str(error) for error in item.errors)
                report.failures.append(RuleFailure(where, rule_id, item.title or None, reason))
            elif isinstance(item, SigmaRule):
                parsed.rules.append((item, where))
            elif isinstance(item, SigmaCorrelationRule):
                parsed.correlations.append((item, where))
            elif isinstance(item, SigmaFilter):
                parsed.filters.append((item, where))
        unattributed = [error for error in collection.errors if not _belongs_to_item(error, collection)]
        if unattributed and not seen_failures:
            rule_id, title = _describe(documents[0])
            reason = "; ".join(str(error) for error in unattributed)
            report.failures.append(RuleFailure(where, rule_id, title, reason))
    return parsed


def _belongs_to_item(error: SigmaError, collection: SigmaCollection) -> bool:
    return any(error in item.errors for item in [*collection.rules, *collection.filters])


def apply_filters(parsed: ParsedRuleSet, report: LoadReport) -> None:
    """Apply every Sigma filter to the rules it names (pySigma rewrites their conditions)."""
    for sigma_filter, where in parsed.filters:
        try:
            parsed.rules = [
                (sigma_filter.apply_on_rule(rule), path)  # type: ignore[misc]
                for rule, path in parsed.rules
            ]
        except (SigmaError, ValueError, TypeError, KeyError, AttributeError) as error:
            report.failures.append(
                RuleFailure(where, str(sigma_filter.id) if sigma_filter.id else None, sigma_filter.title, str(error))
            )
        else:
            report.loaded += 1


def resolve_correlations(parsed: ParsedRuleSet, report: LoadReport) -> list[SigmaCorrelationRule]:
    """Resolve correlation rules' references; referenced rules stop alerting unless generate."""
    if not parsed.correlations:
        return []
    # A collection without resolution: only its id/name lookup is used.
    members: list[SigmaRule | SigmaCorrelationRule | SigmaFilter] = [rule for rule, _ in parsed.rules]
    members.extend(corr for corr, _ in parsed.correlations)
    lookup = SigmaCollection(
        members,
        resolve_references=False,
    )
    resolved: list[SigmaCorrelationRule] = []
    for correlation, where in parsed.correlations:
        try:
            correlation.resolve_rule_references(lookup)
        except (SigmaError, ValueError, TypeError, KeyError, AttributeError) as error:
            report.failures.append(
                RuleFailure(where, str(correlation.id) if correlation.id else None, correlation.title, str(error))
            )
            continue
        resolved.append(correlation)
        report.loaded += 1
    return resolved
