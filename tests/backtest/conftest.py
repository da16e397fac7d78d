"""The backtest's store tests reuse the hunt tests' event store fixture (a store of their own on
the shared real Elasticsearch, events put in it the real way: collector -> spool -> writer)."""

from __future__ import annotations

from tests.hunt.conftest import Store, store

__all__ = ["Store", "store"]
