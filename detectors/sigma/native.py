"""Use the compiled build of the engine's hot modules only while it matches their sources.

``compiler.py`` and ``engine.py`` are plain, typed Python. ``detectors/sigma/native_build.py`` compiles them
with mypyc (part of mypy) into extension modules next to the sources, which Python then imports
instead of the ``.py`` files: the same code, about 1.8x as fast. An extension module left over
from an older source would silently run old code, so the build writes a stamp with the digest
of the sources it compiled, and :func:`choose_build` (run by the package before anything
imports those modules) loads the sources instead when the stamp does not match them, or when
``SOCFLOW_SIGMA_COMPILED=0`` asks for the pure-Python build.

Kept free of imports from the rest of socflow: it runs while the package initializes.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path

PACKAGE = "detectors.sigma"
HERE = Path(__file__).resolve().parent
# In import order: engine imports compiler.
MODULES = ("compiler", "engine")
STAMP = HERE / "native.stamp.json"
ENV_SWITCH = "SOCFLOW_SIGMA_COMPILED"

_log = logging.getLogger(__name__)


def source_digest() -> str:
    """Digest of what a build depends on: the modules' sources, this Python's ABI tag."""
    digest = hashlib.sha256(sys.implementation.cache_tag.encode())
    for name in MODULES:
        digest.update(b"\0" + (HERE / f"{name}.py").read_bytes())
    return digest.hexdigest()


def compiled_files() -> list[Path]:
    """The extension modules of a build present in the package directory (any Python version)."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return sorted(p for p in HERE.iterdir() if p.name.endswith(suffixes) and p.name.split(".")[0] in
                  (*MODULES, "_native__mypyc"))


def stamp_matches() -> bool:
    try:
        stamp = json.loads(STAMP.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("digest") == source_digest()


def choose_build() -> str:
    """Load the sources in place of a stale or unwanted compiled build; say which build runs.

    Returns ``"compiled"``, ``"pure"`` (no compiled build present) or ``"pure (...)"`` with the
    reason a present build is not used.
    """
    if any(f"{PACKAGE}.{name}" in sys.modules for name in MODULES):
        return build_in_use()
    if not compiled_files():
        return "pure"
    if os.environ.get(ENV_SWITCH, "1") == "0":
        reason = f"{ENV_SWITCH}=0"  # asked for (benchmarks, or native_build while it builds)
    elif not stamp_matches():
        reason = "compiled build is older than the sources: run `python -m detectors.sigma.native_build`"
        _log.warning("sigma_native_stale reason=%r", reason)
    else:
        return "compiled"
    package = sys.modules[PACKAGE]
    for name in MODULES:
        qualified = f"{PACKAGE}.{name}"
        spec = importlib.util.spec_from_file_location(qualified, HERE / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        spec.loader.exec_module(module)
        setattr(package, name, module)
    return f"pure ({reason})"


def build_in_use() -> str:
    """``"compiled"`` when the loaded engine module is an extension module, else ``"pure"``."""
    module = sys.modules.get(f"{PACKAGE}.engine")
    origin = str(getattr(module, "__file__", "") or "")
    return "compiled" if origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)) else "pure"
