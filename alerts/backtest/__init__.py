"""Rule backtests: candidate Sigma rules over stored events (or event files), no alert written.

``socflow rules backtest`` runs the detection core of ``socflow replay`` (matching,
correlations, suppressions) over the events the hunt's store reader or replay's file reader
yields, and counts each rule's hits: per day (Asia/Ho_Chi_Minh), per node, agency and host,
the top values of the fields its detection names, and a few sample events. ``--baseline``
runs an older version of a rule in the same pass and reports the hits it gains or loses,
matched on event id.

Layout: :mod:`.aggregate` (pure: detections in, :class:`~.model.BacktestResult` out),
:mod:`.run` (rules, event sources, the engine), :mod:`.render` (table, JSON, HTML).
"""

from __future__ import annotations

from alerts.errors import AlertsError


class BacktestError(AlertsError):
    """A backtest cannot run: a rule that does not load, a missing file, no event store."""
