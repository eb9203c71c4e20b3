"""The dashboard shows the end-of-training summary when a run ends."""

from __future__ import annotations

from _dashrun import ScreenApp, append_events, sync, write_run
from tuitrain.textfmt import format_summary
from tuitrain.ui.screens.dashboard import DashboardScreen
from waiting import until

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

        def shows(text: str):
            def condition() -> bool:
                screen.redraw()
                return text in status()
            return condition

        await until(pilot, shows("step 200/200"), "the status line at step 200")
        assert "trained:" not in status()
        append_events(run, [SUMMARY, {"kind": "status", "t": 1201, "state": "finished", "error": None}])
        await until(pilot, shows("trained:"), "the summary in the status line")
        assert f"trained: {format_summary(SUMMARY)}" in status()
