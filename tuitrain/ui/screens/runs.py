"""The home screen: every run with its state, progress and metrics, one key per action.

A thread worker lists the runs on a timer (paused while another screen covers this one)
and posts `RunsLoaded`; only the message handler touches widgets. Run names and errors are
shown as plain `Text` (no markup). With a runs root chosen (`--runs`, `$TUITRAIN_RUNS`) the
list keeps to it, `a` adds the runs launched elsewhere, and `/` filters by name, preset,
state or launcher. A sweep's members are grouped under one row of their sweep
(`runsweeps`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Header, Input, Static

from tuitrain.errors import TuitrainError
from tuitrain.textfmt import format_duration
from tuitrain.ui.glyphs import glyph
from tuitrain.ui.navigation import EditPreset, NewRun, OpenCompare, OpenDashboard
from tuitrain.ui.screens.base import TuitrainScreen
from tuitrain.ui.runsweeps import SweepRow, SweepRowsMixin, read_sweeps, sweeps_active
from tuitrain.ui.widgets.cursor import cursor_row_key
from tuitrain.ui.widgets.footer import KeyFooter
from tuitrain.ui.widgets.states import ACTIVE, FINISHED, STATE_STYLE, state_style  # noqa: F401 - API
from tuitrain.ui.widgets.statictext import set_text
from tuitrain.ui.widgets.sweeptable import values_label

REFRESH_S = 1.0  # the list is read this often while a run is active…
IDLE_EVERY = 3  # …and every IDLE_EVERY × REFRESH_S seconds while none is

COLUMNS = ("", "run", "state", "preset", "progress", "step", "loss", "best", "elapsed", "ETA", "launcher", "GPU")
# Under 120 columns (the `-narrow` breakpoint) only these fit; the rest are in the dashboard.
NARROW_COLUMNS = ("", "run", "state", "progress", "step", "loss", "ETA")
NARROW_BAR = 6
RUN_WIDTH, RUN_WIDTH_NARROW = 40, 22  # the longest run name shown whole (longer ones are cut)


def progress_bar(step: int | None, total: int | None, width: int = 12, ascii_only: bool = False) -> Text:
    """A text progress bar with its percentage."""
    if not total:
        return Text("-" if not step else "?", style="dim")
    frac = max(0.0, min(1.0, (step or 0) / total))
    filled = int(round(frac * width))
    full, empty = ("#", "-") if ascii_only else ("█", "░")
    bar = Text(full * filled, style="green") + Text(empty * (width - filled), style="dim")
    return bar + Text(f" {frac * 100:3.0f}%")


def plural(count: int, noun: str) -> str:
    """`1 run`, `2 runs`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def matches(run, terms: list[str]) -> bool:
    """Whether every term (lower case) is in the run's name, preset, state or launcher."""
    text = " ".join(str(v or "") for v in (run.name, run.preset_name, run.state, run.launcher)).lower()
    return all(term in text for term in terms)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def run_row(run, now: float, theme=None, columns: tuple[str, ...] = COLUMNS, bar_width: int = 12,
            ascii_only: bool = False, gpu: str | None = None) -> tuple:
    """The table cells of `columns` (less the mark) for one `RunInfo`; `gpu` is its GPU cell
    (`tuitrain.telemetry.placement.GpuColumn`).

    Cells are plain Text: run names are never parsed as markup. Elapsed is the time spent
    training over every segment of the run (`RunInfo.elapsed_s`), as the dashboard shows it.
    """
    state = str(run.state)
    elapsed = getattr(run, "elapsed_s", None)
    cells = {
        "run": Text(run.name),
        # `stalled (no event for 4m)`, `finished · 6 checkpoint saves failed` (runs.statetext)
        "state": Text(getattr(run, "state_text", state),
                      style=state_style("stalled" if getattr(run, "stalled_for", None) else state, theme)),
        "preset": Text(str(run.preset_name or "-")),
        "progress": progress_bar(run.step, run.max_steps, width=bar_width, ascii_only=ascii_only),
        "step": Text(f"{run.step or 0}/{run.max_steps or '?'}"),
        "loss": Text(_num(run.last_loss)),
        "best": Text(_num(run.best_metric)),
        "elapsed": Text(format_duration(elapsed)),
        "ETA": Text(format_duration(run.eta_s) if state in ACTIVE else "-"),
        "launcher": Text(str(run.launcher or "-")),
        "GPU": Text(gpu or "-"),
    }
    return tuple(cells[c] for c in columns if c)


