"""Setting a `Static`'s plain text without laying the screen out when nothing moves."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static


def set_text(static: Static, text: str) -> None:
    """Show `text` in `static`: nothing when it is unchanged, and a repaint of the widget alone
    (no layout of the whole screen) when its height stays the same — status lines change with
    every logged step but rarely change height."""
    old = static.content
    if text == old:
        return
    width = static.content_size.width
    same = isinstance(old, str) and width > 0 and (
        Content(old).get_height(static.styles, width) == Content(text).get_height(static.styles, width))
    static.update(text, layout=not same)
