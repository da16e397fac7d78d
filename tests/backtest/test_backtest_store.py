"""Done-when of ``socflow rules backtest``: over the demo's stored events a backtest of a project
rule reports exactly replay's hits (event ids), and ``--baseline`` a known added/removed set.

Real Elasticsearch; the demo's files go into the store through the files collector, a spool and
the event writer (``tests.hunt.conftest.Store.put``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.cli import build_parser
from alerts.commands import rules_backtest
from alerts.hunt import HuntError
from alerts.scenario import generate
from tests.backtest.test_backtest_files import REPO, SPRAY, SQLI, replay_hits
from tests.hunt.conftest import Store

pytestmark = pytest.mark.integration
START = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
SQLI_ID = "ba086327-6135-4c19-8d22-8b67a99e1610"


def _old_sqli(directory: Path) -> Path:
    """An older version of the SQL injection rule: without ``pg_sleep(`` (the new one adds the
    demo's time-based probe) and with ``ma_ho_so=HG34`` (a false positive on two ordinary
    look-ups that the new one removed)."""
    text = SQLI.read_text(encoding="utf-8").replace("      - 'pg_sleep('\n", "")
    text = text.replace("      - 'information_schema'\n", "      - 'information_schema'\n      - 'ma_ho_so=HG34'\n")
    old = directory / "web_portal_sql_injection.v1.yml"
    old.write_text(text, encoding="utf-8")
    return old


def _backtest(store: Store, args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    parsed = build_parser(["rules"]).parse_args(["rules", "backtest", *args, "--from", "2026-11-20",
                                                 "--to", "2026-11-21", "--format", "json", "--ids"])
    assert rules_backtest.handler(parsed, store.settings) == 0
    return json.loads(capsys.readouterr().out)


def test_backtest_over_the_store_equals_replay(store: Store, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    files = generate(tmp_path / "inputs", START)
    paths = [files.mail, files.portal, files.windows]
    assert store.put(paths, tmp_path / "spool") > 600
    old = _old_sqli(tmp_path)
    expected = replay_hits([SQLI, SPRAY, REPO / "rules" / "mail"], paths, store.settings)
    expected_old = replay_hits([old], paths, store.settings)[SQLI_ID]

    report = _backtest(store, [str(SQLI), str(SPRAY), "--with", str(REPO / "rules" / "mail"),
                               "--baseline", str(old)], capsys)
    assert report["source"] == f"event store: {store.prefix}" and report["candidates"] == report["events_read"]
    rules = {(rule["rule"]["id"], rule["rule"]["role"]): rule for rule in report["rules"]}
    # the same hits as replay, event id for event id: a Sigma rule and a correlation
    assert set(rules[SQLI_ID, "candidate"]["event_ids"]) == expected[SQLI_ID]
    spray = "5b0f1f0e-6f57-4b8e-9a51-2c5a8f0e7a12"
    assert set(rules[spray, "candidate"]["event_ids"]) == expected[spray] and rules[spray, "candidate"]["alerts"] == 1
    assert set(rules[SQLI_ID, "baseline"]["event_ids"]) == expected_old
    assert rules[SQLI_ID, "candidate"]["days"] == [{"day": "2026-11-20", "hits": 3}]

    diff = report["baselines"][0]
    assert set(diff["added_event_ids"]) == expected[SQLI_ID] - expected_old
    assert set(diff["removed_event_ids"]) == expected_old - expected[SQLI_ID]
    assert (diff["added"], diff["removed"], diff["unchanged"]) == (1, 2, 2)
    assert "pg_sleep(" in diff["added_samples"][0]["event"]["url"]["query"]
    assert all("ma_ho_so=HG34" in s["event"]["url"]["query"] for s in diff["removed_samples"])


def test_no_store_is_a_clear_error(store: Store) -> None:
    args = build_parser(["rules"]).parse_args(["rules", "backtest", str(SQLI), "--from", "2026-11-20"])
    with pytest.raises(HuntError, match="no event store"):
        rules_backtest.handler(args, store.settings)
