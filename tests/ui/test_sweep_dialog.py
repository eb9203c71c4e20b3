"""The editor's sweep dialog: ctrl+w (or the palette's "Sweep…") opens it on the focused
field; typed axes show the member count and every member's LR schedule overlaid; a bad
value shows its one-line error and launches nothing; a launch opens the sweep's screen."""

from __future__ import annotations

import json
import shutil

import pytest
from _dashrun import ScreenApp
from textual.widgets import Input, Select
from waiting import until

from tuitrain.paths import presets_dir
from tuitrain.ui.app import TuitrainApp
from tuitrain.ui.dialogs.sweep import AxisRow, SweepDialog
from tuitrain.ui.screens.editor import EditorScreen
from tuitrain.ui.widgets.form import GroupForm
from tuitrain.ui.widgets.lrchart import LRChart

pytestmark = pytest.mark.anyio


@pytest.fixture
def path(tmp_path):
    copy = tmp_path / "mine.toml"
    shutil.copy(presets_dir() / "quickstart.toml", copy)
    return copy


async def dialog_on(pilot, path, field: str = "optimizer.lr_scheduler_type") -> SweepDialog:
    """The editor on `path`, the cursor in `field`'s row, then ctrl+w."""
    app = pilot.app
    app.push_screen(EditorScreen(path))
    await until(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.preset is not None
                and app.screen.query_one(GroupForm).rows(), "the editor")
    editor = app.screen
    if editor.group != field.split(".")[0]:
        await editor.select_group(field.split(".")[0])
    row = editor.query_one(GroupForm).rows()[field]
    (list(row.query(Input)) or list(row.query(Select)))[0].focus()
    await pilot.press("ctrl+w")
    await until(pilot, lambda: isinstance(app.screen, SweepDialog), "the sweep dialog")
    return app.screen


async def previewed(pilot, dialog, what: str) -> None:
    await until(pilot, lambda: what in str(dialog.query_one("#sweep-summary").render()), what)


def axis(dialog, index: int) -> AxisRow:
    return list(dialog.query(AxisRow))[index]


async def alone(pilot) -> SweepDialog:
    """The dialog as the editor opens it (on a bare app: the editor is slow to build)."""
    await until(pilot, lambda: isinstance(pilot.app.screen, SweepDialog), "the sweep dialog")
    return pilot.app.screen


def dialog_app(path, runs_root, **kwargs) -> ScreenApp:
    from tuitrain.config import load_preset

    preset = load_preset(path)
    return ScreenApp(lambda: SweepDialog(path, task_name=preset.task.name, preset_sweep=preset.sweep,
                                         runs_root=runs_root, **kwargs))


async def test_ctrl_w_opens_the_dialog_on_the_focused_field(path, runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        dialog = await dialog_on(pilot, path, "core.max_steps")  # the group the editor opens on
        assert axis(dialog, 0).axis == ("grid", "core.max_steps", "")  # the focused field
        assert dialog.focused is axis(dialog, 0).query_one(".axis-values")  # its values next
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, EditorScreen), "back in the editor")


async def test_axes_show_the_member_count_and_every_lr_schedule(path, runs_root):
    app = dialog_app(path, runs_root, first_key="optimizer.lr_scheduler_type")
    async with app.run_test(size=(160, 48)) as pilot:
        dialog = await alone(pilot)
        await pilot.press(*"linear,cosine,constant")
        await previewed(pilot, dialog, "3 members: lr_scheduler_type (3)")
        await pilot.press("ctrl+n")  # a second axis: the cursor in its field
        await until(pilot, lambda: len(dialog.query(AxisRow)) == 2 and dialog.focused is axis(dialog, 1).query_one(
            ".axis-key"), "the new axis")
        dialog.focused.value = "warmup_steps"
        axis(dialog, 1).query_one(".axis-values", Input).value = "0,100"
        await previewed(pilot, dialog, "6 members: lr_scheduler_type (3) × warmup_steps (2)")
        chart = dialog.query_one("#sweep-lr", LRChart)
        labels = [label for label, *_ in chart.schedules]
        assert labels[0] == "linear, 0" and len(labels) == 6
        curves = {label: chart.traces(60)[i].ys for i, label in enumerate(labels)}
        # each member's own schedule: a warmup starts low, constant stays flat, no two curves alike
        assert curves["constant, 0"][0] == curves["constant, 0"][-1]
        assert curves["linear, 100"][0] < curves["linear, 0"][0]
        assert len({tuple(ys) for ys in curves.values()}) == 6
        assert "LR of 6 members" in chart.caption
        text = chart.render().plain
        assert "● linear, 0" in text and "✖ constant, 100" in text  # the legend names each member by its glyph


async def test_a_bad_value_shows_its_one_line_error_and_launches_nothing(path, runs_root):
    app = dialog_app(path, runs_root, first_key="optimizer.lr_scheduler_type")
    async with app.run_test(size=(160, 48)) as pilot:
        dialog = await alone(pilot)
        await pilot.press(*"linear,cosin")  # typed: the dialog reads what the keys wrote
        await until(pilot, lambda: dialog.error is not None, "the error")
        summary = str(dialog.query_one("#sweep-summary").render())
        assert "cosin" in summary and "\n" not in summary.strip()
        assert dialog.query_one("#sweep-summary").has_class("-error")
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert isinstance(app.screen, SweepDialog) and list(runs_root.iterdir()) == []
        # zipped keys of different lengths: the member count cannot be told, and it says why
        axis(dialog, 0).query_one(".axis-values", Input).value = "linear,cosine"
        await pilot.press("ctrl+n")
        await until(pilot, lambda: len(dialog.query(AxisRow)) == 2, "the new axis")
        axis(dialog, 1).query_one(".axis-key", Input).value = "optimizer.warmup_ratio"
        axis(dialog, 1).query_one(".axis-values", Input).value = "0,0.1,0.2"
        axis(dialog, 0).query_one(Select).value = "zip"
        axis(dialog, 1).query_one(Select).value = "zip"
        await until(pilot, lambda: dialog.error is not None and "equal lengths" in dialog.error, "the zip error")
        assert list(runs_root.iterdir()) == []


