"""ATT&CK coverage of a rule set as an ATT&CK Navigator layer (layer format 4.5, enterprise-attack).

Each technique (or sub-technique) that an enabled rule names in an ``attack.tNNNN[.NNN]`` tag is
scored by its rules' count and level: ``score = sum of level weights`` (informational 1, low 2,
medium 3, high 4, critical 5), so three high rules outweigh one critical. A technique's comment
and metadata say how many rules of each level cover it and name the first few.

With *visibility* (``socflow rules coverage --by-source``) a technique counts as covered only
where the event store has seen events of at least one of its rules' logsources in the last N
days (DeTT&CT-style); techniques whose rules all wait on silent sources are drawn grey, and the
silent logsources are listed in the layer's metadata. Rules come from the Sigma engine's load
(a rule that does not load covers nothing); correlation rules count with the logsources of the
rules they reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.ruletools.attack import TECHNIQUE_TAG, AttackData
from detectors.sigma import LoadReport, SigmaEngine

LEVEL_WEIGHTS = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
LEVELS = tuple(LEVEL_WEIGHTS)
LAYER_VERSION = "4.5"
NAVIGATOR_VERSION = "5.1.0"
GRADIENT = ("#ffffff", "#9ecae1", "#3182bd", "#08306b")
SILENT_COLOR = "#bdbdbd"
Logsource = tuple[str | None, str | None, str | None]  # product, category, service


@dataclass(frozen=True)
class CoveringRule:
    id: str
    title: str
    level: str
    techniques: tuple[str, ...]
    logsources: tuple[Logsource, ...]  # one for a Sigma rule; those of its rules for a correlation


@dataclass
class Coverage:
    """Which rules cover which techniques, and (with visibility) which logsources are silent."""

    rules: list[CoveringRule] = field(default_factory=list)
    unknown_techniques: dict[str, int] = field(default_factory=dict)  # tagged, not in the ATT&CK data
    seen_sources: set[Logsource] | None = None  # None: no event store consulted

    def by_technique(self) -> dict[str, list[CoveringRule]]:
        found: dict[str, list[CoveringRule]] = {}
        for rule in self.rules:
            for technique in rule.techniques:
                found.setdefault(technique, []).append(rule)
        return found

    def visible(self, rule: CoveringRule) -> bool:
        if self.seen_sources is None:
            return True
        return any(source_seen(wanted, self.seen_sources) for wanted in rule.logsources)

    def silent_sources(self) -> list[Logsource]:
        """Logsources of rules that name a technique, with no event in the store."""
        if self.seen_sources is None:
            return []
        wanted = {source for rule in self.rules if rule.techniques for source in rule.logsources}
        silent = [source for source in wanted if not source_seen(source, self.seen_sources)]
        return sorted(silent, key=lambda s: tuple(part or "" for part in s))


def source_seen(wanted: Logsource, seen: Iterable[Logsource]) -> bool:
    """A rule's logsource meets an event's when each part the rule names is the event's."""
    return any(all(want is None or want == have for want, have in zip(wanted, source, strict=True))
               for source in seen)


def describe_source(source: Logsource) -> str:
    return "/".join(part or "*" for part in source)


def coverage_of(paths: Sequence[Path], attack: AttackData, *, config_dir: Path | None = None,
                disabled: Iterable[str] = ()) -> tuple[Coverage, LoadReport]:
    """The coverage of the rules under ``paths`` that load and are not ``disabled`` (ids)."""
    engine, report = SigmaEngine.load(list(paths), config_dir=config_dir)
    off = set(disabled)
    coverage = Coverage()
    by_reference: dict[str, Logsource] = {}
    for info in engine.rules:
        source = _logsource(info.logsource)
        by_reference[info.id] = source
        if info.name:
            by_reference[info.name] = source
    # A rule that only feeds correlations (generate: false) alerts through them: they count.
    candidates: list[tuple[str, str, str, Sequence[str], tuple[Logsource, ...]]] = [
        (info.id, info.title, info.level, info.tags, (_logsource(info.logsource),))
        for info in engine.rules if info.generate
    ]
    for correlation in engine.correlations:
        sources = tuple(sorted({by_reference[ref] for ref in _references(correlation) if ref in by_reference},
                               key=lambda s: tuple(part or "" for part in s)))
        level = getattr(getattr(correlation, "level", None), "name", None) or "medium"
        candidates.append((str(correlation.id), str(correlation.title), level.lower(),
                           [str(tag) for tag in correlation.tags], sources))
    for rule_id, title, level, tags, sources in candidates:
        if rule_id in off:
            continue
        techniques = []
        for tag in tags:
            match = TECHNIQUE_TAG.fullmatch(str(tag).lower())
            if not match:
                continue
            technique = match.group(1).upper()
            known = attack.techniques.get(technique)
            if known is None or known.deprecated:
                coverage.unknown_techniques[technique] = coverage.unknown_techniques.get(technique, 0) + 1
                continue
            techniques.append(technique)
        coverage.rules.append(CoveringRule(rule_id, title, level if level in LEVEL_WEIGHTS else "medium",
                                           tuple(dict.fromkeys(techniques)), sources))
    return coverage, report


def _logsource(mapping: Mapping[str, str]) -> Logsource:
    return mapping.get("product") or None, mapping.get("category") or None, mapping.get("service") or None


