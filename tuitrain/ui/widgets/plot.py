"""A plotext chart as a Textual widget.

Subclass `PlotWidget` and implement `draw(plt, width, height)`, calling plotext's
functions on `plt` (already cleared and sized, themed canvas). Call `replot()` when
the data changes: the text is rebuilt lazily on the next render, once per change and
size, so several `replot()` calls between frames cost one build. Drawing happens on
the UI thread (plotext keeps global state); keep series decimated to `width` points.
"""

from __future__ import annotations

import plotext
from rich.text import Text
from textual.widget import Widget

from tuitrain.ui.themes import ChartColors, chart_colors


class PlotWidget(Widget):
    """Base for plotext charts; see the module docstring for the contract."""

    DEFAULT_CSS = """
    PlotWidget {
        height: 1fr;
        min-height: 6;
    }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._version = 0
        self._cache_key: tuple | None = None
        self._cache: Text = Text()

    def on_mount(self) -> None:
        self.watch(self.app, "theme", lambda _theme: self.replot(), init=False)

    @property
    def colors(self) -> ChartColors:
        """The chart colours of the current theme."""
        return chart_colors(self.app)

    def replot(self) -> None:
        """Mark the chart stale and schedule a repaint."""
        self._version += 1
        self.refresh()

    def draw(self, plt, width: int, height: int) -> None:  # pragma: no cover - abstract
        """Draw the chart on `plt` (the plotext module); subclasses implement this."""
        raise NotImplementedError

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        key = (self._version, width, height, self.app.theme)
        if key == self._cache_key:
            return self._cache
        if width < 10 or height < 4:
            self._cache = Text("(too small for a chart)", style="dim")
        else:
            self._cache = Text.from_ansi(self._build(width, height), no_wrap=True)
        self._cache_key = key
        return self._cache

    def _build(self, width: int, height: int) -> str:
        plt = plotext
        plt.clear_figure()
        plt.plotsize(width, height)
        plt.theme("clear")
        plt.frame(False)
        plt.ticks_color(self.colors.grid)
        plt.axes_color("default")
        plt.canvas_color("default")
        try:
            self.draw(plt, width, height)
            return plt.build()
        finally:
            plt.clear_figure()
