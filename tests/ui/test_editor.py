"""Preset editor: live validation at the field, derived values, LR chart, save keeps comments."""

from __future__ import annotations

import shutil

import pytest

from tuitrain.paths import presets_dir
from tuitrain.ui.app import TuitrainApp
from tuitrain.ui.screens.editor import EditorScreen
from tuitrain.ui.widgets.form import GroupForm
from tuitrain.ui.widgets.lrchart import LRChart

pytestmark = pytest.mark.anyio


@pytest.fixture
def path(tmp_path):
    """A copy of the shipped quickstart preset to edit."""
    copy = tmp_path / "mine.toml"
    shutil.copy(presets_dir() / "quickstart.toml", copy)
    return copy


async def open_editor(pilot, path) -> EditorScreen:
    pilot.app.push_screen(EditorScreen(path))
    await pilot.pause(0.4)
    assert isinstance(pilot.app.screen, EditorScreen)
    return pilot.app.screen


async def test_edit_validates_at_field_updates_chart_and_saves_with_comments(path, runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_editor(pilot, path)
        assert screen.preset is not None
        assert screen.derived["total steps"] == 500 and screen.derived["warmup steps"] == 20
        await screen.select_group("optimizer")
        await pilot.pause(0.2)
        rows = screen.query_one(GroupForm).rows()
        assert not screen.dirty
        lr = rows["optimizer.learning_rate"].query_one("Input")
        lr.value = "abc"
        await pilot.pause(0.1)
        assert "not a number" in rows["optimizer.learning_rate"].error
        lr.value = "0.001"
        await pilot.pause(0.5)
        assert rows["optimizer.learning_rate"].error is None
        assert screen.preset.args.learning_rate == 0.001
        rows["optimizer.lr_scheduler_type"].query_one("Select").value = "constant"
        await pilot.pause(0.5)
        chart = screen.query_one(LRChart)
        assert chart.args.lr_scheduler_type == "constant"
        assert chart.title.startswith("LR constant")
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
    text = path.read_text()
    assert "learning_rate = 0.001" in text and 'lr_scheduler_type = "constant"' in text
    assert "# small models like a large rate" in text


async def test_every_group_shows_a_form_at_80x24(path, runs_root):
    from tuitrain.config import schema

    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_editor(pilot, path)
        for group in schema.GROUPS:
            await screen.select_group(group.key)
            await pilot.pause(0.05)
            assert screen.query_one(GroupForm).rows()
        assert not screen.dirty


def _visible_controls(screen) -> list[str]:
    """The fields whose control lies wholly inside the form's visible region."""
    form = screen.query_one(GroupForm)
    shown = []
    for name, row in form.rows().items():
        control = row.query_one(".field-control").children[0]
        region = control.region
        if region.area and form.region.contains_region(region):
            shown.append(name)
    return shown


async def test_80x24_shows_several_fields_and_a_chart_that_follows_the_scheduler(path, runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_editor(pilot, path)
        assert screen.has_class("-narrow") and screen.has_class("-short")
        for group in ("core", "optimizer"):
            await screen.select_group(group)
            await pilot.pause(0.2)
            assert len(_visible_controls(screen)) >= 5, (group, _visible_controls(screen))
        chart = screen.query_one(LRChart)
        assert screen.screen.region.contains_region(chart.region) and chart.region.height >= 5
        before = chart.render().plain
        assert chart.title.startswith("LR cosine") and "warmup ends 20" in chart.title
        assert "⣀" in before or "⠤" in before  # a braille curve is drawn, not "too small"
        # The user tabs to the scheduler: the form scrolls to it and the chart stays on screen.
        select = screen.query_one("#field-optimizer-lr_scheduler_type")
        select.focus()
        await pilot.pause(0.2)
        assert "optimizer.lr_scheduler_type" in _visible_controls(screen)
        select.value = "constant"
        await pilot.pause(0.5)
        assert chart.title.startswith("LR constant") and "warmup" not in chart.title
        after = chart.render().plain
        assert after != before and screen.screen.region.contains_region(chart.region)
        derived = str(screen.query_one("#derived").render())
        assert "global batch 32" in derived and "total 500" in derived and "\n" not in derived


async def test_160x48_lays_help_beside_the_fields(path, runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_editor(pilot, path)
        assert not screen.has_class("-narrow") and not screen.has_class("-short")
        row = screen.query_one(GroupForm).rows()["core.max_steps"]
        line, notes = row.query_one(".field-line"), row.query_one(".field-notes")
        assert notes.region.x >= line.region.right and notes.region.y == line.region.y
        assert len(_visible_controls(screen)) >= 5
        assert "warmup steps: 20" in str(screen.query_one("#derived").render())


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
async def test_snapshot(snapshot_root, size):
    from snapshot import assert_snapshot

    path = snapshot_root / "quickstart.toml"
    shutil.copy(presets_dir() / "quickstart.toml", path)
    app = TuitrainApp(runs_root=snapshot_root)
    async with app.run_test(size=size) as pilot:
        await open_editor(pilot, path)
        await pilot.pause(0.3)
        assert_snapshot(app, f"editor_{size[0]}x{size[1]}")
