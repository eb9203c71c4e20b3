"""Preset editor: live validation at the field, derived values, LR chart, save keeps comments."""

from __future__ import annotations

import shutil

import pytest

from tuitrain.paths import presets_dir
from tuitrain.ui.app import TuitrainApp
from tuitrain.ui.screens.editor import EditorScreen
from tuitrain.ui.widgets.form import GroupForm
from tuitrain.ui.widgets.lrchart import LRChart
from waiting import screen_text, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def path(tmp_path):
    """A copy of the shipped quickstart preset to edit."""
    copy = tmp_path / "mine.toml"
    shutil.copy(presets_dir() / "quickstart.toml", copy)
    return copy


async def open_editor(pilot, path) -> EditorScreen:
    """The editor on `path`, its form built and the preset validated."""
    app = pilot.app
    app.push_screen(EditorScreen(path))
    await until(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.doc is not None
                and app.screen.query_one(GroupForm).rows() and app.screen._seen_breakpoints, "the editor")
    return app.screen


async def validated(pilot, screen) -> None:
    """Wait for the edit in flight to be validated (the editor waits VALIDATE_DELAY_S for more keys)."""
    await until(pilot, lambda: screen._timer is None, "the validation")


async def test_edit_validates_at_field_updates_chart_and_saves_with_comments(path, runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_editor(pilot, path)
        assert screen.preset is not None
        assert screen.derived["total steps"] == 500 and screen.derived["warmup steps"] == 20
        await screen.select_group("optimizer")
        rows = screen.query_one(GroupForm).rows()
        assert not screen.dirty
        lr = rows["optimizer.learning_rate"].query_one("Input")
        lr.value = "abc"
        await until(pilot, lambda: rows["optimizer.learning_rate"].error is not None, "the field's error")
        assert "not a number" in rows["optimizer.learning_rate"].error
        lr.value = "0.001"
        await until(pilot, lambda: rows["optimizer.learning_rate"].error is None, "the error to clear")
        await validated(pilot, screen)
        assert screen.preset.args.learning_rate == 0.001
        rows["optimizer.lr_scheduler_type"].query_one("Select").value = "constant"
        await until(pilot, lambda: screen.dirty and screen._timer is not None, "the edit")
        await validated(pilot, screen)
        chart = screen.query_one(LRChart)
        assert chart.args.lr_scheduler_type == "constant"
        assert chart.caption.startswith("LR constant")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not screen.dirty, "the save")
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
            await pilot.pause()
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
            await pilot.pause()
            assert len(_visible_controls(screen)) >= 5, (group, _visible_controls(screen))
        chart = screen.query_one(LRChart)
        assert screen.screen.region.contains_region(chart.region) and chart.region.height >= 5
        before = chart.render().plain
        # HF runs update k at λ(k−1): a 20-step warmup peaks at step 21, and the caption says both
        assert chart.caption == "LR cosine · warmup 20 · peak 0.003 at step 21"
        assert "⣀" in before or "⠤" in before  # a braille curve is drawn, not "too small"
        # The user tabs to the scheduler: the form scrolls to it and the chart stays on screen.
        select = screen.query_one("#field-optimizer-lr_scheduler_type")
        select.focus()
        await until(pilot, lambda: "optimizer.lr_scheduler_type" in _visible_controls(screen), "the scroll")
        select.value = "constant"
        await until(pilot, lambda: screen.dirty, "the edit")
        await validated(pilot, screen)
        assert chart.caption.startswith("LR constant") and "warmup" not in chart.caption
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
        await pilot.pause()
        assert_snapshot(app, f"editor_{size[0]}x{size[1]}")


def _ticks(chart) -> list[str]:
    """The x axis labels of the chart as drawn (its last line, less the y axis name)."""
    return chart.render().plain.splitlines()[-1].replace("↑LR", "").split()


@pytest.mark.parametrize("width", [80, 100, 120, 137, 160])
async def test_lr_chart_steps_are_whole_numbers_at_every_width(path, runs_root, width):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(width, 40)) as pilot:
        screen = await open_editor(pilot, path)
        ticks = _ticks(screen.query_one(LRChart))
        assert ticks == ["1", "step", "500"], ticks


