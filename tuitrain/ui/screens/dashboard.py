"""The run dashboard: loss, LR, GPU/host, throughput and ETA, checkpoints, log, samples.

A thread worker polls the run's `RunHistory` (and telemetry) and posts a message when
something changed; workers never touch widgets. A timer (4 Hz) redraws the charts from
series decimated to each chart's width, and only when new data arrived, so a run with
a million logged steps draws as fast as one with a thousand.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Static

from tuitrain.errors import TuitrainError
from tuitrain.textfmt import format_duration
from tuitrain.runs.history import CATCH_UP_CHUNKS, RunHistory
from tuitrain.telemetry import TelemetrySampler
from tuitrain.ui.widgets.charts import Decimated, Line, LineChart, ListSeries, LossChart, chart_width
from tuitrain.ui.widgets.checkpoints import CheckpointTable
from tuitrain.ui.widgets.statictext import set_text
from tuitrain.ui.widgets.logtail import LogTail, visible
from tuitrain.ui.widgets.samples import SamplesView

POLL_S = 0.5
REDRAW_HZ = 4
PANELS = ("status-panel", "loss-panel", "lr-panel", "gpu-panel", "speed-panel", "ckpt-panel", "log-panel", "samples-panel")
WIDE = 120  # columns from which panels sit side by side


class DashboardScreen(Screen):
    """Everything about one run, live."""

    DEFAULT_CSS = """
    DashboardScreen #panels { height: 1fr; }
    DashboardScreen .row { height: auto; }
    DashboardScreen .panel { border: round $panel; height: 14; width: 1fr; }
    DashboardScreen .panel:focus-within, DashboardScreen .panel:focus { border: round $accent; }
    DashboardScreen #status-panel { height: auto; min-height: 5; }
    DashboardScreen #gpu-text { height: auto; }
    DashboardScreen #ckpt-panel, DashboardScreen #log-panel { height: 12; }
    DashboardScreen #samples-panel { height: auto; max-height: 14; min-height: 4; }
    DashboardScreen.wide .panel { height: 16; }
    DashboardScreen.wide #status-panel { height: auto; }
    DashboardScreen.narrow .row { layout: vertical; }
    DashboardScreen.wide .row { layout: horizontal; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="dashboard.back", tooltip="Return to the previous screen"),
        # Short labels, and `-` only in `?` help and ctrl+p, so that s, q and ? fit the footer at 80 columns.
        Binding("plus,+,=", "smoothing(0.05)", "Smooth", id="dashboard.smooth_more", tooltip="More smoothing"),
        Binding("minus,-", "smoothing(-0.05)", "Smooth-", id="dashboard.smooth_less", show=False,
                tooltip="Less smoothing"),
        Binding("r", "resume_highlighted", "Resume", id="dashboard.resume_from",
                tooltip="Resume from the highlighted checkpoint"),
        Binding("R", "resume_latest", "Latest", id="dashboard.resume_latest",
                tooltip="Resume from the latest checkpoint"),
        Binding("s", "stop", "Stop", id="dashboard.stop", tooltip="Stop the run gracefully (asks first)"),
        Binding("q", "quit", "Quit", id="dashboard.quit", tooltip="Quit the app (the run keeps training)"),
        Binding("tab", "cycle(1)", "Next panel", id="dashboard.next_panel", show=False),
        Binding("shift+tab", "cycle(-1)", "Prev panel", id="dashboard.prev_panel", show=False),
    ]

    class Changed(Message):
        """The worker saw new events (or state) in the run."""

    class Sampled(Message):
        """The worker took a telemetry reading."""

    def __init__(self, run_dir: Path | str) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.history = RunHistory(self.run_dir)
        self.telemetry = TelemetrySampler(history=300)
        self.lock = threading.Lock()
        self._dirty = True
        self._telemetry_dirty = True
        self._skipped_told = 0
        self._stop = threading.Event()
        self._panel = 0

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="panels"):
            with Vertical(id="status-panel", classes="panel"):
                yield Static("", id="status-text", markup=False)
                yield ProgressBar(total=None, show_eta=False, id="progress")
            with Horizontal(classes="row"):
                with Vertical(id="loss-panel", classes="panel"):
                    yield LossChart(id="loss-chart")
                with Vertical(id="lr-panel", classes="panel"):
                    yield LineChart("learning rate", id="lr-chart")
            with Horizontal(classes="row"):
                with Vertical(id="gpu-panel", classes="panel"):
                    yield Static("", id="gpu-text", markup=False)
                    yield LineChart("utilisation / memory %", id="gpu-chart")
                with Vertical(id="speed-panel", classes="panel"):
                    yield LineChart("throughput", id="speed-chart")
            with Horizontal(classes="row"):
                with Vertical(id="ckpt-panel", classes="panel"):
                    yield CheckpointTable(id="checkpoints")
                with Vertical(id="log-panel", classes="panel"):
                    yield LogTail(self.run_dir / "stdout.log", id="log")
            with Vertical(id="samples-panel", classes="panel"):
                yield SamplesView(id="samples")
        yield Footer()

    def on_mount(self) -> None:
        titles = {"status-panel": f"run {self.run_dir.name}", "loss-panel": "loss", "lr-panel": "LR",
                  "gpu-panel": "GPU / host", "speed-panel": "throughput", "ckpt-panel": "checkpoints (r / R resume)",
                  "log-panel": "stdout.log", "samples-panel": "samples"}
        for panel_id, title in titles.items():
            panel = self.query_one(f"#{panel_id}")
            panel.border_title = visible(title).plain
            panel.can_focus = True
        self._layout_for(self.size.width)
        self._watch()
        self.set_interval(1 / REDRAW_HZ, self.redraw)
        self.set_interval(1.0, self.query_one(LogTail).poll)
        self.query_one(LogTail).poll()

    def on_unmount(self) -> None:
        self._stop.set()

    def on_resize(self, event) -> None:
        self._layout_for(event.size.width)

    def _layout_for(self, width: int) -> None:
        self.set_class(width >= WIDE, "wide")
        self.set_class(width < WIDE, "narrow")

    @work(thread=True, exclusive=True, group="dashboard-watch")
    def _watch(self) -> None:
        last_sample = 0.0
        while not self._stop.is_set():
            with self.lock:
                changed = self.history.update(max_chunks=CATCH_UP_CHUNKS)
            if changed:
                self.post_message(self.Changed())
            now = time.monotonic()
            if now - last_sample >= 1.0:
                last_sample = now
                self.telemetry.sample()
                self.post_message(self.Sampled())
            self._stop.wait(0.01 if self.history.behind else POLL_S)

    def on_dashboard_screen_changed(self, message: Changed) -> None:
        self._dirty = True

    def on_dashboard_screen_sampled(self, message: Sampled) -> None:
        self._telemetry_dirty = True

    def redraw(self) -> None:
        """Refresh the panels from the history (at most REDRAW_HZ times a second)."""
        if self._telemetry_dirty:
            self._telemetry_dirty = False
            self._draw_gpu()
        if not self._dirty or not self.lock.acquire(blocking=False):
            return
        try:
            self._dirty = False
            self._draw_history()
        finally:
            self.lock.release()

    def _draw_history(self) -> None:
        h = self.history
        series = h.series
        loss = self.query_one(LossChart)
        w = chart_width(loss)
        loss.set_series(Decimated(series.get("loss"), w), Decimated(series.get("eval_loss"), w))
        lr = self.query_one("#lr-chart", LineChart)
        lr.set_lines([Line("lr", Decimated(series.get("learning_rate"), chart_width(lr)), color=lr.colors.lr)])
        speed = self.query_one("#speed-chart", LineChart)
        sw = chart_width(speed)
        speed.set_lines([Line(name.replace("_per_second", "/s"), Decimated(series.get(name), sw))
                         for name in ("samples_per_second", "tokens_per_second") if name in series])
        self._draw_status()
        metric = self._metric_name()
        eval_series = series.get(metric)
        evals = dict(zip(*eval_series.decimate(10_000))) if eval_series is not None else {}
        self.query_one(CheckpointTable).show(h.checkpoints, evals, metric)
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
        h = self.history
        series = h.series
        total = h.max_steps
        parts = [f"state {h.state_text}", f"step {h.last_step}/{total if total else '?'}"]
        if total:
            parts.append(f"{100 * h.last_step / total:.1f}%")
        parts.append(f"ETA {format_duration(h.eta_s, unknown='–', with_seconds=True)}")
        for name, label in (("loss", "loss"), ("samples_per_second", "samples/s"), ("tokens_per_second", "tok/s")):
            s = series.get(name)
            if s is not None and s.last is not None:
                parts.append(f"{label} {s.last:.4g}")
        if h.skipped:
            parts.append(f"skipped {h.skipped} corrupt line(s)")
        error = getattr(h, "error", None)
        # The error's first line says what happened; the log tail that may follow it is
        # already in the stdout.log panel.
        headline = str(error).strip().splitlines()[0] if error and str(error).strip() else ""
        text = "  ·  ".join(parts) + (f"\nerror: {visible(headline).plain}" if headline else "")
        set_text(self.query_one("#status-text", Static), text)
        bar = self.query_one(ProgressBar)
        bar.update(total=total or None, progress=h.last_step)

    def _draw_gpu(self) -> None:
        t = self.telemetry
        readings = list(t.readings)
        lines = []
        if not t.gpu_available:
            lines.append(t.gpu_reason)
        elif readings:
            for g in readings[-1].gpus:
                lines.append(f"GPU{g.index} {g.name}: {g.mem_used_gib:.1f}/{g.mem_total_gib:.1f} GiB  {g.util_percent:.0f}%")
        series = self.history.series
        run_mem = [f"{label} {series[name].last:.2f} GiB" for name, label in
                   (("gpu_mem_allocated_gib", "allocated"), ("gpu_mem_reserved_gib", "reserved"))
                   if name in series and series[name].last is not None]
        if run_mem:
            lines.append("run CUDA: " + ", ".join(run_mem))
        if readings:
            host = readings[-1].host
            lines.append(f"host CPU {host.cpu_percent:.0f}%  RAM {host.ram_used_gib:.1f}/{host.ram_total_gib:.1f} GiB")
        set_text(self.query_one("#gpu-text", Static), "\n".join(lines))
        chart_lines = []
        if readings:
            for g in readings[-1].gpus:
                chart_lines.append(Line(f"GPU{g.index} util", ListSeries(t.gpu_series(g.index, "util_percent"))))
                used = t.gpu_series(g.index, "mem_used_gib")
                total = t.gpu_series(g.index, "mem_total_gib")
                chart_lines.append(Line(f"GPU{g.index} mem", ListSeries([100 * u / max(tt, 1e-9) for u, tt in zip(used, total)])))
            chart_lines.append(Line("host CPU", ListSeries(t.host_series("cpu_percent"))))
        self.query_one("#gpu-chart", LineChart).set_lines(chart_lines)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_quit(self) -> None:
        """Leave the app; the run is a separate process and keeps training."""
        self.app.exit()

    def action_smoothing(self, delta: float) -> None:
        weight = self.query_one(LossChart).adjust_smoothing(delta)
        self.notify(f"smoothing {weight:.2f}", timeout=1.5)

    def action_cycle(self, direction: int) -> None:
        self._panel = (self._panel + direction) % len(PANELS)
        panel = self.query_one(f"#{PANELS[self._panel]}")
        inner = [w for w in panel.query("*") if w.can_focus]
        (inner[0] if inner else panel).focus()
        panel.scroll_visible()

    def action_resume_highlighted(self) -> None:
        checkpoint = self.query_one(CheckpointTable).highlighted_checkpoint
        if checkpoint is None:
            self.notify("no checkpoint to resume from yet", severity="warning")
            return
        self._resume(checkpoint)

    def action_resume_latest(self) -> None:
        self._resume(None)

    @work(thread=True, exclusive=True, group="dashboard-control")
    def _resume(self, checkpoint: str | None) -> None:
        from tuitrain.runs.launch import resume

        try:
            resume(self.run_dir, checkpoint=checkpoint)
        except TuitrainError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self.notify, f"resumed from {checkpoint or 'the latest checkpoint'}")

    def action_stop(self) -> None:
        from tuitrain.ui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self._stop_run()

        self.app.push_screen(ConfirmScreen(f"Stop run {self.run_dir.name}?",
                                           "It saves a checkpoint and exits.", yes_label="Stop"), answered)

    @work(thread=True, exclusive=True, group="dashboard-control")
    def _stop_run(self) -> None:
        from tuitrain.runs.launch import stop

        try:
            stop(self.run_dir)
        except TuitrainError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self.notify, f"stopping {self.run_dir.name}")
