"""Classes of the jars on the job's classpath (socflow's own jar among them), by dotted name."""

from __future__ import annotations

import functools
from typing import Any

from pyflink.java_gateway import get_gateway


def java_class(name: str) -> Any:
    """The Java class ``name`` (``org.socflow.flink.EagerWatermarks``) through PyFlink's gateway."""
    return functools.reduce(getattr, name.split("."), get_gateway().jvm)
