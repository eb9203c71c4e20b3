"""The dashboard shows the end-of-training summary when a run ends."""

from __future__ import annotations

import time

from _dashrun import ScreenApp, append_events, sync, write_run
from tuitrain.textfmt import format_summary
from tuitrain.ui.screens.dashboard import DashboardScreen

SUMMARY = {"kind": "summary", "t": 1200.5, "step": 200, "epoch": 2.0, "train_runtime": 200.25,
           "train_samples_per_second": 8.0, "train_steps_per_second": 1.0, "total_flos": 0.0, "train_loss": 0.75}


@sync
async def test_status_shows_the_summary_once_training_ends(tmp_path):
    run = write_run(tmp_path, "gamma", steps=200, state="running")
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen

        def status() -> str:
            return str(screen.query_one("#status-text").render())

        deadline = time.monotonic() + 5
        while "step 200/200" not in status() and time.monotonic() < deadline:
            await pilot.pause(0.05)
            screen.redraw()
        assert "trained:" not in status()
        append_events(run, [SUMMARY, {"kind": "status", "t": 1201, "state": "finished", "error": None}])
        while "trained:" not in status() and time.monotonic() < deadline + 5:
            await pilot.pause(0.05)
            screen.redraw()
        assert f"trained: {format_summary(SUMMARY)}" in status()
