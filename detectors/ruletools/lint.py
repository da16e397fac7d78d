"""``socflow rules lint``: every problem of a rule set, each with its file and line.

Checks, all collected (one broken file never hides the others):

- files: too large (10 MB by default), not UTF-8, not YAML, not Sigma (a document that is no
  mapping, or holds none of ``detection`` / ``correlation`` / ``filter``), rejected by pySigma;
- pySigma's own validators (``sigma.validators.core``, the default set less
  :data:`EXCLUDED_VALIDATORS`, whose ground socflow's checks below cover with its own data);
- ATT&CK tags that do not exist (or are deprecated) in the shipped ATT&CK Enterprise list;
- duplicate rule ids across the set; a correlation or filter that names an unknown rule;
- a project rule (one under the project's ``rules/``) without its ``<name>.tests.yml``;
- regular expressions: not RE2-compatible (the engine then runs Python ``re`` on bounded input:
  a warning), nested quantifiers that backtrack catastrophically there (an error), invalid;
- fields unknown for the rule's logsource: SigmaHQ's ``tests/logsource.json`` (read from the
  corpus, never shipped), socflow's field mappings (``config/sigma/*.yml``) and ECS field paths;
- a logsource no collector produces (``config/logsources.yaml``'s Windows table and
  ``collected:`` list, and the formats of ``ingest.parsers.catalogue``): the rule can never fire.

Lines come from the YAML nodes' marks (1-based). A problem is an ``error`` (exit code 1) or a
``warning``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.validation import SigmaValidator
from sigma.validators.base import SigmaValidationIssueSeverity
from sigma.validators.core import validators as CORE_VALIDATORS  # noqa: N812 - pySigma's name

from detectors.ruletools.attack import AttackData
from detectors.ruletools.testing import has_test_file
from detectors.sigma.compiler import re2
from detectors.sigma.loader import DEFAULT_CONFIG_DIR, iter_rule_files

MAX_FILE_BYTES = 10 * 1024 * 1024
PROJECT_RULES = Path(__file__).resolve().parents[2] / "rules"
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# pySigma validators left out, and why: socflow checks the same ground with its own data.
EXCLUDED_VALIDATORS = {
    # pySigma 1.x downloads the ATT&CK and D3FEND data at run time: not on an offline SOC network.
    "attacktag": "ATT&CK tags are checked against config/attack/enterprise-attack.json (versioned, refreshable)",
    "d3_fendtag": "downloads MITRE D3FEND at run time; the project's rules carry no d3fend tags",
    "identifier_uniqueness": "duplicate ids are reported with both files and lines",
    "fieldname_logsource": "logsource keys are Sigma's; fields are checked per logsource below",
    "duplicate_filename": "one rule set may hold SigmaHQ's and the project's copies side by side",
}
# ECS top-level field sets: a dotted field under one of them is a field of socflow's events.
ECS_ROOTS = frozenset({
    "agent", "client", "cloud", "container", "destination", "dns", "email", "error", "event", "file", "group",
    "host", "http", "log", "network", "observer", "organization", "process", "registry", "related", "rule",
    "server", "service", "source", "threat", "tls", "url", "user", "user_agent", "vulnerability", "winlog",
    "socflow", "zeek", "suricata", "labels", "message", "tags", "@timestamp",
})
_NESTED_QUANTIFIER = "nested quantifier"


@dataclass(frozen=True)
class LintProblem:
    path: str
    line: int  # 1-based; 0 when the file as a whole is concerned
    severity: str  # "error" | "warning"
    check: str  # short name of the check, e.g. "attack-tag"
    message: str
    rule_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "severity": self.severity, "check": self.check,
                "message": self.message, "rule_id": self.rule_id}


@dataclass
class LintReport:
    problems: list[LintProblem] = field(default_factory=list)
    files: int = 0
    rules: int = 0

    @property
    def errors(self) -> list[LintProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[LintProblem]:
        return [p for p in self.problems if p.severity == "warning"]

    def sorted(self) -> list[LintProblem]:
        return sorted(self.problems, key=lambda p: (p.path, p.line, p.check, p.message))

    def to_json(self) -> dict[str, Any]:
        return {"files": self.files, "rules": self.rules, "errors": len(self.errors),
                "warnings": len(self.warnings), "problems": [p.to_json() for p in self.sorted()]}


# ---------------------------------------------------------------- data the checks use


@dataclass(frozen=True)
class FieldCatalogue:
    """Field names known per logsource: SigmaHQ's logsource.json and socflow's mappings."""

    sigmahq: Mapping[str, Any] = field(default_factory=dict)  # logsource.json "legit"/"addon" merged
    mappings: tuple[tuple[Mapping[str, str], frozenset[str]], ...] = ()  # (rule selector, Sigma fields)

    @classmethod
    def load(cls, config_dir: Path, logsource_json: Path | None) -> FieldCatalogue:
        sigmahq: dict[str, Any] = {}
        if logsource_json is not None and logsource_json.is_file():
            data = json.loads(logsource_json.read_text(encoding="utf-8"))
            for part in ("legit", "addon"):
                for product, spec in (data.get(part) or {}).items():
                    merged = sigmahq.setdefault(product, {"common": set(), "category": {}, "service": {}})
                    merged["common"].update(spec.get("common") or ())
                    for kind in ("category", "service"):
                        for name, names in (spec.get(kind) or {}).items():
                            merged[kind].setdefault(name, set()).update(names)
        mappings = []
        for path in sorted((config_dir / "sigma").glob("*.yml")):
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for entry in doc.get("mappings") or ():
                names = frozenset(str(name) for name in (entry.get("fields") or {}))
                if names:
                    selector = {str(k): str(v) for k, v in (entry.get("rule") or {}).items()}
                    mappings.append((selector, names))
        return cls(sigmahq, tuple(mappings))

    def known(self, product: str | None, category: str | None, service: str | None) -> set[str] | None:
        """Field names known for this logsource; None when there is nothing to check against.

        As in SigmaHQ's own test, a logsource is checked only where ``logsource.json`` lists its
        fields (an empty list there means "not checked"); socflow's mappings for the same
        logsource and ECS paths are known too.
        """
        spec = self.sigmahq.get(product or "empty")
        if spec is None:
            return None
        listed: set[str] = set()
        listed.update(spec["category"].get(category or "", ()))
        listed.update(spec["service"].get(service or "", ()))
        if not listed:
            return None
        found = listed | set(spec["common"])
        source = {"product": product, "category": category, "service": service}
        for selector, names in self.mappings:
            if selector and all(source.get(key) == value for key, value in selector.items()):
                found.update(names)
        return found


@dataclass(frozen=True)
class KnownSources:
    """The logsources socflow's collectors produce."""

    windows_services: frozenset[str]
    windows_categories: frozenset[str]
    collected: tuple[Mapping[str, str], ...]

    @classmethod
    def load(cls, config_dir: Path) -> KnownSources:
        from ingest.logsource import LogsourceTable
        from ingest.parsers import catalogue

        table = LogsourceTable.load(config_dir / "logsources.yaml")
        categories = set(table.categories.values())
        categories.update(entry.category for entries in table.extra.values() for entry in entries)
        raw = yaml.safe_load((config_dir / "logsources.yaml").read_text(encoding="utf-8")) or {}
        collected = [{str(k): str(v) for k, v in item.items()} for item in raw.get("collected") or ()]
        collected.extend(dict(logsource) for source in catalogue.registered()
                         for logsource in (source.logsource, *source.produces))
        return cls(frozenset(table.services.values()), frozenset(categories), tuple(collected))

    def produces(self, product: str | None, category: str | None, service: str | None) -> bool:
        if product == "windows":
            return ((category is None or category in self.windows_categories)
                    and (service is None or service in self.windows_services))
        wanted = {key: value for key, value in (("product", product), ("category", category), ("service", service))
                  if value is not None}
        return any(all(source.get(key) in (value, "*") for key, value in wanted.items()) for source in self.collected)


