"""Hunting over the event store: Sigma rules run over stored events, and entity timelines.

``socflow hunt`` pre-selects candidate events in Elasticsearch (time range and the rules'
logsources, both exact supersets of what the engine could match) and confirms every candidate
with socflow's own Sigma engine and correlation stage, the code path of ``socflow replay``:
Elasticsearch's keyword fields are case-sensitive and Sigma is not, so a query alone would
miss matches. Events are read oldest first with a point in time and ``search_after``.
"""

from __future__ import annotations

from alerts.errors import AlertsError


class HuntError(AlertsError):
    """A hunt or a timeline cannot run: no event store, a bad time, an unknown alert."""
