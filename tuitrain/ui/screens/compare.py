"""Compare runs: loss, eval and LR curves overlaid with a legend, and a table of the
preset values that differ between the runs and their final metrics.

Each run has its colour and its marker glyph (`chartdraw`: readable without colour), the
same in the charts, their legends and the table's first row. `l` puts the y axes on a log
scale; `]` / `[` move the start of the step range later / earlier and `}` / `{` its end,
by a tenth of the whole, `0` shows every step. The table keeps its first column and
scrolls sideways (tab to it, then the arrow keys).

The runs' histories are kept current and overlaid by `OverlayScreen` (shared with the
sweep screen); the charts redraw (decimated to their width) only when something changed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from tuitrain import safeio
from tuitrain.config.limits import MAX_PRESET_BYTES, load_toml
from tuitrain.errors import TuitrainError
from tuitrain.ui.overlay import OverlayScreen
from tuitrain.ui.widgets.chartdraw import format_step, glyph
from tuitrain.ui.widgets.charts import LineChart
from tuitrain.ui.widgets.footer import KeyFooter
from tuitrain.ui.widgets.logtail import visible
from tuitrain.ui.widgets.statictext import set_text
from tuitrain.ui.widgets.smoothing import DEFAULT_WEIGHT

RANGE_STEP = 0.1  # each [ ] { } moves an end of the step range by this fraction of the whole
CHARTS = (("#cmp-loss", "loss", DEFAULT_WEIGHT), ("#cmp-eval", "eval_loss", 0.0), ("#cmp-lr", "learning_rate", 0.0))
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


class CompareScreen(OverlayScreen):
    """The marked runs side by side."""

    DEFAULT_CSS = """
    CompareScreen {
        layout: vertical;
        .panel { border: round $panel; height: 1fr; border-title-color: $text-muted; }
        .panel:focus-within { border: round $accent; }
        .row { height: 2fr; }
        #lr-panel { height: 1fr; }
        #table-panel { height: 1fr; min-height: 6; }
        #compare-errors { height: auto; color: $warning; }
        #compare-range { height: 1; color: $text-muted; padding: 0 1; }
        &.-narrow.-tall .row { layout: vertical; }
        &.-short .row { height: 1fr; }
        &.-short #lr-panel { display: none; }
        &.-short #table-panel { height: 9; }
    }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="compare.back", tooltip="Back to the previous screen"),
        Binding("l", "toggle_log", "Log", id="compare.log", tooltip="Log scale on the y axes, or linear again"),
        Binding("right_square_bracket", "range(0, 1)", "Start+", id="compare.start_later",
                tooltip="Compare a narrower step range: start it later"),
        Binding("left_square_bracket", "range(0, -1)", "Start-", id="compare.start_earlier", show=False,
                tooltip="Start the step range earlier"),
        Binding("left_curly_bracket", "range(1, -1)", "End-", id="compare.end_earlier",
                tooltip="Compare a narrower step range: end it earlier"),
        Binding("right_curly_bracket", "range(1, 1)", "End+", id="compare.end_later", show=False,
                tooltip="End the step range later"),
        Binding("0", "full_range", "All steps", id="compare.full_range", show=False, tooltip="Show every step"),
        Binding("tab", "cycle(1)", "Panel", id="compare.next_panel", tooltip="Next panel (the table scrolls)"),
        Binding("q", "quit", "Quit", id="compare.quit", tooltip="Quit the app (runs keep training)"),
    ]
    FOOTER_OPTIONAL = ("cycle(1)", "range(1, -1)", "range(0, 1)")

    window = reactive((0.0, 1.0))
    """The step range shown, as fractions of the longest run's steps."""
    log_y = reactive(False)
    """Log scale on the y axes."""

    def __init__(self, run_dirs: list[Path | str]) -> None:
        super().__init__(run_dirs)
        self._panel = 0
        loaded = [read_preset(d) for d in self.run_dirs]
        self.presets = [p for p, _ in loaded]
        self.errors = [e for _, e in loaded if e]
        self.readable = [e is None for _, e in loaded]

    def compose(self) -> ComposeResult:
        yield Static("\n".join(visible(e).plain for e in self.errors), id="compare-errors", markup=False)
        with Horizontal(classes="row"):
            with Vertical(id="loss-panel", classes="panel"):
                yield LineChart(f"train loss (smoothed {DEFAULT_WEIGHT})", y_label="loss", id="cmp-loss")
            with Vertical(id="eval-panel", classes="panel"):
                yield LineChart("eval loss", y_label="loss", empty="no eval yet", id="cmp-eval")
        with Vertical(id="lr-panel", classes="panel"):
            yield LineChart("learning rate", y_label="LR", id="cmp-lr")
        yield Static("", id="compare-range", markup=False)
        with Vertical(id="table-panel", classes="panel"):
            yield DataTable(id="cmp-table", zebra_stripes=True, cursor_type="column", fixed_columns=1)
        yield KeyFooter()

    def on_mount(self) -> None:
        names = ", ".join(d.name for d in self.run_dirs)
        self.query_one("#loss-panel").border_title = visible(f"compare: {names}").plain
        self.query_one("#table-panel").border_title = "differing preset values and final metrics"
        self.query_one("#compare-errors").display = bool(self.errors)
        table = self.query_one("#cmp-table", DataTable)
        for header in self._headers():  # each run's glyph and colour, as in the charts' legends
            table.add_column(header, width=header.cell_len)
        self._show_range()
        self.watch_histories()

    def step_range(self) -> tuple[float, float] | None:
        """The steps shown, or None for all of them."""
        lo, hi = self.window
        if (lo, hi) == (0.0, 1.0):
            return None
        last = self.last_step()
        return lo * last, hi * last

    def draw(self) -> None:
        names = [visible(d.name).plain for d in self.run_dirs]
        x_range = self.step_range()
        for chart_id, name, smooth in CHARTS:
            chart = self.query_one(chart_id, LineChart)
            chart.log_y = self.log_y
            chart.x_limits = x_range
            self.overlay(chart, name, names, smooth=smooth, x_range=x_range)
        self._fill_table()
        self._show_range()

    def _show_range(self) -> None:
        x_range = self.step_range()
        shown = "every step" if x_range is None else f"steps {format_step(x_range[0])}-{format_step(x_range[1])}"
        scale = "log" if self.log_y else "linear"
        set_text(self.query_one("#compare-range", Static),
                 f"{shown} of {self.last_step()} · {scale} y · l log, ] [ start, {{ }} end, 0 all steps")

    def _headers(self) -> list[Text]:
        """The table's column labels: each run's glyph and name in its colour."""
        chart = self.query_one("#cmp-loss", LineChart)
        return [Text("")] + [Text(f"{glyph(i, chart.ascii_only)} {visible(d.name).plain}", style=chart.series_style(i))
                             for i, d in enumerate(self.run_dirs)]

    def _fill_table(self) -> None:
        table = self.query_one("#cmp-table", DataTable)
        keep = table.cursor_column
        rows: list[list[Text]] = []
        # an unreadable preset would make every key look different: compare the readable ones
        for key in differing([p for p, ok in zip(self.presets, self.readable) if ok]):
            rows.append([Text(key), *[Text(visible(_show(p.get(key, _MISSING)) if ok else "?").plain)
                                      for p, ok in zip(self.presets, self.readable)]])
        getters = {"state": lambda h: h.state, "step": lambda h: f"{h.last_step}/{h.max_steps or '?'}",
                   "final loss": lambda h: _num(h.series.get("loss")),
                   "best eval_loss": lambda h: _best(h.series.get("eval_loss"))}
        for label, get in getters.items():
            rows.append([Text(label, style="bold"), *[Text(visible(str(get(h))).plain) for h in self.histories]])
        # widths given, not measured: a measured width applies only once the table is idle
        headers = self._headers()
        widths = [max([headers[i].cell_len] + [row[i].cell_len for row in rows]) for i in range(len(headers))]
        if widths != [c.width for c in table.columns.values()]:
            table.clear(columns=True)
            for header, width in zip(headers, widths):
                table.add_column(header, width=width)
        table.clear()
        for row in rows:
            table.add_row(*row)
        table.move_cursor(column=keep)

    def validate_window(self, window: tuple[float, float]) -> tuple[float, float]:
        lo, hi = (round(min(max(v, 0.0), 1.0), 6) for v in window)
        return (lo, hi) if hi - lo >= RANGE_STEP - 1e-9 else self.window

    def watch_window(self) -> None:
        self.mark_dirty()

    def watch_log_y(self) -> None:
        self.mark_dirty()

    def action_toggle_log(self) -> None:
        self.log_y = not self.log_y

    def action_range(self, end: int, direction: int) -> None:
        """Move the start (`end` 0) or the end (1) of the step range by a tenth of the whole."""
        lo, hi = self.window
        if end == 0:
            self.window = (lo + direction * RANGE_STEP, hi)
        else:
            self.window = (lo, hi + direction * RANGE_STEP)

    def action_full_range(self) -> None:
        self.window = (0.0, 1.0)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_quit(self) -> None:
        self.app.exit()

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
