"""Rule conditions as a pre-selection in the candidate query, where that is exact.

A rule's compiled condition names literals it cannot match without
(:func:`detectors.sigma.compiler.requirement_clauses`: clauses, each a list of atoms
``(field, op, folded literal)`` at least one of which holds whenever the rule matches). Where
every atom of a clause is on a ``keyword`` field of the event store's mapping, the clause
becomes a ``bool.should`` of ``term`` / ``prefix`` / ``wildcard`` queries with
``case_insensitive: true``, and a candidate must satisfy it. The engine still confirms every
candidate: this only leaves out events the engine could not match, so a hunt stays replay's.

Why each step is exact (a clause is pushed only when all of these hold, else it is left out,
which only widens the query):

- **Which compiled condition.** The field mapping depends on the event's route, so the rule is
  compiled for every route it can apply to that differs in the mapping entries that apply:
  products, services and categories the entries name, plus "any other" (:func:`variants`).
  The rule's restriction is the OR of its variants' restrictions.
- **Which fields.** All the paths a Sigma field maps to must be indexed keywords: the engine
  reads the first present path, and Elasticsearch cannot tell which one that is (an array of
  objects is indexed where Python's walk finds nothing), so the query accepts a match on any.
- **Case.** Sigma folds with ``str.casefold``; ``case_insensitive`` folds ASCII letters only.
  So literals are ASCII, and values holding one of the 19 characters whose casefold contains
  an ASCII character (U+212A KELVIN SIGN, U+017F long s, U+00DF sharp s, ligatures) are always
  candidates, as are values the index did not keep (over ``ignore_above``: named in ``_ignored``).
- **Numbers.** The engine reads ``5.0`` as ``5``, the index keeps ``5.0``: a literal made only
  of characters a number's text can hold is not pushed.

Pure: the rules, the field mappings and the indexed fields are arguments.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sigma.conditions import ConditionFieldEqualsValueExpression

from detectors.errors import RuleLoadError
from detectors.sigma.compiler import Node, RuleCompiler, requirement_clauses
from detectors.sigma.fieldmap import EventRoute, FieldMappings
from ingest.logs import log_event

LOGGER = logging.getLogger(__name__)
Logsource = tuple[str | None, str | None, str | None]  # (product, category, service), as select.py
Query = dict[str, Any]

# Characters whose str.casefold() contains an ASCII character (tests/hunt/test_pushdown.py
# recomputes the list over every code point).
FOLDS_TO_ASCII = (
    "\u00df\u0130\u0149\u017f\u01f0\u1e96\u1e97\u1e98\u1e99\u1e9a\u1e9e"
    "\u212a\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06")
_NUMBER_TEXT = frozenset("0123456789.+-e")
_OTHER = "\0other"  # a product or service no mapping entry names
# Above this many atom queries in all, no pushdown: the query would cost more than it saves
# (and approach indices.query.bool.max_clause_count).
MAX_ATOMS = 400


def variants(source: Logsource, mappings: FieldMappings) -> Iterator[EventRoute]:
    """Event routes ``(product, service, categories)`` a rule of ``source`` applies to, one per
    combination of the values the mapping entries test (others stand for every other value)."""
    named: dict[str, set[str]] = {"product": set(), "service": set(), "category": set()}
    for entry in mappings.entries:
        for key, wanted in entry.event.items():
            named[key if key in ("product", "service") else "category"].add(wanted.removeprefix("!"))
    product, category, service = source
    products = [product] if product else [*sorted(named["product"]), _OTHER]
    services = [service] if service else [*sorted(named["service"]), _OTHER]
    extra = sorted(named["category"] - {category} if category else named["category"])
    own = (category,) if category else ()
    for each_product, each_service in itertools.product(products, services):
        for size in range(len(extra) + 1):
            for more in itertools.combinations(extra, size):
                yield each_product, each_service, own + more


def rule_restrictions(rules: Sequence[Any], mappings: FieldMappings, keywords: Iterable[str]) -> dict[
        Logsource, Query | None]:
    """Per logsource (as select.py keys them), the query its candidates must also satisfy, or
    None when one of its rules needs no literal the index can look for.

    ``rules``: the engine's loaded rules (``SigmaEngine.loaded_rules()``: ``.source``,
    ``.conditions``); ``keywords``: the keyword fields of the mapping."""
    indexed = frozenset(keywords)
    compiler = RuleCompiler(mappings.placeholders)
    found: dict[Logsource, list[Query] | None] = {}
    maps: dict[Any, list[tuple[str, Any]]] = {}  # rule source -> (product, field mapping), distinct
    for rule in rules:
        product, category, service = rule.source
        source: Logsource = (product or None, category or None, service or None)
        if source in found and found[source] is None:
            continue  # already unrestricted: nothing this rule needs can narrow it
        if rule.source not in maps:
            distinct = {}
            for route in variants(source, mappings):
                fieldmap = mappings.resolve(route, rule.source)
                distinct[(route[0] or _OTHER, fieldmap.key)] = (route[0] or _OTHER, fieldmap)
            maps[rule.source] = list(distinct.values())
        restriction = _rule_restriction(rule, maps[rule.source], compiler, indexed)
        if restriction is None:
            found[source] = None
        elif source not in found:
            found[source] = [restriction]
        elif (kept := found[source]) is not None:
            kept.append(restriction)
    result: dict[Logsource, Query | None] = {
        source: None if queries is None else _any(queries) for source, queries in found.items()}
    atoms = sum(_count_atoms(query) for query in result.values() if query is not None)
    if atoms > MAX_ATOMS:
        log_event(LOGGER, "hunt_pushdown_skipped", atoms=atoms, limit=MAX_ATOMS)
        return dict.fromkeys(result)
    return result


def _rule_restriction(rule: Any, fieldmaps: Sequence[tuple[str, Any]], compiler: RuleCompiler,
                      indexed: frozenset[str]) -> Query | None:
    """OR over the rule's variants (``fieldmaps``: the event's product and the field mapping),
    grouped by product: a product whose mapping keeps a field out of the index (Windows:
    ``winlog.event_data``) leaves its own events unrestricted, not those of every product."""
    compiled: dict[Any, Query | bool | None] = {}  # field mapping -> restriction (False: no variant)
    groups: dict[str, list[Query] | None] = {}
    for product, fieldmap in fieldmaps:
        if fieldmap.key not in compiled:
            compiled[fieldmap.key] = _variant_restriction(rule, fieldmap, compiler, indexed)
        found = compiled[fieldmap.key]
        if found is False:
            continue
        if found is None or isinstance(found, bool):
            groups[product] = None
        elif product not in groups:
            groups[product] = [found]
        elif (kept := groups[product]) is not None:
            kept.append(found)
    if not groups:
        return {"match_none": {}}  # no route compiles it: the engine never matches it
    if all(queries is None for queries in groups.values()):
        return None
    named = sorted(product for product in groups if product != _OTHER)
    by_query: dict[str, tuple[Query | None, list[str]]] = {}
    for product, queries in groups.items():
        query = None if queries is None else _any(queries)
        by_query.setdefault(repr(query), (query, []))[1].append(product)
    if len(by_query) == 1:
        return next(iter(by_query.values()))[0]
    alternatives = []
    for query, products in by_query.values():
        condition = _products_condition(products, named)
        alternatives.append(condition if query is None else {"bool": {"filter": [condition, query]}})
    return _any(alternatives)


def _products_condition(products: Sequence[str], named: Sequence[str]) -> Query:
    """Events the engine may route with one of ``products`` (a superset): tagged so, or for
    Windows any event with a channel (the engine routes those by channel and event id, whatever
    the tags); ``_OTHER``: tagged with none of ``named``."""
    tagged = [product for product in products if product != _OTHER]
    conditions: list[Query] = [{"terms": {"socflow.logsource.product": tagged}}] if tagged else []
    if "windows" in products:
        conditions.append({"exists": {"field": "winlog.channel"}})
    if _OTHER in products:
        conditions.append({"bool": {"must_not": [{"terms": {"socflow.logsource.product": list(named)}}]}})
    return conditions[0] if len(conditions) == 1 else {"bool": {"should": conditions, "minimum_should_match": 1}}


def _variant_restriction(rule: Any, fieldmap: Any, compiler: RuleCompiler,
                         indexed: frozenset[str]) -> Query | bool | None:
    """The rule compiled with one field mapping: the AND of its pushable clauses, None when it
    has none, False when it does not compile there (the engine then skips it on that route)."""
    if not any(all(path in indexed for path in fieldmap.paths(name)) for name in _fields(rule.conditions)):
        return None  # no field of the rule is in the index here (most Windows rules): no clause can be
    try:
        nodes = [compiler.compile_condition(tree, fieldmap) for tree in rule.conditions]
    except (RuleLoadError, ValueError, TypeError):
        return False
    node = nodes[0] if len(nodes) == 1 else Node("or", nodes)
    clauses = [query for clause in requirement_clauses(node, limit=8) or ()
               if (query := _clause(clause, indexed)) is not None]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"bool": {"filter": clauses}}


def _fields(trees: Iterable[Any]) -> set[str]:
    """The Sigma field names of condition trees (pySigma's parsed conditions)."""
    found: set[str] = set()
    stack = list(trees)
    while stack:
        node = stack.pop()
        if isinstance(node, ConditionFieldEqualsValueExpression):
            found.add(node.field)
        else:
            stack.extend(getattr(node, "args", ()) or ())
    return found


def _clause(clause: Sequence[tuple[tuple[str, str, str], Any]], indexed: frozenset[str]) -> Query | None:
    """A ``should`` of the clause's atoms and of the doubtful values of their fields; None when
    one atom cannot be looked up exactly."""
    if not clause:
        return {"match_none": {}}  # the condition can never hold (a constant false)
    matches: list[Query] = []
    fields: dict[str, None] = {}
    for (field_key, op, literal), _leaf in clause:
        paths = field_key.split("|")
        if not all(path in indexed for path in paths) or not pushable(literal):
            return None
        for path in paths:
            matches.append(atom_query(path, op, literal))
            fields[path] = None
    doubtful = doubtful_values(list(fields))
    unique = list({repr(query): query for query in matches}.values())
    return {"bool": {"should": [*unique, doubtful], "minimum_should_match": 1}}


def pushable(literal: str) -> bool:
    """ASCII, and not a text a number could also read as (see the module docstring)."""
    return literal.isascii() and not set(literal) <= _NUMBER_TEXT


def atom_query(path: str, op: str, literal: str) -> Query:
    """The folded ``literal`` against a keyword field, ASCII case-insensitively."""
    if op == "eq":
        return {"term": {path: {"value": literal, "case_insensitive": True}}}
    if op == "startswith":
        return {"prefix": {path: {"value": literal, "case_insensitive": True}}}
    escaped = literal.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
    if op == "endswith":
        return {"wildcard": {path: {"value": f"*{escaped}", "case_insensitive": True}}}
    if op == "contains":
        return {"wildcard": {path: {"value": f"*{escaped}*", "case_insensitive": True}}}
    raise ValueError(f"unknown atom operator {op!r}")


def doubtful_values(paths: Sequence[str]) -> Query:
    """Events whose value of one of ``paths`` the query cannot judge as the engine does: not
    indexed (too long), or holding a character that casefolds to ASCII."""
    return {"bool": {"should": [
        {"terms": {"_ignored": list(paths)}},
        *({"regexp": {path: {"value": f".*[{FOLDS_TO_ASCII}].*", "flags": "NONE"}}} for path in paths),
    ], "minimum_should_match": 1}}


def _any(queries: list[Query]) -> Query:
    unique = list({repr(query): query for query in queries}.values())
    return unique[0] if len(unique) == 1 else {"bool": {"should": unique, "minimum_should_match": 1}}


def _count_atoms(query: Any) -> int:
    if isinstance(query, Mapping):
        if any(kind in query for kind in ("term", "prefix", "wildcard", "regexp", "terms")):
            return 1
        return sum(_count_atoms(value) for value in query.values())
    if isinstance(query, list):
        return sum(_count_atoms(item) for item in query)
    return 0
