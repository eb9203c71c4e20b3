"""The charts of the dashboard, the compare screen and the editor: one base, `ChartWidget`.

Charts hold references to series objects (anything with `.decimate(width)`) and decimate
them to their own width when they draw, so the cost of a frame depends on the chart's size,
not on how many steps the run logged. Call `replot()` when the series have grown; the text
is rebuilt lazily on the next render, once per change of data, size, theme or options.

Colours come from the theme through component classes (`chart--train`, `chart--eval`,
`chart--lr`, `chart--series-1` … `chart--series-6`, `chart--axis`, `chart--raw`,
`chart--marker`): `app.tcss` gives them the theme's `$chart-*` variables, and the defaults
here use the standard theme colours, so the charts work in any Textual app.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from tuitrain.ui.glyphs import ascii_only
from tuitrain.ui.widgets.chartdraw import Frame, Trace, draw, glyph
from tuitrain.ui.widgets.smoothing import DEFAULT_WEIGHT, clamp_weight, debiased_ema

SERIES_STYLES = 6
PLOT_MARGIN = 8  # columns a chart leaves for its y ticks, when it decides how many points to draw


def chart_width(widget) -> int:
    """How many points a chart of this widget's width can show (at least 40)."""
    return max(40, widget.size.width - PLOT_MARGIN)


@dataclass
class Line:
    """One named series of a chart; `style` names a component (`lr`, `train`, …), None picks
    the chart's next series colour."""

    label: str
    series: Any
    style: str | None = None
    glyph: str | None = None  # its marker (a run's own in compare); None: by position, when several


class ChartWidget(Widget):
    """Base of the charts: subclasses return their lines from `traces(points)`."""

    COMPONENT_CLASSES = {
        "chart--title", "chart--axis", "chart--raw", "chart--train", "chart--eval", "chart--lr",
        "chart--marker", "chart--parent", *(f"chart--series-{i}" for i in range(1, SERIES_STYLES + 1)),
    }
    DEFAULT_CSS = """
    ChartWidget {
        height: 1fr;
        min-height: 5;
        & > .chart--title { text-style: bold; }
        & > .chart--axis { color: $foreground 55%; }
        & > .chart--raw { color: $foreground 30%; }
        & > .chart--train { color: $primary; }
        & > .chart--eval { color: $accent; }
        & > .chart--lr { color: $secondary; }
        & > .chart--marker { color: $error; }
        & > .chart--parent { color: $success; }
        & > .chart--series-1 { color: $primary; }
        & > .chart--series-2 { color: $accent; }
        & > .chart--series-3 { color: $success; }
        & > .chart--series-4 { color: $secondary; }
        & > .chart--series-5 { color: $error; }
        & > .chart--series-6 { color: $warning; }
    }
    """

    title = ""
    x_label = "step"
    y_label = ""
    empty = "waiting for data…"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._version = 0
        self._cache_key: tuple | None = None
        self._cache = Text()
        self.builds = 0
        self.log_y = False
        self.x_limits: tuple[float, float] | None = None

    def on_mount(self) -> None:
        self.watch(self.app, "theme", lambda _theme: self.replot(), init=False)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache_key = None  # component colours may have changed (a theme, a CSS reload)

    def replot(self) -> None:
        """Mark the chart stale and schedule a repaint."""
        self._version += 1
        self.refresh()

    def style(self, name: str) -> Style:
        """The rich style of component `chart--NAME` in the current theme."""
        return self.get_component_rich_style(f"chart--{name}", partial=True)

    def series_style(self, index: int) -> Style:
        """The style of the index-th overlaid series (cycles through six)."""
        return self.style(f"series-{index % SERIES_STYLES + 1}")

    @property
    def ascii_only(self) -> bool:
        """Whether to draw with ASCII only (a terminal without UTF-8)."""
        return ascii_only(self.app)

    def frame(self) -> Frame:
        """The chart's axes, title and options; subclasses add to it."""
        return Frame(title=self.title, x_label=self.x_label, y_label=self.y_label, log_y=self.log_y,
                     x_limits=self.x_limits, empty=self.empty, ascii_only=self.ascii_only,
                     axis_style=self.style("axis"), title_style=self.style("title"))

    def traces(self, points: int) -> list[Trace]:
        """The lines to draw, each decimated to about `points` points."""
        raise NotImplementedError

    def render(self) -> Text:
        width, height = self.content_size.width, self.content_size.height
        key = (self._version, width, height, self.app.theme, self.ascii_only)
        if key != self._cache_key:
            if width < 16 or height < 4:
                self._cache = Text("(too small for a chart)", style="dim")
            else:
                self._cache = draw(self.traces(max(8, width - PLOT_MARGIN)), self.frame(), width, height)
            self.builds += 1
            self._cache_key = key
        return self._cache


def _finite(xs, ys) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


