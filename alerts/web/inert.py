"""Make attacker-controlled text inert and readable before it is shown anywhere.

HTML escaping (Jinja2 autoescape) stops markup; this module handles what escaping leaves:
control characters (a terminal escape, a NUL, a backspace that hides text) and Unicode
direction controls (a right-to-left override that makes ``gpj.exe`` read ``exe.jpg``) are
replaced by a visible ``⟨U+202E⟩``-style marker, and very long strings are cut with a note
saying how much was left out, so one 100 KB user agent cannot bury a page. The page templates
apply ``inert`` to every ``{{ value }}`` (the environment's ``finalize``); the CLI can use it for
terminal output.
"""

from __future__ import annotations

import re

DISPLAY_LIMIT = 20_000
# C0 controls but tab and newline, DEL, C1 controls; bidi embeddings, overrides, isolates and
# marks; zero-width characters and the BOM, which hide text or split look-alike words;
# line and paragraph separators, which some viewers treat as newlines.
_HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)


def _marker(match: re.Match[str]) -> str:
    return f"⟨U+{ord(match.group()):04X}⟩"


def inert(text: str, limit: int = DISPLAY_LIMIT) -> str:
    """``text`` with hidden and direction-changing characters made visible, cut at ``limit``."""
    cut = ""
    if len(text) > limit:
        cut = f"… [{len(text) - limit:,} more characters not shown]"
        text = text[:limit]
    return _HIDDEN.sub(_marker, text) + cut
