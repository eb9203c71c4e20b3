"""The one error type every layer raises for a user's mistake.

The CLI prints a `TuitrainError` as one line and exits 1; anything else is a bug
and keeps its traceback. Stdlib only: every package may import this module.
"""

from __future__ import annotations


class TuitrainError(Exception):
    """A problem the user can fix, told in one line (no traceback)."""

    exit_code = 1

    def one_line(self) -> str:
        """What the CLI prints: `tuitrain: …`, unless a subclass locates it better."""
        return f"tuitrain: {self}"
