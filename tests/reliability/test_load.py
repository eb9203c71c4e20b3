"""Load: real trainers logging every step at once, with the app open on them.

RUNS tiny `regression` runs (`logging_steps = 1`, `save_strategy = "no"`) are created as
`tuitrain run` does (`create_run_dir`) and started detached through the runs package's
supervisor (`start_supervised`, as `tuitrain run --detach` and the app's New dialog do)
running the engine itself (`python -m tuitrain.engine RUN_DIR`). They train until the test
stops them with `tuitrain.runs.launch.stop`, so every key press and every screen happens
while all of them write.

With the app open: the Runs screen lists every run as running and its cursor keys move
the cursor; a dashboard follows one run live and its smoothing keys change the chart;
then the runs are stopped. Asserted: no event is lost or repeated (each run's file holds
train steps 1..n, the dashboard that followed one run holds exactly those n steps in each
series, the Runs table shows step n for every run), and memory stays bounded (the test
process's RSS grows by less than RSS_GROWTH_MB from the dashboard's first chart until the
app has caught up with every event). How fast the app answers keys under load is a
benchmark, not a test: `bench/ui_latency_bench.py`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from pathlib import Path

import psutil

from tests.reliability.conftest import engine_cmd, write_preset
from tests.runs.conftest import wait_for
from tuitrain.config import load_preset
from tuitrain.errors import TuitrainError
from tuitrain.runs.launch import start_supervised, stop
from tuitrain.runs.registry import run_info
from tuitrain.runs.rundir import create_run_dir

RUNS = 3
MAX_STEPS = 1_000_000  # the runs stop long before (the test stops them)
MIN_STEPS = 200  # steps each run logs at least while the app follows it
PRESSES = 10
RSS_GROWTH_MB = 16


async def until(pilot, predicate, timeout: float, what: str) -> None:
    """Let the app work until `predicate()` holds; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        await pilot.pause()
        await asyncio.sleep(0.01)


def _file_train_steps(run_dir: Path) -> list[int]:
    with open(run_dir / "metrics.jsonl", encoding="utf-8") as fh:
        events_ = [json.loads(line) for line in fh]
    return [e["step"] for e in events_ if e.get("kind") == "train"]


def _memory() -> tuple[float, int]:
    """(RSS in MiB, Python heap blocks in use) after a full collection."""
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20, sys.getallocatedblocks()


def _start_trainers(tmp: Path) -> list[Path]:
    preset = load_preset(write_preset(tmp / "load.toml", max_steps=MAX_STEPS), ["logging.save_strategy=no"])
    dirs = []
    for i in range(RUNS):
        run_dir = create_run_dir(preset, output_dir=tmp / "runs" / f"load-{i}")
        start_supervised(run_dir, engine_cmd(run_dir))
        dirs.append(run_dir)
    return dirs


def _stop_all(dirs: list[Path], strict: bool = True) -> None:
    """`tuitrain stop` each running trainer (`strict=False`: cleanup that tolerates races)."""
    for d in dirs:
        if run_info(d).state == "running":
            try:
                stop(d)
            except TuitrainError:
                if strict:
                    raise


def test_real_trainers_logging_every_step_with_the_app_open(isolated):
    from textual.widgets import DataTable

    from tuitrain.ui.app import TuitrainApp
    from tuitrain.ui.screens.dashboard import DashboardScreen
    from tuitrain.ui.screens.runs import RunsScreen
    from tuitrain.ui.widgets.charts import LossChart

    result: dict = {}

    async def body(dirs: list[Path]) -> None:
        app = TuitrainApp(runs_root=isolated / "runs")
        async with app.run_test(size=(120, 36)) as pilot:
            runs = app.screen
            assert isinstance(runs, RunsScreen)
            table = runs.query_one(DataTable)
            await until(pilot, lambda: len(runs.runs) == RUNS and all(
                r.state == "running" and (r.step or 0) > 0 for r in runs.runs), 90, "every run training")
            for key in ["down"] * (RUNS - 1) + ["up"] * (RUNS - 1):
                row = table.cursor_row
                await pilot.press(key)
                assert table.cursor_row == row + (1 if key == "down" else -1)

            await pilot.press("enter")
            dash = app.screen
            assert isinstance(dash, DashboardScreen)
            chart = dash.query_one(LossChart)
            # Opening reads the run's history so far; the memory figures start after it.
            await until(pilot, lambda: chart.train is not None and len(chart.train.xs) > 0, 30, "the first chart")
            result["memory_start"] = _memory()
            for i in range(PRESSES):
                weight = chart.weight
                await pilot.press("plus" if i % 2 == 0 else "minus")
                assert chart.weight != weight, "a smoothing key did not change the chart"
            # Follow live until every run has logged MIN_STEPS more than now.
            goal = {d: (run_info(d).step or 0) + MIN_STEPS for d in dirs}
            await until(pilot, lambda: all((run_info(d).step or 0) >= goal[d] for d in dirs), 120, "more steps")
            result["training_throughout"] = [d.name for d in dirs if run_info(d).state == "running"]

            _stop_all(dirs)
            await until(pilot, lambda: all(run_info(d).state == "stopped" for d in dirs), 60, "the runs stopping")
            expected = {d: list(range(1, len(_file_train_steps(d)) + 1)) for d in dirs}
            last = {d: steps[-1] for d, steps in expected.items()}
            await until(pilot, lambda: dash.history.state == "stopped" and dash.history.last_step == last[dash.run_dir],
                        30, "the dashboard catching up")
            # The Runs list is not re-read while the dashboard covers it: back to it, it catches up.
            await pilot.press("escape")
            await until(pilot, lambda: {r.run_dir: r.step for r in runs.runs} == last, 30, "the Runs table catching up")
            result["memory_end"] = _memory()
            result["expected"] = expected
            result["dash"] = (dash.run_dir, {k: (len(dash.history.series[k]), list(dash.history.series[k].xs))
                                             for k in ("loss", "learning_rate", "grad_norm")})
            result["table"] = {r.run_dir: (r.state, r.step) for r in runs.runs}

    dirs = _start_trainers(isolated)
    try:
        asyncio.run(body(dirs))
    finally:
        _stop_all(dirs, strict=False)
        wait_for(lambda: all(run_info(d).state not in ("running", "stopping") for d in dirs), timeout=30)

    # Everything happened under load: all the runs were still training after the last step awaited.
    assert len(result["training_throughout"]) == RUNS, result["training_throughout"]
    for d, steps in result["expected"].items():
        assert len(steps) >= MIN_STEPS, f"{d.name} logged only {len(steps)} steps"
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
    print(f"RSS {rss0:.1f} -> {rss1:.1f} MiB, Python heap blocks {blocks0} -> {blocks1}")
    assert rss1 - rss0 < RSS_GROWTH_MB, f"RSS grew {rss1 - rss0:.1f} MiB while the app followed the runs"
