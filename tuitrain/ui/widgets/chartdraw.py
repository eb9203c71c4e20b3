"""Line charts drawn as text: braille dots (or ASCII), named axes with ticks, and a legend.

Pure functions of their inputs (no Textual), so that a frame can be checked cell by cell.

Where curves cross or lie on top of each other, a terminal cell can have one colour only:
a cell shows the dots of every series in it and takes the colour of the series with the
most dots in that cell (a tie goes to the series listed first in the legend; a faint
series, such as the raw loss under its smoothed line, never wins against another). So
that every series stays visible, and readable without colour (`NO_COLOR`, monochrome
terminals), each series of a chart with several also stamps its own marker glyph
(`● ▲ ■ ◆ ✚ ✖`, or `o x + * # @` in ASCII) along its line at evenly spaced columns,
staggered so that no two series ever mark the same column; the legend shows each
series' glyph beside its name, on the same line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from rich.style import Style
from rich.text import Text

GLYPHS = ("●", "▲", "■", "◆", "✚", "✖")
ASCII_GLYPHS = ("o", "x", "+", "*", "#", "@")
_DOT_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
MIN_COLUMNS = 8  # plot columns below which a chart says it is too small


def glyph(index: int, ascii_only: bool = False) -> str:
    """The marker glyph of the index-th series."""
    table = ASCII_GLYPHS if ascii_only else GLYPHS
    return table[index % len(table)]


def format_number(value: float) -> str:
    """Compact numbers for ticks and status lines: `40.6k`, `1.2M`, `0.003`, `3e-05`."""
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:.3g}{suffix}"
    if size and size < 1e-3:
        return f"{value:.2g}"
    return f"{value:.3g}"


def format_step(value: float) -> str:
    """Steps are whole numbers at every width."""
    return str(int(round(value)))


def format_seconds(value: float) -> str:
    """A time axis relative to now: `-90s`, `-5m`, `0s`."""
    if abs(value) >= 120:
        return f"{value / 60:.0f}m"
    return f"{value:.0f}s"


@dataclass
class Trace:
    """One line: points, the style it is drawn in, and its legend name and marker glyph."""

    label: str | None
    xs: Sequence[float]
    ys: Sequence[float]
    style: Style | str = ""
    glyph: str = ""
    faint: bool = False  # drawn beneath the others; never colours a cell another series is in


@dataclass
class Frame:
    """Everything about a chart but its lines."""

    title: str = ""
    x_label: str = "step"
    y_label: str = ""
    log_y: bool = False
    x_limits: tuple[float, float] | None = None
    y_limits: tuple[float, float] | None = None
    x_format: Callable[[float], str] = format_step
    y_format: Callable[[float], str] = format_number
    vlines: Sequence[tuple[float, Style | str]] = ()
    points: Sequence[tuple[float, float, str, Style | str]] = ()
    empty: str = "waiting for data…"
    ascii_only: bool = False
    axis_style: Style | str = "dim"
    title_style: Style | str = "bold"
    legend: bool = True


@dataclass
class _Plot:
    """A trace mapped onto the dot grid."""

    trace: Trace
    cells: dict[int, int] = field(default_factory=dict)  # cell index -> dot bits
    rows_at: dict[int, int] = field(default_factory=dict)  # column -> row of the line there


def _legend_lines(title: str, entries: list[Text], width: int, title_style) -> list[Text]:
    """The title, then legend entries, wrapped only between entries (a glyph stays with its name)."""
    first = Text(no_wrap=True, overflow="ellipsis")
    first.append(title, style=title_style)  # a span: the legend after it keeps its own styles
    first.truncate(width, overflow="ellipsis")
    lines = [first]
    for entry in entries:
        entry.truncate(width, overflow="ellipsis")
        line = lines[-1]
        sep = 2 if line.cell_len else 0
        if line.cell_len + sep + entry.cell_len <= width:
            if sep:
                line.append("  ")
            line.append_text(entry)
        else:
            lines.append(entry.copy())
    return lines


def _transform(trace: Trace, log_y: bool) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for x, y in zip(trace.xs, trace.ys):
        if log_y:
            if not (y > 0) or not math.isfinite(y):
                continue
            y = math.log10(y)
        elif not math.isfinite(y):
            continue
        if math.isfinite(x):
            xs.append(float(x))
            ys.append(float(y))
    return xs, ys


def draw(traces: Sequence[Trace], frame: Frame, width: int, height: int) -> Text:
    """The chart as `height` lines of `width` cells."""
    entries = []
    for trace in traces:
        if trace.label and trace.xs and frame.legend:
            entry = Text(no_wrap=True)
            entry.append(trace.glyph or ("-" if frame.ascii_only else "━"), style=trace.style)
            entry.append(" " + trace.label)
            entries.append(entry)
    title = frame.title + (" (log)" if frame.log_y else "")
    legend = _legend_lines(title, entries, width, frame.title_style)
    legend = legend[: max(1, height - 4)]
    data = [(t, *_transform(t, frame.log_y)) for t in traces]
    out = Text(no_wrap=True, overflow="crop")
    for line in legend:
        out.append_text(line)
        out.append("\n")
    rows = height - len(legend) - 1
    points = [(x, y) for _, xs, ys in data for x, y in zip(xs, ys)]
    if frame.x_limits is not None:
        lo, hi = frame.x_limits
        points = [(x, y) for x, y in points if lo <= x <= hi]
    if not points:
        message = frame.empty
        if frame.log_y and any(len(t.xs) for t in traces):
            message = "no positive values for a log scale"
        remaining = max(height - len(legend), 1)
        for r in range(remaining):
            out.append((message if r == (remaining - 1) // 2 else "").center(width)[:width], style=frame.axis_style)
            if r < remaining - 1:
                out.append("\n")
        return out
    x0, x1 = frame.x_limits or (min(p[0] for p in points), max(p[0] for p in points))
    y0, y1 = (min(p[1] for p in points), max(p[1] for p in points))
    if frame.y_limits is not None and not frame.log_y:
        y0, y1 = min(y0, frame.y_limits[0]), max(y1, frame.y_limits[1])
    flat_x, flat_y = x1 == x0, y1 == y0
    if flat_x:
        x0, x1 = x0 - 1, x1 + 1
    if flat_y:
        pad = abs(y0) * 0.1 or 1.0
        y0, y1 = y0 - pad, y1 + pad

    def shown(y: float) -> str:
        return frame.y_format(10 ** y if frame.log_y else y)

    if flat_y:
        ticks = {round((rows * 4 - 1) / 2) // 4: shown((y0 + y1) / 2)}  # the row the line is drawn in
    else:
        tick_rows = {0, rows - 1, (rows - 1) // 2}
        if rows >= 10:
            tick_rows |= {(rows - 1) // 4, 3 * (rows - 1) // 4}
        span = max(rows * 4 - 1, 1)
        # the value at the middle of each tick row's dots; the first and last rows show the ends
        ticks = {r: shown(y1 if r == 0 else y0 if r == rows - 1 else y1 - (4 * r + 1.5) / span * (y1 - y0))
                 for r in tick_rows}
    y_name = ("^" if frame.ascii_only else "↑") + frame.y_label if frame.y_label else ""
    gutter = max([len(t) for t in ticks.values()] + [len(y_name)]) + 1
    cols = width - gutter
    if rows < 2 or cols < MIN_COLUMNS:
        out.append("(too small for a chart)", style=frame.axis_style)
        return out
    dots_w, dots_h = cols * 2, rows * 4

    def to_px(x: float) -> int:
        return round((x - x0) / (x1 - x0) * (dots_w - 1))

    def to_py(y: float) -> int:
        return round((y1 - y) / (y1 - y0) * (dots_h - 1))

    plots: list[_Plot] = []
    for trace, xs, ys in data:
        plot = _Plot(trace)
        prev = None
        for x, y in zip(xs, ys):
            if frame.x_limits is not None and not x0 <= x <= x1:
                prev = None
                continue
            px, py = to_px(x), min(max(to_py(y), 0), dots_h - 1)
            plot.rows_at.setdefault(px // 2, py // 4)
            if prev is None:
                _dot(plot.cells, cols, px, py)
            else:
                steps = max(abs(px - prev[0]), abs(py - prev[1]), 1)
                for i in range(1, steps + 1):
                    dx = prev[0] + (px - prev[0]) * i // steps
                    dy = prev[1] + (py - prev[1]) * i // steps
                    _dot(plot.cells, cols, dx, dy)
                    plot.rows_at.setdefault(dx // 2, dy // 4)
            prev = (px, py)
        plots.append(plot)
    cells = _resolve(plots)
    _stamp_markers(cells, plots, cols)
    for x, style in frame.vlines:
        if x0 <= x <= x1:
            col = to_px(x) // 2
            for r in range(rows):
                cells.setdefault(r * cols + col, ("|" if frame.ascii_only else "│", style))
    for x, y, mark, style in frame.points:
        if x0 <= x <= x1:
            yy = math.log10(y) if frame.log_y and y > 0 else y
            cells[(min(max(to_py(yy), 0), dots_h - 1) // 4) * cols + to_px(x) // 2] = (mark, style)
    bar, tick = ("|", "+") if frame.ascii_only else ("│", "┤")
    for r in range(rows):
        label = ticks.get(r)
        out.append((label or "").rjust(gutter - 1) + (tick if label else bar), style=frame.axis_style)
        # consecutive cells of one style in one span: a frame is a few dozen spans, not thousands
        run, run_style = [], None
        for c in range(cols):
            cell = cells.get(r * cols + c)
            if cell is None:
                char, style = " ", None
            elif isinstance(cell[0], int):
                char = _ascii_cell(cell[0]) if frame.ascii_only else chr(0x2800 + cell[0])
                style = cell[1]
            else:
                char, style = cell
            if style != run_style and run:
                out.append("".join(run), style=run_style)
                run = []
            run.append(char)
            run_style = style
        if run:
            out.append("".join(run), style=run_style)
        out.append("\n")
    out.append_text(_x_axis(frame, x0, x1, flat_x, gutter, cols, y_name))
    return out


def _dot(cells: dict[int, int], cols: int, px: int, py: int) -> None:
    cell = (py // 4) * cols + px // 2
    cells[cell] = cells.get(cell, 0) | _DOT_BITS[px % 2][py % 4]


def _resolve(plots: list[_Plot]) -> dict[int, tuple]:
    """Each cell's dots (of every series) and the style of the series that owns it."""
    owner: dict[int, tuple[int, int, int]] = {}  # cell -> (rank, index, bits)
    bits: dict[int, int] = {}
    for index, plot in enumerate(plots):
        for cell, mask in plot.cells.items():
            bits[cell] = bits.get(cell, 0) | mask
            rank = (0 if plot.trace.faint else 1, bin(mask).count("1"))
            best = owner.get(cell)
            if best is None or rank > best[:2]:  # a tie keeps the earlier series
                owner[cell] = (*rank, index)
    return {cell: (bits[cell], plots[o[2]].trace.style) for cell, o in owner.items()}


