"""Sigma correlation rules (event_count, value_count, temporal, temporal_ordered, value_*) in event time.

Pure core: :mod:`.spec` (rules as plain dataclasses), :mod:`.core` (per-group state and
``step``), :mod:`.engine` (keyed routing, an event-time driver and :class:`CorrelationEngine`
for replay). No pyflink import here; ``detectors.flink.stateful`` runs the same core on Flink.
"""

from detectors.correlation.core import CorrelationState
from detectors.correlation.engine import CorrelationEngine, CorrelationLogic, EventTimeDriver
from detectors.correlation.spec import CorrelationSpec, specs_from_sigma

__all__ = [
    "CorrelationEngine",
    "CorrelationLogic",
    "CorrelationSpec",
    "CorrelationState",
    "EventTimeDriver",
    "specs_from_sigma",
]
