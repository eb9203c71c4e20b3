"""The New-run dialog: it starts from the preset's own [launch], labels its fields, and
overrides only what the user changed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from textual.widgets import Input, Label, Select

from tuitrain.paths import shipped_presets
from tuitrain.ui.app import TuitrainApp
from tuitrain.ui.screens.newrun import NewRunScreen, launch_overrides
from waiting import until

pytestmark = pytest.mark.anyio


async def _dialog(pilot, preset=None) -> NewRunScreen:
    app = pilot.app
    await until(pilot, lambda: app.screen.__class__.__name__ == "RunsScreen", "the runs")
    from tuitrain.ui.navigation import NewRun

    app.post_message(NewRun(preset_path=preset))
    await until(pilot, lambda: isinstance(app.screen, NewRunScreen), "the dialog")
    return app.screen


@pytest.fixture
def launches(monkeypatch, runs_root):
    calls = []

    def fake(preset, overrides=(), name=None):
        calls.append((preset.name, list(overrides)) + ((name,) if name is not None else ()))
        return SimpleNamespace(run_dir=runs_root / "new", name=name or "new")

    monkeypatch.setattr("tuitrain.runs.launch.launch", fake)
    return calls


async def test_a_torchrun_preset_launches_under_torchrun(runs_root, launches):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(100, 30)) as pilot:
        dialog = await _dialog(pilot, shipped_presets()["ddp-cpu"])
        assert dialog.query_one("#newrun-launcher", Select).value == "torchrun"
        assert dialog.query_one("#newrun-nproc", Input).value == "2"
        assert "from the preset: torchrun, 2" in str(dialog.query_one("#newrun-from").render())
        await pilot.click("#launch")
        await until(pilot, lambda: launches, "the launch")
    assert launches == [("ddp-cpu.toml", [])]


async def test_only_what_the_user_changes_is_overridden(runs_root, launches):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(100, 30)) as pilot:
        dialog = await _dialog(pilot, shipped_presets()["ddp-cpu"])
        dialog.query_one("#newrun-nproc", Input).value = "3"
        await pilot.click("#launch")
        await until(pilot, lambda: launches, "the launch")
    assert launches == [("ddp-cpu.toml", ["launch.nproc_per_node=3"])]
    assert launch_overrides({"launcher": "torchrun", "nproc_per_node": 2}, "local", 2) == \
        ['launch.launcher="local"', "launch.nproc_per_node=1"]
    assert launch_overrides({"launcher": "local", "nproc_per_node": 1}, "torchrun", "gpu") == \
        ['launch.launcher="torchrun"', 'launch.nproc_per_node="gpu"']


async def test_choosing_another_preset_reloads_its_launch_values(runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(100, 30)) as pilot:
        dialog = await _dialog(pilot)
        assert dialog.query_one("#newrun-launcher", Select).value == "local"
        dialog.query_one("#newrun-shipped", Select).value = str(shipped_presets()["ddp-cpu"])
        await until(pilot, lambda: dialog.query_one("#newrun-launcher", Select).value == "torchrun", "torchrun")
        assert not dialog.query_one("#newrun-nproc", Input).disabled


async def test_every_field_has_a_label(runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await _dialog(pilot)
        for line in dialog.query(".form-line"):
            label = line.query_one(Label)
            control = line.query(Input).first() if line.query(Input) else line.query_one(Select)
            assert str(label.render()).strip() and control.region.x > label.region.x
        labels = [str(line.query_one(Label).render()).strip() for line in dialog.query(".form-line")]
        assert labels == ["Shipped preset", "Preset path", "Run name", "Launcher", "Processes per node"]
        assert dialog.screen.region.contains_region(dialog.query_one("#launch").region)  # fits 80x24


async def test_a_bad_process_count_is_refused_in_the_dialog(runs_root, launches):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(100, 30)) as pilot:
        dialog = await _dialog(pilot, shipped_presets()["ddp-cpu"])
        dialog.query_one("#newrun-nproc", Input).value = "many"
        await pilot.click("#launch")
        await until(pilot, lambda: "not a number" in str(dialog.query_one("#newrun-error").render()), "the error")
    assert launches == []


async def test_the_run_name_field_names_the_run(runs_root, launches):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(100, 30)) as pilot:
        dialog = await _dialog(pilot, shipped_presets()["quickstart"])
        dialog.query_one("#newrun-name", Input).value = "cosine-lr"
        await pilot.click("#launch")
        await until(pilot, lambda: launches, "the launch")
    assert launches == [("quickstart.toml", [], "cosine-lr")]


async def test_a_bad_run_name_is_refused_in_the_dialog(runs_root, launches):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(100, 30)) as pilot:
        dialog = await _dialog(pilot, shipped_presets()["quickstart"])
        dialog.query_one("#newrun-name", Input).value = "my run/1"
        await pilot.click("#launch")
        await until(pilot, lambda: "no spaces or slashes" in str(dialog.query_one("#newrun-error").render()),
                    "the error")
    assert launches == []


async def test_a_taken_run_name_is_refused_with_a_free_one(runs_root):
    """The real `launch()`: the name check happens before anything is created or started."""
    from conftest import write_run

    write_run(runs_root, "cosine")
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(100, 30)) as pilot:
        dialog = await _dialog(pilot, shipped_presets()["quickstart"])
        dialog.query_one("#newrun-name", Input).value = "cosine"
        await pilot.click("#launch")
        await until(pilot, lambda: "try 'cosine-2'" in str(dialog.query_one("#newrun-error").render()), "the error")
        assert not dialog.query_one("#launch").disabled  # the user can change the name and launch again
    assert sorted(p.name for p in runs_root.iterdir()) == ["cosine"]


async def test_an_unknown_preset_name_gets_the_closest_shipped_one(runs_root, launches):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(100, 30)) as pilot:
        dialog = await _dialog(pilot)
        dialog.query_one("#newrun-path", Input).value = "quickstrat"
        await pilot.click("#launch")
        await until(pilot, lambda: "did you mean 'quickstart'?" in str(dialog.query_one("#newrun-error").render()),
                    "the suggestion")
    assert launches == []
