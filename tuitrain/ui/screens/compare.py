"""Compare runs: loss, eval and LR curves overlaid with a legend, and a table of the
preset values that differ between the runs and their final metrics.

A thread worker updates each run's `RunHistory` and posts a message; a timer redraws
the charts (decimated to their width) only when something changed.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tuitrain import safeio
from tuitrain.config.limits import MAX_PRESET_BYTES, load_toml
from tuitrain.errors import TuitrainError
from tuitrain.runs.history import CATCH_UP_CHUNKS, RunHistory
from tuitrain.ui.widgets.charts import Decimated, Line, LineChart, chart_width
from tuitrain.ui.widgets.logtail import visible
from tuitrain.ui.widgets.smoothing import DEFAULT_WEIGHT, debiased_ema

POLL_S = 1.0
_BEST_WIDTH = 512
_MISSING = object()


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """`{"args": {"lr": 1}}` → `{"args.lr": 1}` (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def read_preset(run_dir: Path) -> tuple[dict[str, Any], str | None]:
    """A run's frozen preset flattened, and an error line when it cannot be read."""
    path = Path(run_dir) / "preset.toml"
    try:
        return flatten(load_toml(safeio.read_text(path, MAX_PRESET_BYTES, "preset.toml"), str(path))), None
    except TuitrainError as exc:
        return {}, f"unreadable preset: {str(exc).splitlines()[0]}"
    except (OSError, ValueError) as exc:
        return {}, f"{path}: unreadable preset ({exc})"


def differing(presets: list[dict[str, Any]]) -> list[str]:
    """Keys whose values are not the same in every preset (missing counts as different)."""
    keys = sorted({k for p in presets for k in p})
    return [k for k in keys if len({repr(p.get(k, _MISSING)) for p in presets}) > 1]


class _Smoothed:
    """A series smoothed after decimation, for overlaying noisy losses."""

    def __init__(self, series: Any, weight: float) -> None:
        self.series, self.weight = series, weight

    def decimate(self, width: int) -> tuple[list[float], list[float]]:
        xs, ys = self.series.decimate(width)
        pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
        return [p[0] for p in pairs], debiased_ema([p[1] for p in pairs], self.weight)


class CompareScreen(Screen):
    """The marked runs side by side."""

    DEFAULT_CSS = """
    CompareScreen #compare-body { height: 1fr; }
    CompareScreen .row { height: auto; }
    CompareScreen .panel { border: round $panel; height: 14; width: 1fr; }
    CompareScreen .panel:focus-within { border: round $accent; }
    CompareScreen #table-panel { height: auto; max-height: 24; }
    CompareScreen #compare-errors { height: auto; color: $warning; }
    CompareScreen.narrow .row { layout: vertical; }
    CompareScreen.wide .row { layout: horizontal; }
    CompareScreen.wide .panel { height: 18; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="compare.back", tooltip="Return to the previous screen"),
        Binding("tab", "cycle(1)", "Next panel", id="compare.next_panel", show=False),
    ]

    class Changed(Message):
        """The worker saw new events in at least one run."""

    def __init__(self, run_dirs: list[Path | str]) -> None:
        super().__init__()
        self.run_dirs = [Path(d) for d in run_dirs]
        self.histories = [RunHistory(d) for d in self.run_dirs]
        self.lock = threading.Lock()
        self._dirty = False
        self._stop = threading.Event()
        self._panel = 0
        loaded = [read_preset(d) for d in self.run_dirs]
        self.presets = [p for p, _ in loaded]
        self.errors = [e for _, e in loaded if e]
        self.readable = [e is None for _, e in loaded]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="compare-body"):
            yield Static("\n".join(visible(e).plain for e in self.errors), id="compare-errors", markup=False)
            with Horizontal(classes="row"):
                with Vertical(id="loss-panel", classes="panel"):
                    yield LineChart(f"train loss (smoothed {DEFAULT_WEIGHT})", id="cmp-loss")
                with Vertical(id="eval-panel", classes="panel"):
                    yield LineChart("eval loss", empty="no eval yet", id="cmp-eval")
            with Vertical(id="lr-panel", classes="panel"):
                yield LineChart("learning rate", id="cmp-lr")
            with Vertical(id="table-panel", classes="panel"):
                yield DataTable(id="cmp-table", zebra_stripes=True, cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        names = ", ".join(d.name for d in self.run_dirs)
        self.query_one("#loss-panel").border_title = visible(f"compare: {names}").plain
        self.query_one("#table-panel").border_title = "differing preset values and final metrics"
        self._layout_for(self.size.width)
        table = self.query_one("#cmp-table", DataTable)
        table.add_column("")
        for d in self.run_dirs:
            table.add_column(visible(d.name).plain)
        self._watch()
        self.set_interval(0.25, self.redraw)

    def on_unmount(self) -> None:
        self._stop.set()

    def on_resize(self, event) -> None:
        self._layout_for(event.size.width)

    def _layout_for(self, width: int) -> None:
        self.set_class(width >= 120, "wide")
        self.set_class(width < 120, "narrow")

    @work(thread=True, exclusive=True, group="compare-watch")
    def _watch(self) -> None:
        first = True
        while not self._stop.is_set():
            with self.lock:
                changed = [h.update(max_chunks=CATCH_UP_CHUNKS) for h in self.histories]
            if any(changed) or first:
                first = False
                self.post_message(self.Changed())
            self._stop.wait(0.01 if any(h.behind for h in self.histories) else POLL_S)

    def on_compare_screen_changed(self, message: Changed) -> None:
        self._dirty = True

    def redraw(self) -> None:
        """Redraw charts and table when a run changed (called by a timer)."""
        if not self._dirty or not self.lock.acquire(blocking=False):
            return
        try:
            self._dirty = False
            self._draw()
        finally:
            self.lock.release()

    def _draw(self) -> None:
        names = [visible(d.name).plain for d in self.run_dirs]
        for chart_id, name, smooth in (("#cmp-loss", "loss", True), ("#cmp-eval", "eval_loss", False),
                                       ("#cmp-lr", "learning_rate", False)):
            chart = self.query_one(chart_id, LineChart)
            w = chart_width(chart)
            lines = []
            for i, (label, h) in enumerate(zip(names, self.histories)):
                series = h.series.get(name)
                if series is None:
                    continue
                source = _Smoothed(series, DEFAULT_WEIGHT) if smooth else series
                lines.append(Line(label, Decimated(source, w), color=chart.colors.series_color(i)))
            chart.set_lines(lines)
        self._fill_table()

    def _fill_table(self) -> None:
        table = self.query_one("#cmp-table", DataTable)
        table.clear()
        colors = [self.query_one("#cmp-loss", LineChart).colors.series_color(i) for i in range(len(self.run_dirs))]
        from tuitrain.ui.widgets.charts import rich_color

        table.add_row(Text("run", style="bold"), *[Text("●", style=rich_color(c)) for c in colors])
        # an unreadable preset would make every key look different: compare the readable ones
        for key in differing([p for p, ok in zip(self.presets, self.readable) if ok]):
            table.add_row(Text(key), *[Text(visible(_show(p.get(key, _MISSING)) if ok else "?").plain)
                                       for p, ok in zip(self.presets, self.readable)])
        rows = {"state": lambda h: h.state, "step": lambda h: f"{h.last_step}/{h.max_steps or '?'}",
                "final loss": lambda h: _num(h.series.get("loss")),
                "best eval_loss": lambda h: _best(h.series.get("eval_loss"))}
        for label, get in rows.items():
            table.add_row(Text(label, style="bold"), *[Text(visible(str(get(h))).plain) for h in self.histories])

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_cycle(self, direction: int) -> None:
        panels = ("loss-panel", "eval-panel", "lr-panel", "table-panel")
        self._panel = (self._panel + direction) % len(panels)
        panel = self.query_one(f"#{panels[self._panel]}")
        if panels[self._panel] == "table-panel":
            self.query_one("#cmp-table").focus()
        panel.scroll_visible()


def _show(value: Any) -> str:
    return "—" if value is _MISSING else str(value)


def _num(series: Any) -> str:
    last = getattr(series, "last", None)
    return "–" if last is None else f"{last:.4g}"


def _best(series: Any) -> str:
    if series is None or not len(series):
        return "–"
    # every run of a min/max decimation keeps its minimum, so the lowest of any width's
    # points is the series' lowest (one cached width, not one per length as the series grows)
    _, ys = series.decimate(_BEST_WIDTH)
    finite = [y for y in ys if math.isfinite(y)]
    return f"{min(finite):.4g}" if finite else "–"