async def test_a_field_that_does_not_parse_blocks_saving_and_launching(path, runs_root):
    before = path.read_text()
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_editor(pilot, path)
        rows = screen.query_one(GroupForm).rows()
        batch = rows["core.per_device_train_batch_size"].query_one("Input")
        batch.focus()
        # backspacing 32 leaves 3 (valid), then -8: the file must not get the leftover 3
        await pilot.press("end", "backspace", "backspace", "minus", "8")
        await until(pilot, lambda: str(screen.query_one("#editor-status").render()).startswith("✗ 1 error"),
                    "one error counted")
        assert rows["core.per_device_train_batch_size"].typo == "must be >= 1"
        status = str(screen.query_one("#editor-status").render())
        assert status.startswith("✗ 1 error · f8") and "per_device_train_batch_size" in status
        assert "invalid" in str(screen.query_one("#derived").render())
        assert screen.query_one(LRChart).args is None  # no stale curve
        await pilot.press("ctrl+s")
        await pilot.press("ctrl+l")
        assert path.read_text() == before and screen.dirty
        assert sum("Nothing was written" in n.message for n in app._notifications) == 2
        # a second one in another group; f8 goes to each in turn
        await screen.select_group("optimizer")
        lr = screen.query_one(GroupForm).rows()["optimizer.learning_rate"].query_one("Input")
        lr.value = "0.01x0.01x"
        await until(pilot, lambda: str(screen.query_one("#editor-status").render()).startswith("✗ 2 errors"),
                    "two errors counted")
        await pilot.press("f8")
        await until(pilot, lambda: screen.focused is batch, "f8 to the batch size")
        await pilot.press("f8")
        await until(pilot, lambda: screen.focused is lr, "f8 to the learning rate")
        lr.value = "0.01"
        batch.value = "16"
        await until(pilot, lambda: screen.error_count() == 0, "the errors fixed")
        await validated(pilot, screen)
        assert str(screen.query_one("#editor-status").render()).startswith("✓ valid")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not screen.dirty, "the save")
    text = path.read_text()
    assert "per_device_train_batch_size = 16" in text and "learning_rate = 0.01" in text


async def test_an_emptied_field_means_its_default(path, runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_editor(pilot, path)
        row = screen.query_one(GroupForm).rows()["core.max_steps"]
        control = row.query_one("Input")
        assert control.placeholder == "-1"  # the default, shown where the value was
        control.value = ""
        await until(pilot, lambda: screen.dirty, "the edit")
        await validated(pilot, screen)
        assert row.error is None and screen.preset.args.max_steps == -1
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not screen.dirty, "the save")
    assert "max_steps" not in path.read_text().split("[optimizer]")[0].split("[core]")[1]


async def test_a_misspelled_choice_in_the_file_shows_with_its_error(path, runs_root):
    path.write_text(path.read_text().replace('lr_scheduler_type = "cosine"', 'lr_scheduler_type = "cosinee"'))
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_editor(pilot, path)
        await screen.select_group("optimizer")
        row = screen.query_one(GroupForm).rows()["optimizer.lr_scheduler_type"]
        select = row.query_one("Select")
        row.scroll_visible(animate=False)
        await pilot.pause()
        assert select.value == "cosinee"
        assert any("cosinee (not a choice)" in line for line in screen_text(app))
        assert "cosine" in (row.error or "")  # the validator's error, with its suggestion
        select.value = "cosine"
        await until(pilot, lambda: screen.dirty, "the edit")
        await validated(pilot, screen)
        assert row.error is None and screen.error_count() == 0


async def test_warmup_longer_than_the_run_is_said_in_the_status_and_the_chart(path, runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_editor(pilot, path)
        await screen.select_group("optimizer")
        row = screen.query_one(GroupForm).rows()["optimizer.warmup_steps"]
        row.query_one("Input").value = "600"
        await until(pilot, lambda: screen.dirty, "the edit")
        await validated(pilot, screen)
        assert screen.error_count() == 0  # a notice: a short trial run is legitimate
        status = str(screen.query_one("#editor-status").render())
        assert status.startswith("✓ valid") and "warmup_steps: warmup lasts 600 steps and the run 500" in status
        assert screen.query_one(LRChart).caption == "LR cosine · warmup 600 · peak 0.003 never reached (0.0025 at step 500)"


async def test_a_run_s_preset_is_read_only_and_saves_as_a_new_preset(runs_root, tmp_path):
    from conftest import write_run
    from tuitrain.ui.dialogs.saveas import SaveAsScreen
    from tuitrain.ui.dialogs.savechoice import SaveChoiceScreen

    run = write_run(runs_root, "trained")
    frozen = run / "preset.toml"
    shutil.copy(presets_dir() / "quickstart.toml", frozen)
    record = frozen.read_text()
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_editor(pilot, frozen)
        assert screen.read_only and "read-only: the preset run trained trained with" in screen.sub_title
        screen.query_one(GroupForm).rows()["core.max_steps"].query_one("Input").value = "700"
        await until(pilot, lambda: screen.dirty, "the edit")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SaveChoiceScreen), "the choice")
        assert [b.label.plain for b in app.screen.query("Button")] == [
            "Save as a new preset…", "Fork this run with these changes", "Cancel"]
        await pilot.click("#choice-new-preset")
        await until(pilot, lambda: isinstance(app.screen, SaveAsScreen), "the path dialog")
        target = tmp_path / "mine-from-run.toml"
        app.screen.query_one("Input").value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: not screen.dirty, "the save")
        assert screen.path == target and not screen.read_only
    assert frozen.read_text() == record
    assert "max_steps = 700" in target.read_text()


