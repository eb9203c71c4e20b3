import time

import pytest

from _dashrun import NASTY, ScreenApp, append_events, sync, write_run
from tuitrain.ui.screens.dashboard import DashboardScreen
from tuitrain.ui.widgets.charts import LossChart
from tuitrain.ui.widgets.checkpoints import CheckpointTable
from tuitrain.ui.widgets.logtail import LogTail
from tuitrain.ui.widgets.samples import SamplesView


async def settle(pilot, screen, cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        screen.redraw()
        if cond():
            return
    raise AssertionError("condition not met in time")


def _log_text(log: LogTail) -> str:
    return "\n".join(strip.text for strip in log.lines)


@sync
async def test_dashboard_shows_run_and_follows_appends(tmp_path):
    run = write_run(tmp_path, "alpha", steps=200, state="running")
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        table = screen.query_one(CheckpointTable)
        await settle(pilot, screen, lambda: table.row_count == 4)
        assert "★ best" in str(table.get_row("checkpoint-100")[-1])
        status = str(screen.query_one("#status-text").render())
        assert "step 200/200" in status
        # appending while open updates table, status and chart
        append_events(run, [{"kind": "start", "t": 2000, "max_steps": 300, "resumed_from": None, "step": 200}] +
                      [{"kind": "train", "t": 2000 + s, "step": s, "loss": 0.5} for s in range(201, 251)] +
                      [{"kind": "checkpoint", "t": 2050, "step": 250, "path": "checkpoint-250", "bytes": 10, "is_best": False}])
        await settle(pilot, screen, lambda: table.row_count == 5)
        assert "step 250/300" in str(screen.query_one("#status-text").render())
        chart = screen.query_one(LossChart)
        assert chart.train.xs[-1] > 240  # min/max decimation keeps the last bucket's extremes
        assert "loss" in chart.render().plain
        # log tail and samples show escapes and markup literally
        log = screen.query_one(LogTail)
        await settle(pilot, screen, lambda: "last line" in _log_text(log))
        text = _log_text(log)
        assert "\\x1b[31mRED\\x1b[0m [bold]not bold[/bold] \\x07bell" in text
        samples = str(screen.query_one(SamplesView).render())
        assert "sample at 250" not in samples and "[bold]not bold[/bold]" in samples and "\\x1b[31m" in samples


@sync
async def test_smoothing_keys_and_no_gpu_text(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "pynvml", None)
    run = write_run(tmp_path, "beta", steps=60)
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        chart = screen.query_one(LossChart)
        assert chart.weight == 0.6
        await pilot.press("+", "+")
        assert chart.weight == pytest.approx(0.7)
        await pilot.press("-")
        assert chart.weight == pytest.approx(0.65)
        await settle(pilot, screen, lambda: "no NVIDIA GPU" in str(screen.query_one("#gpu-text").render()))
        assert "run CUDA: allocated 1.25 GiB" in str(screen.query_one("#gpu-text").render())
        await pilot.press("tab", "tab")
        assert screen.focused is not None
        await pilot.press("escape")


@sync
async def test_corrupt_line_is_reported(tmp_path):
    run = write_run(tmp_path, "gamma", steps=30, corrupt=True)
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await settle(pilot, screen, lambda: "skipped 1 corrupt line" in str(screen.query_one("#status-text").render()))
        await pilot.pause(0.1)
        assert any("skipped 1 unreadable" in n.message for n in app._notifications)


@sync
async def test_resume_keys_call_runs_resume(tmp_path, monkeypatch):
    calls = []
    import tuitrain.runs.launch as launch

    monkeypatch.setattr(launch, "resume", lambda run, checkpoint=None, **kw: calls.append((run, checkpoint)))
    run = write_run(tmp_path, "delta", steps=150)
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        table = screen.query_one(CheckpointTable)
        await settle(pilot, screen, lambda: table.row_count == 3)
        table.move_cursor(row=1)
        await pilot.press("r")
        await settle(pilot, screen, lambda: len(calls) == 1)
        await pilot.press("R")
        await settle(pilot, screen, lambda: len(calls) == 2)
    assert calls == [(run, "checkpoint-100"), (run, None)]


@sync
async def test_stop_asks_first(tmp_path, monkeypatch):
    calls = []
    import tuitrain.runs.launch as launch

    monkeypatch.setattr(launch, "stop", lambda run: calls.append(run))
    run = write_run(tmp_path, "eps", steps=20, state="running")
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s")
        await pilot.press("n")
        await pilot.pause(0.1)
        assert calls == []
        await pilot.press("s")
        await pilot.press("y")
        deadline = time.monotonic() + 3
        while not calls and time.monotonic() < deadline:
            await pilot.pause(0.05)
    assert calls == [run]


@sync
async def test_footer_keeps_stop_quit_and_help_in_80_columns(tmp_path):
    from textual.widgets._footer import FooterKey

    from tuitrain.ui.app import TuitrainApp

    run = write_run(tmp_path, "gamma", steps=20)
    app = TuitrainApp(runs_root=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(DashboardScreen(run))
        await pilot.pause(0.2)
        keys = {k.key_display: k for k in app.screen.query(FooterKey)}
        for key in ("s", "q", "?", "r", "R"):
            assert keys[key].region.right <= 80, f"{key} is off the footer at 80 columns"
        await pilot.press("q")
    assert app.return_code == 0
