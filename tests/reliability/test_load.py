"""Load: eight runs logging every step at once, with the app open on them.

The runs: real run directories (`create_run_dir` of a `regression` preset with
`logging_steps = 1`, `save_strategy = "no"`) started detached through the runs package's
supervisor (`start_supervised`, as `tuitrain run --detach` and the app's New dialog do) and
stopped with `tuitrain.runs.launch.stop`. The supervised process is `_load_writer.py`, not
the engine: it writes the engine's events with the engine's `EventWriter` and progress line
at RATE steps a second per run (2,000 events/s in all). Why not real trainers: eight of
them on two cores spend ~18 s importing torch before the first step and then keep both
cores busy with arithmetic, so the test would time the machine rather than the app and
exceed its budget; the app only ever sees the event stream, which the writers reproduce at
a known, steady rate. (`test_detached.py` checks that eight real trainers at once log every
step.) The writers run until the test stops them, so every press happens while all eight
write, however slow the machine is.

What is measured, per press, with all eight writing:

- key → effect: the key event is handed to the app the way the terminal driver does
  (`driver.send_message`; `pilot.press` would itself wait for the app to go idle), then
  the test polls every millisecond, on the app's event loop, until the widget state shows
  the effect (the Runs table's cursor row; the loss chart's smoothing weight).
- key → frame: until the first frame the app composes (its `_display` hook, called with
  each compositor update) while that state is set: the change is on screen.
- the app's share of key → frame: that time less the time the UI thread sat runnable in
  the kernel's run queue waiting for a CPU (`/proc/self/task/<tid>/schedstat`; 0 where
  there is none), i.e. what the app itself spent: handling, rendering, its timers, waiting
  for its own worker threads' GIL. Other processes' load lands in the run-queue time.
  A press during which the UI thread queued for more than 100 ms measured the machine
  rather than the app and is repeated (at most 20 times, else the test fails).

Asserted, over 20 presses on the Runs screen (cursor up/down) and 20 on a dashboard
(smoothing +/-): the app's share of key → frame is at most 100 ms for every press (`-s`
prints medians and maxima of all three figures). Then no event is lost: each run's file
holds train steps 1..n, the dashboard that followed one run live holds exactly those n
steps in each series, and the Runs table shows step n for every run. And memory stays
bounded: the test process's RSS grows by less than RSS_GROWTH_MB from the moment the
dashboard has drawn its first chart (so that opening it is not counted) until the app has
caught up with every event (some 10,000 more; `-s` also prints the count of Python heap
blocks, which tells retained objects from allocator growth).
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from textual import events

from tests.reliability.conftest import write_preset
from tests.runs.conftest import wait_for
from tuitrain.config import load_preset
from tuitrain.errors import TuitrainError
from tuitrain.runs.launch import start_supervised, stop
from tuitrain.runs.registry import run_info
from tuitrain.runs.rundir import create_run_dir

RUNS = 8
RATE = 250.0  # train events a second, per run
MAX_STEPS = 20_000  # the writers stop long before (the test stops them)
PRESSES = 20
BOUND_S = 0.100
RSS_GROWTH_MB = 16
FOLLOW_S = 3.0
WRITER = Path(__file__).with_name("_load_writer.py")


def _run_queue_wait_s() -> float:
    """Seconds the calling thread has spent runnable but waiting for a CPU (0 off Linux)."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat", "rb") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class Frames:
    """Times the first frame the app composes with a key's effect in it.

    Wraps `App._display`, which each screen update calls with the compositor's output; at
    each call it reads the armed `effect`, so a frame composed while the widget state
    already shows the key's effect is the one that puts it on screen.
    """

    def __init__(self, app) -> None:
        self._effect = None
        self._before = None
        self.shown_at: tuple[float, float, float] | None = None
        original = app._display

        def display(screen, renderable) -> None:
            original(screen, renderable)
            if renderable is not None and self._effect is not None and self.shown_at is None:
                if self._effect() != self._before:
                    self.shown_at = (time.perf_counter(), _run_queue_wait_s(), time.thread_time())

        app._display = display

    def arm(self, effect, before) -> None:
        self._effect, self._before, self.shown_at = effect, before, None


@dataclass
class Press:
    effect_s: float  # key → widget state
    frame_s: float  # key → frame showing it
    queued_s: float  # of frame_s, time the UI thread waited in the run queue
    cpu_s: float  # of frame_s, CPU time of the UI thread

    @property
    def app_s(self) -> float:
        return self.frame_s - self.queued_s


