"""Compile a pySigma rule into plain Python predicates over socflow events.

pySigma parses the rule, applies every value modifier (contains, windash, base64offset, cidr,
re, gt, exists, fieldref, expand, ...) and resolves the condition (``1 of selection_*``,
``all of them``, parentheses) into a tree of AND / OR / NOT over field = value leaves. This
module turns that tree into:

- an intermediate tree (:class:`Node`) from which the engine's index derives the literal
  strings a rule cannot match without (:func:`requirements`), and
- closures ``fn(ctx) -> bool``; leaves are interned by (field, matcher), so a predicate that
  many rules share is evaluated once per event (memoised in the :class:`Context`).

Semantics (Sigma 2.x): strings match case-insensitively (``str.casefold`` on both sides, so
non-ASCII text folds correctly) unless ``cased``; ``*``/``?`` are wildcards, ``\\*`` a literal;
``re`` is case-sensitive unless ``i``, and runs on RE2 (linear time); a missing field matches
only ``null`` and negations; a list-valued field matches when any element matches.
"""

from __future__ import annotations

import ipaddress
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from re import _constants as re_constants  # type: ignore[attr-defined]
from re import _parser as re_parser  # type: ignore[attr-defined]
from types import FunctionType
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
    TimestampPart,
)

from detectors.errors import RuleLoadError
from detectors.native_import import import_native
from detectors.sigma.fieldmap import FieldMap
from ingest.schema import parse_timestamp

# Not ``import re2``: it is a pybind11 module, whose first import deadlocks in PyFlink's
# thread mode on some task threads (see detectors.native_import).
re2 = import_native("re2")
# The same for ahocorasick_rs (a PyO3 extension), to be safe on any task thread.
ahocorasick_rs = import_native("ahocorasick_rs")

MISSING: Any = object()
# Compiled by mypyc, two spellings cost more than they look: isinstance takes tuples of classes
# here, not ``A | B`` (the union is built again on every call: 89 ns against 12), and a class
# test is ``type(x) is dict``, not ``x.__class__ is dict`` (an attribute lookup: 22 ns against 12).
# Inputs longer than this are cut before a fallback (non-RE2) regular expression sees them, so
# a pattern RE2 cannot run still has a bounded cost.
FALLBACK_REGEX_INPUT_LIMIT = 4096
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]+")

Accessor = Callable[["Context"], Any]
Predicate = Callable[["Context"], bool]


class Context:
    """Per-event evaluation state: the event, caches of field values and of leaf results."""

    __slots__ = ("event", "event_data", "folded", "memo", "normalized")

    def __init__(self, event: Mapping[str, Any]) -> None:
        self.event = event
        winlog: Any = event.get("winlog")
        data = winlog.get("event_data") if _is_mapping(winlog) else None
        self.event_data: Mapping[str, Any] | None = data if _is_mapping(data) else None
        self.normalized: Mapping[str, str] | None = None
        self.folded: dict[str, Any] = {}
        self.memo: dict[int, bool] = {}

    def normalized_name(self, normal: str) -> Any:
        """The EventData value whose name, non-alphanumerics stripped and folded, is ``normal``."""
        names = self.normalized
        data = self.event_data
        if data is None:
            return MISSING
        if names is None:
            names = self.normalized = _normalized_names(tuple(data))
        original = names.get(normal)
        return MISSING if original is None else data.get(original, MISSING)

    def fold(self, key: str, accessor: Accessor) -> Any:
        """The case-folded text of a field (a tuple for lists), cached per event."""
        folded = self.folded
        if key in folded:
            return folded[key]
        value = folded[key] = fold_value(accessor(self))
        return value


def normalize_name(name: str) -> str:
    """An EventData name with non-alphanumerics stripped and case folded ("Threat Name")."""
    return _NON_ALNUM.sub("", str(name)).casefold()


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


_NORMALIZED_CACHE: dict[tuple[str, ...], Mapping[str, str]] = {}


def _normalized_names(names: tuple[str, ...]) -> Mapping[str, str]:
    """normalized name -> original name; cached by key set (events of one kind share it)."""
    found = _NORMALIZED_CACHE.get(names)
    if found is None:
        found = {normalize_name(name): name for name in reversed(names)}
        if len(_NORMALIZED_CACHE) < 10_000:
            _NORMALIZED_CACHE[names] = found
    return found