# ---------------------------------------------------------------- YAML with lines


@dataclass
class _Document:
    """One YAML document of a rule file: its data and the line of every key and scalar."""

    path: str
    data: Any
    node: yaml.Node
    start: int

    def line_of(self, *keys: str) -> int:
        """Line of the deepest key found along ``keys`` (the document's start if none is)."""
        node, line = self.node, self.start
        for key in keys:
            if not isinstance(node, yaml.MappingNode):
                break
            for key_node, value_node in node.value:
                if key_node.value == key:
                    node, line = value_node, key_node.start_mark.line + 1
                    break
            else:
                break
        return line

    def scalar_line(self, text: str, under: str | None = None) -> int | None:
        """Line of the first scalar (key or value) equal to ``text``, optionally under a top key."""
        root = self.node
        if under is not None and isinstance(root, yaml.MappingNode):
            root = next((value for key, value in root.value if key.value == under), None)  # type: ignore[assignment]
            if root is None:
                return None
        for node in _walk(root):
            if isinstance(node, yaml.ScalarNode) and node.value == text:
                return int(node.start_mark.line) + 1
        return None


    def scalar_within(self, text: str) -> int | None:
        """Line of the longest detection value found inside ``text`` (pySigma shows values with
        the wildcards its modifiers added: ``*\\*avira\\**`` for ``'\\*avira\\*'`` under contains)."""
        root = next((value for key, value in self.node.value if key.value == "detection"), None) \
            if isinstance(self.node, yaml.MappingNode) else None
        if root is None:
            return None
        best: yaml.Node | None = None
        for node in _walk(root):
            if isinstance(node, yaml.ScalarNode) and len(str(node.value)) >= 3 and str(node.value) in text \
                    and (best is None or len(str(node.value)) > len(str(best.value))):
                best = node
        return int(best.start_mark.line) + 1 if best is not None else None


