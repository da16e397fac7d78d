"""The Sigma engine: load a rule set once, then match events against it fast.

Per-event cost must not grow with the number of rules, so matching an event goes:

1. **Route** by logsource. A Windows event's product/service/categories come from
   ``config/logsources.yaml`` (one event can be in several categories: Sysmon 13 is
   ``registry_set`` and ``registry_event``); other events carry ``socflow.logsource``. A rule
   applies when each of its product/category/service that it names equals the event's. Each
   route gets a :class:`RouteGroup` (its rules compiled with that route's field mapping, and
   their index), built on first use and cached.
2. **Index.** For every rule the compiler names up to three clauses of literal atoms (exact
   values, prefixes, suffixes, substrings of case-folded field text), each of which must have
   a true atom for the rule to match. Each indexed field of the event is scanned once by a
   Rust Aho-Corasick automaton holding all the route's literals for that field (single
   characters by set intersection); scans of recurring values are cached. The first clause
   selects candidate rules, the others filter them; rules that name no literal are always
   candidates.
3. **Evaluate** the candidates' compiled predicates, cheap tests first; leaves shared by many
   rules are evaluated once per event.

The engine is pure Python without pyflink; the Flink job loads one engine per task and
``socflow replay`` uses the same class.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from detectors.errors import RuleLoadError
from detectors.model import RuleInfo
from detectors.sigma.compiler import (
    FALLBACK_REGEX_INPUT_LIMIT,
    KEYWORDS,
    Atom,
    Context,
    Leaf,
    Node,
    Predicate,
    RuleCompiler,
    ahocorasick_rs,
    build_predicate,
    fold_value,
    keyword_accessor,
    normalize_name,
    requirement_clauses,
    veto_atoms,
)
from detectors.sigma.fieldmap import EventRoute, FieldMap, FieldMappings, RuleSource
from detectors.sigma.loader import (
    DEFAULT_CONFIG_DIR,
    LoadReport,
    RuleFailure,
    apply_filters,
    parse_files,
    resolve_correlations,
)
from ingest.errors import IngestError
from ingest.logsource import LogsourceTable
from ingest.schema import stable_id

_log = logging.getLogger(__name__)

# Segment markers around each field value in the text the automaton scans; a value never
# contains them (they are replaced), so "\x02abc" means "starts with abc", "abc\x03" "ends".
_START, _END = "\x02", "\x03"


@dataclass
class LoadedRule:
    info: RuleInfo
    source: RuleSource
    conditions: list[Any]  # pySigma condition trees (field mapping is applied when compiling)
    path: str


@dataclass
class RouteGroup:
    """The rules of one event route, compiled with that route's field mapping, and their index.

    Each rule has up to three requirement clauses (sets of literal atoms, one of which must
    hold in each): the first selects the rule as a candidate, the others must also have a hit
    before its predicate runs. All atoms are found in one automaton pass over the event.
    """

    rules: list[tuple[RuleInfo, Predicate]]
    fields: list[tuple[str, Any]] = field(default_factory=list)
    # field slot -> its scanner: the literals of the field's atoms in one automaton, and
    # single characters (too frequent for the automaton: found by set intersection). With
    # keyword rules in the route, an EventData field's scanner holds the keyword atoms too,
    # so one pass over a value finds both.
    scanners: dict[int, Scanner] = field(default_factory=dict)
    # rule position -> further clauses (atom ids) that must each have a hit
    filters: dict[int, tuple[frozenset[int], ...]] = field(default_factory=dict)
    always: frozenset[int] = frozenset()
    # rule position (of an `always` rule) -> atoms any of which makes the rule false
    vetoes: dict[int, frozenset[int]] = field(default_factory=dict)
    # EventData fields by name (and by normalized name), and the other indexed fields.
    data_slots: dict[str, int] = field(default_factory=dict)
    normalized_slots: dict[str, int] = field(default_factory=dict)
    other_fields: list[tuple[int, str, Any]] = field(default_factory=list)
    _plans: dict[tuple[str, ...], Plan] = field(default_factory=dict)
    # Slot of the keyword (full-text) pseudo-field, filled from the same walk over EventData.
    keyword_slot: int | None = None
    # slot -> {raw text: (folded, atom ids, rule positions)}: scans of recurring values
    _caches: list[dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]]] = field(default_factory=list)
    _cached: int = 0
    # EventData values only keyword rules search: {raw value: () or (atom ids, rule positions)}
    _keyword_cache: dict[Any, Any] = field(default_factory=dict)
    # Characters no keyword atom is made of alone ("" when one is): a value of only these
    # (a GUID, a time, a process id) cannot hold a keyword atom, so it is not scanned.
    keyword_plain: str = ""

    def _plan(self, names: tuple[str, ...]) -> Plan:
        """Which of an event's EventData names feed which slot (cached per name set), with the
        cache of that slot's scans; and the names only keyword rules look at."""
        plan: list[PlanStep] = []
        keyword_only: list[str] = []
        caches = self._caches
        # A slot is fed by one name, the one its field's accessor reads (the exact name, else
        # the first with the same normalized name), so that an atom found in a slot is an atom
        # of the field's value: vetoes rely on it. Other names are left to keyword rules.
        fed: set[int] = {slot for name in names if (slot := self.data_slots.get(name)) is not None}
        for name in names:
            slot = self.data_slots.get(name)
            if slot is not None:
                plan.append((name, slot, self.fields[slot][0], caches[slot]))
                continue
            slot = self.normalized_slots.get(normalize_name(name))
            if slot is not None and slot not in fed:
                fed.add(slot)
                plan.append((name, slot, None, caches[slot]))  # found by normalized name: index only
            elif self.keyword_slot is not None:
                keyword_only.append(name)
        found = (plan, tuple(keyword_only))
        if len(self._plans) < 10_000:
            self._plans[names] = found
        return found

    @classmethod
    def build(cls, entries: list[tuple[RuleInfo, Node, Predicate]]) -> RouteGroup:
        group = cls(rules=[(info, predicate) for info, _, predicate in entries])
        field_index: dict[str, int] = {}
        atoms: dict[tuple[str, int], int] = {}  # (pattern, slot) -> atom id
        selects: dict[int, set[int]] = {}  # atom id -> rule positions
        short: dict[tuple[str, int], int] = {}  # (short substring, slot) -> atom id
        always: set[int] = set()

        def atom_id(atom: Atom, leaf: Leaf) -> int:
            field_key, op, literal = atom
            slot = field_index.get(field_key)
            if slot is None:
                slot = field_index[field_key] = len(group.fields)
                group.fields.append((field_key, _accessor(leaf)))
            if op == "contains" and len(literal) < MIN_SUBSTRING:
                return short.setdefault((literal, slot), len(atoms) + len(short) + 1_000_000)
            pattern = {
                "eq": _START + literal + _END,
                "startswith": _START + literal,
                "endswith": literal + _END,
                "contains": literal,
            }[op]
            return atoms.setdefault((pattern, slot), len(atoms))

        for position, (_, node, _) in enumerate(entries):
            clauses = [clause for clause in requirement_clauses(node) or () if all(_indexable(a) for a, _ in clause)]
            if not clauses:
                always.add(position)
                group.vetoes[position] = frozenset(
                    atom_id(atom, leaf) for atom, leaf in veto_atoms(node) if _indexable(atom)
                )
                continue
            for atom, leaf in clauses[0]:
                selects.setdefault(atom_id(atom, leaf), set()).add(position)
            further = tuple(frozenset(atom_id(atom, leaf) for atom, leaf in clause) for clause in clauses[1:])
            if further:
                group.filters[position] = further
        group.always = frozenset(always)
        group._caches = [{} for _ in group.fields]
        group._caches.append(group._keyword_cache)  # emptied with the others (forget_values)
        prefix = "winlog.event_data."
        for slot, (field_key, accessor) in enumerate(group.fields):
            if field_key.startswith(prefix) and "|" not in field_key:
                name = field_key[len(prefix):]
                group.data_slots[name] = slot
                group.normalized_slots.setdefault(normalize_name(name), slot)
            elif field_key == KEYWORDS:
                group.keyword_slot = slot
            else:
                group.other_fields.append((slot, field_key, accessor))

        def targets(identifier: int) -> Hit:
            return (identifier,), tuple(sorted(selects.get(identifier, ())))

        literals: dict[int, dict[str, Hit]] = {}
        for (pattern, slot), identifier in atoms.items():
            literals.setdefault(slot, {})[pattern] = targets(identifier)
        chars: dict[int, dict[str, Hit]] = {}
        for (literal, slot), identifier in short.items():
            chars.setdefault(slot, {})[literal] = targets(identifier)
        group._build_scanners(literals, chars)
        return group

    def _build_scanners(self, literals: dict[int, dict[str, Hit]], chars: dict[int, dict[str, Hit]]) -> None:
        keyword = self.keyword_slot
        if keyword is not None:
            self.keyword_plain = _plain_for([*literals.get(keyword, {}), *chars.get(keyword, {})])
        for slot in range(len(self.fields)):
            own_literals, own_chars = literals.get(slot, {}), chars.get(slot, {})
            if keyword is not None and slot != keyword and slot in self.data_slots.values():
                own_literals = _merged(own_literals, literals.get(keyword, {}))
                own_chars = _merged(own_chars, chars.get(keyword, {}))
            # Rust Aho-Corasick per field: one pass over the field's text whatever the number
            # of literals; overlapping matches so no literal hides another. (The DFA variant is
            # no faster here and takes ~10x the memory.)
            ordered = sorted(own_literals)
            automaton = ahocorasick_rs.AhoCorasick(ordered) if ordered else None
            self.scanners[slot] = (automaton, [own_literals[p] for p in ordered], _chars_of(own_chars))

    def candidates(self, ctx: Context) -> list[int]:
        found = set(self.always)
        if not self.scanners:
            return sorted(found)
        hits: set[int] = set()
        data = ctx.event_data
        keyword_slot = self.keyword_slot
        # The walk over EventData also finds the keyword atoms, unless a value was nested.
        walked = data is not None and self._walk_data(ctx, data, hits, found)
        if keyword_slot is not None and not walked:
            keywords = ctx.fold(KEYWORDS, keyword_accessor)
            if keywords is not None:
                # No EventData (Linux, web, network events) or a nested value: one joined scan
                # of every value, uncached (no literal spans two values: markers separate them).
                slot_hits, slot_found = self._scan(keyword_slot, keywords)
                hits.update(slot_hits)
                found.update(slot_found)
        caches = self._caches
        folded_cache = ctx.folded
        for slot, field_key, accessor in self.other_fields:
            raw = accessor(ctx)
            cls = type(raw)
            if cls is str or cls is int:
                # event ids, providers, levels: few distinct values, so their scans are cached
                cache = caches[slot]
                entry = cache.get(raw)
                if entry is None:
                    folded = fold_value(raw)
                    entry = (folded, *self._scan(slot, folded))
                    if cls is int or len(raw) <= _CACHE_VALUE_LIMIT:
                        self._remember(cache, raw, entry)
                folded_cache[field_key] = entry[0]
                if entry[1]:
                    hits.update(entry[1])
                    found.update(entry[2])
                continue
            folded = folded_cache[field_key] = fold_value(raw)
            if folded is not None:
                slot_hits, slot_found = self._scan(slot, folded)
                hits.update(slot_hits)
                found.update(slot_found)
        filters = self.filters
        vetoes = self.vetoes
        selected: list[int] = []
        for position in sorted(found):
            veto = vetoes.get(position)
            if veto is not None and not veto.isdisjoint(hits):
                continue
            clauses = filters.get(position)
            if clauses is None or (not clauses[0].isdisjoint(hits) and (
                len(clauses) == 1 or all(not clause.isdisjoint(hits) for clause in clauses[1:])
            )):
                selected.append(position)
        return selected

    def _walk_data(
        self, ctx: Context, data: Mapping[str, Any], hits: set[int], found: set[int]
    ) -> bool:
        """Scan the event's EventData fields (a dozen) rather than every field the route's rules
        name (up to a hundred, most absent). With keyword (full-text) rules in the route, each
        value is scanned for their atoms too. False when a value is neither a scalar nor a list
        of scalars: the keyword accessor must then walk the event."""
        names = tuple(data)
        plan = self._plans.get(names)
        if plan is None:
            plan = self._plan(names)
        steps, keyword_only = plan
        folded_cache = ctx.folded
        complete = True
        for name, slot, field_key, cache in steps:
            value = data[name]
            cls = type(value)
            if cls is str or cls is int:
                # Most values recur (images, users, integrity levels): their scan is cached.
                entry = cache.get(value)
                if entry is None:
                    entry = self._scan_value(slot, value)
                    if cls is int or len(value) <= _CACHE_VALUE_LIMIT:
                        self._remember(cache, value, entry)
                if field_key is not None:
                    folded_cache[field_key] = entry[0]
                if entry[1]:
                    hits.update(entry[1])
                    found.update(entry[2])
            elif value is not None:
                complete = self._walk_other(ctx, slot, field_key, value, hits=hits, found=found) and complete
        if keyword_only:
            complete = self._scan_keyword_only(ctx, data, keyword_only, hits, found) and complete
        return complete

    def _scan_keyword_only(
        self, ctx: Context, data: Mapping[str, Any], names: tuple[str, ...], hits: set[int], found: set[int]
    ) -> bool:
        """The values no rule names but keyword rules search (process GUIDs, ids, times).

        Many never recur, so they have a cache of their own (emptied when full: they cannot push
        recurring values of the indexed fields out), and an event's misses are scanned together,
        joined with markers, in one pass of the keyword scanner (a keyword literal holds no
        marker, so it never spans two values). Only in the rare event of a hit is each value
        scanned alone, so that what is cached for a value is its own atoms.
        """
        cache = self._keyword_cache
        plain = self.keyword_plain
        missed: list[Any] = []
        complete = True
        for name in names:
            value = data[name]
            cls = type(value)
            if cls is str or cls is int:
                entry = cache.get(value)
                # A value of only characters no keyword atom is made of holds no atom.
                if entry is None and (value.strip(plain) if cls is str else not plain):
                    missed.append(value)
                elif entry:
                    hits.update(entry[0])
                    found.update(entry[1])
            elif value is not None:
                complete = self._walk_other(ctx, -1, None, value, hits=hits, found=found) and complete
        if not missed:
            return complete
        slot: int = self.keyword_slot  # type: ignore[assignment]
        texts = [value.casefold() if type(value) is str else str(value) for value in missed]
        if len(cache) + len(missed) > _KEYWORD_CACHE_LIMIT:
            cache.clear()
        joined_hits, _ = self._scan(slot, texts)
        for value, text in zip(missed, texts, strict=True):
            value_hits: Hit | tuple[()] = ()
            if joined_hits:
                value_hits = self._scan(slot, text)
                if value_hits[0]:
                    hits.update(value_hits[0])
                    found.update(value_hits[1])
                else:
                    value_hits = ()
            if type(value) is int or len(value) <= _CACHE_VALUE_LIMIT:
                cache[value] = value_hits
        return complete

    def _walk_other(
        self, ctx: Context, slot: int, field_key: str | None, value: Any, *, hits: set[int], found: set[int]
    ) -> bool:
        """An EventData value that is not a str or int (rare): lists, booleans, floats, nested."""
        folded = fold_value(value)
        cls = type(value)
        scalar = cls in _SCALARS or (cls is list and all(type(item) in _SCALARS for item in value))
        if slot < 0:
            if scalar and folded is not None:
                slot = self.keyword_slot  # type: ignore[assignment]
            else:
                return scalar
        elif field_key is not None:
            ctx.folded[field_key] = folded
        if folded is not None:
            slot_hits, slot_found = self._scan(slot, folded)
            hits.update(slot_hits)
            found.update(slot_found)
        return scalar or self.keyword_slot is None

    def _scan_value(self, slot: int, value: str | int) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
        """(folded text, atoms, rules) of one EventData value: its field's scanner (which holds
        the keyword atoms too), or the keyword scanner for a field no other rule names (-1)."""
        folded = value.casefold() if isinstance(value, str) else str(value)
        if slot < 0:
            slot = self.keyword_slot  # type: ignore[assignment]
        return folded, *self._scan(slot, folded)

    def _remember(self, cache: dict[Any, Any], value: Any, entry: tuple[Any, ...]) -> None:
        self._cached += 1
        if self._cached > _CACHE_LIMIT:
            for each in self._caches:
                each.clear()
            self._cached = 1
        cache[value] = entry

    def _scan(self, slot: int, folded: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The atoms of ``slot`` that the folded text(s) satisfy, and the rules they select."""
        if type(folded) is str:
            if _START in folded or _END in folded:
                folded = folded.replace(_START, " ").replace(_END, " ")
            text = _START + folded + _END
        else:
            joined = _SEP.join(folded)
            if joined.count(_START) != len(folded) - 1 or joined.count(_END) != len(folded) - 1:
                joined = _SEP.join(v.replace(_START, " ").replace(_END, " ") for v in folded)  # a value had markers
            text = _START + joined + _END
        automaton, payload, chars = self.scanners[slot]
        # Only which literals occur matters, not where or how often.
        patterns: Iterable[int] = ()
        if automaton is not None:
            patterns = {match[0] for match in automaton.find_matches_as_indexes(text, overlapping=True)}
        return _hits_of(text, patterns, payload, chars)

    def match(self, ctx: Context, *, indexed: bool = True) -> list[RuleInfo]:
        rules = self.rules
        positions = self.candidates(ctx) if indexed else range(len(rules))
        matched: list[RuleInfo] = []
        for position in positions:
            info, predicate = rules[position]
            if predicate(ctx):
                matched.append(info)
        return matched


_SEP = _END + _START
_SCALARS = frozenset((str, int, bool, float, type(None)))
# A route's scan cache holds at most this many values of at most _CACHE_VALUE_LIMIT characters;
# it is emptied when full (bounded memory without the cost of an LRU).
_CACHE_LIMIT = 8192
_CACHE_VALUE_LIMIT = 256
_KEYWORD_CACHE_LIMIT = 4096
# GUIDs, times, numbers and hex ids are made of these: see RouteGroup.keyword_plain.
_PLAIN = "0123456789abcdefABCDEF{}-:. "


# Substrings shorter than this hit almost every event (" ", "\\", "-"): the automaton would
# report each occurrence, so they are tested with `in` on their field instead.
MIN_SUBSTRING = 2


Hit = tuple[tuple[int, ...], tuple[int, ...]]  # (atom ids, rule positions they select)
PlanStep = tuple[str, int, str | None, dict[Any, Any]]  # (EventData name, slot, field key, scan cache)
Plan = tuple[list[PlanStep], tuple[str, ...]]  # (indexed names' steps, names only keywords search)
# Single-character checks: (ASCII ones with their hits, the others by character, their set)
Chars = tuple[tuple[tuple[str, Hit], ...], dict[str, Hit], frozenset[str]]
Scanner = tuple[Any, list[Hit], Chars | None]  # (automaton, its patterns' hits, characters)


def _merged(own: dict[str, Hit], extra: dict[str, Hit]) -> dict[str, Hit]:
    """Two pattern tables in one; a pattern in both reports the atoms of both."""
    if not extra:
        return own
    merged = dict(own)
    for pattern, (identifiers, positions) in extra.items():
        if pattern in merged:
            mine = merged[pattern]
            merged[pattern] = (mine[0] + identifiers, mine[1] + positions)
        else:
            merged[pattern] = (identifiers, positions)
    return merged


def _plain_for(patterns: list[str]) -> str:
    """_PLAIN if each pattern holds a character outside it (after folding), else ""."""
    folded_plain = frozenset(_PLAIN.casefold())
    if all(set(pattern.strip(_START + _END)) - folded_plain for pattern in patterns):
        return _PLAIN
    return ""


def _hits_of(
    text: str, patterns: Iterable[int], payload: list[Hit], chars: Chars | None
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The atoms of the patterns found in a text and of its single characters that are checks,
    and the rules they select."""
    value_hits: list[int] = []
    value_found: list[int] = []
    for pattern in patterns:
        identifiers, positions = payload[pattern]
        value_hits.extend(identifiers)
        value_found.extend(positions)
    if chars is not None:
        ascii_chars, wide, wide_keys = chars
        for char, (identifiers, positions) in ascii_chars:
            if char in text:
                value_hits.extend(identifiers)
                value_found.extend(positions)
        # Rules against homoglyphs check for a thousand non-ASCII characters; most text is ASCII
        # (a flag of the str, no scan), and the rest is scanned once, not once per character.
        if wide and not text.isascii():
            for char in wide_keys.intersection(text):
                identifiers, positions = wide[char]
                value_hits.extend(identifiers)
                value_found.extend(positions)
    return tuple(value_hits), tuple(value_found)


def _chars_of(checks: dict[str, Hit]) -> Chars | None:
    if not checks:
        return None
    wide = {char: hit for char, hit in checks.items() if not char.isascii()}
    ascii_chars = tuple((char, hit) for char, hit in sorted(checks.items()) if char.isascii())
    return ascii_chars, wide, frozenset(wide)


def _indexable(atom: Atom) -> bool:
    literal = atom[2]
    return _START not in literal and _END not in literal


def _accessor(leaf: Leaf) -> Any:
    assert leaf.accessor is not None
    return leaf.accessor


class SigmaEngine:
    """A loaded Sigma rule set; :meth:`match` gives the rules that fire on one event."""

    def __init__(
        self,
        loaded: list[LoadedRule],
        correlations: list[SigmaCorrelationRule],
        mappings: FieldMappings,
        logsources: LogsourceTable,
        *,
        indexed: bool = True,
    ) -> None:
        self._loaded = loaded
        self.rules: Sequence[RuleInfo] = tuple(rule.info for rule in loaded)
        self.correlations: Sequence[Any] = tuple(correlations)
        self._mappings = mappings
        self._logsources = logsources
        self._condition_fields = logsources.condition_fields
        self._compiler = RuleCompiler(mappings.placeholders)
        self._compiled: dict[tuple[int, Any], tuple[Node, Predicate]] = {}
        # (event route, rule logsource) -> field map and its key: a route's group asks for each
        # of its rules, and the rules share few logsources (78 pairs for 3,785 asks).
        self._fieldmaps: dict[tuple[EventRoute, RuleSource], tuple[FieldMap, Any]] = {}
        self._groups: dict[EventRoute, RouteGroup] = {}
        self._windows_routes: dict[tuple[Any, ...], EventRoute] = {}
        # (channel, event id) -> group, for the events whose route no EventData field decides
        self._plain_groups: dict[tuple[str, int], RouteGroup] = {}
        self.indexed = indexed

    # ------------------------------------------------------------ loading

    @classmethod
    def load(
        cls, paths: Sequence[Path], *, config_dir: Path | None = None, indexed: bool = True
    ) -> tuple[SigmaEngine, LoadReport]:
        """Load rule files and directories; a bad rule goes in the report, never raises for it."""
        config = config_dir or DEFAULT_CONFIG_DIR
        mappings = FieldMappings.load(config / "sigma")
        try:
            logsources = LogsourceTable.load(config / "logsources.yaml")
        except IngestError as error:
            raise RuleLoadError(str(error), source=str(config / "logsources.yaml")) from error
        report = LoadReport()
        parsed = parse_files([Path(p) for p in paths], report)
        apply_filters(parsed, report)
        correlations = resolve_correlations(parsed, report)
        loaded: list[LoadedRule] = []
        for sigma_rule, where in parsed.rules:
            try:
                loaded.append(_prepare(sigma_rule, where))
            except (SigmaError, RuleLoadError) as error:
                report.failures.append(RuleFailure(where, _rule_id(sigma_rule), sigma_rule.title or None, str(error)))
        engine = cls(loaded, correlations, mappings, logsources, indexed=indexed)
        kept: list[LoadedRule] = []
        for position, rule in enumerate(loaded):
            try:
                engine._check(position, rule)
            except (SigmaError, RuleLoadError, ValueError, TypeError) as error:
                report.failures.append(RuleFailure(rule.path, rule.info.id, rule.info.title, str(error)))
                continue
            kept.append(rule)
        if len(kept) != len(loaded):
            engine = cls(kept, correlations, mappings, logsources, indexed=indexed)
        report.loaded += len(kept)
        report.notes.extend(_unrouted_notes(kept, logsources))
        for name in sorted(engine._compiler.empty_placeholders):
            report.notes.append(f"placeholder %{name}% has no values in config/sigma/placeholders.yml: "
                                "it matches nothing until a site lists them")
        for pattern in sorted(engine._compiler.fallback_patterns):
            report.notes.append(f"regular expression {pattern!r} is not RE2-compatible: "
                                f"it runs on Python re over at most {FALLBACK_REGEX_INPUT_LIMIT} characters")
        return engine, report

    def loaded_rules(self) -> list[LoadedRule]:
        """The rules as loaded (what :mod:`detectors.sigma.cache` keeps)."""
        return list(self._loaded)

    def _check(self, position: int, rule: LoadedRule) -> None:
        """Compile a rule once for its own logsource so that errors surface at load time."""
        product, category, service = rule.source
        self._variant(position, (product, service, (category,) if category else ()))

    def _variant(self, position: int, route: EventRoute) -> tuple[Node, Predicate]:
        rule = self._loaded[position]
        resolved = self._fieldmaps.get((route, rule.source))
        if resolved is None:
            if len(self._fieldmaps) >= 100_000:  # bounded, as the routes are
                self._fieldmaps.clear()
            fieldmap = self._mappings.resolve(route, rule.source)
            resolved = self._fieldmaps[(route, rule.source)] = (fieldmap, fieldmap.key)
        fieldmap = resolved[0]
        key = (position, resolved[1])
        found = self._compiled.get(key)
        if found is None:
            nodes = [self._compiler.compile_condition(tree, fieldmap) for tree in rule.conditions]
            node = nodes[0] if len(nodes) == 1 else Node("or", nodes)
            found = (node, build_predicate(node))
            self._compiled[key] = found
        return found

    # ------------------------------------------------------------ routing

    def route(self, event: Mapping[str, Any]) -> EventRoute:
        winlog = event.get("winlog")
        if type(winlog) is dict or isinstance(winlog, Mapping):
            channel, code = winlog.get("channel"), winlog.get("event_id")
            if type(channel) is str and type(code) is int:
                data = winlog.get("event_data")
                if not (type(data) is dict or isinstance(data, Mapping)):
                    data = {}
                key: tuple[Any, ...] = (channel, code)
                if self._condition_fields:
                    key += tuple(str(data.get(name, "")) for name in self._condition_fields)
                route = self._windows_routes.get(key)
                if route is None:
                    service, categories = self._logsources.windows_categories(channel, code, data)
                    route = ("windows", service, categories)
                    if len(self._windows_routes) < 100_000:  # bounded: channels are few
                        self._windows_routes[key] = route
                        if not self._logsources.conditional(channel, code) and len(self._plain_groups) < 10_000:
                            self._plain_groups[(channel, code)] = self.group(route)
                return route
        tags = event.get("socflow")
        logsource = tags.get("logsource") if type(tags) is dict or isinstance(tags, Mapping) else None
        if type(logsource) is dict or isinstance(logsource, Mapping):
            category = logsource.get("category")
            return (
                _text_or_none(logsource.get("product")),
                _text_or_none(logsource.get("service")),
                (category,) if isinstance(category, str) and category else (),
            )
        return (None, None, ())

    def group(self, route: EventRoute) -> RouteGroup:
        found = self._groups.get(route)
        if found is None:
            product, service, categories = route
            entries: list[tuple[RuleInfo, Node, Predicate]] = []
            for position, rule in enumerate(self._loaded):
                r_product, r_category, r_service = rule.source
                if r_product is not None and r_product != product:
                    continue
                if r_service is not None and r_service != service:
                    continue
                if r_category is not None and r_category not in categories:
                    continue
                try:
                    node, predicate = self._variant(position, route)
                except (SigmaError, RuleLoadError, ValueError, TypeError) as error:
                    # Compiled fine for its own logsource at load time, but not with this
                    # route's field mapping: never raise from matching; say so once.
                    _log.warning("sigma_rule_skipped_for_route rule=%s route=%s reason=%s",
                                 rule.info.id, route, error)
                    continue
                entries.append((rule.info, node, predicate))
            found = RouteGroup.build(entries)
            self._groups[route] = found
        return found

    def forget_values(self) -> None:
        """Empty the routes' caches of value scans (compiled rules and indexes stay)."""
        for group in self._groups.values():
            for cache in group._caches:
                cache.clear()
            group._cached = 0

    # ------------------------------------------------------------ matching

    def match(self, event: Mapping[str, Any]) -> list[RuleInfo]:
        """Every loaded rule (alerting or not) that fires on ``event``, in load order."""
        if type(event) is not dict and not isinstance(event, Mapping):
            return []
        group = None
        winlog = event.get("winlog")
        if type(winlog) is dict:
            # Most Windows events route by channel and event id alone: one lookup to the group.
            channel, code = winlog.get("channel"), winlog.get("event_id")
            if type(channel) is str and type(code) is int:  # (a list would not even hash)
                group = self._plain_groups.get((channel, code))
        if group is None:
            group = self.group(self.route(event))
        if not group.rules:
            return []
        return group.match(Context(event), indexed=self.indexed)


def _unrouted_notes(rules: Sequence[LoadedRule], logsources: LogsourceTable) -> list[str]:
    """Windows logsources that no configured channel / event id produces: their rules load but
    cannot fire until config/logsources.yaml maps an event source to them."""
    services = set(logsources.services.values())
    categories = set(logsources.categories.values())
    categories.update(entry.category for entries in logsources.extra.values() for entry in entries)
    missing: dict[str, int] = {}
    for rule in rules:
        product, category, service = rule.source
        if product != "windows":
            continue
        if category is not None and category not in categories:
            missing[f"category {category}"] = missing.get(f"category {category}", 0) + 1
        elif service is not None and service not in services:
            missing[f"service {service}"] = missing.get(f"service {service}", 0) + 1
    return [
        f"{count} windows rule(s) with {what}: no event source is tagged with it in logsources.yaml"
        for what, count in sorted(missing.items())
    ]


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _rule_id(rule: SigmaRule) -> str | None:
    return str(rule.id) if rule.id else None


def _prepare(rule: SigmaRule, where: str) -> LoadedRule:
    source: RuleSource = (rule.logsource.product, rule.logsource.category, rule.logsource.service)
    conditions = [condition.parsed for condition in rule.detection.parsed_condition]
    logsource = {k: v for k, v in zip(("product", "category", "service"), source, strict=True) if v}
    info = RuleInfo(
        id=_rule_id(rule) or stable_id("sigma", where, rule.title),
        title=rule.title,
        level=str(rule.level) if rule.level else "medium",
        tags=tuple(str(tag) for tag in rule.tags),
        status=str(rule.status) if rule.status else "experimental",
        description=rule.description or "",
        author=rule.author or "",
        references=tuple(str(r) for r in rule.references),
        falsepositives=tuple(str(f) for f in rule.falsepositives),
        path=where,
        logsource=logsource,
        name=rule.name or "",
        generate=bool(getattr(rule, "_output", True)),
    )
    return LoadedRule(info=info, source=source, conditions=conditions, path=where)
