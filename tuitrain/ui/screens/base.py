"""What every full screen of the app shares: the size breakpoints and a hook when they change.

Textual sets the breakpoint classes (`-narrow` < 120 columns ≤ `-medium` < 160 ≤ `-wide`;
`-short` < 34 rows ≤ `-tall`) on the screen as the terminal is resized, and `app.tcss`
lays the screens out by them. What CSS cannot do (the Runs table's columns, the editor's
group names) goes in `breakpoints_changed`, called once the classes changed.
"""

from __future__ import annotations

from textual.screen import Screen

HORIZONTAL = [(0, "-narrow"), (120, "-medium"), (160, "-wide")]
VERTICAL = [(0, "-short"), (34, "-tall")]


class TuitrainScreen(Screen):
    """A full screen with breakpoint classes."""

    HORIZONTAL_BREAKPOINTS = HORIZONTAL
    VERTICAL_BREAKPOINTS = VERTICAL

    _seen_breakpoints: frozenset = frozenset()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The classes for the terminal's size from the start: set later, on the first
        # resize, they would restyle every widget once more before the first frame.
        try:
            width, height = self.app.size
        except Exception:  # no app running (a screen built outside one)
            return
        for dimension, table in ((width, self.HORIZONTAL_BREAKPOINTS), (height, self.VERTICAL_BREAKPOINTS)):
            names = [name for limit, name in (table or []) if dimension >= limit]
            if names:
                self.add_class(names[-1])

    def on_mount(self) -> None:
        self._check_breakpoints()

    def on_resize(self, event) -> None:
        # Screen._on_resize sets the classes after this handler: look once it has.
        self.call_next(self._check_breakpoints)

    def _check_breakpoints(self) -> None:
        names = {name for _, name in (self.HORIZONTAL_BREAKPOINTS or []) + (self.VERTICAL_BREAKPOINTS or [])}
        now = frozenset(c for c in self.classes if c in names)
        if now and now != self._seen_breakpoints:
            self._seen_breakpoints = now
            self.breakpoints_changed()

    def breakpoints_changed(self) -> None:
        """The screen's breakpoint classes changed (and on the first layout)."""

    @property
    def narrow(self) -> bool:
        """Under 120 columns."""
        return self.has_class("-narrow")

    @property
    def short(self) -> bool:
        """Under the screen's short-height breakpoint."""
        return self.has_class("-short")
