"""The home screen: every run with its state, progress and metrics, one key per action.

A thread worker lists the runs on a timer and posts `RunsLoaded`; only the message
handler touches widgets. Run names and errors are shown as plain `Text` (no markup).
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tuitrain.errors import TuitrainError
from tuitrain.textfmt import format_duration
from tuitrain.ui.widgets.statictext import set_text

REFRESH_S = 1.0
FINISHED = ("finished", "failed", "stopped")
ACTIVE = ("queued", "running", "stopping")
# state -> (theme colour attribute, extra style)
STATE_STYLE = {
    "queued": ("foreground", "italic"),
    "running": ("success", "bold"),
    "stopping": ("warning", ""),
    "stopped": ("warning", ""),
    "finished": ("primary", ""),
    "failed": ("error", "bold"),
    "unreadable": ("error", ""),
    "stalled": ("warning", "bold"),
}


def state_style(state: str, theme) -> str:
    """A rich style for a state in the given Textual theme's colours."""
    attr, extra = STATE_STYLE.get(state, ("foreground", ""))
    color = getattr(theme, attr, None) if theme is not None else None
    return f"{extra} {color}".strip() if color else extra


COLUMNS = ("", "run", "state", "preset", "progress", "step", "loss", "best", "elapsed", "ETA", "launcher", "GPU")
# Below WIDE_COLUMNS terminal columns only these fit; the rest are in the dashboard.
NARROW_COLUMNS = ("", "run", "state", "progress", "step", "loss", "ETA")
WIDE_COLUMNS = 120
NARROW_BAR = 6


def progress_bar(step: int | None, total: int | None, width: int = 12) -> Text:
    """A text progress bar with its percentage."""
    if not total:
        return Text("-" if not step else "?", style="dim")
    frac = max(0.0, min(1.0, (step or 0) / total))
    filled = int(round(frac * width))
    bar = Text("█" * filled, style="green") + Text("░" * (width - filled), style="dim")
    return bar + Text(f" {frac * 100:3.0f}%")


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def columns_for(width: int) -> tuple[str, ...]:
    """The columns that fit a terminal `width` columns wide."""
    return COLUMNS if width >= WIDE_COLUMNS else NARROW_COLUMNS


def run_row(run, now: float, theme=None, columns: tuple[str, ...] = COLUMNS, bar_width: int = 12) -> tuple:
    """The table cells of `columns` (less the mark) for one `RunInfo`.

    Cells are plain Text: run names are never parsed as markup.
    """
    state = str(run.state)
    started = getattr(run, "started", None)
    ended = getattr(run, "ended", None)
    elapsed = ((ended or now) - started) if started else None
    gpu = getattr(run, "gpus", None) or getattr(run, "gpu", None)
    cells = {
        "run": Text(run.name),
        # `stalled (no event for 4m)`, `finished · 6 checkpoint saves failed` (runs.statetext)
        "state": Text(getattr(run, "state_text", state),
                      style=state_style("stalled" if getattr(run, "stalled_for", None) else state, theme)),
        "preset": Text(str(run.preset_name or "-")),
        "progress": progress_bar(run.step, run.max_steps, width=bar_width),
        "step": Text(f"{run.step or 0}/{run.max_steps or '?'}"),
        "loss": Text(_num(run.last_loss)),
        "best": Text(_num(run.best_metric)),
        "elapsed": Text(format_duration(elapsed)),
        "ETA": Text(format_duration(run.eta_s) if state in ACTIVE else "-"),
        "launcher": Text(str(run.launcher or "-")),
        "GPU": Text(str(gpu) if gpu not in (None, "") else "-"),
    }
    return tuple(cells[c] for c in columns if c)


