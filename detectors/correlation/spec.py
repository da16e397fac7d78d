"""Plain, picklable descriptions of Sigma correlation rules (built from pySigma's model).

pySigma parses the YAML and resolves rule references; this module copies what evaluation
needs into small frozen dataclasses so that a Flink operator can carry them (cloudpickle)
without dragging the pySigma object graph along, and so that the core never imports pySigma
at evaluation time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors.errors import RuleLoadError
from detectors.model import RuleInfo

COUNT_TYPES = ("event_count", "value_count")
VALUE_TYPES = ("value_sum", "value_avg", "value_percentile", "value_median")
TEMPORAL_TYPES = ("temporal", "temporal_ordered")
SUPPORTED_TYPES = COUNT_TYPES + VALUE_TYPES + TEMPORAL_TYPES


@dataclass(frozen=True)
class Condition:
    """``{op: threshold}`` with an optional ``field`` (value_*) and ``percentile``."""

    op: str = "gte"
    threshold: float = 1
    field: str | None = None
    percentile: int | None = None
    # Extended temporal condition as a nested tuple tree: ("ref", name) / ("and"|"or", a, b...) /
    # ("not", a). None for the plain ``{op: n}`` form.
    expression: tuple[Any, ...] | None = None

    def holds(self, value: float) -> bool:
        limit = self.threshold
        if self.op == "gt":
            return value > limit
        if self.op == "gte":
            return value >= limit
        if self.op == "lt":
            return value < limit
        if self.op == "lte":
            return value <= limit
        if self.op == "eq":
            return value == limit
        return value != limit  # neq

    @property
    def monotonic(self) -> bool:
        """True when the condition can only become true as events are added (gt/gte).

        Such conditions fire as soon as they hold; the others (lt, lte, eq, neq) are only
        meaningful once a window is complete, so they are evaluated when it closes.
        """
        return self.op in ("gt", "gte")


def eval_expression(node: tuple[Any, ...], present: set[str]) -> bool:
    """Evaluate an extended temporal condition over the set of rule references seen."""
    head = node[0]
    if head == "ref":
        return str(node[1]) in present
    if head == "not":
        return not eval_expression(node[1], present)
    if head == "and":
        return all(eval_expression(arg, present) for arg in node[1:])
    return any(eval_expression(arg, present) for arg in node[1:])


@dataclass(frozen=True)
class CorrelationSpec:
    """One correlation rule, ready to evaluate.

    ``refs`` are canonical ids of the referenced rules (Sigma rule ids, or correlation ids
    for chained correlations) in rule order; ``ref_names`` maps every way a rule may be
    referred to (id or ``name``) to its canonical id; ``aliases`` maps
    ``alias -> {canonical ref id -> event field}``.
    """

    rule: RuleInfo
    type: str
    refs: tuple[str, ...]
    timespan_ms: int
    group_by: tuple[str, ...] = ()
    condition: Condition = field(default_factory=Condition)
    aliases: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    generate: bool = True
    # Chain depth: 0 when every referenced rule is a plain Sigma rule, 1 + the deepest
    # referenced correlation otherwise. Each level is its own keyed Flink operator.
    level: int = 0

    def field_for(self, ref: str, group_field: str) -> str:
        """The event field holding ``group_field`` for events matched by rule ``ref``."""
        alias = self.aliases.get(group_field)
        if alias is not None and ref in alias:
            return alias[ref]
        return group_field

    @property
    def value_field(self) -> str | None:
        return self.condition.field

    @property
    def fires_early(self) -> bool:
        """True when the rule may fire as soon as its condition holds inside a sliding window.

        That is the case when adding events can only move the metric towards the condition:
        counts and sums with gt / gte, and the temporal types. Averages, percentiles and
        lt / lte / eq / neq conditions are only meaningful over a complete window, so they are
        judged when the window (opened by the group's first event) closes.
        """
        if self.type in TEMPORAL_TYPES:
            return True
        return self.type in ("event_count", "value_count", "value_sum") and self.condition.monotonic


def rule_info_of(rule: Any, *, generate: bool = True) -> RuleInfo:
    """A :class:`RuleInfo` for a pySigma rule or correlation rule."""
    level = getattr(rule, "level", None)
    status = getattr(rule, "status", None)
    return RuleInfo(
        id=str(rule.id) if getattr(rule, "id", None) else str(getattr(rule, "name", "") or rule.title),
        title=str(rule.title),
        level=str(level).lower() if level is not None else "medium",
        tags=tuple(str(tag) for tag in (getattr(rule, "tags", None) or ())),
        status=str(status).lower() if status is not None else "experimental",
        description=str(getattr(rule, "description", "") or ""),
        author=str(getattr(rule, "author", "") or ""),
        references=tuple(str(ref) for ref in (getattr(rule, "references", None) or ())),
        falsepositives=tuple(str(fp) for fp in (getattr(rule, "falsepositives", None) or ())),
        path=str(getattr(getattr(rule, "source", None), "path", "") or ""),
        name=str(getattr(rule, "name", "") or ""),
        generate=generate,
    )


def _expression_tree(node: Any, canonical: Mapping[str, str]) -> tuple[Any, ...]:
    from sigma.correlations import (
        CorrelationConditionAND,
        CorrelationConditionNOT,
        CorrelationConditionOR,
        SigmaRuleReference,
    )

    if isinstance(node, SigmaRuleReference):
        return ("ref", canonical.get(node.reference, node.reference))
    if isinstance(node, CorrelationConditionNOT):
        return ("not", _expression_tree(node.args[0], canonical))
    head = "and" if isinstance(node, CorrelationConditionAND) else "or"
    if not isinstance(node, (CorrelationConditionAND, CorrelationConditionOR)):
        raise RuleLoadError(f"unsupported correlation condition node {node!r}")
    return (head, *(_expression_tree(arg, canonical) for arg in node.args))


def specs_from_sigma(correlations: Iterable[Any], rules: Iterable[Any] = ()) -> list[CorrelationSpec]:
    """Build specs from pySigma ``SigmaCorrelationRule`` objects.

    ``rules`` are the base rules (pySigma ``SigmaRule`` or :class:`RuleInfo`): they let
    references by ``name`` resolve to ids when pySigma has not resolved them already.
    Raises :class:`RuleLoadError` naming the rule for anything that cannot be evaluated.
    """
    correlations = list(correlations)
    canonical: dict[str, str] = {}
    for rule in list(rules) + correlations:
        ident = str(rule.id) if getattr(rule, "id", None) else ""
        name = str(getattr(rule, "name", "") or "")
        key = ident or name
        if not key:
            continue
        canonical[key] = key
        if name:
            canonical[name] = key
    by_id = {}
    for corr in correlations:
        info = rule_info_of(corr)
        by_id[info.id] = corr
        canonical.setdefault(info.id, info.id)
        if info.name:
            canonical[info.name] = info.id

    # pySigma semantics: a rule referenced by a correlation with generate: false emits no
    # alert of its own; that holds for correlations referenced by correlations too.
    silenced: set[str] = set()
    raw: dict[str, dict[str, Any]] = {}
    for corr in correlations:
        info = rule_info_of(corr)
        source = info.path or info.id
        ctype = str(corr.type.name).lower()
        if ctype not in SUPPORTED_TYPES:
            raise RuleLoadError(f"correlation type {ctype!r} is not supported", source=source)
        references = corr.rules
        if references is None:
            references = [_Ref(name) for name in corr.condition.get_referenced_rules()]
        refs = [_resolve(ref, canonical, source) for ref in references]
        if not corr.generate:
            silenced.update(refs)
        condition = _condition(corr, refs, canonical, source)
        aliases = {
            alias.alias: {canonical.get(ref.reference, ref.reference): name for ref, name in alias.mapping.items()}
            for alias in corr.aliases
        }
        raw[info.id] = {
            "rule": info,
            "type": ctype,
            "refs": tuple(refs),
            "timespan_ms": int(corr.timespan.seconds) * 1000,
            "group_by": tuple(corr.group_by or ()),
            "condition": condition,
            "aliases": aliases,
        }

    levels: dict[str, int] = {}

    def level_of(ident: str, trail: tuple[str, ...] = ()) -> int:
        if ident in trail:
            raise RuleLoadError("correlation rules reference each other in a cycle", source=ident)
        if ident not in levels:
            chained = [ref for ref in raw[ident]["refs"] if ref in raw]
            levels[ident] = 0 if not chained else 1 + max(level_of(ref, (*trail, ident)) for ref in chained)
        return levels[ident]

    specs = []
    for ident, parts in raw.items():
        specs.append(
            CorrelationSpec(level=level_of(ident), generate=ident not in silenced, **parts)
        )
    return specs


def _resolve(ref: Any, canonical: Mapping[str, str], source: str) -> str:
    """Canonical id of a rule reference (by id or name; pySigma's resolution as a fallback)."""
    target = canonical.get(ref.reference)
    resolved = getattr(ref, "rule", None)
    if target is None and resolved is not None:
        target = str(resolved.id) if getattr(resolved, "id", None) else str(resolved.name)
    if target is None:
        raise RuleLoadError(f"referenced rule {ref.reference!r} is unknown", source=source)
    return target


@dataclass(frozen=True)
class _Ref:
    reference: str


def _condition(corr: Any, refs: list[str], canonical: Mapping[str, str], source: str) -> Condition:
    from sigma.correlations import SigmaExtendedCorrelationCondition

    cond = corr.condition
    if isinstance(cond, SigmaExtendedCorrelationCondition):
        return Condition(expression=_expression_tree(cond.parsed, canonical))
    op = cond.op.name.lower()
    fieldref = cond.fieldref
    if isinstance(fieldref, list):
        if len(fieldref) != 1:
            raise RuleLoadError("a condition over several fields is not supported", source=source)
        fieldref = fieldref[0]
    percentile = cond.percentile
    if corr.type.name.lower() == "value_median":
        percentile = 50
    if corr.type.name.lower() == "value_percentile" and percentile is None:
        raise RuleLoadError("value_percentile needs condition.percentile", source=source)
    return Condition(op=op, threshold=float(cond.count), field=fieldref, percentile=percentile)
