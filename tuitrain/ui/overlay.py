"""What the compare and sweep screens share: several runs' histories kept current by one
thread worker, and their series overlaid on charts, each run in its own colour and glyph.

The worker updates each run's `RunHistory` under `lock` and posts `Changed`; the screen
redraws at most four times a second, decimating every series to the chart's width, only
when something changed (`mark_dirty()` asks for a redraw after a change of view).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

from textual import work
from textual.message import Message

from tuitrain.runs.history import CATCH_UP_CHUNKS, RunHistory
from tuitrain.ui.screens.base import TuitrainScreen
from tuitrain.ui.widgets.chartdraw import glyph
from tuitrain.ui.widgets.charts import Decimated, Line, LineChart, chart_width
from tuitrain.ui.widgets.smoothing import debiased_ema

POLL_S = 1.0
REDRAW_DELAY_S = 0.25


class Smoothed:
    """A series smoothed after decimation, for overlaying noisy losses."""

    def __init__(self, series: Any, weight: float) -> None:
        self.series, self.weight = series, weight

    def decimate(self, width: int) -> tuple[list[float], list[float]]:
        xs, ys = self.series.decimate(width)
        pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
        return [p[0] for p in pairs], debiased_ema([p[1] for p in pairs], self.weight)


def series_style(index: int) -> str:
    """The chart component of the index-th run (`series-1` … `series-6`, cycling)."""
    return f"series-{index % 6 + 1}"


class OverlayScreen(TuitrainScreen):
    """A screen drawing the runs in `run_dirs` over each other; subclasses implement `draw()`."""

    class Changed(Message):
        """The worker saw new events in at least one run."""

    def __init__(self, run_dirs: list[Path | str]) -> None:
        super().__init__()
        self.run_dirs = [Path(d) for d in run_dirs]
        # lined up by step: the runs' own lines, no parent segments
        self.histories = [RunHistory(d, follow_parent=False) for d in self.run_dirs]
        self.lock = threading.Lock()
        self._dirty = False
        self._redraw_pending = False
        self._stop = threading.Event()

    def watch_histories(self) -> None:
        """Start the worker (call from `on_mount`)."""
        self._watch()

    def on_unmount(self) -> None:
        self._stop.set()

    def poll(self, changed: bool) -> None:
        """Called by the worker on every pass, off the UI thread, `changed` when a history did
        (subclasses read more here)."""

    @work(thread=True, exclusive=True, group="overlay-watch")
    def _watch(self) -> None:
        first = True
        while not self._stop.is_set():
            with self.lock:
                changed = [h.update(max_chunks=CATCH_UP_CHUNKS) for h in self.histories]
            self.poll(any(changed) or first)
            if any(changed) or first:
                first = False
                self.post_message(self.Changed())
            self._stop.wait(0.01 if any(h.behind for h in self.histories) else POLL_S)

    def on_overlay_screen_changed(self, message: Changed) -> None:
        self.mark_dirty()

    def mark_dirty(self) -> None:
        """Redraw soon (new events, or a change of what is shown)."""
        self._dirty = True
        if not self._redraw_pending:
            self._redraw_pending = True
            self.set_timer(REDRAW_DELAY_S, self.redraw)

    def redraw(self) -> None:
        """Redraw when a run changed (or the view did)."""
        self._redraw_pending = False
        if not self._dirty:
            return
        if not self.lock.acquire(blocking=False):
            self._dirty = False
            self.mark_dirty()
            return
        try:
            self._dirty = False
            self.draw()
        finally:
            self.lock.release()

    def draw(self) -> None:
        """Redraw charts and tables (on the UI thread, holding `lock`)."""
        raise NotImplementedError

    def last_step(self) -> int:
        """The last step of the longest run."""
        return max([h.last_step for h in self.histories] + [1])

    def overlay(self, chart: LineChart, series_name: str, labels: list[str], *, smooth: float = 0.0,
                x_range: tuple[float, float] | None = None) -> None:
        """Show `series_name` of every run that has it on `chart`, each run in its own colour
        and glyph (by its position in `run_dirs`, whichever runs have the series)."""
        width = chart_width(chart)
        lines = []
        for i, (label, history) in enumerate(zip(labels, self.histories)):
            series = history.series.get(series_name)
            if series is None:
                continue
            source = Smoothed(series, smooth) if smooth else series
            lines.append(Line(label, Decimated(source, width, x_range), style=series_style(i),
                              glyph=glyph(i, chart.ascii_only)))
        chart.set_lines(lines)