def _leaves(node: Any) -> Iterator[Any]:
    if _is_mapping(node):
        for key, value in node.items():
            if key != "socflow":
                yield from _leaves(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _leaves(item)
    elif node is not None:
        yield node


def text_value(value: Any) -> Any:  # noqa: PLR0911
    """A scalar as the text Sigma compares: numbers in plain form, booleans as true/false."""
    cls = type(value)
    if cls is str:
        return value
    if cls is int:
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return None


def fold_value(value: Any) -> Any:
    """``None`` for missing/null/structured values, a folded str, or a tuple of folded strs."""
    cls = type(value)
    if cls is str:
        return value.casefold()
    if cls is int:
        return str(value)
    if value is MISSING or value is None:
        return None
    if isinstance(value, (list, tuple)):
        folded: list[str] = []
        for item in value:
            item_cls = type(item)
            if item_cls is str:
                folded.append(item.casefold())
            elif item_cls is int:
                folded.append(str(item))
            else:
                text = text_value(item)
                if text is not None:
                    folded.append(text.casefold())
        return tuple(folded)
    text = text_value(value)
    return text.casefold() if text is not None else None


def raw_texts(value: Any) -> tuple[str, ...]:
    """The unfolded text(s) of a raw value (for cased strings and regular expressions)."""
    if value is MISSING or value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(t for t in (text_value(item) for item in value) if t is not None)
    text = text_value(value)
    return (text,) if text is not None else ()


# ---------------------------------------------------------------- field accessors


def make_accessor(paths: tuple[str, ...]) -> tuple[str, Accessor]:
    """``(key, accessor)`` for a field that lives at the first present of ``paths``."""
    getters = [_path_getter(path) for path in paths]
    key = "|".join(paths)
    if len(getters) == 1:
        return key, getters[0]

    def first_present(ctx: Context) -> Any:
        for getter in getters:
            value = getter(ctx)
            if value is not MISSING:
                return value
        return MISSING

    return key, first_present


def _path_getter(path: str) -> Accessor:
    prefix = "winlog.event_data."
    if path.startswith(prefix):
        name = path[len(prefix):]
        normal = normalize_name(name)

        def event_data(ctx: Context) -> Any:
            data = ctx.event_data
            if data is None:
                return MISSING
            value = data.get(name, MISSING)
            if value is MISSING:
                # EventData names with spaces ("Threat Name") or other casing.
                return ctx.normalized_name(normal)
            return value

        return event_data
    parts = path.split(".")
    if len(parts) == 2 and parts[0] == "winlog":
        key = parts[1]

        def winlog_field(ctx: Context) -> Any:
            winlog = ctx.event.get("winlog")
            if type(winlog) is dict and key in winlog:
                return winlog[key]
            return nested(ctx)  # flat dotted keys, other mappings

    def nested(ctx: Context) -> Any:
        event = ctx.event
        if path in event:
            return event[path]
        node: Any = event
        for index, part in enumerate(parts):
            if type(node) is not dict and not isinstance(node, Mapping):  # the ABC check costs ~1 us
                return MISSING
            if part in node:
                node = node[part]
                continue
            return node.get(".".join(parts[index:]), MISSING)
        return node

    if len(parts) == 2 and parts[0] == "winlog":
        return winlog_field
    return nested


# ---------------------------------------------------------------- intermediate tree


@dataclass
class Node:
    """``kind``: and, or, not, leaf, const."""

    kind: str
    children: list[Node] = field(default_factory=list)
    leaf: Leaf | None = None
    const: bool = False


@dataclass
class Leaf:
    """One field (or keyword) predicate with an interning key and an optional index atom."""

    key: str
    field_key: str | None
    accessor: Accessor | None
    test: Predicate
    # (op, folded literal) pairs: the field's folded text satisfies at least one of them
    # whenever the leaf is true (op: eq, startswith, endswith, contains). None: no such literal.
    atoms: tuple[tuple[str, str], ...] | None = None
    # For plain string leaves: (cased, op, literals), so OR-ed leaves on one field can merge.
    spec: tuple[bool, str, tuple[str, ...]] | None = None


def _const(value: bool) -> Node:
    return Node("const", const=value)


class RuleCompiler:
    """Compiles pySigma condition trees with one field mapping; interns leaves across rules."""

    def __init__(self, placeholders: Mapping[str, tuple[str, ...]]) -> None:
        self.placeholders = placeholders
        self.leaves: dict[str, Leaf] = {}
        self._accessors: dict[str, tuple[str, Accessor]] = {}
        # Regular expressions RE2 refused: they run on Python re over bounded input.
        self.fallback_patterns: set[str] = set()
        # Placeholders used by rules but configured with no values (they match nothing).
        self.empty_placeholders: set[str] = set()
        # A rule value's string shape, by the value object (kept, so its id stays its own): a
        # rule is compiled again for each route whose field mapping differs.
        self._shapes: dict[int, tuple[SigmaString, tuple[str, str, str | None]]] = {}

    # -- condition tree

    def compile_condition(self, tree: Any, fieldmap: FieldMap) -> Node:
        if tree is None:
            return _const(False)  # a detection every item of which was dropped
        if isinstance(tree, (ConditionAND, ConditionOR)):
            kind = "and" if isinstance(tree, ConditionAND) else "or"
            children = [self.compile_condition(arg, fieldmap) for arg in tree.args]
            return self._merge_or(_simplify(Node(kind, children)))
        if isinstance(tree, ConditionNOT):
            return _simplify(Node("not", [self.compile_condition(tree.args[0], fieldmap)]))
        if isinstance(tree, ConditionFieldEqualsValueExpression):
            return self._field_value(tree.field, tree.value, fieldmap)
        if isinstance(tree, ConditionValueExpression):
            return self._keyword(tree.value)
        if isinstance(tree, ConditionItem):
            raise RuleLoadError(f"unsupported condition element {type(tree).__name__}")
        raise RuleLoadError(f"unsupported condition element {type(tree).__name__}")

    def _merge_or(self, node: Node) -> Node:
        """Merge OR-ed string leaves of one field and op into one multi-literal leaf.

        ``Image|endswith: [50 names]`` becomes one ``str.endswith(tuple)`` test (and an ``eq``
        list one set lookup) instead of 50 leaves.
        """
        if node.kind != "or":
            return node
        groups: dict[tuple[str, bool, str], list[Leaf]] = {}
        others: list[Node] = []
        for child in node.children:
            leaf = child.leaf
            if child.kind == "leaf" and leaf is not None and leaf.spec is not None and leaf.field_key:
                cased, op, _ = leaf.spec
                groups.setdefault((leaf.field_key, cased, op), []).append(leaf)
            else:
                others.append(child)
        if all(len(leaves) == 1 for leaves in groups.values()):
            return node
        merged: list[Node] = []
        for (field_key, cased, op), leaves in groups.items():
            if len(leaves) == 1:
                merged.append(Node("leaf", leaf=leaves[0]))
                continue
            literals = tuple(dict.fromkeys(lit for leaf in leaves for lit in (leaf.spec or (0, 0, ()))[2]))
            accessor = leaves[0].accessor
            assert accessor is not None
            merged.append(self._literal_leaf(field_key, accessor, cased, op, literals))
        children = merged + others
        return children[0] if len(children) == 1 else Node("or", children)

    def _literal_leaf(
        self, field_key: str, accessor: Accessor, cased: bool, op: str, literals: tuple[str, ...]
    ) -> Node:
        """A leaf true when the field's text (folded unless cased) ``op``-matches any literal."""
        key = f"{field_key}\0{'cased' if cased else 'str'}\0{op}\0" + "\0".join(literals)
        if key in self.leaves:
            return Node("leaf", leaf=self.leaves[key])
        test = literals_matcher(op, literals)
        folded_literals = literals if not cased else tuple(lit.casefold() for lit in literals)
        atoms: tuple[tuple[str, str], ...] | None = tuple((op, lit) for lit in folded_literals)
        if op == "contains" and "" in folded_literals:
            atoms = None  # '*' matches any present value: no literal to look for
        spec = (cased, op, literals)
        if cased:

            def cased_leaf(ctx: Context) -> bool:
                return any(test(text) for text in raw_texts(accessor(ctx)))

            return self._intern(Leaf(key, field_key, accessor, cased_leaf, atoms, spec))

        def folded_leaf(ctx: Context) -> bool:
            folded = ctx.fold(field_key, accessor)
            if folded is None:
                return False
            if type(folded) is str:
                return test(folded)
            return any(test(item) for item in folded)

        return self._intern(Leaf(key, field_key, accessor, folded_leaf, atoms, spec))

    def _accessor(self, sigma_field: str, fieldmap: FieldMap) -> tuple[str, Accessor]:
        paths = fieldmap.paths(sigma_field)
        cache_key = "|".join(paths)
        found = self._accessors.get(cache_key)
        if found is None:
            found = make_accessor(paths)
            self._accessors[cache_key] = found
        return found

    def _shape(self, value: SigmaString, cased: bool) -> tuple[str, str, str | None]:
        known = self._shapes.get(id(value))
        if known is None or known[0] is not value:
            known = self._shapes[id(value)] = (value, string_shape(value, cased))
        return known[1]

    def _intern(self, leaf: Leaf) -> Node:
        existing = self.leaves.get(leaf.key)
        if existing is None:
            self.leaves[leaf.key] = leaf
            existing = leaf
        return Node("leaf", leaf=existing)

    def _field_value(self, sigma_field: str, value: SigmaType, fieldmap: FieldMap) -> Node:  # noqa: PLR0911
        if isinstance(value, SigmaExpansion):
            return _simplify(Node("or", [self._field_value(sigma_field, v, fieldmap) for v in value.values]))
        field_key, accessor = self._accessor(sigma_field, fieldmap)
        if isinstance(value, SigmaString) and has_placeholder(value):
            return _simplify(
                Node("or", [self._field_value(sigma_field, v, fieldmap) for v in self._expand(value)])
            )
        if isinstance(value, SigmaString):
            return self._string_leaf(field_key, accessor, value)
        if isinstance(value, SigmaBool):
            return self._string_leaf(field_key, accessor, SigmaString("true" if value.boolean else "false"))
        if isinstance(value, SigmaTimestampPart):
            return self._timestamp_leaf(field_key, accessor, value)
        if isinstance(value, SigmaNumber):
            return self._string_leaf(field_key, accessor, SigmaString(text_value(value.number)))
        if isinstance(value, SigmaNull):
            return self._intern(
                Leaf(f"{field_key}\0null", field_key, accessor, lambda ctx: accessor(ctx) in (MISSING, None))
            )
        if isinstance(value, SigmaExists):
            wanted = bool(value.exists)
            return self._intern(
                Leaf(
                    f"{field_key}\0exists\0{wanted}",
                    field_key,
                    accessor,
                    lambda ctx: (accessor(ctx) not in (MISSING, None)) == wanted,
                )
            )
        if isinstance(value, SigmaRegularExpression):
            return self._regex_leaf(field_key, accessor, value)
        if isinstance(value, SigmaCIDRExpression):
            return self._cidr_leaf(field_key, accessor, value)
        if isinstance(value, SigmaCompareExpression):
            return self._compare_leaf(field_key, accessor, value)
        if isinstance(value, SigmaFieldReference):
            return self._fieldref_leaf(field_key, accessor, value, fieldmap)
        raise RuleLoadError(f"unsupported value type {type(value).__name__} for field {sigma_field}")

    def _expand(self, value: SigmaString) -> list[SigmaString]:
        """Replace ``%name%`` placeholders by every configured value (an OR of the results)."""
        results: list[SigmaString] = [SigmaString("")]
        for part in value.s:
            if isinstance(part, Placeholder):
                if part.name not in self.placeholders:
                    raise RuleLoadError(
                        f"placeholder %{part.name}% has no values in config/sigma/placeholders.yml"
                    )
                if not self.placeholders[part.name]:
                    self.empty_placeholders.add(part.name)
                results = [r + SigmaString(v) for r in results for v in self.placeholders[part.name]]
            else:
                results = [r + part for r in results]
        if isinstance(value, SigmaCasedString):
            return [SigmaCasedString.from_sigma_string(r) for r in results]
        return results

    # -- leaves

    def _string_leaf(self, field_key: str, accessor: Accessor, value: SigmaString) -> Node:
        cased = isinstance(value, SigmaCasedString)
        op, literal, pattern = self._shape(value, cased)
        if pattern is None:
            return self._literal_leaf(field_key, accessor, cased, op, (literal,))
        key = f"{field_key}\0{'cased' if cased else 'str'}\0glob\0{pattern}"
        if key in self.leaves:
            return Node("leaf", leaf=self.leaves[key])
        pieces = glob_pieces(value, cased)
        test = pieces_matcher(pieces) if pieces is not None else string_matcher(op, literal, pattern)
        atom = glob_atom(value)
        atoms = (atom,) if atom else None
        if cased:

            def cased_glob(ctx: Context) -> bool:
                return any(test(text) for text in raw_texts(accessor(ctx)))

            return self._intern(Leaf(key, field_key, accessor, cased_glob, atoms))

        def folded_glob(ctx: Context) -> bool:
            folded = ctx.fold(field_key, accessor)
            if folded is None:
                return False
            if isinstance(folded, str):
                return test(folded)
            return any(test(item) for item in folded)

        return self._intern(Leaf(key, field_key, accessor, folded_glob, atoms))

    def _keyword(self, value: SigmaType) -> Node:
        if isinstance(value, SigmaExpansion):
            return _simplify(Node("or", [self._keyword(v) for v in value.values]))
        if isinstance(value, SigmaString) and has_placeholder(value):
            return _simplify(Node("or", [self._keyword(v) for v in self._expand(value)]))
        if isinstance(value, SigmaNumber):
            value = SigmaString(text_value(value.number))
        if isinstance(value, SigmaRegularExpression):
            return self._regex_leaf(KEYWORDS, keyword_accessor, value)
        if not isinstance(value, SigmaString):
            raise RuleLoadError(f"unsupported keyword value type {type(value).__name__}")
        # Keywords are full-text search: an unanchored pattern matches anywhere in a value.
        cased = isinstance(value, SigmaCasedString)
        if not value.startswith(SpecialChars.WILDCARD_MULTI):
            value = SpecialChars.WILDCARD_MULTI + value
        if not value.endswith(SpecialChars.WILDCARD_MULTI):
            value = value + SpecialChars.WILDCARD_MULTI
        if cased and not isinstance(value, SigmaCasedString):
            value = SigmaCasedString.from_sigma_string(value)
        return self._string_leaf(KEYWORDS, keyword_accessor, value)

    def _regex_leaf(self, field_key: str, accessor: Accessor, value: SigmaRegularExpression) -> Node:
        flags = "".join(sorted(f.name[0] for f in value.flags))
        key = f"{field_key}\0re\0{flags}\0{value.regexp}"
        if key in self.leaves:
            return Node("leaf", leaf=self.leaves[key])
        matcher = regex_matcher(value)
        if not matcher.linear:
            self.fallback_patterns.add(str(value.regexp))

        literals = regex_literals(value)
        atoms = tuple(("contains", literal) for literal in literals) if literals else None
        if literals is None:

            def regex_leaf(ctx: Context) -> bool:
                return any(matcher(text) for text in raw_texts(accessor(ctx)))

            return self._intern(Leaf(key, field_key, accessor, regex_leaf, atoms))
        gate = literals_matcher("contains", literals)

        def gated_regex_leaf(ctx: Context) -> bool:
            # Every match contains one of the literals (as the index assumes): substring tests
            # on the folded text (usually cached by the index walk) spare most calls into RE2.
            folded = ctx.fold(field_key, accessor)
            if folded is None or not (gate(folded) if type(folded) is str else any(map(gate, folded))):
                return False
            return any(matcher(text) for text in raw_texts(accessor(ctx)))

        return self._intern(Leaf(key, field_key, accessor, gated_regex_leaf, atoms))

    def _cidr_leaf(self, field_key: str, accessor: Accessor, value: SigmaCIDRExpression) -> Node:
        network = value.network

        def cidr_leaf(ctx: Context) -> bool:
            for text in raw_texts(accessor(ctx)):
                address = parse_ip(text)
                if address is not None and address.version == network.version and address in network:
                    return True
            return False

        return self._intern(Leaf(f"{field_key}\0cidr\0{network}", field_key, accessor, cidr_leaf))

    def _compare_leaf(self, field_key: str, accessor: Accessor, value: SigmaCompareExpression) -> Node:
        bound = float(value.number.number)
        compare: Callable[[float], bool] = {
            CompareOperators.LT: lambda x: x < bound,
            CompareOperators.LTE: lambda x: x <= bound,
            CompareOperators.GT: lambda x: x > bound,
            CompareOperators.GTE: lambda x: x >= bound,
            CompareOperators.NEQ: lambda x: x != bound,
        }[value.op]

        def compare_leaf(ctx: Context) -> bool:
            raw = accessor(ctx)
            for item in raw if isinstance(raw, (list, tuple)) else (raw,):
                number = to_number(item)
                if number is not None and compare(number):
                    return True
            return False

        return self._intern(Leaf(f"{field_key}\0cmp\0{value.op.name}\0{bound}", field_key, accessor, compare_leaf))

    def _fieldref_leaf(
        self, field_key: str, accessor: Accessor, value: SigmaFieldReference, fieldmap: FieldMap
    ) -> Node:
        other_key, other = self._accessor(value.field, fieldmap)
        starts, ends = value.starts_with, value.ends_with

        def fieldref_leaf(ctx: Context) -> bool:
            mine, theirs = ctx.fold(field_key, accessor), ctx.fold(other_key, other)
            if mine is None or theirs is None:
                return False
            left = mine if isinstance(mine, tuple) else (mine,)
            right = theirs if isinstance(theirs, tuple) else (theirs,)
            for a in left:
                for b in right:
                    if starts and ends:
                        if b in a:
                            return True
                    elif starts:
                        if a.startswith(b):
                            return True
                    elif ends:
                        if a.endswith(b):
                            return True
                    elif a == b:
                        return True
            return False

        key = f"{field_key}\0ref\0{other_key}\0{starts}\0{ends}"
        return self._intern(Leaf(key, field_key, accessor, fieldref_leaf))

    def _timestamp_leaf(self, field_key: str, accessor: Accessor, value: SigmaTimestampPart) -> Node:
        unit, wanted = value.timestamp_part, int(value.number)

        def timestamp_leaf(ctx: Context) -> bool:
            moment = to_datetime(accessor(ctx))
            return moment is not None and timestamp_part(moment, unit) == wanted

        return self._intern(Leaf(f"{field_key}\0time\0{unit.name}\0{wanted}", field_key, accessor, timestamp_leaf))


KEYWORDS = "\0keywords"


def keyword_accessor(ctx: Context) -> Any:
    """All scalar values that keyword (full-text) detections search, as one list-valued field."""
    data = ctx.event_data
    if data is None:
        return list(_leaves(ctx.event))
    values: list[Any] = []
    for value in data.values():
        cls = type(value)
        if cls in _SCALARS:
            if value is not None:
                values.append(value)
        elif cls is list and all(type(item) in _SCALARS for item in value):
            values.extend(value)  # unnamed <Data> elements
        elif value is not None:
            return list(_leaves(data))  # nested structure: walk it
    return values


_SCALARS = frozenset((str, int, bool, float, type(None)))


def _simplify(node: Node) -> Node:  # noqa: PLR0911
    """Fold constants and flatten nested AND/OR (keeps evaluation shallow)."""
    if node.kind == "not":
        child = node.children[0]
        if child.kind == "const":
            return _const(not child.const)
        return node
    if node.kind not in ("and", "or"):
        return node
    absorbing = node.kind == "or"  # True absorbs OR, False absorbs AND
    children: list[Node] = []
    for child in node.children:
        if child.kind == "const":
            if child.const == absorbing:
                return _const(absorbing)
            continue
        if child.kind == node.kind:
            children.extend(child.children)
        else:
            children.append(child)
    if not children:
        return _const(not absorbing)
    if len(children) == 1:
        return children[0]
    return Node(node.kind, children)


# ---------------------------------------------------------------- strings


def has_placeholder(value: SigmaString) -> bool:
    """pySigma's ``contains_placeholder()`` without its filters, as a compiled loop: its generator
    was a tenth of compiling a route's group."""
    return any(isinstance(part, Placeholder) for part in value.s)


def string_shape(value: SigmaString, cased: bool) -> tuple[str, str, str | None]:
    """``(op, literal, glob_regex)``: eq/contains/startswith/endswith on a literal, or glob."""
    parts = list(value.s)
    fold: Callable[[str], str] = (lambda s: s) if cased else str.casefold
    star = SpecialChars.WILDCARD_MULTI
    inner = parts[:]
    lead = bool(inner) and inner[0] == star
    if lead:
        inner = inner[1:]
    trail = bool(inner) and inner[-1] == star
    if trail:
        inner = inner[:-1]
    if all(isinstance(p, str) for p in inner):
        literal = fold("".join(p for p in inner if isinstance(p, str)))
        op = "contains" if lead and trail else "endswith" if lead else "startswith" if trail else "eq"
        return op, literal, None
    pieces: list[str] = []
    for part in parts:
        if part == star:
            pieces.append(".*")
        elif part == SpecialChars.WILDCARD_SINGLE:
            pieces.append(".")
        elif isinstance(part, str):
            pieces.append(re.escape(fold(part)))
        else:
            raise RuleLoadError(f"unresolved placeholder in value {value}")
    return "glob", "", "".join(pieces)


def string_matcher(op: str, literal: str, pattern: str | None) -> Callable[[str], bool]:
    if op == "eq":
        return literal.__eq__
    if op == "contains":
        return lambda text: literal in text
    if op == "startswith":
        return lambda text: text.startswith(literal)
    if op == "endswith":
        return lambda text: text.endswith(literal)
    assert pattern is not None
    compiled = compile_regex(f"(?s){pattern}")
    return lambda text: compiled(text, full=True)


def literals_matcher(op: str, literals: tuple[str, ...]) -> Callable[[str], bool]:
    """Test text against several literals at once (C-level ``startswith(tuple)``, set lookup)."""
    if len(literals) == 1:
        return string_matcher(op, literals[0], None)
    if op == "eq":
        return frozenset(literals).__contains__
    if op == "startswith":
        return lambda text: text.startswith(literals)
    if op == "endswith":
        return lambda text: text.endswith(literals)
    if len(literals) > 6 and all(literals):
        # Many substrings: one automaton pass beats a Python loop of `in` tests.
        automaton = ahocorasick_rs.AhoCorasick(list(literals))
        return lambda text: bool(automaton.find_matches_as_indexes(text))
    return lambda text: any(literal in text for literal in literals)


def glob_pieces(value: SigmaString, cased: bool) -> list[str] | None:
    """The literal pieces between the ``*`` of a glob (folded unless cased); None when it has
    a ``?`` (those globs stay regular expressions)."""
    pieces = [""]
    for part in value.s:
        if part == SpecialChars.WILDCARD_MULTI:
            pieces.append("")
        elif isinstance(part, str):
            pieces[-1] += part if cased else part.casefold()
        else:
            return None
    return pieces if len(pieces) > 1 else None


def pieces_matcher(pieces: list[str]) -> Callable[[str], bool]:
    """Whole-text match of ``p0*p1*...*pn``: p0 starts it, pn ends it, and the middle pieces
    occur in order between them (leftmost occurrences suffice). Plain ``str`` searches, no
    regular expression engine."""
    first, middle, last = pieces[0], tuple(pieces[1:-1]), pieces[-1]
    fixed = len(first) + len(last)

    def matches(text: str) -> bool:
        if len(text) < fixed or not text.startswith(first) or not text.endswith(last):
            return False
        position, end = len(first), len(text) - len(last)
        for piece in middle:
            found = text.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True

    return matches


def glob_atom(value: SigmaString) -> tuple[str, str] | None:
    """A glob's longest literal run: a folded text the glob matches must contain it."""
    best = ""
    for part in value.s:
        if isinstance(part, str) and len(part) > len(best):
            best = part
    best = best.casefold()
    return ("contains", best) if len(best) >= 2 else None


# ---------------------------------------------------------------- regular expressions


class _Regex:
    """A compiled pattern: RE2 when it accepts the pattern, else Python ``re`` on bounded input."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.linear = True
        self._py: re.Pattern[str] | None = None
        self._direct: Any = None
        try:
            options = re2.Options()
            options.max_mem = 64 << 20
            self._re2: Any = re2.compile(pattern, options)
        except re2.error:
            self.linear = False
            self._re2 = None
            try:
                self._py = re.compile(pattern)
            except re.error as error:
                raise RuleLoadError(f"invalid regular expression {pattern!r}: {error}") from error
            return
        # google-re2's Python wrapper maps every match position back to str offsets, which costs
        # more than the match itself; a yes/no answer only needs RE2's own Match on UTF-8.
        regexp = getattr(self._re2, "_regexp", None)
        anchor = getattr(re2, "_Anchor", None)
        if regexp is not None and anchor is not None:
            self._direct = regexp.Match
            self._unanchored = anchor.UNANCHORED
            self._both = anchor.ANCHOR_BOTH
        self.min_length = _min_match_length(pattern)

    def __call__(self, text: str, *, full: bool = False) -> bool:
        direct = self._direct
        if direct is not None:
            data = text.encode("utf-8", "surrogatepass")
            if len(data) < self.min_length:
                return False  # too short for any match (e.g. 82 characters of hex and spaces)
            spans = direct(self._both if full else self._unanchored, data, 0, len(data))
            return spans[0][0] != -1
        if self._re2 is not None:
            return (self._re2.fullmatch(text) if full else self._re2.search(text)) is not None
        assert self._py is not None
        text = text[:FALLBACK_REGEX_INPUT_LIMIT]
        return (self._py.fullmatch(text) if full else self._py.search(text)) is not None


def _min_match_length(pattern: str) -> int:
    """Fewest characters any match of ``pattern`` has (0 when unsure).

    From Python's parse of the pattern, used only when Python reads it without complaint: a
    pattern it warns about (``[[:alpha:]]``, a "nested set" to Python, one class to RE2) may
    mean something else to RE2. Each character RE2 matches is at least one UTF-8 byte, so the
    bound holds for the encoded text RE2 sees.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return int(re_parser.parse(pattern).getwidth()[0])
        except (re.error, Warning, RecursionError, OverflowError, ValueError):
            return 0


_REGEX_CACHE: dict[str, _Regex] = {}


def compile_regex(pattern: str) -> _Regex:
    found = _REGEX_CACHE.get(pattern)
    if found is None:
        found = _Regex(pattern)
        _REGEX_CACHE[pattern] = found
    return found


def regex_literals(value: SigmaRegularExpression) -> tuple[str, ...] | None:
    """Literals (folded), one of which every text the regular expression matches contains.

    Walks Python's parse of the pattern and takes the longest run of literal characters that
    every match must contain: at the top level, inside groups and inside repeats of at least
    one, never inside alternations or optional parts. A small character class in a run counts
    as one position with a few alternatives: ``\\.[ "']`` gives ``. ``, ``."`` and ``.'``
    (at most _MAX_ALTERNATIVES literals). Under the ``i`` flag only ASCII characters are
    used, whose case folding RE2 and ``str.casefold`` agree on. A pattern Python warns about
    (``[[:alpha:]]``: a nested set to Python, one class to RE2) gives none.
    """
    ignorecase = SigmaRegularExpressionFlag.IGNORECASE in value.flags
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            parsed = re_parser.parse(str(value.regexp), re.IGNORECASE if ignorecase else 0)
        except (re.error, Warning, RecursionError, OverflowError):
            return None
    if parsed.state.flags & re.IGNORECASE:
        ignorecase = True  # an inline (?i) at the start applies to the whole pattern
    runs: list[list[frozenset[str]]] = []
    _literal_runs(parsed, ignorecase, runs)
    best: tuple[int, int, list[frozenset[str]]] = (0, 0, [])
    for run in runs:
        for start in range(len(run)):
            count = 1
            for end in range(start, len(run)):
                count *= len(run[end])
                if count > _MAX_ALTERNATIVES:
                    break
                # longest first, then fewest alternatives
                if (end + 1 - start, -count) > (best[0], -best[1]):
                    best = (end + 1 - start, count, run[start:end + 1])
    if not best[0]:
        return None
    found: list[str] = [""]
    for position in best[2]:
        found = [prefix + char for prefix in found for char in sorted(position)]
    return tuple(dict.fromkeys(literal.casefold() for literal in found))


# A character class is a run position when it has at most this many characters, and a run
# at most this many alternatives.
_MAX_ALTERNATIVES = 8


def _literal_runs(sequence: Any, ignorecase: bool, runs: list[list[frozenset[str]]]) -> None:
    run: list[frozenset[str]] = []
    for op, argument in sequence:
        chars = _position(op, argument, ignorecase)
        if chars is not None:
            run.append(chars)
            continue
        if op in (re_constants.MAX_REPEAT, re_constants.MIN_REPEAT) and argument[0] >= 1 and len(argument[2]) == 1:
            body_op, body_argument = argument[2][0]
            chars = _position(body_op, body_argument, ignorecase)
            if chars is not None:
                if argument[0] == argument[1] == 1:
                    run.append(chars)  # x{1}: x itself
                    continue
                # x{2,5}: the first x follows what came before, the last precedes what follows.
                runs.append([*run, chars])
                run = [chars]
                continue
        runs.append(run)
        run = []
        if op is re_constants.SUBPATTERN:
            scoped = ignorecase or bool(argument[1] & re.IGNORECASE)  # (?i:...) groups
            _literal_runs(argument[-1], scoped, runs)
        elif op in (re_constants.MAX_REPEAT, re_constants.MIN_REPEAT) and argument[0] >= 1:
            _literal_runs(argument[2], ignorecase, runs)
    runs.append(run)


def _position(op: Any, argument: Any, ignorecase: bool) -> frozenset[str] | None:
    """The characters one position of a literal run can be: a literal, or a small class of
    literals and short ranges (no negation, no categories such as ``\\d``)."""
    if op is re_constants.LITERAL:
        return None if ignorecase and argument > 127 else frozenset(chr(argument))
    if op is not re_constants.IN:
        return None
    chars: set[str] = set()
    for item_op, item in argument:
        if item_op is re_constants.LITERAL:
            chars.add(chr(item))
        elif item_op is re_constants.RANGE and item[1] - item[0] < _MAX_ALTERNATIVES:
            chars.update(chr(code) for code in range(item[0], item[1] + 1))
        else:
            return None
        if len(chars) > _MAX_ALTERNATIVES:
            return None
    if ignorecase and any(ord(char) > 127 for char in chars):
        return None
    return frozenset(chars) if chars else None


def regex_matcher(value: SigmaRegularExpression) -> _Regex:
    """The compiled pattern of a ``re`` value with its ``i``/``m``/``s`` flags (callable on text)."""
    flags = ""
    if SigmaRegularExpressionFlag.IGNORECASE in value.flags:
        flags += "i"
    if SigmaRegularExpressionFlag.MULTILINE in value.flags:
        flags += "m"
    if SigmaRegularExpressionFlag.DOTALL in value.flags:
        flags += "s"
    pattern = str(value.regexp)
    return compile_regex(f"(?{flags}){pattern}" if flags else pattern)


# ---------------------------------------------------------------- other value types


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip("[]")
    if "%" in text:
        text = text.split("%", 1)[0]  # IPv6 zone id
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def to_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value is MISSING:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(int(text, 0)) if text.lower().startswith(("0x", "-0x")) else float(text)
        except ValueError:
            return None
    return None


def to_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return parse_timestamp(value)
        except ValueError:
            return None
    return None


def timestamp_part(moment: datetime, unit: TimestampPart) -> int:
    if unit is TimestampPart.MINUTE:
        return moment.minute
    if unit is TimestampPart.HOUR:
        return moment.hour
    if unit is TimestampPart.DAY:
        return moment.day
    if unit is TimestampPart.WEEK:
        return moment.isocalendar()[1]
    if unit is TimestampPart.MONTH:
        return moment.month
    return moment.year


# ---------------------------------------------------------------- closures and requirements


def build_predicate(node: Node) -> Predicate:
    """A closure evaluating ``node``; leaves go through the per-event memo."""
    if node.kind == "const":
        value = node.const
        return lambda ctx: value
    if node.kind == "leaf":
        assert node.leaf is not None
        test = node.leaf.test
        if node.leaf.spec is not None:
            return test  # a literal test costs no more than a memo lookup
        memo_key = id(node.leaf)

        def leaf(ctx: Context) -> bool:
            memo = ctx.memo
            result = memo.get(memo_key)
            if result is None:
                result = memo[memo_key] = test(ctx)
            return result

        return leaf
    if node.kind == "not":
        inner = build_predicate(node.children[0])
        return lambda ctx: not inner(ctx)
    ordered = sorted(node.children, key=cost) if node.kind == "and" else node.children
    children = [build_predicate(child) for child in ordered]
    return _chain("and" if node.kind == "and" else "or", children)


def _chain(operator: str, functions: list[Predicate]) -> Predicate:
    """``f0(ctx) and f1(ctx) and ...`` as one function: no generator, one frame per level."""
    if len(functions) == 1:
        return functions[0]
    if _COMPILED:
        # Compiled (see detectors/sigma/native.py), a loop over compiled callables costs less
        # than the interpreted frame of an eval'd lambda; as plain Python it is the other way.
        return _all_of(tuple(functions)) if operator == "and" else _any_of(tuple(functions))
    names = {f"f{index}": function for index, function in enumerate(functions)}
    source = "lambda ctx: " + f" {operator} ".join(f"{name}(ctx)" for name in names)
    # The source is built from our own identifiers only (f0, f1, ...); nothing from a rule.
    return eval(source, names)  # noqa: S307


def _all_of(functions: tuple[Predicate, ...]) -> Predicate:
    def all_of(ctx: Context) -> bool:
        return all(function(ctx) for function in functions)

    return all_of


def _any_of(functions: tuple[Predicate, ...]) -> Predicate:
    def any_of(ctx: Context) -> bool:
        return any(function(ctx) for function in functions)

    return any_of


def cost(node: Node) -> float:
    """Rough evaluation cost: AND evaluates cheap children first so that a false one stops it."""
    if node.kind == "leaf":
        leaf = node.leaf
        assert leaf is not None
        if leaf.spec is not None:
            base = 1.0 + 0.02 * len(leaf.spec[2]) if leaf.spec[1] == "contains" else 1.0
        elif ":re" in leaf.key or "\0re\0" in leaf.key:
            base = 8.0
        else:
            base = 3.0
        return base * 4 if leaf.field_key == KEYWORDS else base
    if node.kind == "const":
        return 0.0
    return sum(cost(child) for child in node.children) + 0.1


# mypyc makes a compiled module's functions builtins; as plain Python they are functions.
_COMPILED = not isinstance(cost, FunctionType)


Atom = tuple[str, str, str]  # (field key, op, folded literal)


def requirements(node: Node) -> list[tuple[Atom, Leaf]] | None:  # noqa: PLR0911
    """Atoms at least one of which holds whenever ``node`` is true; None when none can be named."""
    if node.kind == "leaf":
        leaf = node.leaf
        assert leaf is not None
        if leaf.atoms is None or leaf.field_key is None:
            return None
        return [((leaf.field_key, op, literal), leaf) for op, literal in leaf.atoms]
    if node.kind == "const":
        return [] if not node.const else None
    if node.kind == "or":
        found: list[tuple[Atom, Leaf]] = []
        for child in node.children:
            sub = requirements(child)
            if sub is None:
                return None
            found.extend(sub)
        return found
    if node.kind == "and":
        best: list[tuple[Atom, Leaf]] | None = None
        best_cost = float("inf")
        for child in node.children:
            sub = requirements(child)
            if sub is None:
                continue
            cost = sum(_atom_cost(atom) for atom, _ in sub)
            if cost < best_cost:
                best, best_cost = sub, cost
        return best
    return None  # NOT: nothing it needs


def requirement_clauses(node: Node, limit: int = 3) -> list[list[tuple[Atom, Leaf]]] | None:
    """Up to ``limit`` clauses, cheapest first, each of which must have a true atom for ``node``.

    The first clause selects candidate rules; the others filter them before evaluation, using
    the same single pass of the automaton (an AND of selections gives several clauses).

    An OR of ANDs gives clauses too: when ``A`` needs clauses ``a1, a2`` and ``B`` needs
    ``b1``, then ``A or B`` needs ``a1 ∪ b1`` and ``a2 ∪ b1`` (whichever side is true supplies
    the atom). So ``(Image|contains '\\windows\\' and CommandLine|contains X) or
    CommandLine|contains Y`` is filtered on ``X ∪ Y``, not only selected by the frequent
    ``'\\windows\\' ∪ Y``.
    """
    if node.kind == "or":
        combined: list[list[tuple[Atom, Leaf]]] = [[]]
        for child in node.children:
            sub = requirement_clauses(child, limit)
            if not sub:
                return None  # a child that needs no atom: neither does the OR
            # Any product clause is implied by the OR: keep the cheapest few of each step.
            combined = _cheapest([left + right for left in combined for right in sub], limit)
        return combined
    if node.kind != "and":
        single = requirements(node)
        return None if single is None else [single]
    clauses: list[list[tuple[Atom, Leaf]]] = []
    for child in node.children:
        sub = requirement_clauses(child, limit)
        if sub:
            clauses.extend(sub)
    if not clauses:
        return None
    return _cheapest(clauses, limit)


def _cheapest(clauses: list[list[tuple[Atom, Leaf]]], limit: int) -> list[list[tuple[Atom, Leaf]]]:
    """The ``limit`` cheapest clauses, each without repeated atoms."""
    unique = [list({atom: (atom, leaf) for atom, leaf in clause}.values()) for clause in clauses]
    unique.sort(key=lambda clause: sum(_atom_cost(atom) for atom, _ in clause))
    return unique[:limit]


def veto_atoms(node: Node) -> list[tuple[Atom, Leaf]]:
    """Atoms any one of which makes ``node`` false: those of ``not (a or b ...)`` in a top-level
    AND, where ``a``, ``b`` are folded literal leaves. Such a leaf is true exactly when one of
    its atoms occurs in its field's folded text (which is what the engine's index finds), so
    a rule with no literal it needs ('not Image|contains "\\"') can still be skipped."""
    children = node.children if node.kind == "and" else [node]
    found: list[tuple[Atom, Leaf]] = []
    for child in children:
        if child.kind != "not":
            continue
        inner = child.children[0]
        for leaf_node in inner.children if inner.kind == "or" else [inner]:
            leaf = leaf_node.leaf
            if leaf_node.kind != "leaf" or leaf is None or leaf.spec is None or leaf.spec[0]:
                continue  # not a leaf, or a cased one (its atoms are folded: not exact)
            if leaf.atoms is None or leaf.field_key is None or leaf.field_key == KEYWORDS:
                continue
            found.extend(((leaf.field_key, op, literal), leaf) for op, literal in leaf.atoms)
    return found


# Fields whose values hundreds of rules share (event ids, channels): poor index keys.
_WEAK_FIELDS = ("winlog.event_id", "winlog.channel", "winlog.provider_name")


def _atom_cost(atom: Atom) -> float:
    field_key, op, literal = atom
    cost = 1.0 / (1 + len(literal))
    if op == "eq":
        cost *= 0.5
    if field_key in _WEAK_FIELDS:
        cost += 1.0
    return cost
