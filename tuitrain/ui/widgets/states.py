"""How a run's state looks wherever the app shows one: its colour (from the theme) and style.

`diverged` (the engine saw a NaN/inf loss, saved a checkpoint and stopped) is drawn in the
error colour, reversed, so that it never passes for an ordinary failure or a stop.
"""

from __future__ import annotations

FINISHED = ("finished", "failed", "stopped", "diverged")
ACTIVE = ("queued", "running", "stopping")
# state -> (theme colour attribute, extra style)
STATE_STYLE = {
    "queued": ("foreground", "italic"),
    "running": ("success", "bold"),
    "stopping": ("warning", ""),
    "stopped": ("warning", ""),
    "finished": ("primary", ""),
    "failed": ("error", "bold"),
    "diverged": ("error", "bold reverse"),
    "unreadable": ("error", ""),
    "stalled": ("warning", "bold"),
}


def state_style(state: str, theme) -> str:
    """A rich style for a state in the given Textual theme's colours."""
    attr, extra = STATE_STYLE.get(state, ("foreground", ""))
    color = getattr(theme, attr, None) if theme is not None else None
    return f"{extra} {color}".strip() if color else extra
