"""Rewind and fork in the app, by Pilot: the Fork / Rewind question of `r`, the checkpoints
table that lists what exists, the dashboard of a rewound run and of a fork, the Runs list."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from _dashrun import append_events, make_checkpoint, write_run
from waiting import until

from tuitrain.ui.app import TuitrainApp
from tuitrain.ui.dialogs.forkrewind import ForkOrRewindScreen
from tuitrain.ui.screens.dashboard import DashboardScreen
from tuitrain.ui.widgets.charts import LineChart, LossChart
from tuitrain.ui.widgets.checkpoints import CheckpointTable

pytestmark = pytest.mark.anyio


def _status(screen) -> str:
    return str(screen.query_one("#status-text").render())


def _rows(table: CheckpointTable) -> dict[str, str]:
    """checkpoint name -> its best cell."""
    return {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[-1]) for i in range(table.row_count)}


async def _dashboard(pilot, run: Path, rows: int) -> DashboardScreen:
    app = pilot.app
    app.push_screen(DashboardScreen(run))
    await until(pilot, lambda: isinstance(app.screen, DashboardScreen)
                and app.screen.query_one(CheckpointTable).row_count == rows, f"{rows} checkpoint rows")
    return app.screen


@pytest.fixture
def controls(monkeypatch):
    """resume() and fork() recorded instead of starting trainers."""
    import tuitrain.runs.fork as fork_mod
    import tuitrain.runs.launch as launch_mod

    calls = []

    def resume(run, checkpoint=None, **kw):
        calls.append(("resume", Path(run).name, checkpoint))
        return SimpleNamespace(rewinds=[], name=Path(run).name, run_dir=Path(run))

    def fork(run, checkpoint=None, name=None, **kw):
        calls.append(("fork", Path(run).name, checkpoint, name))
        forked = write_run(Path(run).parent, name or "forked", steps=10)
        return SimpleNamespace(run_dir=forked, name=forked.name)

    monkeypatch.setattr(launch_mod, "resume", resume)
    monkeypatch.setattr(fork_mod, "fork", fork)
    return calls


async def test_r_on_the_latest_checkpoint_resumes_and_R_resumes_the_latest(runs_root, controls):
    run = write_run(runs_root, "delta", steps=150)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await _dashboard(pilot, run, 3)
        screen.query_one(CheckpointTable).move_cursor(row=2)
        await pilot.press("r")
        await until(pilot, lambda: len(controls) == 1, "the resume")
        await pilot.press("R")
        await until(pilot, lambda: len(controls) == 2, "the second resume")
        assert not isinstance(app.screen, ForkOrRewindScreen)
    assert controls == [("resume", "delta", "checkpoint-150"), ("resume", "delta", None)]


async def test_r_on_an_older_checkpoint_asks_fork_or_rewind(runs_root, controls):
    run = write_run(runs_root, "delta", steps=150)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _dashboard(pilot, run, 3)
        table = screen.query_one(CheckpointTable)
        table.move_cursor(row=1)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ForkOrRewindScreen), "the question")
        dialog = app.screen
        assert dialog.query_one("#fork-name").value == "delta-from-100"  # pre-filled, free
        assert app.focused is dialog.query_one("#fork")  # fork is the default
        assert dialog.screen.region.contains_region(dialog.query_one("#fork").region)  # fits 80x24
        text = " ".join(str(label.render()) for label in dialog.query("Label"))
        assert "checkpoint-150 moves to delta/rewound/" in text
        await pilot.press("escape")  # cancel: nothing happens
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard again")
        assert controls == []

        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ForkOrRewindScreen), "the question again")
        await pilot.click("#rewind")
        await until(pilot, lambda: controls, "the rewind")
        assert controls == [("resume", "delta", "checkpoint-100")]

        await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ForkOrRewindScreen), "the question, a third time")
        app.screen.query_one("#fork-name").value = "gentler"
        await pilot.press("enter")  # the default: fork
        await until(pilot, lambda: len(controls) == 2, "the fork")
        assert controls[1] == ("fork", "delta", "checkpoint-100", "gentler")
        # the fork's dashboard opens
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.run_dir.name == "gentler",
                    "the fork's dashboard")


async def test_r_on_a_running_run_says_stop_first(runs_root, controls):
    import subprocess
    import sys

    run = write_run(runs_root, "live", steps=150, state="running")
    (run / "run.json").write_text(json.dumps({**json.loads((run / "run.json").read_text()), "state": "running"}))
    # another process owns the run, as its trainer would
    owner = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], "
                              "os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); "
                              "time.sleep(120)", str(run / ".owner.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "held"
        app = TuitrainApp(runs_root=runs_root)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _dashboard(pilot, run, 3)
            await until(pilot, lambda: screen.info is not None and screen.info.state == "running", "the run's record")
            screen.query_one(CheckpointTable).move_cursor(row=0)
            await pilot.press("r")
            await until(pilot, lambda: any("stop it before" in n.message for n in app._notifications), "the notice")
            assert not isinstance(app.screen, ForkOrRewindScreen)
    finally:
        owner.kill()
        owner.wait()
    assert controls == []


async def test_the_checkpoints_table_lists_what_exists_and_one_best(runs_root):
    run = write_run(runs_root, "rotated", steps=200)
    shutil.rmtree(run / "checkpoint-50")  # rotated away, as its event stays in the log
    # each checkpoint was the best when written; the last event names the best now
    append_events(run, [{"kind": "checkpoint", "t": 1300.0, "step": 200, "path": "checkpoint-200", "bytes": 10,
                         "is_best": True, "best_checkpoint": "checkpoint-150", "best_metric": 0.5,
                         "removed": ["checkpoint-50"]}])
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        from test_runs_screen import cells, loaded

        assert cells(await loaded(pilot), 0)[7] == "0.5"  # the Runs list's best: the run's best metric
        screen = await _dashboard(pilot, run, 3)
        table = screen.query_one(CheckpointTable)
        rows = _rows(table)
        assert list(rows) == ["checkpoint-100", "checkpoint-150", "checkpoint-200"]
        assert [name for name, best in rows.items() if "best" in best] == ["checkpoint-150"]
        shutil.rmtree(run / "checkpoint-100")  # removed while the dashboard is open
        await until(pilot, lambda: table.row_count == 2, "the row of the removed checkpoint to go")
        assert table.highlighted_checkpoint in ("checkpoint-150", "checkpoint-200")


def _rewound_run(root: Path) -> Path:
    """A run that trained to 200, was rewound to 100 (150 and 200 set aside) and is at 120."""
    run = write_run(root, "rew", steps=200)
    folder = run / "rewound" / "20261201-101010"
    folder.mkdir(parents=True)
    for step in (150, 200):
        (run / f"checkpoint-{step}").rename(folder / f"checkpoint-{step}")
    record = {"step": 100, "checkpoint": "checkpoint-100", "from_step": 200, "folder": "rewound/20261201-101010",
              "checkpoints": ["checkpoint-150", "checkpoint-200"], "t": 1500.0, "line_seconds": 100.0}
    data = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**data, "rewinds": [record], "resumed_from": "checkpoint-100",
                                              "state": "stopped"}))
    append_events(run, [{"v": 1, "kind": "start", "t": 1500.0, "run": "rew", "max_steps": 200, "step": 100,
                         "resumed_from": "checkpoint-100", "config": {},
                         "rewound": {"folder": record["folder"], "from_step": 200, "checkpoints": record["checkpoints"]}}]
                  + [{"kind": "train", "t": 1500.0 + s, "step": s, "loss": 9.0} for s in range(101, 121)]
                  + [{"kind": "status", "t": 1521.0, "state": "stopped", "error": None}])
    return run


async def test_a_rewound_run_follows_its_new_line_and_shows_the_abandoned_one_on_request(runs_root):
    from test_runs_screen import cells, loaded

    run = _rewound_run(runs_root)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        runs = await loaded(pilot)
        assert cells(runs, 0)[2] == "stopped · rewound at 100 · 1 abandoned line"
        assert cells(runs, 0)[5] == "120/200"
        screen = await _dashboard(pilot, run, 2)
        assert list(_rows(screen.query_one(CheckpointTable))) == ["checkpoint-50", "checkpoint-100"]
        await until(pilot, lambda: "rewound at 100 · 1 abandoned line" in _status(screen)
                    and "step 120/200" in _status(screen), "the status of the new line")
        chart = screen.query_one(LossChart)
        assert max(chart.train.xs) == 120 and chart.abandoned == []
        await pilot.press("a")
        await until(pilot, lambda: chart.abandoned, "the abandoned line")
        assert min(chart.abandoned[0].xs) > 100 and max(chart.abandoned[0].xs) == 200
        assert chart.x_limits == (1, 200)  # the step axis reaches the end of the abandoned line
        assert "abandoned" in chart.render().plain
        await pilot.press("a")
        await until(pilot, lambda: not chart.abandoned, "the abandoned line hidden again")
        assert chart.x_limits == (1, 120)


async def test_a_fork_draws_its_parent_segment(runs_root):
    parent = write_run(runs_root, "parent", steps=200)
    size = (parent / "metrics.jsonl").stat().st_size
    fork = runs_root / "parent-from-100"
    fork.mkdir()
    make_checkpoint(fork, 100)
    (fork / "run.json").write_text(json.dumps({
        "id": "f", "name": "parent-from-100", "state": "finished", "launcher": "local", "started": 3000.0,
        "ended": 3050.0, "parent": {"run": "parent", "run_dir": str(parent), "checkpoint": "checkpoint-100",
                                    "step": 100, "metrics_bytes": size}}))
    append_events(fork, [{"v": 1, "kind": "start", "t": 3000.0, "max_steps": 150, "step": 100,
                          "resumed_from": "checkpoint-100", "config": {},
                          "parent": {"run": "parent", "checkpoint": "checkpoint-100", "step": 100}}]
                  + [{"kind": "train", "t": 3000.0 + s, "step": s, "loss": 5.0, "learning_rate": 1e-4}
                     for s in range(101, 151)]
                  + [{"kind": "status", "t": 3051.0, "state": "finished", "error": None}])
    # the parent goes on after the fork was made: the fork's parent segment does not change
    append_events(parent, [{"kind": "start", "t": 4000.0, "max_steps": 300, "step": 200, "resumed_from": "checkpoint-200"}]
                  + [{"kind": "train", "t": 4000.0 + s, "step": s, "loss": 7.0} for s in range(201, 260)])
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await _dashboard(pilot, fork, 1)
        chart = screen.query_one(LossChart)
        await until(pilot, lambda: chart.parent_line is not None, "the parent segment")
        xs = chart.parent_line.xs
        assert min(xs) == 1 and max(xs) == 100  # the parent's line up to the fork, not past it
        assert min(chart.train.xs) == 101
        assert "parent" in chart.render().plain
        lr = screen.query_one("#lr-chart", LineChart)
        assert [line.label for line in lr.series_lines] == ["parent", "lr"]
        assert "fork of parent at 100" in _status(screen)
        assert screen.query_one(LossChart).x_limits == (1, 150)


async def test_compare_lines_up_a_parent_and_its_fork_by_step(runs_root):
    from tuitrain.ui.screens.compare import CompareScreen

    parent = write_run(runs_root, "p", steps=200)
    fork = runs_root / "p-from-100"
    fork.mkdir()
    (fork / "run.json").write_text(json.dumps({"id": "f", "name": "p-from-100", "state": "finished",
                                               "parent": {"run": "p", "run_dir": str(parent), "step": 100}}))
    append_events(fork, [{"v": 1, "kind": "start", "t": 3000.0, "max_steps": 200, "step": 100,
                          "resumed_from": "checkpoint-100"}]
                  + [{"kind": "train", "t": 3000.0 + s, "step": s, "loss": 0.2} for s in range(101, 201)])
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        app.push_screen(CompareScreen([parent, fork]))
        await until(pilot, lambda: isinstance(app.screen, CompareScreen)
                    and len(app.screen.query_one("#cmp-loss", LineChart).series_lines) == 2, "both runs")
        lines = app.screen.query_one("#cmp-loss", LineChart).series_lines
        parent_xs, fork_xs = lines[0].series.xs, lines[1].series.xs
        assert min(parent_xs) == 1 and max(parent_xs) == 200
        assert min(fork_xs) == 101 and max(fork_xs) == 200  # on the same step axis as the parent
