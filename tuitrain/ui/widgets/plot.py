"""A plotext (6.x) chart as a Textual widget.

Subclass `PlotWidget` and implement `draw(fig, width, height)`, calling plotext's
figure API on `fig` (cleared, sized to the widget, colourless theme so the terminal's
background shows through). `self.line(fig, xs, ys, color)` adds a braille line in a
theme colour; `self.pixel(color)` converts a theme colour for plotext's `pixel=`
arguments (`fig.line(x, orientation="v", pixel=self.pixel(c))` marks a step).
Call `replot()` when the data changes: the text is rebuilt lazily on the next render,
once per change, size and theme, so several `replot()` calls between frames cost one
build. Drawing happens on the UI thread (plotext's figure is global); keep series
decimated to about `width` points.
"""

from __future__ import annotations

import plotext
from rich.text import Text
from textual.widget import Widget

from tuitrain.ui.themes import ChartColors, chart_colors

_NAMED = {
    "cyan": (0, 215, 215), "orange": (255, 175, 95), "magenta": (215, 95, 215), "red": (255, 95, 95),
    "green": (135, 215, 135), "blue": (95, 135, 255), "gray": (128, 128, 128), "grey": (128, 128, 128),
    "white": (228, 228, 228), "black": (0, 0, 0), "yellow": (255, 215, 95),
}


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
        self.builds = 0

    def on_mount(self) -> None:
        self.watch(self.app, "theme", lambda _theme: self.replot(), init=False)

    @property
    def colors(self) -> ChartColors:
        """The chart colours of the current theme."""
        return chart_colors(self.app)

    @staticmethod
    def pixel(color: object) -> object:
        """A theme colour (`(r, g, b)` or a common colour name) as a plotext pixel."""
        rgb = color if isinstance(color, tuple) else _NAMED.get(str(color), (200, 200, 200))
        return plotext.pixel(rgb)

    def line(self, fig, xs, ys, color: object, label: str | None = None):
        """Add a connected braille line of `(xs, ys)` in `color`; returns the signal."""
        signal = fig.signal(list(xs), list(ys), marker=plotext.marker("braille", pixel=self.pixel(color)))
        signal.lines()
        if label:
            signal.label(label)
        fig.draw(signal)
        return signal

    def replot(self) -> None:
        """Mark the chart stale and schedule a repaint."""
        self._version += 1
        self.refresh()

    def draw(self, fig, width: int, height: int) -> None:  # pragma: no cover - abstract
        """Draw the chart on `fig` (plotext's figure); subclasses implement this."""
        raise NotImplementedError

    def render(self) -> Text:
        width, height = self.content_size.width, self.content_size.height
        key = (self._version, width, height, self.app.theme)
        if key == self._cache_key:
            return self._cache
        if width < 16 or height < 5:
            self._cache = Text("(too small for a chart)", style="dim")
        else:
            self._cache = Text.from_ansi(self._build(width, height), no_wrap=True, overflow="crop")
            self.builds += 1
        self._cache_key = key
        return self._cache

    def _build(self, width: int, height: int) -> str:
        fig = plotext.figure
        fig.clear()
        fig.theme("colorless")
        fig.plot_size(width, height)
        try:
            self.draw(fig, width, height)
            return fig.build().string()
        finally:
            fig.clear()