def _stamp_markers(cells: dict[int, tuple], plots: list[_Plot], cols: int) -> None:
    """Each marked series' glyph at evenly spaced columns, staggered between series."""
    marked = [p for p in plots if p.trace.glyph and not p.trace.faint and p.rows_at]
    period = max(6, cols // 6)
    for i, plot in enumerate(marked):
        columns = sorted(plot.rows_at)
        if len(columns) <= 2:  # a point or two (a first eval): mark them, or they are a lone dot
            picks = columns
        elif len(marked) < 2:
            continue
        else:
            offset = (i * period) // len(marked) + period // 2
            picks = [c for c in range(offset % period, cols, period) if c in plot.rows_at]
        for c in picks:
            cells[plot.rows_at[c] * cols + c] = (plot.trace.glyph, plot.trace.style)


def _ascii_cell(bits: int) -> str:
    """One braille cell in ASCII: where its dots sit (top, middle, bottom, or all down it)."""
    rows = [r for r in range(4) if bits & (_DOT_BITS[0][r] | _DOT_BITS[1][r])]
    if rows[-1] - rows[0] >= 2:
        return "|"
    mean = sum(rows) / len(rows)
    return "'" if mean < 0.75 else "-" if mean < 2.25 else "."


def _x_axis(frame: Frame, x0: float, x1: float, flat: bool, gutter: int, cols: int, y_name: str) -> Text:
    line = Text(no_wrap=True, overflow="crop")
    line.append(y_name.rjust(gutter - 1) + " ", style=frame.axis_style)
    name = frame.x_label
    if flat:
        middle = frame.x_format((x0 + x1) / 2)
        text = f"{middle} {name}".center(cols)
    else:
        left, right = frame.x_format(x0), frame.x_format(x1)
        room = cols - len(left) - len(right)
        text = left + (name.center(room) if room >= len(name) + 2 else " " * max(room, 1)) + right
    line.append(text[:cols], style=frame.axis_style)
    return line
