"""Filling a built-in task's options with its defaults, rejecting unknown ones."""

from __future__ import annotations

import difflib

from tuitrain.errors import TuitrainError


def resolve_options(task: str, given: dict | None, defaults: dict) -> dict:
    """`defaults` overlaid with `given`; an unknown key is a `TuitrainError` with a suggestion."""
    out = dict(defaults)
    for key, value in (given or {}).items():
        if key not in defaults:
            close = difflib.get_close_matches(key, list(defaults), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(defaults)})"
            raise TuitrainError(f"task.options.{key}: unknown option of task {task!r}{hint}")
        out[key] = value
    return out
