"""Shared fixtures of the Sigma engine tests: where the third-party corpora are.

``SOCFLOW_CORPORA`` overrides the default ``<repo>/../shared/corpora``; corpus tests skip with
the reason when it is absent (as on a user's machine).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "config"


def corpora_root() -> Path:
    return Path(os.environ.get("SOCFLOW_CORPORA", REPO_ROOT.parent / "shared" / "corpora"))


def require_corpus(*parts: str) -> Path:
    path = corpora_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus not found: {path} (set SOCFLOW_CORPORA to the shared corpora folder)")
    return path


@pytest.fixture(scope="session")
def sigma_corpus() -> Path:
    return require_corpus("sigma")


@pytest.fixture(scope="session")
def evtx_samples() -> Path:
    return require_corpus("evtx-attack-samples")


RULE_FOLDERS = ("rules", "rules-emerging-threats", "rules-threat-hunting")


@pytest.fixture(scope="session")
def attack_events(evtx_samples: Path) -> list[dict[str, Any]]:
    """Every record of evtx-attack-samples as a tagged socflow event (parsed once per session)."""
    from detectors.sigma.events import iter_windows_file
    from ingest.logsource import LogsourceTable

    table = LogsourceTable.load(CONFIG_DIR / "logsources.yaml")
    return [event for path in sorted(evtx_samples.rglob("*.evtx")) for _, event in iter_windows_file(path, table=table)]


@pytest.fixture(scope="session")
def corpus_engine(sigma_corpus: Path) -> Any:
    """The engine with the whole SigmaHQ corpus loaded, and its load report (loaded once)."""
    from detectors.sigma import SigmaEngine

    return SigmaEngine.load([sigma_corpus / folder for folder in RULE_FOLDERS], config_dir=CONFIG_DIR)