async def test_launch_from_the_palette_opens_the_sweeps_screen(path, runs_root, monkeypatch):
    from tuitrain.sweeps import queue

    started = []
    # the queue's own tests run real queues; here the members must not train
    monkeypatch.setattr(queue, "start_queue", lambda sweep_dir: started.append(sweep_dir) or 0)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        app.push_screen(EditorScreen(path))
        await until(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.preset is not None, "the editor")
        await pilot.press("ctrl+p", *"Sweep")
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SweepDialog), "the dialog from the palette")
        dialog = app.screen
        dialog.query(".axis-key").first(Input).value = "optimizer.learning_rate"
        dialog.query(".axis-values").first(Input).value = "1e-3,3e-3"
        dialog.query_one("#sweep-name", Input).value = "lrs"
        await previewed(pilot, dialog, "2 members")
        await pilot.press("ctrl+l")
        from tuitrain.ui.screens.sweep import SweepScreen

        await until(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep's screen")
        sweep = json.loads((runs_root / "lrs" / "sweep.json").read_text())
        assert [m["values"] for m in sweep["members"]] == [{"optimizer.learning_rate": 0.001},
                                                            {"optimizer.learning_rate": 0.003}]
        assert started == [(runs_root / "lrs").resolve()]
        assert app.screen.info.name == "lrs"


async def test_a_presets_sweep_table_fills_the_axes(tmp_path, runs_root):
    """A preset's `[sweep]` table (as the shipped sweeps have): its axes and parallel, ready to launch or change."""
    path = tmp_path / "accumulation.toml"
    path.write_text((presets_dir() / "quickstart.toml").read_text() + (
        '\n[sweep]\nparallel = 1\n\n[sweep.zip]  # a fixed global batch\n'
        '"core.per_device_train_batch_size" = [8, 16, 32]\n"core.gradient_accumulation_steps" = [4, 2, 1]\n'))
    app = dialog_app(path, runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        dialog = await alone(pilot)
        assert [axis(dialog, i).axis for i in range(2)] == [
            ("zip", "core.per_device_train_batch_size", "8,16,32"), ("zip", "core.gradient_accumulation_steps", "4,2,1")]
        assert dialog.query_one("#sweep-parallel", Input).value == "1"
        await previewed(pilot, dialog, "3 members: zip of per_device_train_batch_size, gradient_accumulation_steps (3)")


async def test_members_the_device_cannot_train_are_said_and_the_rest_launch(path, runs_root, monkeypatch):
    from tuitrain.sweeps import queue

    monkeypatch.setattr(queue, "start_queue", lambda sweep_dir: 0)
    # the trainer's own device check runs in a child process; here it refuses one member
    monkeypatch.setattr(queue, "device_refusals", lambda members: {members[1].name: "fp16 needs a CUDA device"})
    app = dialog_app(path, runs_root, first_key="optimizer.learning_rate")
    async with app.run_test(size=(160, 48)) as pilot:
        dialog = await alone(pilot)
        dialog.query(".axis-values").first(Input).value = "1e-3,3e-3"
        await previewed(pilot, dialog, "2 members")
        await pilot.press("ctrl+l")
        await until(pilot, lambda: not isinstance(app.screen, SweepDialog), "the launch")
        assert [n.message for n in app._notifications] == ["refused learning_rate=0.003: fp16 needs a CUDA device"]


async def test_sampled_members_are_the_ones_previewed_and_launched(path, runs_root, monkeypatch):
    """Random search: no seed typed, so the dialog draws one; the draws previewed are the ones launched."""
    from tuitrain.sweeps import queue

    monkeypatch.setattr(queue, "start_queue", lambda sweep_dir: 0)
    app = dialog_app(path, runs_root, first_key="optimizer.learning_rate")
    async with app.run_test(size=(160, 48)) as pilot:
        dialog = await alone(pilot)
        axis(dialog, 0).query_one(Select).value = "sample"
        dialog.query(".axis-values").first(Input).value = "loguniform(1e-4,1e-2)"
        dialog.query_one("#sweep-count", Input).value = "3"
        dialog.query_one("#sweep-name", Input).value = "lr-search"
        await previewed(pilot, dialog, "3 members: learning_rate ~ loguniform(0.0001, 0.01) (3 draws, seed ")
        previewed_lrs = [args.learning_rate for _, args, _, _ in dialog.query_one("#sweep-lr", LRChart).schedules]
        assert len(set(previewed_lrs)) == 3 and all(1e-4 <= lr <= 1e-2 for lr in previewed_lrs)
        await pilot.press("ctrl+l")
        await until(pilot, lambda: not isinstance(app.screen, SweepDialog), "the launch")
        sweep = json.loads((runs_root / "lr-search" / "sweep.json").read_text())
        assert sweep["seed"] == dialog.drawn_seed
        assert [m["values"]["optimizer.learning_rate"] for m in sweep["members"]] == previewed_lrs
