"""Terminal output of hunts and timelines: every string from a log is hostile.

A log line can carry ANSI escape sequences (which would recolour, move the cursor or rewrite
the terminal's title), other control characters, bidirectional overrides that make text read
differently from what it is (U+202E), and rich markup (``[link=...]``). :func:`safe` makes all
of them visible and inert; tables are built from ``rich.text.Text`` cells, which rich never
parses as markup.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

# Bidirectional controls and invisible format characters that change how text reads.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u200e\u200f\u061c\u2028\u2029\u2060\u2061\u2062\u2063\u2064\ufeff"
                       "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def safe(value: Any, limit: int = 200) -> str:
    """Printable text: control, bidi and other format characters as ``\\xNN`` / ``\\uNNNN``,
    cut to ``limit`` characters (with an ellipsis)."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    if text.isascii() and text.isprintable():
        return text
    out = []
    for char in text:
        code = ord(char)
        if char in _INVISIBLE or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A rich table whose cells are escaped ``Text`` (never markup)."""
    shown = Table(title=Text(safe(title)), show_lines=False, expand=False)
    for column in columns:
        shown.add_column(Text(column), overflow="fold")
    for row in rows:
        shown.add_row(*(Text(safe(cell)) for cell in row))
    return shown


def console(*, stderr: bool = False) -> Console:
    """A console that keeps rich's own markup off and highlighting off (cells are data)."""
    return Console(stderr=stderr, highlight=False, markup=False, emoji=False, soft_wrap=False)
