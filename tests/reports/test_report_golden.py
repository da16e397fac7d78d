"""Each report kind's JSON form over the generated year, compared exactly with its golden file.

Regenerate after a deliberate change: ``UPDATE_GOLDEN=1 pytest tests/reports/test_report_golden.py``.
The run's unique index prefix is replaced by ``PREFIX`` before comparing. The rule inventory and
ATT&CK coverage read the fixed ``tests/reports/rules/`` (the project's ``rules/`` keeps growing);
that the default is the project's ``rules/`` is asserted in test_report_inputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alerts.reports.build import canonical_json
from alerts.reports.period import named_period
from alerts.reports.service import Request, make_report
from tests.reports.conftest import NOW, RULES_DIR, Loaded

pytestmark = pytest.mark.integration
GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "reports"
# name -> (kind, period, scope, lang, incident)
CASES = {
    "periodic-yearly-2026-vi": ("periodic", "yearly:2026", None, "vi", None),
    "operations-monthly-2026-11-en": ("operations", "monthly:2026-11", None, "en", None),
    "operations-weekly-district-d03-en": ("operations", "weekly:2026-W48", "district d03", "en", None),
    "incident-INC-LATE-en": ("incident", "yearly:2026", None, "en", "INC-LATE"),
}


def make(loaded: Loaded, kind: str, period: str, scope: str | None, lang: str, incident: str | None) -> str:
    request = Request(kind, named_period(loaded.settings.reports, period), scope, lang, incident)
    report = make_report(loaded.settings, loaded.client, request, now=NOW, rules_dir=RULES_DIR)
    return canonical_json(report).replace(loaded.prefix, "PREFIX")


@pytest.mark.parametrize("name", sorted(CASES))
def test_report_json_matches_golden(loaded: Loaded, name: str) -> None:
    text = make(loaded, *CASES[name])
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), "no golden file yet: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_same_inputs_same_bytes(loaded: Loaded) -> None:
    case = CASES["operations-monthly-2026-11-en"]
    assert make(loaded, *case) == make(loaded, *case)
