"""Sub-commands of ``socflow``; each module exposes ``register(subparsers)``."""

import argparse
from pathlib import Path


def existing_path(text: str) -> Path:
    """An argparse ``type`` for rule and event paths that must be there: a mistyped path is a
    usage error at once, not a traceback after the rules loaded, nor an empty run that exits 0."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or directory: {text}")
    return path
