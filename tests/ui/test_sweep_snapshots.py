"""SVG snapshots where the sweep layouts matter: the Sweep screen at 80×24 and 160×48, the
Runs screen with a sweep unfolded, the sweep dialog at 80×24 (UPDATE_SNAPSHOTS=1
rewrites them; look at the SVGs before committing). Every input is fixed: a finished
sweep's events, its directory at a fixed path, UTC times, the default theme."""

from __future__ import annotations

import shutil
import time

import pytest
from _sweepdirs import write_sweep
from snapshot import assert_snapshot
from textual.widgets import DataTable, Input
from waiting import until

from tuitrain.paths import presets_dir
from tuitrain.ui.app import TuitrainApp
from tuitrain.ui.dialogs.sweep import SweepDialog
from tuitrain.ui.navigation import OpenSweep
from tuitrain.ui.screens.runs import RunsScreen
from tuitrain.ui.screens.sweep import SweepScreen

pytestmark = pytest.mark.anyio


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


def finished_sweep(root):
    return write_sweep(root, "shoot", [
        {"values": {"optimizer.lr_scheduler_type": "linear", "optimizer.warmup_ratio": 0.0}, "scale": 1.0},
        {"values": {"optimizer.lr_scheduler_type": "linear", "optimizer.warmup_ratio": 0.1}, "scale": 0.8},
        {"values": {"optimizer.lr_scheduler_type": "cosine", "optimizer.warmup_ratio": 0.0}, "scale": 1.2,
         "state": "diverged", "steps": 25, "diverge_at": 22},
        {"values": {"optimizer.lr_scheduler_type": "cosine", "optimizer.warmup_ratio": 0.1}, "scale": 0.9},
    ])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_sweep_screen_snapshot(snapshot_root, utc, size):
    sweep = finished_sweep(snapshot_root)
    app = TuitrainApp(runs_root=snapshot_root, theme="tuitrain-dark")
    async with app.run_test(size=size) as pilot:
        app.post_message(OpenSweep(sweep))
        await until(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep screen")
        screen = app.screen
        await until(pilot, lambda: screen.query_one(DataTable).row_count == 4 and screen.progress
                    and screen.query_one("#sweep-lr").series_lines and not screen._redraw_pending, "the screen to settle")
        await pilot.pause()
        assert_snapshot(app, f"sweep_{size[0]}x{size[1]}")


async def test_runs_screen_with_a_sweep_unfolded_snapshot(snapshot_root, utc):
    finished_sweep(snapshot_root)
    app = TuitrainApp(runs_root=snapshot_root, theme="tuitrain-dark")
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.sweeps
                    and app.screen.query_one(DataTable).row_count == 1, "the sweep's row")
        await pilot.press("f")
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 5, "the members")
        await pilot.pause()
        assert_snapshot(app, "runs_sweep_160x48")


async def test_sweep_dialog_snapshot(snapshot_root, utc):
    path = snapshot_root / "mine.toml"
    shutil.copy(presets_dir() / "quickstart.toml", path)
    app = TuitrainApp(runs_root=snapshot_root / "runs", theme="tuitrain-dark")
    async with app.run_test(size=(80, 24)) as pilot:
        # over the Runs screen, not the editor (slow to build): the dialog's own layout is the point
        app.push_screen(SweepDialog(path, task_name="char_gpt", runs_root=snapshot_root / "runs"))
        await until(pilot, lambda: isinstance(app.screen, SweepDialog), "the dialog")
        dialog = app.screen
        dialog.query(".axis-key").first(Input).value = "optimizer.lr_scheduler_type"
        dialog.query(".axis-values").first(Input).value = "linear,cosine,constant"
        await until(pilot, lambda: dialog.members == 3, "three members")
        dialog.query(".axis-values").first(Input).focus()
        await pilot.pause()
        assert_snapshot(app, "sweep_dialog_80x24")
