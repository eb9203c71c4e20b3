"""The run dashboard: status, loss and LR always in view; system, throughput, checkpoints,
log and samples below them, all at once on a tall terminal, one at a time (keys `1`–`5`,
`tab`) on a short one such as 80×24.

One thread worker follows the run: it polls the run's `RunHistory`, its `stdout.log`, its
`RunInfo` (state, elapsed and ETA, the same numbers the Runs list shows) and the telemetry,
and posts a message when something changed; workers never touch widgets. Whatever changed
is drawn together in one frame, at most `REDRAW_HZ` times a second: a run that logs
nothing (a finished one) costs no frame at all, and a million-step run draws as fast as a
short one, since charts draw series decimated to their width.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import ProgressBar, Static

from tuitrain.errors import TuitrainError
from tuitrain.runs.history import CATCH_UP_CHUNKS, RunHistory
from tuitrain.telemetry import TelemetrySampler
from tuitrain.textfmt import format_duration, format_summary
from tuitrain.ui.runcontrol import RunControls
from tuitrain.ui.screens.base import TuitrainScreen
from tuitrain.ui.widgets.chartdraw import format_number, format_seconds
from tuitrain.ui.widgets.charts import Decimated, Line, LineChart, LossChart, chart_width
from tuitrain.ui.widgets.checkpoints import CheckpointTable, list_on_disk
from tuitrain.ui.widgets.footer import KeyFooter
from tuitrain.ui.widgets.gpupane import draw_gpu_pane, run_processes
from tuitrain.ui.widgets.logtail import LogTail, visible
from tuitrain.ui.widgets.samples import SamplesView
from tuitrain.ui.widgets.smoothing import DEFAULT_WEIGHT, clamp_weight
from tuitrain.ui.widgets.statictext import set_text

POLL_S = 0.5
INFO_S = 1.0  # RunInfo (state, elapsed, ETA) at most this often while the run is active
IDLE_INFO_S = 5.0  # …and this often while it is not (it may be resumed from elsewhere)
SAMPLE_S = 1.0
REDRAW_HZ = 4
LOWER = (("gpu-panel", "system"), ("speed-panel", "throughput"), ("ckpt-panel", "checkpoints"),
         ("log-panel", "log"), ("samples-panel", "samples"))
UNITS = (("samples_per_second", "samples/s"), ("tokens_per_second", "tok/s"))


def throughput(series, finished: bool) -> tuple[str, float] | None:
    """("avg" or "", value) of a throughput series: the last value while the run trains,
    the mean of the values kept exactly once it has ended."""
    if series is None or series.last is None:
        return None
    if finished and len(series.ys):
        return "avg ", sum(series.ys) / len(series.ys)
    return "", series.last


class DashboardScreen(RunControls, TuitrainScreen):
    """Everything about one run, live."""

    DEFAULT_CSS = """
    DashboardScreen {
        layout: vertical;
        .panel { border: round $panel; height: 1fr; border-title-color: $text-muted; }
        .panel:focus-within { border: round $accent; }
        #status-panel { height: auto; }
        #charts-row { height: 1fr; min-height: 8; }
        #lower-tabs { height: 1; display: none; color: $text-muted; padding: 0 1; }
        #lower { height: 2fr; layout: grid; grid-size: 2 3; grid-rows: 1fr 1fr auto; }
        #samples-panel { column-span: 2; height: auto; max-height: 8; min-height: 3; }
        #gpu-text { height: auto; }
        &.-short {
            #lower-tabs { display: block; }
            #lower { layout: vertical; height: 1fr; }
            #lower > .panel { display: none; }
            #lower > .panel.-current { display: block; height: 1fr; max-height: 100%; }
        }
    }
    """

    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]

    BINDINGS = [
        Binding("escape", "back", "Back", id="dashboard.back", tooltip="Back to the previous screen"),
        Binding("plus,+,=", "smoothing(0.05)", "Smooth+", id="dashboard.smooth_more",
                tooltip="Smooth the loss more"),
        Binding("minus,-", "smoothing(-0.05)", "Smooth-", id="dashboard.smooth_less", tooltip="Smooth the loss less"),
        Binding("r", "resume_highlighted", "Resume", id="dashboard.resume_from",
                tooltip="Resume from the highlighted checkpoint (an older one: fork a new run, or rewind this one)"),
        Binding("R", "resume_latest", "Latest", id="dashboard.resume_latest",
                tooltip="Resume the run from its latest checkpoint"),
        Binding("s", "stop", "Stop", id="dashboard.stop", tooltip="Stop the run gracefully (asks first)"),
        Binding("a", "toggle_abandoned", "Abandoned", id="dashboard.abandoned", show=False,
                tooltip="Show or hide the loss of the lines a rewind abandoned (faded)"),
        Binding("q", "quit", "Quit", id="dashboard.quit", tooltip="Quit the app (the run keeps training)"),
        Binding("tab", "cycle(1)", "Panel", id="dashboard.next_panel", tooltip="Next panel below the charts"),
        Binding("shift+tab", "cycle(-1)", "Prev panel", id="dashboard.prev_panel", show=False,
                tooltip="Previous panel below the charts"),
        *[Binding(str(i + 1), f"show_panel({i})", title, id=f"dashboard.panel_{i + 1}", show=False,
                  tooltip=f"Show the {title} panel") for i, (_, title) in enumerate(LOWER)],
    ]
    FOOTER_OPTIONAL = ("cycle(1)", "smoothing(-0.05)", "back")

    smoothing = reactive(DEFAULT_WEIGHT)
    """The loss chart's EMA weight (TensorBoard's smoothing)."""
    panel = reactive(0)
    """The lower panel shown (short terminals) or focused (tall ones)."""
    show_abandoned = reactive(False)
    """Whether the loss chart draws the lines rewinds abandoned (faded)."""

    class Changed(Message):
        """The worker saw new events (or state) in the run."""

    class Sampled(Message):
        """The worker took a telemetry reading that changes what the system panel shows."""

    class InfoRead(Message):
        """The worker read the run's `RunInfo` (state, elapsed, ETA) afresh."""

        def __init__(self, info) -> None:
            super().__init__()
            self.info = info

    class DiskListed(Message):
        """The worker listed the run's checkpoints on disk, and they changed."""

        def __init__(self, on_disk) -> None:
            super().__init__()
            self.on_disk = on_disk

    class LogLines(Message):
        """Lines appended to the run's stdout.log."""

        def __init__(self, lines: list[str]) -> None:
            super().__init__()
            self.lines = lines

    def __init__(self, run_dir: Path | str) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.history = RunHistory(self.run_dir)
        self.telemetry = TelemetrySampler(history=300)
        self.lock = threading.Lock()
        self.info = None
        self._dirty = True
        self._telemetry_dirty = True
        self._run_pids: frozenset[int] = frozenset()  # the run's processes, found by the worker
        self._info_dirty = False
        self._log_lines: list[str] = []
        self._on_disk: tuple = ()  # the complete checkpoints on disk, as the worker last listed them
        self._redraw_pending = False
        self._skipped_told = 0
        self._stop = threading.Event()
        self.redraws = 0  # frames drawn (for the tests of the idle cost)
        self.polls = 0  # passes of the watcher over the run

    def compose(self) -> ComposeResult:
        with Vertical(id="status-panel", classes="panel"):
            yield Static("", id="status-text", markup=False)
            yield ProgressBar(total=None, show_eta=False, id="progress")
        with Horizontal(id="charts-row"):
            with Vertical(id="loss-panel", classes="panel"):
                yield LossChart(id="loss-chart")
            with Vertical(id="lr-panel", classes="panel"):
                yield LineChart(y_label="LR", id="lr-chart")
        yield Static("", id="lower-tabs", markup=False)
        with Vertical(id="lower"):
            with Vertical(id="gpu-panel", classes="panel"):
                yield Static("", id="gpu-text", markup=False)
                yield LineChart(y_label="%", x_label="seconds", y_limits=(0, 100), x_format=format_seconds,
                                empty="sampling…", id="gpu-chart")
            with Vertical(id="speed-panel", classes="panel"):
                yield LineChart(y_label="samples/s", id="speed-chart")
                yield LineChart(y_label="tok/s", id="tokens-chart")
            with Vertical(id="ckpt-panel", classes="panel"):
                yield CheckpointTable(id="checkpoints")
            with Vertical(id="log-panel", classes="panel"):
                yield LogTail(self.run_dir / "stdout.log", id="log")
            with Vertical(id="samples-panel", classes="panel"):
                yield SamplesView(id="samples")
        yield KeyFooter()

    def on_mount(self) -> None:
        titles = {"status-panel": f"run {self.run_dir.name}", "loss-panel": "loss", "lr-panel": "learning rate",
                  "gpu-panel": "1 system: GPU and host", "speed-panel": "2 throughput",
                  "ckpt-panel": "3 checkpoints (r / R resume)", "log-panel": "4 stdout.log", "samples-panel": "5 samples"}
        for panel_id, title in titles.items():
            panel = self.query_one(f"#{panel_id}")
            panel.border_title = visible(title).plain
        self.query_one("#tokens-chart").display = False
        self.watch_panel(self.panel)
        self._watch()

    def on_unmount(self) -> None:
        self._stop.set()

    @work(thread=True, exclusive=True, group="dashboard-watch")
    def _watch(self) -> None:
        """Follow the run: events, log, state and telemetry; post what changed."""
        from tuitrain.runs.registry import run_info

        log = self.query_one(LogTail)
        last_sample = last_info = 0.0
        last_shown = None
        on_disk = None
        while not self._stop.is_set():
            with self.lock:
                changed = self.history.update(max_chunks=CATCH_UP_CHUNKS)
            if changed:
                self.post_message(self.Changed())
            lines = log.read_lines()
            if lines:
                self.post_message(self.LogLines(lines))
            now = time.monotonic()
            active = self.history.state in ("queued", "running", "stopping")
            # by the clock, not per chunk: a backlog being read would ask for it hundreds of times
            if now - last_info >= (INFO_S if active or changed else IDLE_INFO_S) or on_disk is None:
                last_info = now
                try:
                    self.post_message(self.InfoRead(run_info(self.run_dir)))
                except TuitrainError:
                    pass
                listed = list_on_disk(self.run_dir)  # rotation, a rewind or a person may remove one
                if listed != on_disk:
                    on_disk = listed
                    self.post_message(self.DiskListed(listed))
            if now - last_sample >= SAMPLE_S:
                last_sample = now
                reading = self.telemetry.sample()
                pids = run_processes(self.run_dir, self.history.start)
                shown = (_shown(reading), pids)
                if shown != last_shown:  # sampled, but redrawn only when the panel would change
                    last_shown = shown
                    self._run_pids = pids
                    self.post_message(self.Sampled())
            self.polls += 1
            self._stop.wait(0.01 if self.history.behind else POLL_S)

    def on_dashboard_screen_changed(self, message: Changed) -> None:
        self._dirty = True
        self._schedule_redraw()

    def on_dashboard_screen_sampled(self, message: Sampled) -> None:
        self._telemetry_dirty = True
        self._schedule_redraw()

    def on_dashboard_screen_info_read(self, message: InfoRead) -> None:
        self.info = message.info
        self._info_dirty = True
        self._schedule_redraw()

    def on_dashboard_screen_disk_listed(self, message: DiskListed) -> None:
        self._on_disk = message.on_disk
        self._dirty = True
        self._schedule_redraw()

    def on_dashboard_screen_log_lines(self, message: LogLines) -> None:
        self._log_lines += message.lines
        self._schedule_redraw()

    def _schedule_redraw(self) -> None:
        """Redraw soon, at most REDRAW_HZ times a second (bursts of events are one redraw)."""
        if not self._redraw_pending:
            self._redraw_pending = True
            self.set_timer(1 / REDRAW_HZ, self.redraw)

    def redraw(self) -> None:
        """Refresh the panels from the history and the telemetry."""
        self._redraw_pending = False
        self.redraws += 1
        if self._log_lines:
            lines, self._log_lines = self._log_lines, []
            self.query_one(LogTail).add_lines(lines)
        if self._telemetry_dirty:
            self._telemetry_dirty = False
            self._draw_gpu()
        if self._info_dirty and not self._dirty:
            self._info_dirty = False
            self._draw_status()
        if not self._dirty:
            return
        if not self.lock.acquire(blocking=False):
            self._schedule_redraw()  # the worker is reading: try again shortly
            return
        try:
            self._dirty = self._info_dirty = False
            self._draw_history()
        finally:
            self.lock.release()

    def _draw_history(self) -> None:
        h = self.history
        series = h.series
        loss = self.query_one(LossChart)
        w = chart_width(loss)
        parent = h.parent_series
        loss.set_series(Decimated(series.get("loss"), w), Decimated(series.get("eval_loss"), w),
                        Decimated(parent["loss"], w) if "loss" in parent else None,
                        [Decimated(line, w) for line in h.abandoned] if self.show_abandoned else ())
        lr = self.query_one("#lr-chart", LineChart)
        lr_lines = [Line("lr", Decimated(series.get("learning_rate"), chart_width(lr)), style="lr")]
        if "learning_rate" in parent:
            lr_lines.insert(0, Line("parent", Decimated(parent["learning_rate"], chart_width(lr)), style="parent"))
        lr.set_lines(lr_lines)
        for chart_id, name in (("#speed-chart", "samples_per_second"), ("#tokens-chart", "tokens_per_second")):
            chart = self.query_one(chart_id, LineChart)
            shown = name in series or chart_id == "#speed-chart"
            if chart.display != shown:  # assigning it, even unchanged, lays the screen out again
                chart.display = shown
            chart.set_lines([Line(name, Decimated(series.get(name), chart_width(chart)))] if name in series else [])
        # one step axis for every chart of the run: up to its last step (a decimated flat
        # series may end a few steps short of it), or the end of an abandoned line shown
        shown = h.abandoned if self.show_abandoned else []
        last = max([h.last_step] + [int(line.xs[-1]) for line in shown if len(line.xs)])
        for chart in (loss, lr, self.query_one("#speed-chart"), self.query_one("#tokens-chart")):
            chart.x_limits = (1, last) if last > 1 else None
        self._draw_status()
        metric = self._metric_name()
        eval_series = series.get(metric)
        evals = dict(zip(*eval_series.decimate(10_000))) if eval_series is not None else {}
        self.query_one(CheckpointTable).show(h.checkpoints, self._on_disk, evals)
        self.query_one(SamplesView).show(h.samples)
        if h.skipped > self._skipped_told:
            self._skipped_told = h.skipped
            self.notify(f"skipped {h.skipped} unreadable line(s) in metrics.jsonl", severity="warning")

    def _metric_name(self) -> str:
        config = (self.history.start or {}).get("config") or {}
        name = config.get("metric_for_best_model") if isinstance(config, dict) else None
        if not isinstance(name, str) or not name:
            return "eval_loss"
        return name if name.startswith("eval_") else f"eval_{name}"

    def _draw_status(self) -> None:
        h, info = self.history, self.info
        series = h.series
        total = h.max_steps
        state = info.state if info is not None else h.state
        finished = state not in ("queued", "running", "stopping")
        # the history watches for silence on the monotonic clock; the record knows the processes
        state_shown = h.state_text if info is None or info.state == h.state else info.state_text
        step = f"step {h.last_step}/{total if total else '?'}" + (f" ({100 * h.last_step / total:.1f}%)" if total else "")
        parts = [f"state {state_shown}", step]
        if info is not None and getattr(info, "sweep", None):
            parts.insert(1, f"sweep {visible(info.sweep).plain}")
        if info is not None:
            parts.append(f"elapsed {format_duration(info.elapsed_s)}")
            if not finished:
                parts.append(f"ETA {format_duration(info.eta_s)}")
        s = series.get("loss")
        if s is not None and s.last is not None:
            parts.append(f"loss {s.last:.4g}")
        for name, unit in UNITS:
            shown = throughput(series.get(name), finished)
            if shown is not None:
                parts.append(f"{shown[0]}{format_number(shown[1])} {unit}")
        if h.skipped:
            parts.append(f"skipped {h.skipped} corrupt line(s)")
        error = (info.error if info is not None else None) or getattr(h, "error", None)
        # The error's first line says what happened; the log tail that may follow it is
        # already in the stdout.log panel.
        headline = str(error).strip().splitlines()[0] if error and str(error).strip() else ""
        text = " · ".join(parts) + (f"\nerror: {visible(headline).plain}" if headline else "")
        if h.summary:
            text += f"\ntrained: {format_summary(h.summary)}"
        status = self.query_one("#status-text", Static)
        status.set_class(state == "diverged", "-diverged")  # its loss went NaN/inf: not an ordinary stop
        set_text(status, text)
        self.query_one(ProgressBar).update(total=total or None, progress=h.last_step)

    def _draw_gpu(self) -> None:
        draw_gpu_pane(self.query_one("#gpu-text", Static), self.query_one("#gpu-chart", LineChart),
                      self.telemetry, self.history, self._run_pids)

    # Keys -----------------------------------------------------------------

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_quit(self) -> None:
        """Leave the app; the run is a separate process and keeps training."""
        self.app.exit()

    def validate_smoothing(self, weight: float) -> float:
        return clamp_weight(weight)

    def watch_smoothing(self, weight: float) -> None:
        self.query_one(LossChart).set_smoothing(weight)

    def action_smoothing(self, delta: float) -> None:
        self.smoothing = self.smoothing + delta
        self.notify(f"smoothing {self.smoothing:.2f}", timeout=1.5)

    def validate_panel(self, index: int) -> int:
        return index % len(LOWER)

    def watch_panel(self, index: int) -> None:
        """Show the panel (short terminals), mark it in the tab strip, and focus what it holds."""
        for i, (panel_id, _) in enumerate(LOWER):
            self.query_one(f"#{panel_id}").set_class(i == index, "-current")
        tabs = "  ".join(f"[{i + 1} {title}]" if i == index else f" {i + 1} {title} " for i, (_, title) in
                         enumerate(LOWER))
        set_text(self.query_one("#lower-tabs", Static), f"{tabs}   tab: next")
        panel = self.query_one(f"#{LOWER[index][0]}")
        inner = [w for w in panel.query("*") if w.can_focus]
        if inner:
            inner[0].focus()

    def action_cycle(self, direction: int) -> None:
        self.panel = self.panel + direction

    def action_show_panel(self, index: int) -> None:
        self.panel = index

    def watch_show_abandoned(self) -> None:
        self._dirty = True
        if self.is_mounted:
            self._schedule_redraw()

    def action_toggle_abandoned(self) -> None:
        """Draw the lines a rewind abandoned (faded) in the loss chart, or hide them again."""
        if not self.history.abandoned:
            self.notify("this run has no abandoned line (it was never rewound)")
            return
        self.show_abandoned = not self.show_abandoned
        count = len(self.history.abandoned)
        self.notify(f"{'showing' if self.show_abandoned else 'hiding'} {count} abandoned "
                    f"line{'s' if count != 1 else ''}", timeout=1.5)



def _shown(reading) -> tuple:
    """What the system panel shows of a reading, to the precision it shows it."""
    host = reading.host
    gpus = tuple((g.key, g.lost, None if g.util_percent is None else round(g.util_percent),
                  None if g.mem_used_gib is None else round(g.mem_used_gib, 1)) for g in reading.gpus)
    return round(host.cpu_percent), round(host.ram_used_gib, 1), gpus