class RunsScreen(SweepRowsMixin, TuitrainScreen):
    """Every run under the runs root; the home of the app."""

    BINDINGS = [
        Binding("n", "new_run", "New", id="runs.new", tooltip="New run from a preset"),
        Binding("e", "edit_preset", "Edit", id="runs.edit",
                tooltip="Edit: the run's preset, read-only (save it as a new preset)"),
        Binding("enter", "open_dashboard", "Open", id="runs.open", tooltip="Open the run's dashboard"),
        Binding("s", "stop", "Stop", id="runs.stop", tooltip="Stop the run gracefully (it checkpoints)"),
        Binding("K", "kill", "Kill", id="runs.kill", tooltip="Kill the run's processes now (no checkpoint)"),
        Binding("r", "resume", "Resume", id="runs.resume", tooltip="Resume the run from its latest checkpoint"),
        Binding("space", "mark", "Mark", id="runs.mark", tooltip="Mark the run for compare (the cursor stays)"),
        Binding("c", "compare", "Compare", id="runs.compare", tooltip="Compare the marked runs"),
        Binding("d", "delete", "Delete", id="runs.delete", tooltip="Delete a finished run's directory"),
        Binding("slash", "filter", "Filter", id="runs.filter", tooltip="Filter the runs by name, preset or state"),
        Binding("f", "fold", "Fold", id="runs.fold", show=False,
                tooltip="Fold or unfold a sweep's members under its row"),
        Binding("a", "toggle_all", "All", id="runs.all", show=False,
                tooltip="All runs: also those outside the runs root"),
        Binding("q", "quit", "Quit", id="runs.quit", tooltip="Quit the app (runs keep training)"),
    ]
    # Left out of a narrow footer, last first (`?` and ctrl+p list them all).
    FOOTER_OPTIONAL = ("filter", "kill", "delete", "edit_preset")

    class RunsLoaded(Message):
        """A fresh list of runs from the worker (or the error that prevented it)."""

        def __init__(self, runs: list, error: str | None = None, gpus: dict[str, str] | None = None,
                     sweeps: list[SweepRow] | None = None) -> None:
            super().__init__()
            self.runs = runs
            self.error = error
            self.gpus = gpus or {}  # run dir -> GPU cell
            self.sweeps = sweeps or []

    class ActionDone(Message):
        """The outcome of a stop/kill/resume/delete done off the UI thread."""

        def __init__(self, text: str, severity: str = "information") -> None:
            super().__init__()
            self.text = text
            self.severity = severity

    def __init__(self, runs_root: Path | None = None, show_all: bool = False) -> None:
        super().__init__()
        self.runs_root = runs_root
        self.show_all = show_all
        self.found: list = []  # every run listed
        self.runs: list = []  # the runs shown (in the root, matching the filter)
        self._scoped_runs: list = []  # the runs in the root, whatever the filter
        self.gpu_cells: dict[str, str] = {}
        self._gpu_column = None
        self.marked: set[str] = set()
        self.sweeps: list[SweepRow] = []
        self.unfolded: set[str] = set()  # the sweeps (row keys) whose members are shown
        self.terms: list[str] = []
        self.hidden = 0  # runs outside the chosen root, not shown
        self._states: dict[str, str] = {}
        self.loaded = False
        self.columns: tuple[str, ...] = ()
        self._widths: tuple[int, ...] = ()
        self._focus_run: str | None = None  # a run just launched: highlight it once listed
        self._timer = None
        self._ticks = 0
        self._shown_rows: tuple = ()  # what the table holds: it is refilled only when this changes

    def compose(self) -> ComposeResult:
        yield Header()
        table = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        self._set_columns(table)  # before the first layout: adding them later lays it out again
        yield table
        yield Static("", id="runs-empty", markup=False)
        yield Static("", id="runs-status", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        # Listing imports the runs package and reads every run: after the first frame.
        self.call_after_refresh(self.refresh_runs)
        self._timer = self.set_interval(REFRESH_S, self._tick)

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()  # another screen covers this one: list nothing meanwhile

    def on_screen_resume(self) -> None:
        if self._timer is not None and self.loaded:
            self._timer.resume()
            self.refresh_runs()

    def breakpoints_changed(self) -> None:
        if self._set_columns(self.query_one(DataTable)) and self.loaded:
            self._fill_table()

    def _set_columns(self, table: DataTable, widths: tuple[int, ...] | None = None) -> bool:
        """The columns that fit the width (the breakpoint classes), `widths` wide; True when
        they changed. Widths are given, never measured: a measured width applies only when
        the table next goes idle, so a frame in between would show the cells cut short."""
        columns = NARROW_COLUMNS if self.narrow else COLUMNS
        widths = widths or tuple(len(label) for label in columns)
        if (columns, widths) == (self.columns, self._widths):
            return False
        self.columns, self._widths = columns, widths
        table.clear(columns=True)
        self._shown_rows = ()
        for label, width in zip(columns, widths):
            table.add_column(label, key=label or "mark", width=width)
        return True

    def _tick(self) -> None:
        self._ticks += 1
        if self._ticks % IDLE_EVERY == 0 or any(r.state in ACTIVE for r in self.found) or sweeps_active(self.sweeps):
            self.refresh_runs()

    @property
    def scoped(self) -> bool:
        """Whether the list keeps to a runs root the user chose."""
        return self._root_chosen() and not self.show_all

    @work(thread=True, exclusive=True, group="runs-list")
    def refresh_runs(self) -> None:
        """List runs off the UI thread and post them."""
        try:
            from tuitrain.runs.registry import list_runs
            from tuitrain.telemetry.placement import GpuColumn

            runs = list_runs(self.runs_root, everywhere=True)
        except TuitrainError as exc:
            self.post_message(self.RunsLoaded([], error=str(exc)))
            return
        self._gpu_column = self._gpu_column or GpuColumn()
        gpus = self._gpu_column.cells((str(r.run_dir), getattr(r, "device", None),
                                       r.pid if r.state in ACTIVE else None) for r in runs)
        try:
            sweeps = read_sweeps(self.runs_root, runs)
        except TuitrainError:
            sweeps = []  # the runs are listed all the same, each on its own row
        self.post_message(self.RunsLoaded(list(runs), gpus=gpus, sweeps=sweeps))

    def on_runs_screen_runs_loaded(self, message: RunsLoaded) -> None:
        if message.error:
            self.query_one("#runs-status", Static).update(f"Cannot list runs: {message.error}")
            return
        self._announce_transitions(message.runs)
        self.announce_sweeps(message.sweeps)
        self.found = sorted(message.runs, key=lambda r: getattr(r, "started", None) or 0, reverse=True)
        self.gpu_cells = message.gpus
        self.sweeps = message.sweeps
        self.loaded = True
        self._fill_table()

    def _announce_transitions(self, runs: list) -> None:
        for run in runs:
            key = str(run.run_dir)
            before = self._states.get(key)
            self._states[key] = run.state
            if before not in ACTIVE or run.state not in ("finished", "failed", "diverged"):
                continue
            member = bool(getattr(run, "sweep", None))
            if member and run.state == "finished":
                continue  # its sweep says when all are done (`announce_sweeps`)
            severity = "information" if run.state == "finished" else "error"
            detail = f": {run.error}" if run.state in ("failed", "diverged") and run.error else ""
            self.app.notify(f"Run {run.name} {run.state}{detail}", severity=severity, markup=False)
            if not member:
                self.app.bell()

    def _shown_runs(self) -> list:
        from tuitrain.runs.registry import within_root

        runs = self.found
        if self.scoped:
            runs = [r for r in runs if within_root(r.run_dir, self.runs_root)]
        self.hidden = len(self.found) - len(runs)
        self._scoped_runs = runs
        return [r for r in runs if matches(r, self.terms)]

    def _row(self, entry, depth: int, now: float, theme, bar_width: int, ascii_only: bool, mark: str):
        """(key, marked, mark cell, cells) of one table row: a run, a sweep, or a sweep's member."""
        if isinstance(entry, SweepRow):
            members = self.sweep_members(entry)
            cells = self.sweep_cells(entry, members, self.columns, bar_width, ascii_only, progress_bar,
                                     format_duration)
            return entry.key, False, self.fold_mark(entry), cells
        key = str(entry.run_dir)
        cells = run_row(entry, now, theme, self.columns, bar_width, ascii_only, self.gpu_cells.get(key))
        if depth:  # a member, under its sweep: its varied values (its name would be cut), indented
            label = values_label(entry.sweep_values or {}) or entry.name.split("/", 1)[-1]
            cells = tuple(Text("  " + label) if c == "run" else cell for c, cell in zip(self.columns[1:], cells))
        marked = key in self.marked
        cell = Text(mark, style=f"bold {theme.accent or ''}".strip()) if marked else Text(" ")
        return key, marked, cell, cells

    def _fill_table(self) -> None:
        if not self.columns:
            return  # laid out on the first resize
        self.runs = self._shown_runs()
        table = self.query_one(DataTable)
        cursor_key = self._highlighted_key()
        keys = {str(r.run_dir) for r in self.runs} | {s.key for s in self.sweeps}
        if self._focus_run is not None and self._focus_run in keys:
            cursor_key, self._focus_run = self._focus_run, None
        now = time.time()
        theme = self.app.current_theme
        ascii_only = getattr(self.app, "ascii_only", False)
        bar_width = NARROW_BAR if self.narrow else 12
        mark = glyph(self.app, "mark")
        rows = tuple(self._row(entry, depth, now, theme, bar_width, ascii_only, mark)
                     for entry, depth in self.group(self._scoped_runs, self.runs))
        signature = (self.columns, theme.name, tuple((key, first.plain, tuple(c.plain for c in cells))
                                                     for key, _, first, cells in rows))
        if signature != self._shown_rows:  # an idle list costs no repaint
            widths = tuple(max([len(label)] + [cells[i - 1].cell_len if i else 1 for _, _, _, cells in rows])
                           for i, label in enumerate(self.columns))
            cap = RUN_WIDTH_NARROW if self.narrow else RUN_WIDTH
            widths = tuple(min(w, cap) if label == "run" else w for label, w in zip(self.columns, widths))
            self._set_columns(table, widths)
            self._shown_rows = signature
            table.clear()
            for key, _, first, cells in rows:
                table.add_row(first, *cells, key=key)
        if cursor_key is not None and cursor_key in {key for key, _, _, _ in rows}:
            table.move_cursor(row=table.get_row_index(cursor_key))
        self._show_status()

    def _show_status(self) -> None:
        root = self.runs_root or self._default_root()
        empty = self.query_one("#runs-empty", Static)
        empty.display = not self.runs
        if self.terms and self.found:
            set_text(empty, f"No run matches {' '.join(self.terms)!r}. Press / to change the filter, "
                            "escape in it to clear it.")
        else:
            more = f" ({plural(self.hidden, 'run')} elsewhere: a shows them)" if self.hidden else ""
            set_text(empty, f"No runs yet under {root}{more}. Press n to start one from a preset.")
        running = sum(1 for r in self.runs if r.state in ACTIVE)
        parts = [plural(len(self.runs), "run"), f"{running} active", f"{len(self.marked)} marked"]
        if self.sweeps:
            parts.insert(1, plural(len(self.sweeps), "sweep") + " (f folds)")
        if self.terms:
            parts.append(f"filter {' '.join(self.terms)!r}")
        if self.scoped:
            where = f"under {root}"
            if self.hidden:
                where += f", {plural(self.hidden, 'more run')} elsewhere (a: all)"
            parts.append(where)
        elif self.runs_root is not None or self.show_all:
            parts.append(f"all runs (a: only under {root})" if self.show_all else str(root))
        else:
            parts.append(f"every run found; new runs go to {root}")
        set_text(self.query_one("#runs-status", Static), " · ".join(parts))

    def _default_root(self) -> str:
        try:
            from tuitrain.runs.registry import runs_root

            return str(runs_root())
        except Exception:  # the label is informative only
            return "./runs"

    def _highlighted_key(self) -> str | None:
        return cursor_row_key(self.query_one(DataTable))

    def highlighted_run(self):
        """The `RunInfo` under the cursor, or None."""
        key = self._highlighted_key()
        return next((r for r in self.runs if str(r.run_dir) == key), None)

    def _need_run(self):
        run = self.highlighted_run()
        if run is None:
            self.notify("No run selected. Press n to start one.", severity="warning")
        return run

    def focus_run(self, run_dir) -> None:
        """Highlight `run_dir` once the list has it (a run just launched, from here or the editor)."""
        self._focus_run = str(Path(run_dir).resolve())
        self.refresh_runs()

    # Actions -------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "toggle_all":  # nothing to toggle when every run is listed
            return self._root_chosen()
        return True

    def _root_chosen(self) -> bool:
        """`registry.root_is_chosen` without importing the runs package (not before the first frame)."""
        return self.runs_root is not None or bool(os.environ.get("TUITRAIN_RUNS"))

    def action_new_run(self) -> None:
        self.app.post_message(NewRun())

    def action_edit_preset(self) -> None:
        if self.sweep_action("edit_preset"):
            return
        run = self.highlighted_run()
        if run is None:
            self.app.post_message(NewRun(edit_only=True))
            return
        self.app.post_message(EditPreset(Path(run.run_dir) / "preset.toml"))

    def action_open_dashboard(self) -> None:
        if self.sweep_action("open_dashboard"):
            return
        run = self._need_run()
        if run is not None:
            self.app.post_message(OpenDashboard(run.run_dir))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_dashboard()

    def action_mark(self) -> None:
        """Mark or unmark the highlighted run; the cursor stays on it."""
        if self.sweep_action("mark"):
            return
        run = self._need_run()
        if run is None:
            return
        self.marked.symmetric_difference_update({str(run.run_dir)})
        self._fill_table()

    def action_compare(self) -> None:
        dirs = [r.run_dir for r in self.found if str(r.run_dir) in self.marked]
        if len(dirs) < 2:
            self.notify("Mark at least two runs with space, then press c.", severity="warning")
            return
        self.app.post_message(OpenCompare(dirs))

    async def action_filter(self) -> None:
        """Show the filter box (mounted the first time: the first frame does without it)."""
        boxes = self.query("#runs-filter")
        if boxes:
            box = boxes.first(Input)
        else:
            box = Input(placeholder="filter: words of a name, preset or state (enter keeps it, esc clears)",
                        id="runs-filter")
            await self.mount(box, before=self.query_one("#runs-status"))
        box.add_class("-shown")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "runs-filter":
            self.terms = event.value.lower().split()
            if self.loaded:
                self._fill_table()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "runs-filter":
            event.input.set_class(bool(self.terms), "-shown")
            self.query_one(DataTable).focus()

    def on_key(self, event) -> None:
        if event.key in ("left", "right") and isinstance(self.focused, DataTable):
            sweep = self.highlighted_sweep()
            if sweep is not None and (sweep.key in self.unfolded) == (event.key == "left"):
                event.stop()
                self.action_fold()
                return
        box = self.focused
        if event.key == "escape" and isinstance(box, Input) and box.id == "runs-filter":
            event.stop()
            box.value = ""
            box.remove_class("-shown")
            self.query_one(DataTable).focus()

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self._fill_table()

    def action_stop(self) -> None:
        if self.sweep_action("stop"):
            return
        run = self._need_run()
        if run is None:
            return
        if run.state not in ACTIVE:
            self.notify(f"{run.name} is {run.state}; nothing to stop.", severity="warning", markup=False)
            return
        self._confirm(f"Stop {run.name}?", "It saves a checkpoint and exits; resume it later with r.",
                      "Stop", lambda: self._control("stop", run))

    def action_kill(self) -> None:
        if self.sweep_action("kill"):
            return
        run = self._need_run()
        if run is None:
            return
        if run.state not in ACTIVE:
            self.notify(f"{run.name} is {run.state}; nothing to kill.", severity="warning", markup=False)
            return
        self._confirm(f"Kill {run.name}?", "Its processes end now, without a checkpoint.",
                      "Kill", lambda: self._control("kill", run))

    def action_resume(self) -> None:
        if self.sweep_action("resume"):
            return
        run = self._need_run()
        if run is None:
            return
        if run.state in ACTIVE:
            self.notify(f"{run.name} is {run.state}; stop it before resuming.", severity="warning", markup=False)
            return
        self._control("resume", run)

    def action_delete(self) -> None:
        if self.sweep_action("delete"):
            return
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
        from tuitrain.ui.dialogs.confirm import ConfirmScreen

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