class RunsScreen(Screen):
    """Every run under the runs root; the home of the app."""

    BINDINGS = [
        Binding("n", "new_run", "New", id="runs.new", tooltip="Start a new run from a preset"),
        # e, K and d stay out of the footer so that q and ? fit at 80 columns; `?` and ctrl+p list them.
        Binding("e", "edit_preset", "Edit", id="runs.edit", show=False, tooltip="Edit the preset of the highlighted run"),
        Binding("enter", "open_dashboard", "Open", id="runs.open", tooltip="Open the run's dashboard"),
        Binding("s", "stop", "Stop", id="runs.stop", tooltip="Stop the run gracefully (it checkpoints)"),
        Binding("K", "kill", "Kill", id="runs.kill", show=False, tooltip="Kill the run's processes now"),
        Binding("r", "resume", "Resume", id="runs.resume", tooltip="Resume from the latest checkpoint"),
        Binding("space", "mark", "Mark", id="runs.mark", tooltip="Mark or unmark the run for compare"),
        Binding("c", "compare", "Compare", id="runs.compare", tooltip="Compare the marked runs"),
        Binding("d", "delete", "Delete", id="runs.delete", show=False, tooltip="Delete a finished run's directory"),
        Binding("q", "quit", "Quit", id="runs.quit", tooltip="Quit the app (runs keep training)"),
    ]

    class RunsLoaded(Message):
        """A fresh list of runs from the worker (or the error that prevented it)."""

        def __init__(self, runs: list, error: str | None = None) -> None:
            super().__init__()
            self.runs = runs
            self.error = error

    class ActionDone(Message):
        """The outcome of a stop/kill/resume/delete done off the UI thread."""

        def __init__(self, text: str, severity: str = "information") -> None:
            super().__init__()
            self.text = text
            self.severity = severity

    def __init__(self, runs_root: Path | None = None) -> None:
        super().__init__()
        self.runs_root = runs_root
        self.runs: list = []
        self.marked: set[str] = set()
        self._states: dict[str, str] = {}
        self.loaded = False
        self.columns: tuple[str, ...] = ()
        self._focus_run: str | None = None  # a run just launched here: highlight it once listed

    def compose(self) -> ComposeResult:
        yield Header()
        table = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="runs-empty", markup=False)
        yield Static("", id="runs-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self._set_columns(self.app.size.width)
        self.query_one(DataTable).focus()
        self.refresh_runs()
        self.set_interval(REFRESH_S, self.refresh_runs)

    def _set_columns(self, width: int) -> bool:
        """Show the columns that fit `width`; True when they changed."""
        columns = columns_for(width)
        if columns == self.columns:
            return False
        self.columns = columns
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for label in columns:
            table.add_column(label, key=label or "mark")
        return True

    def on_resize(self, event) -> None:
        if self._set_columns(event.size.width) and self.loaded:
            self._fill_table()

    @work(thread=True, exclusive=True, group="runs-list")
    def refresh_runs(self) -> None:
        """List runs off the UI thread and post them."""
        try:
            from tuitrain.runs.registry import list_runs

            runs = list_runs(self.runs_root)
        except TuitrainError as exc:
            self.post_message(self.RunsLoaded([], error=str(exc)))
            return
        self.post_message(self.RunsLoaded(list(runs)))

    def on_runs_screen_runs_loaded(self, message: RunsLoaded) -> None:
        if message.error:
            self.query_one("#runs-status", Static).update(f"Cannot list runs: {message.error}")
            return
        self._announce_transitions(message.runs)
        self.runs = sorted(message.runs, key=lambda r: getattr(r, "started", None) or 0, reverse=True)
        self.loaded = True
        self._fill_table()

    def _announce_transitions(self, runs: list) -> None:
        for run in runs:
            key = str(run.run_dir)
            before = self._states.get(key)
            self._states[key] = run.state
            if before in ACTIVE and run.state in ("finished", "failed"):
                severity = "information" if run.state == "finished" else "error"
                detail = f": {run.error}" if run.state == "failed" and run.error else ""
                self.app.notify(f"Run {run.name} {run.state}{detail}", severity=severity, markup=False)
                self.app.bell()

    def _fill_table(self) -> None:
        table = self.query_one(DataTable)
        cursor_key = self._highlighted_key()
        if self._focus_run is not None and any(str(r.run_dir) == self._focus_run for r in self.runs):
            cursor_key, self._focus_run = self._focus_run, None
        now = time.time()
        theme = self.app.current_theme
        bar_width = 12 if self.columns == COLUMNS else NARROW_BAR
        table.clear()
        for run in self.runs:
            key = str(run.run_dir)
            mark = Text("●", style=f"bold {theme.accent or ''}".strip()) if key in self.marked else Text(" ")
            table.add_row(mark, *run_row(run, now, theme, self.columns, bar_width), key=key)
        if cursor_key is not None and cursor_key in {str(r.run_dir) for r in self.runs}:
            table.move_cursor(row=table.get_row_index(cursor_key))
        empty = self.query_one("#runs-empty", Static)
        empty.display = not self.runs
        root = self.runs_root or self._default_root()
        set_text(empty, f"No runs yet under {root}. Press n to start one from a preset.")
        running = sum(1 for r in self.runs if r.state in ACTIVE)
        set_text(self.query_one("#runs-status", Static),
                  f"{len(self.runs)} runs, {running} active, {len(self.marked)} marked · {root}")

    def _default_root(self) -> str:
        try:
            from tuitrain.runs.registry import runs_root

            return str(runs_root())
        except Exception:  # the label is informative only
            return "./runs"

    def _highlighted_key(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None

    def highlighted_run(self):
        """The `RunInfo` under the cursor, or None."""
        key = self._highlighted_key()
        return next((r for r in self.runs if str(r.run_dir) == key), None)

    def _need_run(self):
        run = self.highlighted_run()
        if run is None:
            self.notify("No run selected. Press n to start one.", severity="warning")
        return run

    # Actions -------------------------------------------------------------

    def action_new_run(self) -> None:
        from tuitrain.ui.screens.newrun import NewRunScreen

        self.app.push_screen(NewRunScreen(), self._after_new_run)

    def _after_new_run(self, result) -> None:
        if result is not None:
            self.focus_run(result.run_dir)

    def focus_run(self, run_dir) -> None:
        """Highlight `run_dir` once the list has it (a run just launched, from here or the editor)."""
        self._focus_run = str(run_dir)
        self.refresh_runs()

    def action_edit_preset(self) -> None:
        from tuitrain.ui.screens.editor import EditorScreen
        from tuitrain.ui.screens.newrun import preset_for_run

        run = self.highlighted_run()
        if run is None:
            from tuitrain.ui.screens.newrun import NewRunScreen

            self.app.push_screen(NewRunScreen(mode="edit"))
            return
        self.app.push_screen(EditorScreen(preset_for_run(run)))

    def action_open_dashboard(self) -> None:
        run = self._need_run()
        if run is None:
            return
        try:
            from tuitrain.ui.screens.dashboard import DashboardScreen
        except ImportError as exc:
            self.notify(f"The dashboard is not available: {exc}", severity="error", markup=False)
            return
        self.app.push_screen(DashboardScreen(run.run_dir))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_dashboard()

    def action_mark(self) -> None:
        run = self._need_run()
        if run is None:
            return
        key = str(run.run_dir)
        self.marked.symmetric_difference_update({key})
        self._fill_table()
        table = self.query_one(DataTable)
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_compare(self) -> None:
        dirs = [r.run_dir for r in self.runs if str(r.run_dir) in self.marked]
        if len(dirs) < 2:
            self.notify("Mark at least two runs with space, then press c.", severity="warning")
            return
        try:
            from tuitrain.ui.screens.compare import CompareScreen
        except ImportError as exc:
            self.notify(f"Compare is not available: {exc}", severity="error", markup=False)
            return
        self.app.push_screen(CompareScreen(dirs))

    def action_stop(self) -> None:
        run = self._need_run()
        if run is None:
            return
        if run.state not in ACTIVE:
            self.notify(f"{run.name} is {run.state}; nothing to stop.", severity="warning", markup=False)
            return
        self._confirm(f"Stop {run.name}?", "It saves a checkpoint and exits; resume it later with r.",
                      "Stop", lambda: self._control("stop", run))

    def action_kill(self) -> None:
        run = self._need_run()
        if run is None:
            return
        if run.state not in ACTIVE:
            self.notify(f"{run.name} is {run.state}; nothing to kill.", severity="warning", markup=False)
            return
        self._confirm(f"Kill {run.name}?", "Its processes end now, without a checkpoint.",
                      "Kill", lambda: self._control("kill", run))

    def action_resume(self) -> None:
        run = self._need_run()
        if run is None:
            return
        if run.state in ACTIVE:
            self.notify(f"{run.name} is {run.state}; stop it before resuming.", severity="warning", markup=False)
            return
        self._control("resume", run)

    def action_delete(self) -> None:
        run = self._need_run()
        if run is None:
            return
        if run.state not in FINISHED:
            self.notify(f"{run.name} is {run.state}; only a finished, failed or stopped run can be deleted.",
                        severity="warning", markup=False)
            return
        self._confirm(f"Delete {run.name}?", f"This removes {run.run_dir} and its checkpoints.",
                      "Delete", lambda: self._control("delete", run))

    def action_quit(self) -> None:
        self.app.exit()

    def _confirm(self, title: str, detail: str, yes: str, then) -> None:
        from tuitrain.ui.screens.confirm import ConfirmScreen

        def answered(ok: bool | None) -> None:
            if ok:
                then()

        self.app.push_screen(ConfirmScreen(title, detail, yes), answered)

    @work(thread=True, group="runs-control")
    def _control(self, verb: str, run) -> None:
        """stop / kill / resume / delete through `tuitrain.runs.launch`, off the UI thread."""
        try:
            from tuitrain.runs import launch

            if verb == "resume":
                info = launch.resume(run)
                new_name = getattr(info, "name", run.name)
                text = f"Resumed {run.name}" + (f" as {new_name}" if new_name != run.name else "")
            else:
                getattr(launch, verb)(run)
                text = {"stop": "Stopping", "kill": "Killed", "delete": "Deleted"}[verb] + f" {run.name}"
            self.post_message(self.ActionDone(text))
        except TuitrainError as exc:
            self.post_message(self.ActionDone(str(exc), "error"))
        self.app.call_from_thread(self.refresh_runs)

    def on_runs_screen_action_done(self, message: ActionDone) -> None:
        self.notify(message.text, severity=message.severity, markup=False)