def _walk(node: yaml.Node) -> Iterator[yaml.Node]:
    yield node
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield from _walk(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _walk(item)


def _detection_items(node: yaml.Node) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    """(field with modifiers, key node, value node) of every field condition under ``detection``."""
    if not isinstance(node, yaml.MappingNode):
        return
    for key, value in node.value:
        if key.value in ("condition", "timeframe"):
            continue
        # a selection: a mapping of field conditions, or a list of such mappings (or keywords)
        selections = value.value if isinstance(value, yaml.SequenceNode) else [value]
        for selection in selections:
            if isinstance(selection, yaml.MappingNode):
                for field_key, field_value in selection.value:
                    yield str(field_key.value), field_key, field_value


def _scalars(node: yaml.Node) -> Iterator[yaml.ScalarNode]:
    if isinstance(node, yaml.ScalarNode):
        yield node
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _scalars(item)


# ---------------------------------------------------------------- regular expressions


def regex_problem(pattern: str) -> tuple[str, str] | None:
    """``(severity, why)`` for a pattern the engine cannot run well, else None."""
    try:
        options = re2.Options()
        options.max_mem = 64 << 20
        options.log_errors = False  # the verdict says why; RE2's own log would only add noise
        re2.compile(pattern, options)
        linear = True
    except re2.error as error:
        linear = False
        re2_reason = str(error)
    try:
        parsed = re._parser.parse(pattern)  # type: ignore[attr-defined]
    except re.error as error:
        return "error", f"invalid regular expression {pattern!r}: {error}"
    except RecursionError:
        return "error", f"regular expression {pattern!r} is nested too deeply"
    if linear:
        return None
    if _nested_unbounded(parsed, inside_repeat=False):
        return "error", (f"catastrophic regular expression {pattern!r}: a {_NESTED_QUANTIFIER} backtracks "
                         f"exponentially on Python re, and RE2 cannot run it ({re2_reason})")
    return "warning", (f"regular expression {pattern!r} is not RE2-compatible ({re2_reason}): the engine "
                       "runs it on Python re over bounded input")


def _nested_unbounded(parsed: Any, *, inside_repeat: bool) -> bool:
    from re import _constants as constants  # type: ignore[attr-defined]

    for op, argument in parsed:
        if op in (constants.MAX_REPEAT, constants.MIN_REPEAT, getattr(constants, "POSSESSIVE_REPEAT", None)):
            _low, high, sub = argument
            unbounded = high == constants.MAXREPEAT or high > 1000
            if unbounded and inside_repeat:
                return True
            if _nested_unbounded(sub, inside_repeat=inside_repeat or unbounded):
                return True
        elif op == constants.SUBPATTERN:
            if _nested_unbounded(argument[-1], inside_repeat=inside_repeat):
                return True
        elif op == constants.BRANCH:
            if any(_nested_unbounded(branch, inside_repeat=inside_repeat) for branch in argument[1]):
                return True
        elif op in (constants.ASSERT, constants.ASSERT_NOT) and _nested_unbounded(argument[1],
                                                                                  inside_repeat=inside_repeat):
            return True
    return False


# ---------------------------------------------------------------- the linter


@dataclass
class _Seen:
    """Rule identities across the whole set, for duplicates and references."""

    ids: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    # (document, top key, referenced names)
    references: list[tuple[_Document, str, list[str]]] = field(default_factory=list)


@dataclass
class Linter:
    attack: AttackData
    fields: FieldCatalogue
    sources: KnownSources
    project_rules: Path | None = PROJECT_RULES
    max_bytes: int = MAX_FILE_BYTES
    validators: dict[str, Any] = field(default_factory=lambda: {
        name: cls for name, cls in CORE_VALIDATORS.items() if name not in EXCLUDED_VALIDATORS})

    @classmethod
    def default(cls, config_dir: Path | None = None, *, logsource_json: Path | None = None,
                attack_file: Path | None = None) -> Linter:
        config = config_dir or DEFAULT_CONFIG_DIR
        attack = AttackData.load(attack_file) if attack_file else AttackData.load()
        return cls(attack, FieldCatalogue.load(config, logsource_json), KnownSources.load(config))

    def lint(self, paths: Sequence[Path], progress: Any = None) -> LintReport:
        report = LintReport()
        seen = _Seen()
        parsed: list[tuple[SigmaRule | SigmaCorrelationRule, _Document]] = []
        files = list(iter_rule_files(paths))
        for path in files:
            report.files += 1
            parsed.extend(self._lint_file(path, report, seen))
            if progress is not None:
                progress()
        report.rules = len(parsed)
        self._validate(parsed, report)
        self._cross_checks(seen, report)
        return report

    # one file -------------------------------------------------------------

    def _problem(self, report: LintReport, where: str, line: int, severity: str,  # noqa: PLR0917 - a record's fields
                 check: str, message: str, rule_id: str | None = None) -> None:
        report.problems.append(LintProblem(where, line, severity, check, message, rule_id))

    def _read(self, path: Path, report: LintReport) -> list[_Document] | None:
        where = str(path)
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                self._problem(report, where, 0, "error", "file-size",
                              f"{size} bytes: larger than {self.max_bytes} bytes, not read")
                return None
            text = path.read_bytes().decode("utf-8")
        except OSError as error:
            self._problem(report, where, 0, "error", "unreadable", f"cannot read: {error}")
            return None
        except UnicodeDecodeError as error:
            self._problem(report, where, 0, "error", "not-yaml", f"not UTF-8 text: {error}")
            return None
        try:
            nodes = list(yaml.compose_all(text, Loader=_LOADER))
            datas = list(yaml.load_all(text, Loader=_LOADER))
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
            line = mark.line + 1 if mark is not None else 0
            problem = getattr(error, "problem", None) or str(error)
            self._problem(report, where, line, "error", "not-yaml", f"not YAML: {problem}")
            return None
        except RecursionError:
            self._problem(report, where, 0, "error", "not-yaml", "not YAML: nested too deeply")
            return None
        documents = [_Document(where, data, node, node.start_mark.line + 1)
                     for node, data in zip(nodes, datas, strict=True) if node is not None and data is not None]
        if not documents:
            self._problem(report, where, 0, "error", "not-sigma", "no YAML document in the file")
        return documents

    def _lint_file(self, path: Path, report: LintReport,
                   seen: _Seen) -> list[tuple[SigmaRule | SigmaCorrelationRule, _Document]]:
        documents = self._read(path, report)
        if not documents:
            return []
        where = str(path)
        rule_docs: list[_Document] = []
        for doc in documents:
            data = doc.data
            if not isinstance(data, dict):
                self._problem(report, where, doc.start, "error", "not-sigma",
                              f"not Sigma: a document is a {type(data).__name__}, not a mapping")
                continue
            if data.get("action") in ("global", "reset", "repeat"):
                continue
            if not any(key in data for key in ("detection", "correlation", "filter")):
                self._problem(report, where, doc.start, "error", "not-sigma",
                              "not Sigma: no detection, correlation or filter section")
                continue
            rule_docs.append(doc)
            self._remember(doc, seen)
            self._check_document(doc, path, report)
        return self._parse(path, documents, rule_docs, report)

    def _remember(self, doc: _Document, seen: _Seen) -> None:
        data = doc.data
        if data.get("id") is not None:
            seen.ids.setdefault(str(data["id"]), []).append((doc.path, doc.line_of("id")))
        if data.get("name") is not None:
            seen.names.add(str(data["name"]))
        for section in ("correlation", "filter"):
            block = data.get(section)
            if isinstance(block, dict) and isinstance(block.get("rules"), list | str):
                names = block["rules"] if isinstance(block["rules"], list) else [block["rules"]]
                seen.references.append((doc, section, [str(name) for name in names]))

    def _parse(self, path: Path, documents: list[_Document], rule_docs: list[_Document],
               report: LintReport) -> list[tuple[SigmaRule | SigmaCorrelationRule, _Document]]:
        if not rule_docs:
            return []
        where = str(path)
        try:
            collection = SigmaCollection.from_dicts(copy.deepcopy([doc.data for doc in documents]),
                                                    collect_errors=True, collect_filters=True,
                                                    resolve_references=False)
        except (SigmaError, ValueError, TypeError, KeyError, AttributeError) as error:
            self._problem(report, where, rule_docs[0].start, "error", "sigma", f"not Sigma: {error}")
            return []
        items = [*collection.rules, *collection.filters]
        out: list[tuple[SigmaRule | SigmaCorrelationRule, _Document]] = []
        for position, item in enumerate(items):
            doc = self._doc_of(item, rule_docs, position)
            if item.errors:
                for item_error in item.errors:
                    self._problem(report, where, self._line_for_text(doc, str(item_error)), "error", "sigma",
                                  f"not valid Sigma: {item_error}", str(item.id) if item.id else None)
            elif isinstance(item, SigmaRule | SigmaCorrelationRule):
                out.append((item, doc))
        if not items:
            for collection_error in collection.errors:
                self._problem(report, where, rule_docs[0].start, "error", "sigma",
                              f"not valid Sigma: {collection_error}")
        return out

    @staticmethod
    def _doc_of(item: Any, docs: list[_Document], position: int) -> _Document:
        if item.id is not None:
            for doc in docs:
                if str(doc.data.get("id")) == str(item.id):
                    return doc
        return docs[min(position, len(docs) - 1)]

    @staticmethod
    def _line_for_text(doc: _Document, message: str) -> int:
        """The line of a quoted name in a pySigma message (a key, an identifier), else the start."""
        for quoted in re.findall(r"'([^']{1,200})'", message):
            line = doc.scalar_line(quoted)
            if line is not None:
                return line
        return doc.start

    def _check_document(self, doc: _Document, path: Path, report: LintReport) -> None:
        data = doc.data
        rule_id = str(data["id"]) if data.get("id") is not None else None
        where = doc.path
        tags = data.get("tags")
        if isinstance(tags, list):
            for tag in tags:
                verdict = self.attack.check_tag(str(tag))
                if verdict is not None:
                    line = doc.scalar_line(str(tag), under="tags") or doc.line_of("tags")
                    self._problem(report, where, line, verdict[0], "attack-tag", verdict[1], rule_id)
        if self.project_rules is not None and _is_under(path, self.project_rules) and not has_test_file(path):
            self._problem(report, where, doc.start, "error", "missing-tests",
                          f"project rule without {path.stem}.tests.yml beside it", rule_id)
        if "detection" in data:
            self._check_detection(doc, rule_id, report)

    def _check_detection(self, doc: _Document, rule_id: str | None, report: LintReport) -> None:
        data, where = doc.data, doc.path
        logsource = data.get("logsource") if isinstance(data.get("logsource"), dict) else {}
        product, category, service = (_text(logsource.get(key)) for key in ("product", "category", "service"))
        if "filter" not in data and not self.sources.produces(product, category, service):
            described = ", ".join(f"{k}: {v}" for k, v in (("product", product), ("category", category),
                                                           ("service", service)) if v) or "none"
            self._problem(report, where, doc.line_of("logsource"), "warning", "never-fires",
                          f"no collector produces logsource {{{described}}}: the rule can never fire on "
                          "socflow's events (config/logsources.yaml, ingest/parsers/catalogue.py)", rule_id)
        detection = next((value for key, value in doc.node.value if key.value == "detection"), None) \
            if isinstance(doc.node, yaml.MappingNode) else None
        if detection is None:
            return
        known = self.fields.known(product, category, service)
        for field_spec, key_node, value_node in _detection_items(detection):
            name, *modifiers = field_spec.split("|")
            if known is not None and name and not _known_field(name, known):
                self._problem(report, where, key_node.start_mark.line + 1, "warning", "unknown-field",
                              f"field {name!r} is not known for logsource {_describe(product, category, service)} "
                              "(SigmaHQ logsource.json, config/sigma mappings, ECS)", rule_id)
            if "re" in modifiers:
                for scalar in _scalars(value_node):
                    verdict = regex_problem(str(scalar.value))
                    if verdict is not None:
                        self._problem(report, where, scalar.start_mark.line + 1, verdict[0], "regex", verdict[1],
                                      rule_id)

    # the whole set --------------------------------------------------------

    def _validate(self, parsed: list[tuple[SigmaRule | SigmaCorrelationRule, _Document]],
                  report: LintReport) -> None:
        documents = {id(rule): doc for rule, doc in parsed}
        validator = SigmaValidator(set(self.validators.values()))
        try:
            # validate_rule takes correlation rules too (its annotation names SigmaRule only)
            issues = validator.validate_rules(iter(rule for rule, _ in parsed))  # type: ignore[misc]
        except (SigmaError, ValueError, TypeError, KeyError, AttributeError, RuntimeError) as error:  # validator bug
            self._problem(report, "-", 0, "error", "pysigma", f"pySigma validation failed: {error!r}")
            return
        for issue in issues:
            severity = "error" if issue.severity == SigmaValidationIssueSeverity.HIGH else "warning"
            details = {f.name: getattr(issue, f.name) for f in fields(issue)
                       if f.name not in ("rules", "severity", "description")}
            extra = ", ".join(f"{key}={_detail(value)}" for key, value in details.items())
            check = type(issue).__name__.removesuffix("Issue")
            for rule in issue.rules:
                doc = documents.get(id(rule))
                if doc is None:
                    continue
                line = _issue_line(doc, details)
                message = issue.description + (f" ({extra})" if extra else "")
                self._problem(report, doc.path, line, severity, f"pysigma:{check}", message,
                              str(rule.id) if rule.id else None)

    def _cross_checks(self, seen: _Seen, report: LintReport) -> None:
        for rule_id, places in seen.ids.items():
            if len(places) > 1:
                for where, line in places:
                    others = ", ".join(f"{p}:{n}" for p, n in places if (p, n) != (where, line))
                    self._problem(report, where, line, "error", "duplicate-id",
                                  f"rule id {rule_id} is also used by {others}", rule_id)
        known = set(seen.ids) | seen.names
        for doc, section, names in seen.references:
            for name in names:
                if name not in known:
                    line = doc.scalar_line(name, under=section) or doc.line_of(section, "rules")
                    self._problem(report, doc.path, line, "error", "unknown-reference",
                                  f"{section} references rule {name!r}, which is not in the rule set",
                                  str(doc.data.get("id")) if doc.data.get("id") is not None else None)


def _detail(value: Any) -> str:
    """A pySigma issue's detail for people: a logsource as product/category/service."""
    if all(hasattr(value, part) for part in ("product", "category", "service")):
        return _describe(value.product, value.category, value.service)
    return str(value)


def _issue_line(doc: _Document, details: Mapping[str, Any]) -> int:
    """The line a pySigma issue points at: its logsource, or the scalar it names, else the start."""
    if "logsource" in details:
        return doc.line_of("logsource")
    for value in details.values():
        if value is None or isinstance(value, list | dict | tuple):
            continue
        text = str(value)
        found = doc.scalar_line(text, under="detection") or doc.scalar_line(text) or doc.scalar_within(text)
        if found is not None:
            return found
    return doc.line_of("detection") if "string" in details else doc.start


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


def _describe(product: str | None, category: str | None, service: str | None) -> str:
    return "/".join(value or "-" for value in (product, category, service))


def _known_field(name: str, known: set[str]) -> bool:
    if name in known:
        return True
    root = name.split(".", 1)[0]
    return ("." in name and root in ECS_ROOTS) or name in ECS_ROOTS


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
