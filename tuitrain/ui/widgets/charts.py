"""The dashboard's and compare screen's charts: braille line charts drawn in pure Python.

Charts hold references to series objects (anything with `.decimate(width)`) and
decimate them to their own width when they draw, so the cost of a frame depends on
the chart's size, not on how many steps the run logged. Call `replot()` (a timer does)
when the series have grown. Colours come from the theme's chart colours
(`tuitrain.ui.themes.chart_colors`); the text is rebuilt only when data, size or theme
change. (The shared plotext base does not work with the installed plotext 6 API, so
these charts render braille themselves.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.color import Color, ColorParseError
from rich.text import Text
from textual.widget import Widget

from tuitrain.ui.themes import ChartColors, chart_colors
from tuitrain.ui.widgets.smoothing import DEFAULT_WEIGHT, clamp_weight, debiased_ema

GUTTER = 9  # columns for the y tick labels
_DOT_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
_NAMED = {"orange": "dark_orange", "gray": "grey50", "grey": "grey50", "default": "default"}


def rich_color(value: object) -> str:
    """A theme chart colour (plotext-style name or (r, g, b)) as a Rich colour string."""
    if isinstance(value, tuple) and len(value) == 3:
        return "rgb({},{},{})".format(*value)
    name = _NAMED.get(str(value), str(value))
    try:
        Color.parse(name)
    except ColorParseError:
        return "white"
    return name


def _tick(value: float) -> str:
    text = f"{value:.3g}"
    return text[: GUTTER - 1].rjust(GUTTER - 1)


def render_lines(lines: list[tuple[str | None, list[float], list[float], str]], title: str,
                 width: int, height: int, empty: str, dim_style: str) -> Text:
    """Braille chart of `(label, xs, ys, colour)` lines in `width`×`height` cells."""
    out = Text(no_wrap=True, overflow="crop")
    out.append(title, style="bold")
    for label, xs, _, color in lines:
        if label and xs:
            out.append("  ● ", style=color)
            out.append(label)
    out.append("\n")
    cols, rows = width - GUTTER, height - 2
    points = [(x, y) for _, xs, ys, _ in lines for x, y in zip(xs, ys)]
    if not points:
        for r in range(rows):
            out.append((empty if r == rows // 2 else "").center(width) + "\n", style=dim_style)
        return out
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    dots_w, dots_h = cols * 2, rows * 4
    cells: dict[int, list] = {}  # cell index -> [bits, colour]

    def dot(px: int, py: int, color: str) -> None:
        cell = (py // 4) * cols + px // 2
        entry = cells.setdefault(cell, [0, color])
        entry[0] |= _DOT_BITS[px % 2][py % 4]
        entry[1] = color

    for _, xs, ys, color in lines:
        prev = None
        for x, y in zip(xs, ys):
            px = round((x - x0) / (x1 - x0) * (dots_w - 1))
            py = round((y1 - y) / (y1 - y0) * (dots_h - 1))
            if prev is None:
                dot(px, py, color)
            else:
                steps = max(abs(px - prev[0]), abs(py - prev[1]), 1)
                for i in range(1, steps + 1):
                    dot(prev[0] + (px - prev[0]) * i // steps, prev[1] + (py - prev[1]) * i // steps, color)
            prev = (px, py)
    labels = {0: _tick(y1), rows - 1: _tick(y0), (rows - 1) // 2: _tick((y0 + y1) / 2)}
    for r in range(rows):
        out.append(labels.get(r, " " * (GUTTER - 1)) + "┤", style=dim_style)
        for c in range(cols):
            entry = cells.get(r * cols + c)
            if entry is None:
                out.append(" ")
            else:
                out.append(chr(0x2800 + entry[0]), style=entry[1])
        out.append("\n")
    left, right = f"{x0:.6g}", f"{x1:.6g}"
    out.append(" " * GUTTER + left + right.rjust(max(1, cols - len(left))), style=dim_style)
    return out


class ChartWidget(Widget):
    """Base of the charts: subclasses return their lines from `lines(width)`."""

    DEFAULT_CSS = """
    ChartWidget { height: 1fr; min-height: 5; }
    """

    title = ""
    empty = "waiting for data…"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._version = 0
        self._cache_key: tuple | None = None
        self._cache = Text()

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

    def lines(self, width: int) -> list[tuple[str | None, list[float], list[float], object]]:
        """`(label, xs, ys, chart colour)` for each line, decimated to `width` points."""
        raise NotImplementedError

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        key = (self._version, width, height, self.app.theme)
        if key != self._cache_key:
            if width < GUTTER + 8 or height < 4:
                self._cache = Text("(too small for a chart)", style="dim")
            else:
                lines = [(label, xs, ys, rich_color(color)) for label, xs, ys, color in self.lines(width - GUTTER)]
                self._cache = render_lines(lines, self.title, width, height, self.empty, rich_color(self.colors.grid))
            self._cache_key = key
        return self._cache


def _finite(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _plot_width(width: int) -> int:
    return max(8, width - GUTTER)


@dataclass
class Line:
    """One named series of a chart; `color` None means the chart picks one."""

    label: str
    series: Any
    color: object = None


class LineChart(ChartWidget):
    """Several series on one chart with a legend; `set_lines()` replaces them."""

    def __init__(self, title: str = "", *, empty: str = "waiting for data…",
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.empty = empty
        self.series_lines: list[Line] = []

    def set_lines(self, lines: list[Line]) -> None:
        """Show these series; the chart redraws on its next frame."""
        self.series_lines = lines
        self.replot()

    def lines(self, width: int):
        out = []
        for index, line in enumerate(self.series_lines):
            xs, ys = _finite(*line.series.decimate(width))
            color = line.color if line.color is not None else self.colors.series_color(index)
            out.append((line.label, xs, ys, color))
        return out


class LossChart(ChartWidget):
    """Train loss (smoothed over its faint raw line) and eval loss on one chart."""

    empty = "waiting for the first logged step…"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.weight = DEFAULT_WEIGHT
        self.train: Any = None
        self.eval: Any = None

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"loss (smoothing {self.weight:.2f})"

    def set_series(self, train: Any, eval: Any) -> None:
        """Point the chart at the train and eval loss series (either may be None)."""
        self.train, self.eval = train, eval
        self.replot()

    def adjust_smoothing(self, delta: float) -> float:
        """Change the EMA weight by `delta` (kept in [0, 0.99]); returns the new weight."""
        self.weight = clamp_weight(self.weight + delta)
        self.replot()
        return self.weight

    def lines(self, width: int):
        colors = self.colors
        out = []
        if self.train is not None:
            xs, ys = _finite(*self.train.decimate(width))
            if self.weight > 0:
                out.append((None, xs, ys, colors.grid))
                out.append(("train", xs, debiased_ema(ys, self.weight), colors.train))
            else:
                out.append(("train", xs, ys, colors.train))
        if self.eval is not None:
            xs, ys = _finite(*self.eval.decimate(width))
            out.append(("eval", xs, ys, colors.eval))
        return out


class ListSeries:
    """A plain list-backed series with `.decimate(width)` (used for telemetry history)."""

    def __init__(self, ys: list[float], xs: list[float] | None = None) -> None:
        self.ys = ys
        self.xs = xs if xs is not None else list(range(len(ys)))

    def decimate(self, width: int) -> tuple[list[float], list[float]]:
        n = len(self.ys)
        if n <= width:
            return list(self.xs), list(self.ys)
        step = n / width
        idx = [int(i * step) for i in range(width)] + [n - 1]
        return [self.xs[i] for i in idx], [self.ys[i] for i in idx]


class Decimated:
    """A series already decimated (on the UI thread, under the history lock) for one frame."""

    def __init__(self, series: Any, width: int) -> None:
        self.xs, self.ys = series.decimate(width) if series is not None else ([], [])

    def decimate(self, width: int) -> tuple[list[float], list[float]]:
        return self.xs, self.ys


def chart_width(widget) -> int:
    """How many points a chart of this widget's width can show (at least 40)."""
    return max(40, _plot_width(widget.size.width))
