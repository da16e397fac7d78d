"""Shared fixtures: where the third-party corpora are, and the real services (tests.conftest_services)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The service fixtures (real Elasticsearch, Kafka, Flink cluster) live in their own plugin module.
pytest_plugins = ["tests.conftest_services"] if (Path(__file__).parent / "conftest_services.py").exists() else []


def corpora_dir() -> Path:
    """``$SOCFLOW_CORPORA``, else ``../shared/corpora`` beside the repository."""
    return Path(os.environ.get("SOCFLOW_CORPORA", REPO_ROOT.parent / "shared" / "corpora"))


@pytest.fixture(scope="session")
def corpora() -> Path:
    path = corpora_dir()
    if not path.is_dir():
        pytest.skip(f"third-party corpora not found at {path} (set SOCFLOW_CORPORA)")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
