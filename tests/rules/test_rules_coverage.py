"""``socflow rules coverage``: Navigator layers that the layer 4.5 schema accepts, and visibility."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from elasticsearch import Elasticsearch

from alerts.cli import main
from alerts.rules.visibility import seen_logsources
from tests.conftest import corpora_dir

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "tests" / "data" / "navigator-layer-4.5.schema.json").read_text(encoding="utf-8"))


def _layer(path: Path) -> dict[str, Any]:
    layer = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(SCHEMA).validate(layer)
    return layer


def _scores(layer: dict[str, Any]) -> dict[str, Any]:
    return {entry["techniqueID"]: entry.get("score") for entry in layer["techniques"]}


def test_schema_accepts_the_spec_example_and_refuses_a_broken_layer() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    good = {"name": "x", "versions": {"navigator": "5.0.0", "layer": "4.5"}, "domain": "enterprise-attack",
            "techniques": [{"techniqueID": "T1110.001", "score": 100, "tactic": "credential-access"}],
            "gradient": {"colors": ["#ff6666", "#8ec843"], "minValue": 0, "maxValue": 100},
            "metadata": [{"name": "a", "value": "b"}, {"divider": True}]}
    validator.validate(good)
    for broken in ({**good, "versions": {"navigator": "5.0.0", "layer": "4.4"}},
                   {**good, "domain": "enterprise"},
                   {**good, "techniques": [{"techniqueID": "1110"}]},
                   {**good, "gradient": {"colors": ["red"], "minValue": 0, "maxValue": 1}},
                   {**good, "techniqe": []}):
        assert not validator.is_valid(broken)


# The project's rules as they stood when these figures were written: new rules must not move them.
SCORED_RULES = (
    "correlation/dc_outbound_flow",
    "correlation/dc_slow_exfiltration",
    "correlation/dms_bulk_download_avg",
    "correlation/dms_bulk_download_p90",
    "correlation/dms_document_download",
    "correlation/linux_recon_burst",
    "correlation/linux_recon_identity",
    "correlation/linux_recon_network",
    "correlation/linux_recon_system",
    "correlation/mail_password_spraying",
    "correlation/portal_error_then_callback",
    "correlation/portal_http_server_error",
    "correlation/portal_outbound_connection",
    "correlation/sso_bruteforce_then_success",
    "correlation/sso_logon_failed",
    "correlation/sso_logon_success",
    "correlation/sso_many_failed_logons",
    "mail/mail_login_failed",
    "web/web_path_traversal",
    "web/web_portal_sql_injection",
    "web/web_scanner_user_agent",
    "windows/proc_creation_win_powershell_encoded_command",
)


@pytest.fixture
def scored_rules(tmp_path: Path) -> Path:
    folder = tmp_path / "scored-rules"
    for name in SCORED_RULES:
        target = folder / f"{name}.yml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / "rules" / f"{name}.yml").read_bytes())
    return folder


def test_project_rules_layer(tmp_path: Path, scored_rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "layer.json"
    assert main(["rules", "coverage", "--navigator", str(out), str(scored_rules)]) == 0
    assert "techniques from" in capsys.readouterr().out
    layer = _layer(out)
    assert layer["domain"] == "enterprise-attack" and layer["versions"]["layer"] == "4.5"
    scores = _scores(layer)
    # path traversal (medium 3) + SQL injection (high 4) + portal error then callback (high 4)
    assert scores["T1190"] == 11
    assert scores["T1059.001"] == 4 and scores["T1059"] is None  # the parent shows its sub-technique
    by_id = {entry["techniqueID"]: entry for entry in layer["techniques"]}
    assert by_id["T1190"]["comment"] == "3 rules (2 high, 1 medium)"
    assert by_id["T1059"]["showSubtechniques"] is True
    assert layer["legendItems"] and any(item["name"] == "enabled rules" for item in layer["metadata"])


def test_sigmahq_corpus_layer_is_valid(tmp_path: Path) -> None:
    corpus = corpora_dir() / "sigma"
    if not corpus.is_dir():
        pytest.skip(f"SigmaHQ corpus not found under {corpora_dir()} (set SOCFLOW_CORPORA)")
    out = tmp_path / "corpus-layer.json"
    assert main(["rules", "coverage", "--navigator", str(out), str(corpus)]) == 0
    layer = _layer(out)
    assert len([entry for entry in layer["techniques"] if "score" in entry]) >= 300


def test_by_source_counts_only_seen_logsources(tmp_path: Path, scored_rules: Path, elasticsearch_url: str,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    index = f"t-rulescov-{uuid.uuid4().hex[:12]}"
    client = Elasticsearch(elasticsearch_url)
    keyword = {"type": "keyword"}
    client.indices.create(index=index, mappings={"properties": {
        "@timestamp": {"type": "date"},
        "socflow": {"properties": {"logsource": {"properties": {"product": keyword, "category": keyword,
                                                                "service": keyword}}}}}})
    now = datetime.now(UTC)
    try:
        events = [
            ({"category": "webserver"}, now - timedelta(days=1)),
            ({"category": "webserver"}, now - timedelta(days=2)),
            ({"product": "socflow", "service": "sso-auth"}, now - timedelta(hours=3)),
            ({"product": "linux", "category": "process_creation"}, now - timedelta(days=60)),  # too old
        ]
        for number, (logsource, when) in enumerate(events):
            client.index(index=index, id=str(number), refresh=True,
                         document={"@timestamp": when.isoformat(), "socflow": {"logsource": logsource}})
        assert seen_logsources(client, index, days=30, now=now) == {
            (None, "webserver", None): 2, ("socflow", None, "sso-auth"): 1}
        monkeypatch.setenv("SOCFLOW_ELASTICSEARCH__URL", elasticsearch_url)
        out = tmp_path / "visible.json"
        code = main(["rules", "coverage", "--navigator", str(out), "--by-source", "--days", "30",
                     "--events-index", index, str(scored_rules)])
        printed = capsys.readouterr().out
        assert code == 0
        layer = _layer(out)
        by_id = {entry["techniqueID"]: entry for entry in layer["techniques"]}
        assert by_id["T1190"]["score"] == 11  # web rules; the callback correlation also reads webserver events
        assert by_id["T1110.001"]["score"] == 7  # SSO rules
        assert "score" not in by_id["T1082"] and by_id["T1082"]["color"] == "#bdbdbd"  # linux: silent
        assert "score" not in by_id["T1110.003"]  # official mail: no events
        silent = {item["value"] for item in layer["metadata"] if item.get("name") == "silent logsource"}
        assert {"linux/process_creation/*", "socflow/*/mail-auth", "windows/process_creation/*"} <= silent
        assert "*/webserver/*" not in silent
        assert "silent logsources in the last 30 days: " in printed
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)


def test_by_source_without_the_store_says_so(tmp_path: Path, scored_rules: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SOCFLOW_ELASTICSEARCH__URL", "http://127.0.0.1:9")
    out = tmp_path / "layer.json"
    assert main(["rules", "coverage", "--navigator", str(out), "--by-source", str(scored_rules)]) == 1
    assert "without visibility" in capsys.readouterr().err
    layer = _layer(out)
    assert "visibility unavailable" in layer["description"]
    assert _scores(layer)["T1190"] == 11


@pytest.mark.parametrize(("args", "error"), [
    (["--days", "0", "--by-source"], "--days must be at least 1"),
    (["/no/such/rules"], "no such file or directory"),
])
def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], error: str) -> None:
    assert main(["rules", "coverage", "--navigator", str(tmp_path / "x.json"), *args]) == 2
    assert error in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
