"""Sigma rules: loading (pySigma), field mapping onto socflow events, and fast matching.

``SigmaEngine.load(paths)`` returns the engine and a :class:`LoadReport` that accounts for
every rule file; ``engine.match(event)`` returns the :class:`~detectors.model.RuleInfo` of every
rule that fires on one event.
"""

from detectors.sigma.native import choose_build

# Before anything imports the engine: a compiled build is used only if it matches the sources.
BUILD = choose_build()

from detectors.sigma.engine import SigmaEngine  # noqa: E402
from detectors.sigma.loader import LoadReport, RuleFailure  # noqa: E402

__all__ = ["BUILD", "LoadReport", "RuleFailure", "SigmaEngine"]