class LineChart(ChartWidget):
    """Several series on one chart with a legend; `set_lines()` replaces them.

    With two series or more, each also carries its marker glyph (see `chartdraw`).
    """

    def __init__(self, title: str = "", *, y_label: str = "", x_label: str = "step",
                 y_limits: tuple[float, float] | None = None, empty: str = "waiting for data…",
                 x_format=None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.y_label = y_label
        self.x_label = x_label
        self.y_limits = y_limits
        self.x_format = x_format
        self.empty = empty
        self.series_lines: list[Line] = []

    def set_lines(self, lines: list[Line]) -> None:
        """Show these series; the chart redraws on its next frame."""
        self.series_lines = lines
        self.replot()

    def frame(self) -> Frame:
        frame = super().frame()
        frame.y_limits = self.y_limits
        frame.legend = len(self.series_lines) > 1 or any(line.glyph for line in self.series_lines)
        if self.x_format is not None:
            frame.x_format = self.x_format
        return frame

    def traces(self, points: int) -> list[Trace]:
        several = len(self.series_lines) > 1
        out = []
        for index, line in enumerate(self.series_lines):
            xs, ys = _finite(*line.series.decimate(points))
            style = self.style(line.style) if line.style else self.series_style(index)
            mark = line.glyph or (glyph(index, self.ascii_only) if several else "")
            out.append(Trace(line.label, xs, ys, style, mark))
        return out


class LossChart(ChartWidget):
    """Train loss (smoothed over its faint raw line) and eval loss on one chart; a fork's
    parent segment (the parent's line up to the fork, in its own colour and glyph) and the
    lines a rewind abandoned (faint, beneath the others) when given."""

    empty = "waiting for the first logged step…"
    y_label = "loss"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.weight = DEFAULT_WEIGHT
        self.train: Any = None
        self.eval: Any = None
        self.parent_line: Any = None  # a fork's parent segment (`parent` is the widget's DOM parent)
        self.abandoned: list[Any] = []

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"loss (smoothing {self.weight:.2f})"

    def set_series(self, train: Any, eval: Any, parent: Any = None, abandoned: list[Any] = ()) -> None:
        """Point the chart at the train and eval loss series (either may be None), a fork's
        parent segment and the abandoned lines to draw faded (none: `()`)."""
        self.train, self.eval, self.parent_line, self.abandoned = train, eval, parent, list(abandoned)
        self.replot()

    def set_smoothing(self, weight: float) -> float:
        """Use EMA weight `weight` (kept in [0, 0.99]); returns the weight used."""
        self.weight = clamp_weight(weight)
        self.replot()
        return self.weight

    def adjust_smoothing(self, delta: float) -> float:
        """Change the EMA weight by `delta`; returns the new weight."""
        return self.set_smoothing(self.weight + delta)

    def traces(self, points: int) -> list[Trace]:
        marks = self.ascii_only
        out = []
        for i, line in enumerate(self.abandoned):
            xs, ys = _finite(*line.decimate(points))
            out.append(Trace("abandoned" if i == 0 else None, xs, ys, self.style("raw"), faint=True))
        if self.parent_line is not None:
            xs, ys = _finite(*self.parent_line.decimate(points))
            ys = debiased_ema(ys, self.weight) if self.weight > 0 else ys
            out.append(Trace("parent", xs, ys, self.style("parent"), glyph(2, marks)))
        if self.train is not None:
            xs, ys = _finite(*self.train.decimate(points))
            if self.weight > 0:
                out.append(Trace(None, xs, ys, self.style("raw"), faint=True))
                ys = debiased_ema(ys, self.weight)
            out.append(Trace("train", xs, ys, self.style("train"), glyph(0, marks)))
        if self.eval is not None:
            xs, ys = _finite(*self.eval.decimate(points))
            if xs:
                out.append(Trace("eval", xs, ys, self.style("eval"), glyph(1, marks)))
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
    """A series decimated once (on the UI thread, under the history lock) for one frame.

    With `x_range` (a step window), only the points inside it are kept, decimated finely
    enough that the window still gets about `width` points.
    """

    EXACT_LIMIT = 16384  # widths up to which a Series decimates exactly (its CAPACITY // 4)

    def __init__(self, series: Any, width: int, x_range: tuple[float, float] | None = None) -> None:
        if series is None:
            self.xs, self.ys = [], []
            return
        if x_range is None:
            self.xs, self.ys = series.decimate(width)
            return
        lo, hi = x_range
        xs, ys = series.decimate(width)
        full = (xs[-1] - xs[0]) if len(xs) > 1 else 0
        if full > 0 and hi > lo:
            finer = min(self.EXACT_LIMIT, int(width * full / (hi - lo)) + 1)
            if finer > width:
                xs, ys = series.decimate(finer)
        keep = [i for i, x in enumerate(xs) if lo <= x <= hi]
        self.xs, self.ys = [xs[i] for i in keep], [ys[i] for i in keep]

    def decimate(self, width: int) -> tuple[list[float], list[float]]:
        return self.xs, self.ys
