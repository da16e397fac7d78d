"""Table-driven tests of Sigma detection semantics: every value modifier, wildcards and escapes,
null / empty / missing fields, lists, keywords and every condition form."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.sigma import SigmaEngine
from tests.sigma.conftest import CONFIG_DIR

RULE_ID = "00000000-0000-4000-8000-00000000000a"


def make_engine(tmp_path: Path, detection: dict[str, Any], *, logsource: dict[str, str] | None = None,
                config_dir: Path = CONFIG_DIR, **extra: Any) -> SigmaEngine:
    rule = {"title": "case", "id": RULE_ID, "status": "test", "logsource": logsource or {"product": "test"},
            "detection": detection, "level": "low", **extra}
    path = tmp_path / "rule.yml"
    path.write_text(yaml.safe_dump(rule, allow_unicode=True, sort_keys=False), encoding="utf-8")
    engine, report = SigmaEngine.load([path], config_dir=config_dir)
    assert report.ok, report.render()
    return engine


def event(**fields: Any) -> dict[str, Any]:
    return {"socflow": {"logsource": {"product": "test"}}, **fields}


def fires(engine: SigmaEngine, data: dict[str, Any]) -> bool:
    indexed = bool(engine.match(data))
    engine.indexed = False
    try:
        brute = bool(engine.match(data))
    finally:
        engine.indexed = True
    assert indexed == brute, "the index changed the result"
    return indexed


def b64(text: str, encoding: str = "utf-8") -> str:
    return base64.b64encode(text.encode(encoding)).decode()


# (name, selection, event fields, expected)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # plain equality: case-insensitive, also beyond ASCII
    ("eq", {"f": "Hello"}, {"f": "hELLO"}, True),
    ("eq-whole-value", {"f": "Hello"}, {"f": "Hello world"}, False),
    ("eq-non-ascii", {"f": "ÄRGER"}, {"f": "ärger"}, True),
    ("eq-cyrillic", {"f": "ПАРОЛЬ"}, {"f": "пароль"}, True),
    ("eq-casefold-sharp-s", {"f": "STRASSE"}, {"f": "straße"}, True),
    ("eq-number", {"f": 4688}, {"f": 4688}, True),
    ("eq-number-vs-text", {"f": 3}, {"f": "3"}, True),
    ("eq-number-mismatch", {"f": 3}, {"f": 30}, False),
    ("eq-text-vs-int-field", {"f": "4688"}, {"f": 4688}, True),
    ("eq-bool", {"f": True}, {"f": True}, True),
    ("eq-bool-text", {"f": False}, {"f": "false"}, True),
    ("empty-string", {"f": ""}, {"f": ""}, True),
    ("empty-string-vs-missing", {"f": ""}, {}, False),
    ("empty-string-vs-value", {"f": ""}, {"f": "x"}, False),
    ("null-missing", {"f": None}, {}, True),
    ("null-none", {"f": None}, {"f": None}, True),
    ("null-present", {"f": None}, {"f": "x"}, False),
    ("missing-field", {"f": "x"}, {"g": "x"}, False),
    ("value-list-any", {"f": ["a", "b"]}, {"f": "B"}, True),
    ("value-list-none", {"f": ["a", "b"]}, {"f": "c"}, False),
    ("list-field-any-element", {"f": "b"}, {"f": ["a", "b"]}, True),
    ("nested-path", {"process.command_line|contains": "whoami"}, {"process": {"command_line": "WHOAMI /all"}}, True),
    ("flat-dotted-key", {"source.ip": "10.0.0.1"}, {"source.ip": "10.0.0.1"}, True),
    # wildcards and escapes
    ("wildcard-star", {"f": "a*c"}, {"f": "abbbc"}, True),
    ("wildcard-star-empty", {"f": "a*c"}, {"f": "ac"}, True),
    ("wildcard-question", {"f": "a?c"}, {"f": "abc"}, True),
    ("wildcard-question-one", {"f": "a?c"}, {"f": "abbc"}, False),
    ("escaped-star", {"f": "a\\*c"}, {"f": "a*c"}, True),
    ("escaped-star-literal", {"f": "a\\*c"}, {"f": "abc"}, False),
    ("escaped-question", {"f": "what\\?"}, {"f": "what?"}, True),
    ("backslash-path", {"f|endswith": "\\cmd.exe"}, {"f": "C:\\Windows\\System32\\CMD.EXE"}, True),
    ("star-any-value", {"f": "*"}, {"f": "x"}, True),
    ("star-not-missing", {"f": "*"}, {}, False),
    ("wildcard-multiline", {"f": "a*c"}, {"f": "a\nb\nc"}, True),
    # string modifiers
    ("contains", {"f|contains": "Mimi"}, {"f": "xxMIMIKATZxx"}, True),
    ("contains-miss", {"f|contains": "mimi"}, {"f": "katz"}, False),
    ("contains-empty", {"f|contains": ""}, {"f": "anything"}, True),
    ("startswith", {"f|startswith": "C:\\Win"}, {"f": "c:\\windows"}, True),
    ("startswith-miss", {"f|startswith": "Win"}, {"f": "c:\\windows"}, False),
    ("endswith", {"f|endswith": ".EXE"}, {"f": "a.exe"}, True),
    ("endswith-miss", {"f|endswith": ".exe"}, {"f": "a.exe.txt"}, False),
    ("contains-all", {"f|contains|all": ["a", "b"]}, {"f": "xaxbx"}, True),
    ("contains-all-miss", {"f|contains|all": ["a", "b"]}, {"f": "xax"}, False),
    ("all-eq-impossible", {"f|all": ["a", "b"]}, {"f": "a"}, False),
    ("cased", {"f|cased": "Hello"}, {"f": "Hello"}, True),
    ("cased-miss", {"f|cased": "Hello"}, {"f": "hello"}, False),
    ("cased-contains", {"f|contains|cased": "Ab"}, {"f": "xxAbxx"}, True),
    ("cased-contains-miss", {"f|contains|cased": "Ab"}, {"f": "xxabxx"}, False),
    ("windash", {"f|windash|contains": " -enc "}, {"f": "powershell /enc abc"}, True),
    ("windash-en-dash", {"f|windash|contains": " -enc "}, {"f": "powershell \u2013enc abc"}, True),
    ("windash-miss", {"f|windash|contains": " -enc "}, {"f": "powershell +enc abc"}, False),
    ("base64", {"f|base64": "abc"}, {"f": "YWJj"}, True),
    ("base64-contains", {"f|base64|contains": "http://"}, {"f": "xx" + b64("http://") + "xx"}, True),
    ("base64offset-0", {"f|base64offset|contains": "whoami"}, {"f": b64("whoami /all")}, True),
    ("base64offset-1", {"f|base64offset|contains": "whoami"}, {"f": b64("xwhoami /all")}, True),
    ("base64offset-2", {"f|base64offset|contains": "whoami"}, {"f": b64("xxwhoami /all")}, True),
    ("base64offset-miss", {"f|base64offset|contains": "whoami"}, {"f": b64("hello world")}, False),
    ("wide-base64", {"f|wide|base64offset|contains": "ping"}, {"f": b64("ping 1.1.1.1", "utf-16-le")}, True),
    ("utf16le-base64", {"f|utf16le|base64offset|contains": "ping"}, {"f": b64("xping", "utf-16-le")}, True),
    ("utf16be-base64", {"f|utf16be|base64": "ab"}, {"f": b64("ab", "utf-16-be")}, True),
    ("utf16-bom-base64", {"f|utf16|base64": "ab"}, {"f": b64("\ufeffab", "utf-16-le")}, True),
    # regular expressions
    ("re", {"f|re": "^ab+c$"}, {"f": "abbbc"}, True),
    ("re-search", {"f|re": "b+"}, {"f": "abbbc"}, True),
    ("re-case-sensitive", {"f|re": "^ABC$"}, {"f": "abc"}, False),
    ("re-i", {"f|re|i": "^ABC$"}, {"f": "abc"}, True),
    ("re-i-non-ascii", {"f|re|i": "^ÄRGER$"}, {"f": "ärger"}, True),
    ("re-m", {"f|re|m": "^b$"}, {"f": "a\nb\nc"}, True),
    ("re-no-m", {"f|re": "^b$"}, {"f": "a\nb\nc"}, False),
    ("re-s", {"f|re|s": "a.c"}, {"f": "a\nc"}, True),
    ("re-no-s", {"f|re": "a.c"}, {"f": "a\nc"}, False),
    ("re-number-field", {"f|re": "^46\\d\\d$"}, {"f": 4688}, True),
    ("re-catastrophic-is-linear", {"f|re": "^(a+)+$"}, {"f": "a" * 5000 + "!"}, False),
    # cidr
    ("cidr-v4", {"f|cidr": "10.0.0.0/8"}, {"f": "10.1.2.3"}, True),
    ("cidr-v4-miss", {"f|cidr": "10.0.0.0/8"}, {"f": "11.1.2.3"}, False),
    ("cidr-v4-list", {"f|cidr": ["192.168.0.0/16", "172.16.0.0/12"]}, {"f": "172.20.1.1"}, True),
    ("cidr-v6", {"f|cidr": "fe80::/10"}, {"f": "FE80::1:2"}, True),
    ("cidr-v6-miss", {"f|cidr": "fe80::/10"}, {"f": "2001:db8::1"}, False),
    ("cidr-v6-zone", {"f|cidr": "fe80::/10"}, {"f": "fe80::1%eth0"}, True),
    ("cidr-v4-mapped", {"f|cidr": "10.0.0.0/8"}, {"f": "::ffff:10.0.0.5"}, True),
    ("cidr-family-mismatch", {"f|cidr": "::/0"}, {"f": "10.0.0.1"}, False),
    ("cidr-not-an-ip", {"f|cidr": "10.0.0.0/8"}, {"f": "host10"}, False),
    # numeric comparisons
    ("gt", {"f|gt": 9}, {"f": "10"}, True),
    ("gt-equal", {"f|gt": 10}, {"f": 10}, False),
    ("gte", {"f|gte": 10}, {"f": 10}, True),
    ("lt", {"f|lt": 10}, {"f": 9}, True),
    ("lt-miss", {"f|lt": 10}, {"f": 11}, False),
    ("lte", {"f|lte": 10}, {"f": "10"}, True),
    ("gt-float", {"f|gt": 1.5}, {"f": "1.75"}, True),
    ("gt-hex", {"f|gt": 15}, {"f": "0x10"}, True),
    ("gt-not-a-number", {"f|gt": 1}, {"f": "abc"}, False),
    ("gt-missing", {"f|gt": 1}, {}, False),
    ("neq", {"f|neq": "a"}, {"f": "b"}, True),
    ("neq-equal", {"f|neq": "a"}, {"f": "A"}, False),
    ("neq-missing", {"f|neq": "a"}, {}, True),
    # exists, fieldref
    ("exists", {"f|exists": True}, {"f": ""}, True),
    ("exists-missing", {"f|exists": True}, {}, False),
    ("not-exists", {"f|exists": False}, {}, True),
    ("not-exists-present", {"f|exists": False}, {"f": "x"}, False),
    ("fieldref", {"f|fieldref": "g"}, {"f": "Abc", "g": "aBC"}, True),
    ("fieldref-miss", {"f|fieldref": "g"}, {"f": "abc", "g": "abd"}, False),
    ("fieldref-missing", {"f|fieldref": "g"}, {"f": "abc"}, False),
    ("fieldref-startswith", {"f|fieldref|startswith": "g"}, {"f": "abcdef", "g": "abc"}, True),
    ("fieldref-endswith", {"f|fieldref|endswith": "g"}, {"f": "abcdef", "g": "def"}, True),
    ("fieldref-contains", {"f|fieldref|contains": "g"}, {"f": "abcdef", "g": "cd"}, True),
    # time modifiers
    ("hour", {"t|hour": 3}, {"t": "2026-01-02T03:04:05Z"}, True),
    ("hour-miss", {"t|hour": 4}, {"t": "2026-01-02T03:04:05Z"}, False),
    ("minute", {"t|minute": 4}, {"t": "2026-01-02T03:04:05Z"}, True),
    ("day", {"t|day": 2}, {"t": "2026-01-02T03:04:05Z"}, True),
    ("week", {"t|week": 1}, {"t": "2026-01-02T03:04:05Z"}, True),
    ("month", {"t|month": 1}, {"t": "2026-01-02T03:04:05Z"}, True),
    ("year", {"t|year": 2026}, {"t": "2026-01-02T03:04:05Z"}, True),
    ("time-not-a-time", {"t|year": 2026}, {"t": "yesterday"}, False),
]


@pytest.mark.parametrize(("selection", "fields", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_value_semantics(tmp_path: Path, selection: dict[str, Any], fields: dict[str, Any], expected: bool) -> None:
    engine = make_engine(tmp_path, {"selection": selection, "condition": "selection"})
    assert fires(engine, event(**fields)) is expected


CONDITIONS: list[tuple[str, str, dict[str, Any], bool]] = [
    ("and", "sel_a and sel_b", {"a": "1", "b": "1"}, True),
    ("and-miss", "sel_a and sel_b", {"a": "1"}, False),
    ("or", "sel_a or sel_b", {"b": "1"}, True),
    ("not", "sel_a and not sel_b", {"a": "1"}, True),
    ("not-miss", "sel_a and not sel_b", {"a": "1", "b": "1"}, False),
    ("not-only", "not sel_a", {}, True),
    ("parentheses", "sel_a and (sel_b or sel_c)", {"a": "1", "c": "1"}, True),
    ("precedence", "sel_a and sel_b or sel_c", {"c": "1"}, True),
    ("precedence-2", "sel_a or sel_b and sel_c", {"b": "1"}, False),
    ("not-binds-tight", "not sel_a and sel_b", {"b": "1"}, True),
    ("one-of-pattern", "1 of sel_*", {"c": "1"}, True),
    ("any-of-pattern", "any of sel_*", {"b": "1"}, True),
    ("one-of-pattern-miss", "1 of sel_*", {"x": "1"}, False),
    ("all-of-pattern", "all of sel_*", {"a": "1", "b": "1", "c": "1"}, True),
    ("all-of-pattern-miss", "all of sel_*", {"a": "1", "b": "1"}, False),
    ("one-of-them", "1 of them", {"x": "1"}, True),
    ("all-of-them", "all of them", {"a": "1", "b": "1", "c": "1", "x": "1"}, True),
    ("all-of-them-miss", "all of them", {"a": "1", "b": "1", "c": "1"}, False),
    ("not-one-of", "sel_a and not 1 of filter_*", {"a": "1"}, True),
    ("pattern-prefix", "1 of *_x", {"x": "1"}, True),
]


@pytest.mark.parametrize(
    ("condition", "fields", "expected"), [c[1:] for c in CONDITIONS], ids=[c[0] for c in CONDITIONS]
)
def test_condition_semantics(tmp_path: Path, condition: str, fields: dict[str, Any], expected: bool) -> None:
    detection = {"sel_a": {"a": "1"}, "sel_b": {"b": "1"}, "sel_c": {"c": "1"}, "filter_x": {"x": "1"},
                 "other_x": {"x": "1"}, "condition": condition}
    engine = make_engine(tmp_path, detection)
    assert fires(engine, event(**fields)) is expected


def test_list_of_maps_is_or(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, {"selection": [{"a": "1", "b": "1"}, {"c": "1"}], "condition": "selection"})
    assert fires(engine, event(c="1"))
    assert fires(engine, event(a="1", b="1"))
    assert not fires(engine, event(a="1"))


def test_multiple_conditions_are_or(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, {"sel_a": {"a": "1"}, "sel_b": {"b": "1"}, "condition": ["sel_a", "sel_b"]})
    assert fires(engine, event(b="1"))


KEYWORDS: list[tuple[str, Any, dict[str, Any], bool]] = [
    ("keyword", ["mimikatz"], {"msg": "ran MIMIKATZ.exe"}, True),
    ("keyword-any-field", ["sekurlsa"], {"a": "x", "b": {"c": "sekurlsa::logonpasswords"}}, True),
    ("keyword-miss", ["mimikatz"], {"msg": "benign"}, False),
    ("keyword-wildcard", ["mimi*katz"], {"msg": "mimi-the-katz"}, True),
    ("keyword-list-element", ["evil"], {"Data": ["ok", "EVIL thing"]}, True),
    ("keyword-number", [4625], {"code": 4625}, True),
    ("keyword-bool", ["true"], {"flag": True}, True),
    ("keyword-all", {"|all": ["alpha", "beta"]}, {"a": "alpha", "b": "beta"}, True),
    ("keyword-all-miss", {"|all": ["alpha", "beta"]}, {"a": "alpha"}, False),
    ("keyword-re", {"|re": "lsass\\.(exe|dmp)"}, {"f": "procdump lsass.dmp"}, True),
]


@pytest.mark.parametrize(("keywords", "fields", "expected"), [c[1:] for c in KEYWORDS], ids=[c[0] for c in KEYWORDS])
def test_keyword_semantics(tmp_path: Path, keywords: Any, fields: dict[str, Any], expected: bool) -> None:
    engine = make_engine(tmp_path, {"keywords": keywords, "condition": "keywords"})
    assert fires(engine, event(**fields)) is expected


def test_keywords_do_not_search_socflow_tags(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, {"keywords": ["test"], "condition": "keywords"})
    assert not fires(engine, event(msg="x"))  # "test" is only the logsource product


def test_expand_placeholders_from_config(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR / "sigma", config / "sigma")
    shutil.copy(CONFIG_DIR / "logsources.yaml", config / "logsources.yaml")
    (config / "sigma" / "placeholders.yml").write_text(
        yaml.safe_dump({"placeholders": {"Admins_Workstations": ["ADMIN-PC1", "ADMIN-PC2"]}}), encoding="utf-8")
    engine = make_engine(tmp_path, {"selection": {"host|expand": "%Admins_Workstations%"}, "condition": "selection"},
                         config_dir=config)
    assert fires(engine, event(host="admin-pc2"))
    assert not fires(engine, event(host="other"))


def test_expand_unknown_placeholder_fails_with_reason(tmp_path: Path) -> None:
    path = tmp_path / "rule.yml"
    path.write_text(yaml.safe_dump({"title": "p", "id": RULE_ID, "logsource": {"product": "test"}, "detection": {
        "selection": {"host|expand": "%no_such_list%"}, "condition": "selection"}}), encoding="utf-8")
    _, report = SigmaEngine.load([path], config_dir=CONFIG_DIR)
    assert report.loaded == 0 and report.total == 1
    assert "no_such_list" in report.failures[0].reason


def test_expand_empty_list_in_filter_excludes_nothing(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, {"selection": {"a": "1"}, "filter": {"host|expand": "%known_cdcs%"},
                                    "condition": "selection and not filter"})
    assert fires(engine, event(a="1", host="dc1"))


def test_match_never_raises_on_odd_events(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, {"selection": {"f|re": "x", "g|cidr": "10.0.0.0/8", "h|gt": 1,
                                                  "t|hour": 1, "k|contains": "y"},
                                    "condition": "selection or not selection"})
    odd: list[Any] = [
        {}, event(), event(f=None, g=None, h=None, t=None), event(f={"x": 1}, g=[1, None], h=[], t=12),
        event(f=b"bytes", g=object(), h=float("nan"), t="2026-13-45"), {"socflow": "x"}, {"socflow": {"logsource": 1}},
        {"winlog": {"channel": 1, "event_id": "x", "event_data": []}},
        {"winlog": {"channel": "Security", "event_id": 4688, "event_data": None}},
    ]
    for item in odd:
        engine.match(item)
    assert engine.match([]) == []  # type: ignore[arg-type]


def test_wide_non_ascii_and_base64offset_counts_bytes(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, {"selection": {"f|wide|base64offset|contains": "пароль"},
                                    "condition": "selection"})
    for prefix in ("", "x", "xy"):
        assert fires(engine, event(f=b64(prefix + "пароль", "utf-16-le")))


def test_regex_outside_re2_runs_bounded_and_is_noted(tmp_path: Path) -> None:
    path = tmp_path / "rule.yml"
    path.write_text(yaml.safe_dump({"title": "look-ahead", "id": RULE_ID, "logsource": {"product": "test"},
                                    "detection": {"selection": {"f|re": "foo(?=bar)"}, "condition": "selection"}}),
                    encoding="utf-8")
    engine, report = SigmaEngine.load([path], config_dir=CONFIG_DIR)
    assert report.ok and any("foo(?=bar)" in note for note in report.notes)
    assert fires(engine, event(f="xfoobar"))
    assert not fires(engine, event(f="foobaz"))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(st.sampled_from(["f", "g", "h", "t", "winlog", "socflow", "x"]), _json, max_size=6))
def test_match_never_raises_property(tmp_path: Path, fields: dict[str, Any]) -> None:
    engine = _fuzz_engine(tmp_path)
    engine.match(fields)
    engine.match({"socflow": {"logsource": {"product": "test"}}, **fields})


_FUZZ: dict[str, SigmaEngine] = {}


def _fuzz_engine(tmp_path: Path) -> SigmaEngine:
    if "engine" not in _FUZZ:
        _FUZZ["engine"] = make_engine(tmp_path, {
            "a": {"f|re": "x+y", "g|cidr": "10.0.0.0/8", "h|gt": 1, "t|hour": 1},
            "b": {"f|contains|all": ["a", "b"], "g|fieldref": "f", "h|exists": True},
            "k": ["evil", 5],
            "condition": "a or b or k or not a"})
    return _FUZZ["engine"]


def test_scan_cache_eviction_keeps_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import detectors.sigma.engine as engine_module

    monkeypatch.setattr(engine_module, "_CACHE_LIMIT", 3)
    path = tmp_path / "rule.yml"
    path.write_text(yaml.safe_dump({"title": "c", "id": RULE_ID, "logsource": {"product": "windows"},
                                    "detection": {"selection": {"Image|endswith": "\\evil.exe"},
                                                  "condition": "selection"}}), encoding="utf-8")
    engine, _ = SigmaEngine.load([path], config_dir=CONFIG_DIR)
    for round_ in range(3):
        for n in range(10):
            image = f"C:\\x{n}\\{'evil' if n % 3 == 0 else 'good'}.exe"
            data = {"winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 1,
                               "event_data": {"Image": image}}}
            assert fires(engine, data) is (n % 3 == 0), (round_, n)


@pytest.mark.parametrize(("data", "expected"), [
    ({"a": True, "b": 1.5, "Data": ["ok", "EVIL thing"]}, True),
    ({"a": True, "b": 1.5, "Data": ["ok", None]}, False),
    ({"nested": {"deep": "evil"}}, True),
    ({"flag": False}, False),
])
def test_windows_keywords_over_event_data(tmp_path: Path, data: dict[str, Any], expected: bool) -> None:
    engine = make_engine(tmp_path, {"keywords": ["evil", "true"], "condition": "keywords"},
                         logsource={"product": "windows"})
    event_ = {"winlog": {"channel": "Application", "event_id": 1, "event_data": data}}
    assert fires(engine, event_) is (expected or any(v is True for v in data.values()))