async def keystroke(app, frames: Frames, key: str, char: str | None, effect) -> Press:
    """Send one key as the terminal driver does and time it (see the module doc)."""
    before = effect()
    frames.arm(effect, before)
    queued0, cpu0 = _run_queue_wait_s(), time.thread_time()
    t0 = time.perf_counter()
    app._driver.send_message(events.Key(key, char))
    seen = None
    while seen is None or frames.shown_at is None:
        if seen is None and effect() != before:
            seen = time.perf_counter()
        assert time.perf_counter() - t0 < 10, f"{key}: not on screen after 10 s"
        await asyncio.sleep(0.001)
    shown, queued, cpu = frames.shown_at
    frames.arm(None, None)
    return Press(seen - t0, shown - t0, queued - queued0, cpu - cpu0)


async def press_series(app, frames: Frames, next_key, effect, rng: random.Random) -> tuple[list[Press], int]:
    """PRESSES timed presses, and how many were repeated.

    A press during which the UI thread waited longer than BOUND_S for a CPU measured the
    machine, not the app; it is repeated, at most PRESSES times.
    """
    kept: list[Press] = []
    repeated = 0
    while len(kept) < PRESSES:
        press = await keystroke(app, frames, *next_key(), effect)
        if press.queued_s > BOUND_S:
            repeated += 1
            assert repeated <= PRESSES, "the UI thread waited for a CPU through most presses: too loaded to measure"
        else:
            kept.append(press)
        await asyncio.sleep(rng.uniform(0.02, 0.08))
    return kept, repeated


def _report(name: str, presses: list[Press]) -> str:
    def stat(values: list[float]) -> str:
        return f"median {statistics.median(values) * 1000:.1f} max {max(values) * 1000:.1f} ms"

    return (f"{name}: key→effect {stat([p.effect_s for p in presses])}; key→frame {stat([p.frame_s for p in presses])}; "
            f"app's share {stat([p.app_s for p in presses])}, of which UI-thread CPU {stat([p.cpu_s for p in presses])}")