async def test_launch_from_the_editor_opens_the_new_run_s_dashboard(path, runs_root, monkeypatch):
    from types import SimpleNamespace

    from conftest import write_run
    from tuitrain.ui.screens.dashboard import DashboardScreen
    from tuitrain.ui.screens.newrun import NewRunScreen

    launched = write_run(runs_root, "launched", state="running", ended=None)
    calls = []

    def fake_launch(preset, overrides=(), name=None):
        calls.append((preset, list(overrides)))
        return SimpleNamespace(run_dir=launched, name="launched")

    monkeypatch.setattr("tuitrain.runs.launch.launch", fake_launch)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_editor(pilot, path)
        await pilot.press("ctrl+l")
        await until(pilot, lambda: isinstance(app.screen, NewRunScreen), "the launch dialog")
        await pilot.click("#launch")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "the new run's dashboard")
        assert app.screen.run_dir == launched
    assert calls == [(path, [])]  # the preset's own launcher: nothing overridden


async def test_a_run_s_edited_preset_forks_the_run(runs_root, monkeypatch):
    """"Fork this run with these changes": the edited text goes to `fork()`, the record stays
    as it was, and the fork's dashboard opens."""
    from conftest import write_run
    from tuitrain.ui.dialogs.savechoice import SaveChoiceScreen
    from tuitrain.ui.screens.dashboard import DashboardScreen

    run = write_run(runs_root, "trained")
    frozen = run / "preset.toml"
    shutil.copy(presets_dir() / "quickstart.toml", frozen)
    record = frozen.read_text()
    forked = write_run(runs_root, "trained-from-50", state="running", ended=None)
    calls = []

    def fake_fork(run_dir, checkpoint=None, name=None, overrides=(), preset_text=None, **kw):
        calls.append((run_dir, checkpoint, name, preset_text))
        from types import SimpleNamespace

        return SimpleNamespace(run_dir=forked, name=forked.name)

    monkeypatch.setattr("tuitrain.runs.fork.fork", fake_fork)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_editor(pilot, frozen)
        screen.query_one(GroupForm).rows()["core.max_steps"].query_one("Input").value = "900"
        await until(pilot, lambda: screen.dirty, "the edit")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SaveChoiceScreen), "the choice")
        button = app.screen.query_one("#choice-fork")
        assert app.screen.region.contains_region(button.region)  # the long label fits at 80 columns
        await pilot.click("#choice-fork")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "the fork's dashboard")
        assert app.screen.run_dir == forked and not screen.dirty
    assert len(calls) == 1
    run_dir, checkpoint, name, text = calls[0]
    assert run_dir == run and checkpoint is None and name is None
    assert "max_steps = 900" in text
    assert frozen.read_text() == record


async def test_opening_a_file_that_is_not_utf8_text_says_so_in_one_line(tmp_path, runs_root):
    """The editor's open path: a Latin-1 preset, a binary file and a FIFO are each refused
    with one line naming the file (and line), and the app goes back to the Runs screen."""
    import os

    from tuitrain.ui.screens.runs import RunsScreen

    (tmp_path / "latin1.toml").write_bytes("[core]\nmax_steps = 3  # café\n".encode("latin-1"))
    (tmp_path / "binary.toml").write_bytes(bytes(range(256)))
    os.mkfifo(tmp_path / "fifo.toml")
    expected = {"latin1.toml": ":2: not UTF-8 text (byte 0xe9 at column 21)", "binary.toml": ":1: a NUL byte",
                "fifo.toml": ": is a FIFO"}
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(120, 36)) as pilot:
        for name, want in expected.items():
            path = tmp_path / name
            app.push_screen(EditorScreen(path))
            await until(pilot, lambda: any(str(path) in n.message for n in app._notifications), f"the notice on {name}")
            notice = next(n.message for n in app._notifications if str(path) in n.message)
            assert notice.startswith(f"Cannot open {path}: {path}{want}") and "\n" not in notice, notice
            await until(pilot, lambda: isinstance(app.screen, RunsScreen), "the Runs screen again")
