"""Shared fixtures of the Sigma engine tests: where the third-party corpora are.

``SOCFLOW_CORPORA`` overrides the default ``<repo>/../shared/corpora``; corpus tests skip with
the reason when it is absent (as on a user's machine).
"""

from __future__ import annotations

import os
from pathlib import Path

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