def _references(correlation: Any) -> list[str]:
    names = []
    for reference in getattr(correlation, "rules", None) or ():
        target = getattr(reference, "rule", None)
        names.append(str(getattr(target, "id", None) or getattr(reference, "reference", reference)))
        name = getattr(target, "name", None)
        if name:
            names.append(str(name))
    return names


def navigator_layer(coverage: Coverage, attack: AttackData, *, name: str, description: str,
                    generated: str, days: int | None = None) -> dict[str, Any]:
    """The layer (a JSON-ready dict) in Navigator layer format 4.5."""
    techniques: list[dict[str, Any]] = []
    covered_parents: set[str] = set()
    max_score = 1
    by_technique = coverage.by_technique()
    for technique_id in sorted(by_technique):
        rules = by_technique[technique_id]
        visible = [rule for rule in rules if coverage.visible(rule)]
        counts = {level: sum(1 for rule in rules if rule.level == level) for level in LEVELS}
        summary = ", ".join(f"{count} {level}" for level, count in reversed(counts.items()) if count)
        entry: dict[str, Any] = {
            "techniqueID": technique_id,
            "enabled": True,
            "metadata": [{"name": "rules", "value": str(len(rules))},
                         *({"name": level, "value": str(count)} for level, count in counts.items() if count),
                         {"divider": True},
                         *({"name": "rule", "value": rule.title} for rule in sorted(rules, key=_rank)[:10])],
            "showSubtechniques": False,
        }
        if visible:
            score = sum(LEVEL_WEIGHTS[rule.level] for rule in visible)
            max_score = max(max_score, score)
            entry["score"] = score
            entry["comment"] = f"{_rules(len(rules))} ({summary})"
            if coverage.seen_sources is not None and len(visible) < len(rules):
                entry["comment"] += f"; {len(rules) - len(visible)} wait on silent logsources"
        else:
            entry["color"] = SILENT_COLOR
            entry["comment"] = (f"{_rules(len(rules))} ({summary}), but no events of their logsources "
                                f"in the last {days} days")
        techniques.append(entry)
        if "." in technique_id:
            covered_parents.add(technique_id.split(".", 1)[0])
    listed = {entry["techniqueID"]: entry for entry in techniques}
    for parent in sorted(covered_parents):
        if parent in listed:
            listed[parent]["showSubtechniques"] = True
        elif parent in attack.techniques:
            techniques.append({"techniqueID": parent, "enabled": True, "showSubtechniques": True})
    techniques.sort(key=lambda entry: entry["techniqueID"])
    enabled_rules = len(coverage.rules)
    metadata: list[dict[str, Any]] = [
        {"name": "generated", "value": generated},
        {"name": "generator", "value": "socflow rules coverage"},
        {"name": "ATT&CK data", "value": f"Enterprise ATT&CK {attack.version} (config/attack/enterprise-attack.json)"},
        {"name": "enabled rules", "value": str(enabled_rules)},
        {"name": "rules with ATT&CK techniques", "value": str(sum(1 for rule in coverage.rules if rule.techniques))},
        {"name": "techniques covered", "value": str(len(by_technique))},
        {"name": "score", "value": "sum over the technique's rules of informational 1, low 2, medium 3, high 4, "
                                   "critical 5"},
    ]
    if coverage.unknown_techniques:
        metadata.append({"name": "tags left out (unknown or deprecated in this ATT&CK version)",
                         "value": ", ".join(sorted(coverage.unknown_techniques))})
    if coverage.seen_sources is not None:
        metadata.append({"divider": True})
        metadata.append({"name": "visibility", "value": f"event store, last {days} days"})
        metadata.extend({"name": "silent logsource", "value": describe_source(source)}
                        for source in coverage.silent_sources())
    legend = [
        {"label": "low score: one informational or low rule", "color": GRADIENT[1]},
        {"label": f"high score: up to {max_score} (several high or critical rules)", "color": GRADIENT[-1]},
    ]
    if coverage.seen_sources is not None:
        legend.append({"label": f"rules present, no events of their logsources in {days} days", "color": SILENT_COLOR})
    return {
        "name": name,
        # No "attack" version: the shipped data is named by its release date (metadata says which);
        # the Navigator then shows the layer on its current ATT&CK.
        "versions": {"navigator": NAVIGATOR_VERSION, "layer": LAYER_VERSION},
        "domain": "enterprise-attack",
        "description": description,
        "sorting": 3,
        "layout": {"layout": "side", "showID": True, "showName": True, "showAggregateScores": True,
                   "countUnscored": False, "aggregateFunction": "max", "expandedSubtechniques": "annotated"},
        "hideDisabled": False,
        "techniques": techniques,
        "gradient": {"colors": list(GRADIENT), "minValue": 0, "maxValue": max_score},
        "legendItems": legend,
        "showTacticRowBackground": False,
        "tacticRowBackground": "#dddddd",
        "selectTechniquesAcrossTactics": True,
        "selectSubtechniquesWithParent": False,
        "selectVisibleTechniques": False,
        "metadata": metadata,
        "links": [],
    }


def _rules(count: int) -> str:
    return f"{count} rule" if count == 1 else f"{count} rules"


def _rank(rule: CoveringRule) -> tuple[int, str]:
    return -LEVEL_WEIGHTS[rule.level], rule.title