async def until(pilot, predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        await pilot.pause(0.05)


def _file_train_steps(run_dir: Path) -> list[int]:
    with open(run_dir / "metrics.jsonl", encoding="utf-8") as fh:
        events_ = [json.loads(line) for line in fh]
    return [e["step"] for e in events_ if e.get("kind") == "train"]


def _memory() -> tuple[float, int]:
    """(RSS in MiB, Python heap blocks in use) after a full collection."""
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20, sys.getallocatedblocks()


def _start_writers(tmp: Path) -> list[Path]:
    preset = load_preset(write_preset(tmp / "load.toml", max_steps=MAX_STEPS), ["logging.save_strategy=no"])
    dirs = []
    for i in range(RUNS):
        run_dir = create_run_dir(preset, output_dir=tmp / "runs" / f"load-{i}")
        start_supervised(run_dir, [sys.executable, str(WRITER), str(run_dir), str(MAX_STEPS), str(RATE)])
        dirs.append(run_dir)
    return dirs


def _stop_all(dirs: list[Path], strict: bool = True) -> None:
    """`tuitrain stop` each running writer (`strict=False`: cleanup that tolerates races)."""
    for d in dirs:
        if run_info(d).state == "running":
            try:
                stop(d)
            except TuitrainError:
                if strict:
                    raise


def test_eight_runs_logging_every_step_with_the_app_open(isolated):
    from textual.widgets import DataTable

    from tuitrain.ui.app import TuitrainApp
    from tuitrain.ui.screens.dashboard import DashboardScreen
    from tuitrain.ui.screens.runs import RunsScreen
    from tuitrain.ui.widgets.charts import LossChart

    rng = random.Random(9)
    result: dict = {}

    async def body(dirs: list[Path]) -> None:
        app = TuitrainApp(runs_root=isolated / "runs")
        async with app.run_test(size=(120, 36)) as pilot:
            frames = Frames(app)
            runs = app.screen
            assert isinstance(runs, RunsScreen)
            table = runs.query_one(DataTable)
            await until(pilot, lambda: len(runs.runs) == RUNS and all(
                r.state == "running" and (r.step or 0) > 0 for r in runs.runs), 30, "eight runs writing")
            # Not in step with the table refresh that met the condition above.
            await pilot.pause(0.3)

            def runs_key() -> tuple[str, None]:
                top, bottom = table.cursor_row == 0, table.cursor_row == RUNS - 1
                return ("down", None) if top or (not bottom and rng.random() < 0.5) else ("up", None)

            on_runs = await press_series(app, frames, runs_key, lambda: table.cursor_row, rng)

            await pilot.press("enter")
            dash = app.screen
            assert isinstance(dash, DashboardScreen)
            chart = dash.query_one(LossChart)
            # Opening reads the run's history so far; the presses measure the steady state.
            await until(pilot, lambda: chart.train is not None and len(chart.train.xs) > 0, 10, "the first chart")
            result["memory_start"] = _memory()
            result["steps_at_start"] = sum(run_info(d).step or 0 for d in dirs)
            await pilot.pause(0.3)
            keys = iter([("plus", "+"), ("minus", "-")] * PRESSES)
            on_dashboard = await press_series(app, frames, lambda: next(keys), lambda: round(chart.weight, 3), rng)
            result["writing_throughout"] = [d.name for d in dirs if run_info(d).state == "running"]
            await pilot.pause(FOLLOW_S)  # more events for the memory figures

            _stop_all(dirs)
            await until(pilot, lambda: all(run_info(d).state == "stopped" for d in dirs), 30, "the runs stopping")
            expected = {d: list(range(1, len(_file_train_steps(d)) + 1)) for d in dirs}
            last = {d: steps[-1] for d, steps in expected.items()}
            await until(pilot, lambda: dash.history.state == "stopped" and dash.history.last_step == last[dash.run_dir],
                        30, "the dashboard catching up")
            # The Runs list is not re-read while the dashboard covers it: back to it, it catches up.
            await pilot.press("escape")
            await until(pilot, lambda: {r.run_dir: r.step for r in runs.runs} == last, 30, "the Runs table catching up")
            await pilot.pause(0.5)
            result["memory_end"] = _memory()
            result["expected"] = expected
            result["dash"] = (dash.run_dir, {k: (len(dash.history.series[k]), list(dash.history.series[k].xs))
                                             for k in ("loss", "learning_rate", "grad_norm", "samples_per_second")})
            result["table"] = {r.run_dir: (r.state, r.step) for r in runs.runs}
            result["presses"] = {"Runs screen": on_runs, "dashboard": on_dashboard}

    dirs = _start_writers(isolated)
    try:
        asyncio.run(body(dirs))
    finally:
        _stop_all(dirs, strict=False)
        wait_for(lambda: all(run_info(d).state not in ("running", "stopping") for d in dirs), timeout=30)

    for name, (presses, repeated) in result["presses"].items():
        report = f"{_report(name, presses)} ({repeated} repeated)"
        print(report)
        assert len(presses) == PRESSES
        assert max(p.app_s for p in presses) <= BOUND_S, report
    # Every press happened under load: all eight were still writing after the last one.
    assert len(result["writing_throughout"]) == RUNS, result["writing_throughout"]

    for d, steps in result["expected"].items():
        assert len(steps) >= 500, f"{d.name} logged only {len(steps)} steps; the test put no load on the app"
        assert _file_train_steps(d) == steps, f"{d.name}: lost or repeated steps in metrics.jsonl"
        assert result["table"][d] == ("stopped", len(steps)), d.name
    dash_dir, series = result["dash"]
    steps = result["expected"][dash_dir]
    for name, (n, exact) in series.items():
        # `xs` holds the points kept exactly: all of them at this length (a series compacts
        # only past `tuitrain.runs.series.CAPACITY` points), the latest ones beyond it.
        assert n == len(steps) and exact == steps[len(steps) - len(exact):] and exact, \
            f"the dashboard's {name} series lost or repeated steps"

    (rss0, blocks0), (rss1, blocks1) = result["memory_start"], result["memory_end"]
    events_seen = sum(len(s) for s in result["expected"].values()) - result["steps_at_start"]
    print(f"RSS {rss0:.1f} -> {rss1:.1f} MiB, Python heap blocks {blocks0} -> {blocks1}, over {events_seen} events")
    assert rss1 - rss0 < RSS_GROWTH_MB, f"RSS grew {rss1 - rss0:.1f} MiB while the app followed {events_seen} events"
