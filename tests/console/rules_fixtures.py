"""A console over a rule store, a published rule set and alerts with verdicts (real Elasticsearch).

``rules_settings(tmp_path, url)`` imports the project's web rules (plus one rule whose title and
description are hostile) as a release into a private rule store, points the job's ``rule_dirs``
at the store's active set, publishes it, and indexes alerts of those rules under a unique
prefix: path traversal 10 alerts in the last 7 days (4 closed: 3 false positives, 1 true
positive), the scanner 3, SQL injection 20 of them 12 days old. ``drop_rules`` deletes the indices.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, helpers

from alerts.indexer import install_template
from alerts.rules.tuning import publish_rule_set
from alerts.settings import Settings, load_settings
from detectors.ruletools.store import RuleStore

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
TRAVERSAL = "e0491526-f487-433c-9e83-ad4f4a08ae0d"
HOSTILE_ID = "5d0c9a3e-7b1f-4e0a-9c55-0d6f3f1e2b77"
HOSTILE_TITLE = "<script>window.__pwned=1</script> \"'><img src=x onerror=\"window.__pwned=2\"> rule"
HOSTILE_RULE = f"""title: '{HOSTILE_TITLE.replace("'", "''")}'
id: {HOSTILE_ID}
status: stable
description: "An imported rule: invoice\\u202egpj.exe <b>bold</b>"
author: somebody else
tags:
  - attack.initial-access
  - attack.t1190
logsource:
  category: webserver
detection:
  selection:
    cs-uri-query|contains: '<svg/onload=window.__pwned=3>'
  condition: selection
level: low
"""


def rule_id_of(path: Path) -> str:
    return next(line.split()[1] for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("id:"))


WEB = REPO / "rules" / "web"
SCANNER_ID = rule_id_of(WEB / "web_scanner_user_agent.yml")
SQLI_ID = rule_id_of(WEB / "web_portal_sql_injection.yml")


@dataclass
class RulesConsole:
    settings: Settings
    client: Elasticsearch
    first_version: str


def _alert(number: int, rule_id: str, moment: datetime, *, status: str = "open",
           verdict: str | None = None) -> dict[str, Any]:
    source: dict[str, Any] = {
        "@timestamp": moment.isoformat(), "event": {"id": f"ev-{number}"},
        "rule": {"id": rule_id, "name": "x", "level": "medium"},
        "socflow": {"alert": {"status": status, "count": 2}, "triage": {"verdict": verdict}},
    }
    return source


def rules_settings(tmp_path: Path, elasticsearch_url: str) -> RulesConsole:
    prefix = f"t-rules-{uuid.uuid4().hex[:10]}"
    data = tmp_path / "data"
    settings = load_settings(
        data_dir=data, elasticsearch={"url": elasticsearch_url, "index_prefix": prefix},
        console={"audit_index": f"{prefix}_audit"},
        job={"rule_dirs": [str(data / "rules" / "active")], "suppressions_path": str(tmp_path / "none.yaml")})
    release = tmp_path / "release"
    shutil.copytree(WEB, release / "web", ignore=shutil.ignore_patterns("*.tests.yml"))
    (release / "web" / "imported_hostile.yml").write_text(HOSTILE_RULE, encoding="utf-8")
    RuleStore(settings.rule_store_dir).import_release(release, now=NOW, selection=settings.rules.selection(),
                                                      name="web-2026-11")
    first = publish_rule_set(settings, now=NOW)
    client = Elasticsearch(elasticsearch_url, request_timeout=60)  # the shared test instance can be slow
    install_template(client, prefix)
    alerts = [_alert(i, TRAVERSAL, NOW - timedelta(hours=i)) for i in range(6)]
    alerts += [_alert(10 + i, TRAVERSAL, NOW - timedelta(days=1, hours=i), status="closed",
                      verdict="false_positive" if i < 3 else "true_positive") for i in range(4)]
    alerts += [_alert(20 + i, SCANNER_ID, NOW - timedelta(days=2, hours=i)) for i in range(3)]
    alerts += [_alert(30 + i, SQLI_ID, NOW - timedelta(days=12, hours=i)) for i in range(20)]
    alerts += [_alert(60, "not-a-listed-rule", NOW - timedelta(hours=1))]
    helpers.bulk(client, ({"_index": f"{prefix}-2026.11", "_id": a["event"]["id"], "_source": a} for a in alerts),
                 refresh="wait_for")
    return RulesConsole(settings, client, first.version)


def drop_rules(console: RulesConsole) -> None:
    prefix = console.settings.elasticsearch.index_prefix
    for name in console.client.indices.get(index=f"{prefix}*", allow_no_indices=True):
        console.client.indices.delete(index=name)
    console.client.options(ignore_status=404).indices.delete_index_template(name=prefix)
