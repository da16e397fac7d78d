"""Sigma rules: loading (pySigma), field mapping onto socflow events, and fast matching.

``SigmaEngine.load(paths)`` returns the engine and a :class:`LoadReport` that accounts for
every rule file; ``engine.match(event)`` returns the :class:`~detectors.model.RuleInfo` of every
rule that fires on one event.
"""

from detectors.sigma.engine import SigmaEngine
from detectors.sigma.loader import LoadReport, RuleFailure

__all__ = ["LoadReport", "RuleFailure", "SigmaEngine"]
