"""Structured logging: lowercase event names plus key-values, one line each."""

from __future__ import annotations

import json
import logging
from typing import Any


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, /, **fields: Any) -> None:
    """Log ``event key=value ...`` with values JSON-encoded so they parse back unambiguously.

    ``logger``, ``event`` and ``level`` are positional-only, so a field may be named ``level``.
    """
    if logger.isEnabledFor(level):
        pairs = " ".join(f"{key}={json.dumps(value, default=str, ensure_ascii=False)}" for key, value in fields.items())
        logger.log(level, "%s %s", event, pairs)
