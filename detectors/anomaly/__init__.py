"""Anomaly detectors over keyed event-time state (scans, brute force, spraying, beacons,
DNS tunnels, volume spikes, first-seen values). Pure core: no pyflink import.

Each detector in :mod:`.detectors` is a state dataclass (versioned ``to_snapshot`` /
``from_snapshot``) with pure ``step(state, item, group) -> (state, detections)`` and
``on_timer``; :mod:`.logic` routes events to them; thresholds come from
``config/detectors.yaml`` through :mod:`.config`.
"""

from detectors.anomaly.config import DetectorSettings, StatefulSettings
from detectors.anomaly.logic import AnomalyLogic

__all__ = ["AnomalyLogic", "DetectorSettings", "StatefulSettings"]
