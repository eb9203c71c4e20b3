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


# One ASCII character for each character the app and Textual draw (same width: the layout
# stays); anything else falls back by its Unicode name, then to "?".
_ASCII = {
    "·": "-", "…": ".", "⏎": "<", "␣": "_", "↑": "^", "↓": "v", "←": "<", "→": ">", "●": "*", "▲": "^",
    "■": "#", "◆": "+", "✚": "+", "✖": "x", "✓": "v", "✗": "x", "★": "*", "⚠": "!", "⭘": "o", "▼": "v",
    "▶": ">", "◀": "<", "–": "-", "—": "-", "▔": "-", "▁": "_", "\u00a0": " ",
}


def ascii_char(ch: str) -> str:
    """An ASCII stand-in for `ch`, as many cells wide."""
    import unicodedata

    from rich.cells import cell_len

    found = _ASCII.get(ch)
    if found is not None:
        return found
    code = ord(ch)
    if 0x2800 <= code <= 0x28FF:
        return "."  # braille (charts draw ASCII themselves in this mode)
    name = unicodedata.name(ch, "")
    if 0x2500 <= code <= 0x257F:  # box drawing
        horizontal, vertical = "HORIZONTAL" in name, "VERTICAL" in name
        return "-" if horizontal and not vertical else "|" if vertical and not horizontal else "+"
    if 0x2580 <= code <= 0x259F:  # blocks: thin ones are bars, the rest solid
        return "|" if "EIGHTH" in name and ("LEFT" in name or "RIGHT" in name) else ":" if "SHADE" in name else "#"
    plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
    width = max(cell_len(ch), 1)
    return plain[:width].ljust(width, "?") if plain else "?" * width


def to_ascii(text: str) -> str:
    """`text` with every non-ASCII character replaced by a stand-in of the same width."""
    return text if text.isascii() else "".join(ch if ch.isascii() else ascii_char(ch) for ch in text)


def ascii_filter():
    """A Textual line filter drawing every frame in ASCII (for a terminal without UTF-8)."""
    from rich.segment import Segment
    from textual.filter import LineFilter

    class AsciiFilter(LineFilter):
        def apply(self, segments: list, background) -> list:
            return [segment if segment.text.isascii() else Segment(to_ascii(segment.text), segment.style,
                                                                    segment.control) for segment in segments]

    return AsciiFilter()
