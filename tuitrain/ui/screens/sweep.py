"""One sweep: its results table above its members' eval-loss, train-loss and LR curves.

Every member keeps one colour and marker glyph (its place in `sweep.json`) in the table's
first column, the three charts and their legends, whatever order the table is sorted in.
The table's first column is the member's glyph (its
name too, when nothing is varied); its varied values follow. The table sorts by any column (`o` the next one, `O` the other way round, or a click on a
header) and the best member's row (`results.best_index`: lowest best eval loss, else lowest
train loss) is drawn bold with a star. `enter` opens the highlighted member's dashboard;
`s` stops the sweep's queue and its running members, `r` resumes it.

The worker that follows the members' event logs (`OverlayScreen`) also reads the results
and the queue's state (every few seconds at most: the results read every member's log
whole), and posts them when they changed; only the handler touches the table.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from tuitrain.errors import TuitrainError
from tuitrain.ui.glyphs import glyph as ui_glyph
from tuitrain.ui.navigation import OpenDashboard
from tuitrain.ui.overlay import OverlayScreen
from tuitrain.ui.widgets.cursor import cursor_row_key
from tuitrain.ui.widgets import sweeptable
from tuitrain.ui.widgets.chartdraw import glyph
from tuitrain.ui.widgets.charts import LineChart
from tuitrain.ui.widgets.footer import KeyFooter
from tuitrain.ui.widgets.logtail import visible
from tuitrain.ui.widgets.smoothing import DEFAULT_WEIGHT
from tuitrain.ui.widgets.states import state_style
from tuitrain.ui.widgets.statictext import set_text

RESULTS_EVERY_S = 3.0  # the results are read again at most this often while members log…
READ_COST_FACTOR = 10  # …or ten times as long as the last read took (every member's log, whole)
IDLE_FACTOR = 4  # with no new event, every four intervals (states change without events)
CHARTS = (("#sweep-eval", "eval_loss", 0.0), ("#sweep-loss", "loss", DEFAULT_WEIGHT),
          ("#sweep-lr", "learning_rate", 0.0))


def member_dirs(info) -> list[Path]:
    """Each member's run directory, absolute (sweep.json keeps them relative to the sweep)."""
    return [Path(m.dir) if Path(m.dir).is_absolute() else Path(info.dir) / m.dir for m in info.members]


