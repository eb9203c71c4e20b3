"""What the terminal can draw: UTF-8 (braille charts, box borders, `●`) or ASCII only.

The locale decides, as it does for tmux and htop: `LC_ALL`, else `LC_CTYPE`, else `LANG`
must name UTF-8. (Python's own encoding cannot tell: in the C locale it switches to its
UTF-8 mode, while the terminal still shows only ASCII.)
"""

from __future__ import annotations

import os
from typing import Mapping

# name -> (UTF-8, ASCII)
_GLYPHS = {
    "mark": ("●", "*"),
    "bar_full": ("█", "#"),
    "bar_empty": ("░", "-"),
    "valid": ("✓", "ok"),
    "invalid": ("✗", "x"),
    "problem": ("⚑", "!"),
    "best": ("★", "*"),
    "warning": ("⚠", "!"),
    "ellipsis": ("…", "..."),
    "dot": ("·", "-"),
}


def locale_is_utf8(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the locale in `environ` (default: this process's) is a UTF-8 one."""
    environ = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = environ.get(name)
        if value:
            value = value.lower()
            return "utf-8" in value or "utf8" in value
    return False


def ascii_only(app) -> bool:
    """Whether `app` draws in ASCII (tuitrain's app decides at start; other apps never do)."""
    return bool(getattr(app, "ascii_only", False))


def glyph(app, name: str) -> str:
    """The glyph `name` as `app` can draw it."""
    utf8, plain = _GLYPHS[name]
    return plain if ascii_only(app) else utf8