class SweepScreen(OverlayScreen):
    """A sweep's results and its members' curves overlaid."""

    DEFAULT_CSS = """
    SweepScreen {
        layout: vertical;
        .panel { border: round $panel; height: 1fr; border-title-color: $text-muted; }
        .panel:focus-within { border: round $accent; }
        #sweep-head { height: auto; padding: 0 1; }
        #sweep-refused { height: auto; max-height: 4; padding: 0 1; color: $warning; }
        #sweep-table-panel { height: auto; max-height: 45%; min-height: 5; }
        #sweep-table { height: auto; max-height: 100%; }
        .row { height: 1fr; }
        &.-narrow #sweep-lr-panel { display: none; }
        &.-narrow.-tall #sweep-lr-panel { display: block; }
    }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="sweep.back", tooltip="Back to the previous screen"),
        Binding("enter", "open_member", "Open", id="sweep.open", tooltip="Open the highlighted member's dashboard"),
        Binding("o", "sort(1)", "Sort", id="sweep.sort", tooltip="Sort the results by the next column"),
        Binding("O", "reverse", "Reverse", id="sweep.reverse", show=False,
                tooltip="Sort the results the other way round"),
        Binding("s", "stop", "Stop", id="sweep.stop", tooltip="Stop the sweep: its queue and its running members"),
        Binding("r", "resume", "Resume", id="sweep.resume", tooltip="Resume the sweep's queue (stopped members too)"),
        Binding("l", "toggle_log", "Log", id="sweep.log", show=False, tooltip="Log scale on the y axes, or linear again"),
        Binding("q", "quit", "Quit", id="sweep.quit", tooltip="Quit the app (runs keep training)"),
    ]
    FOOTER_OPTIONAL = ("toggle_log", "reverse", "resume")

    class ResultsRead(Message):
        """The worker read the sweep again: its `SweepInfo`, progress line and result rows."""

        def __init__(self, info, progress: str, rows: list[dict[str, Any]], error: str | None = None) -> None:
            super().__init__()
            self.info, self.progress, self.rows, self.error = info, progress, rows, error

    class ActionDone(Message):
        """The outcome of a stop or resume done off the UI thread."""

        def __init__(self, text: str, severity: str = "information") -> None:
            super().__init__()
            self.text, self.severity = text, severity

    def __init__(self, sweep_dir: Path | str) -> None:
        from tuitrain.sweeps.store import read_sweep

        self.sweep_dir = Path(sweep_dir)
        self.problem: str | None = None
        try:
            self.info = read_sweep(self.sweep_dir)
        except (TuitrainError, OSError) as exc:
            self.info, self.problem = None, str(exc)
        super().__init__(member_dirs(self.info) if self.info else [])
        self.name_of = {str(d): m.name
                        for d, m in zip(self.run_dirs, self.info.members)} if self.info else {}
        self.index_of = {str(d): i for i, d in enumerate(self.run_dirs)}
        # what the legends and the head call a member: its varied values (`cosine, 0.1`), as its table row shows them
        self.labels = {str(d): sweeptable.values_label(m.values) or m.name
                       for d, m in zip(self.run_dirs, self.info.members)} if self.info else {}
        self.rows: list[dict[str, Any]] = []
        self.shown: list[dict[str, Any]] = []  # the rows in the table's order
        self.progress = ""
        self.sort_column: str | None = None
        self.descending = False
        self.log_y = False
        self._read = ""  # what the worker last posted (it posts again only on a change)
        self._read_at = 0.0
        self._owed = False
        self._read_cost = 0.0

    def compose(self) -> ComposeResult:
        yield Static("", id="sweep-head", markup=False)
        yield Static("", id="sweep-refused", markup=False)
        with Vertical(id="sweep-table-panel", classes="panel"):
            yield DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True, fixed_columns=1)
        with Horizontal(classes="row"):
            with Vertical(id="sweep-eval-panel", classes="panel"):
                yield LineChart("eval loss", y_label="loss", empty="no eval yet", id="sweep-eval")
            with Vertical(id="sweep-loss-panel", classes="panel"):
                yield LineChart(f"train loss (smoothed {DEFAULT_WEIGHT})", y_label="loss", id="sweep-loss")
            with Vertical(id="sweep-lr-panel", classes="panel"):
                yield LineChart("learning rate", y_label="LR", id="sweep-lr")
        yield KeyFooter()

    def on_mount(self) -> None:
        if self.info is None:
            self.notify(visible(f"Cannot open the sweep {self.sweep_dir}: {self.problem}").plain,
                        severity="error", markup=False)
            self.app.pop_screen()
            return
        self.query_one("#sweep-table-panel").border_title = visible(f"sweep {self.info.name}: results").plain
        self.query_one("#sweep-table", DataTable).focus()
        self.watch_histories()

    # Reading (worker thread) ---------------------------------------------

    def poll(self, changed: bool) -> None:
        from tuitrain.sweeps import results, store

        now = time.monotonic()
        self._owed = self._owed or changed
        # at most every RESULTS_EVERY_S (longer when reading takes long: big logs), after new
        # events; now and then without any (the queue's and the members' states move on their own)
        interval = max(RESULTS_EVERY_S, READ_COST_FACTOR * self._read_cost)
        since = now - self._read_at
        if self._read and not (self._owed and since >= interval) and since < IDLE_FACTOR * interval:
            return
        self._read_at, self._owed = now, False
        try:
            info = store.read_sweep(self.sweep_dir)
            progress, rows = store.progress_text(info), results.rows(info)
            error = None
        except (TuitrainError, OSError) as exc:
            info, progress, rows, error = self.info, self.progress, self.rows, str(exc)
        self._read_cost = time.monotonic() - now
        seen = repr((info.queue_state if info else None, progress, rows, error))
        if seen != self._read:
            self._read = seen
            self.post_message(self.ResultsRead(info, progress, rows, error))

    def on_sweep_screen_results_read(self, message: ResultsRead) -> None:
        if message.error:
            self.notify(visible(message.error).plain, severity="error", markup=False)
        self.info = message.info or self.info
        self.progress, self.rows = message.progress, message.rows
        self._fill_table()
        self._show_head()

    # Drawing --------------------------------------------------------------

    def _key(self, row: dict[str, Any]) -> str:
        """The run directory of a result row (the table's row key)."""
        for run_dir, entry in zip(self.run_dirs, self.info.members):
            if row.get("member") == entry.name:
                return str(run_dir)
        return str(row.get("member"))

    def _columns(self) -> list[str]:
        from tuitrain.sweeps.results import columns_of

        return sweeptable.shown_columns(columns_of(self.rows))

    def _fill_table(self) -> None:
        from tuitrain.sweeps.results import best_index, cell, sort_rows

        table = self.query_one("#sweep-table", DataTable)
        keep = self._highlighted()
        columns = self._columns()
        names = sweeptable.value_headers(columns)
        self.shown = sort_rows(self.rows, self.sort_column, self.descending) if self.sort_column else list(self.rows)
        best = best_index(self.shown) if self.shown else None
        chart = self.query_one("#sweep-loss", LineChart)
        theme = self.app.current_theme
        body = []
        for n, row in enumerate(self.shown):
            key = self._key(row)
            i = self.index_of.get(key, 0)
            star = ui_glyph(self.app, "best") if n == best else " "
            # the varied values have their columns: the member's name would say them again
            label = "" if names else " " + visible(self.name_of.get(key, str(row.get("member")))).plain
            cells = [Text(f"{star}{glyph(i, chart.ascii_only)}{label}", style=chart.series_style(i))]
            for column in columns[1:]:
                text = visible(sweeptable.text(row, column, cell(row, column))).plain
                style = state_style(str(row.get("state")), theme) if column == "state" else ""
                cells.append(Text(text, style=style))
            if n == best:
                for c in cells:
                    c.stylize("bold underline")
            body.append((key, cells))
        arrow = ("▼" if self.descending else "▲") if not chart.ascii_only else ("v" if self.descending else "^")
        headers = [Text(sweeptable.header(c, names) + (f" {arrow}" if c == self.sort_column else ""),
                        style="bold" if c == self.sort_column else "") for c in columns]
        widths = [max([h.cell_len] + [cells[i].cell_len for _, cells in body]) for i, h in enumerate(headers)]
        table.clear(columns=True)
        for column, text, width in zip(columns, headers, widths):
            table.add_column(text, key=column, width=width)
        for key, cells in body:
            table.add_row(*cells, key=key)
        if keep is not None and any(k == keep for k, _ in body):
            table.move_cursor(row=table.get_row_index(keep))

    def _show_head(self) -> None:
        info = self.info
        parts = [f"sweep {info.name}", self.progress or "no members",
                 f"queue {info.queue_state or 'unknown'} (parallel {info.parallel})"]
        if self.shown:
            from tuitrain.sweeps.results import best_index

            best = best_index(self.shown)
            if best is not None:
                row = self.shown[best]
                key = self._key(row)
                mark = glyph(self.index_of.get(key, 0), self.query_one("#sweep-loss", LineChart).ascii_only)
                metric = "best_eval_loss" if row.get("best_eval_loss") is not None else "train_loss"
                parts.append(f"best {mark} {self.labels.get(key, row.get('member'))} "
                             f"({sweeptable.header(metric, {})} {sweeptable.text(row, metric, row.get(metric))})")
        set_text(self.query_one("#sweep-head", Static), visible(" · ".join(parts)).plain)
        # members this device cannot train, refused before the sweep started: one line each
        refused = [f"refused {r.get('name')}: {str(r.get('reason') or '').splitlines()[0] if r.get('reason') else '?'}"
                   for r in info.refused]
        box = self.query_one("#sweep-refused", Static)
        box.display = bool(refused)
        set_text(box, visible("\n".join(refused)).plain)

    def draw(self) -> None:
        labels = [self.labels.get(str(d), d.name) for d in self.run_dirs]
        for chart_id, name, smooth in CHARTS:
            chart = self.query_one(chart_id, LineChart)
            chart.log_y = self.log_y
            self.overlay(chart, name, [visible(label).plain for label in labels], smooth=smooth)

    # Actions ----------------------------------------------------------------

    def _highlighted(self) -> str | None:
        return cursor_row_key(self.query_one("#sweep-table", DataTable))

    def action_open_member(self) -> None:
        key = self._highlighted()
        if key is None:
            self.notify("The sweep has no members yet.", severity="warning")
            return
        if not (Path(key) / "run.json").is_file():
            self.notify(f"{self.name_of.get(key, key)} has not started yet (queued).", severity="warning", markup=False)
            return
        self.app.post_message(OpenDashboard(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_member()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        column = event.column_key.value
        if column == self.sort_column:
            self.descending = not self.descending
        else:
            self.sort_column, self.descending = column, False
        self._fill_table()

    def action_sort(self, direction: int) -> None:
        """Sort by the next column (after the last, the sweep's own order again)."""
        order = [None] + self._columns()
        index = order.index(self.sort_column) if self.sort_column in order else 0
        self.sort_column, self.descending = order[(index + direction) % len(order)], False
        self._fill_table()
        shown = "the sweep's order" if self.sort_column is None else self.query_one(DataTable).columns[
            self.sort_column].label.plain.rstrip(" ▲▼^v")
        self.notify(f"Sorted by {shown}", markup=False, timeout=2)

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self._fill_table()

    def action_toggle_log(self) -> None:
        self.log_y = not self.log_y
        self.mark_dirty()

    def action_stop(self) -> None:
        from tuitrain.ui.dialogs.confirm import ConfirmScreen

        def answered(ok: bool | None) -> None:
            if ok:
                self._control("stop")

        self.app.push_screen(ConfirmScreen(f"Stop the sweep {self.info.name}?",
                                           "No more members start; running ones save a checkpoint and exit. "
                                           "r resumes the sweep.", "Stop"), answered)

    def action_resume(self) -> None:
        self._control("resume")

    @work(thread=True, group="sweep-control")
    def _control(self, verb: str) -> None:
        """stop_sweep / resume_sweep, off the UI thread."""
        from tuitrain.sweeps import queue

        try:
            getattr(queue, f"{verb}_sweep")(self.sweep_dir)
            text = {"stop": "Stopping", "resume": "Resumed"}[verb] + f" the sweep {self.info.name}"
            self.post_message(self.ActionDone(text))
        except TuitrainError as exc:
            self.post_message(self.ActionDone(str(exc), "error"))

    def on_sweep_screen_action_done(self, message: ActionDone) -> None:
        self.notify(message.text, severity=message.severity, markup=False)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_quit(self) -> None:
        self.app.exit()
