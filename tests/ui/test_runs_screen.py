"""Runs screen: listing, marks, confirmations, notices, help and snapshots, by Pilot."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from conftest import T0, write_run
from snapshot import assert_snapshot
from waiting import screen_text, until, workers_done

from tuitrain.ui.app import TuitrainApp
from tuitrain.ui.dialogs.confirm import ConfirmScreen
from tuitrain.ui.screens.help import HelpScreen
from tuitrain.textfmt import format_duration
from tuitrain.ui.screens.runs import RunsScreen, progress_bar

pytestmark = pytest.mark.anyio


async def loaded(pilot) -> RunsScreen:
    """The Runs screen once it listed the runs and laid out its columns."""
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded and app.screen.columns,
                "the runs to be listed")
    return app.screen


def cells(screen: RunsScreen, row: int) -> list[str]:
    from textual.widgets import DataTable

    return [c.plain for c in screen.query_one(DataTable).get_row_at(row)]


async def test_lists_runs_with_names_shown_literally(runs_root):
    write_run(runs_root, "[bold red]evil[/] run", step=50, max_steps=100, loss=2.5)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await loaded(pilot)
        row = cells(screen, 0)
        assert row[1] == "[bold red]evil[/] run"
        assert row[2] == "finished"
        assert row[3] == "quickstart"
        assert "50%" in row[4]
        assert row[5] == "50/100"
        assert row[6] == "2.5"
        assert row[8] == "1m40s"


async def test_empty_root_says_how_to_start(runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        empty = screen.query_one("#runs-empty")
        assert empty.display and "Press n" in str(empty.render())


async def test_mark_and_compare_needs_two(runs_root):
    write_run(runs_root, "a", started=T0)
    write_run(runs_root, "b", started=T0 + 1)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await loaded(pilot)
        table = screen.query_one("DataTable")
        await pilot.press("space")
        assert len(screen.marked) == 1 and table.cursor_row == 0  # marked where the cursor stays
        await pilot.press("c")
        assert any("at least two" in n.message for n in app._notifications)
        await pilot.press("space")
        assert screen.marked == set()
        await pilot.press("space", "down", "space")
        assert len(screen.marked) == 2
        await pilot.press("c")
        from tuitrain.ui.screens.compare import CompareScreen

        await until(pilot, lambda: isinstance(app.screen, CompareScreen), "the compare screen")


async def test_delete_asks_then_removes_a_finished_run(runs_root):
    run_dir = write_run(runs_root, "old")
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert run_dir.exists()
        await pilot.press("d")
        await pilot.press("y")
        await until(pilot, lambda: not run_dir.exists(), "the run directory to go")


async def test_stop_and_kill_refuse_a_finished_run_without_asking(runs_root):
    write_run(runs_root, "done")
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("K")
        assert isinstance(app.screen, RunsScreen)
        assert sum("nothing to" in n.message for n in app._notifications) == 2


async def test_resume_without_checkpoint_reports_the_reason(runs_root):
    write_run(runs_root, "nockpt", state="stopped")
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("r")
        await until(pilot, lambda: any("no checkpoint" in n.message for n in app._notifications), "the notice")


async def test_finish_and_failure_are_announced_with_a_bell(runs_root):
    app = TuitrainApp(runs_root=runs_root)
    bells = []
    app.bell = lambda: bells.append(1)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await loaded(pilot)

        def info(state, error=None):
            return SimpleNamespace(run_dir=runs_root / "x", name="x", state=state, error=error)

        screen._announce_transitions([info("running")])
        screen._announce_transitions([info("failed", "CUDA out of memory")])
        await workers_done(pilot)
        assert bells == [1]
        assert any("Run x failed: CUDA out of memory" == n.message for n in app._notifications)


async def test_help_lists_the_keys_and_q_quits_without_touching_runs(runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        groups = app.screen.groups()
        assert groups[0][0] == "Runs screen" and groups[1][0] == "Everywhere"
        actions = [text for _, text in groups[0][1]]
        assert actions[0] == "New run from a preset"  # the screen's own keys first, as declared
        assert any("Stop the run" in a for a in actions) and any("Compare" in a for a in actions)
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code in (0, None)


async def test_new_run_dialog_opens_on_n(runs_root):
    from tuitrain.ui.screens.newrun import NewRunScreen

    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("n")
        assert isinstance(app.screen, NewRunScreen)


async def test_a_run_launched_from_the_dialog_is_highlighted(runs_root):
    from tuitrain.ui.screens.newrun import NewRunScreen

    for i in range(3):
        write_run(runs_root, f"old-{i}", started=T0 + i)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await loaded(pilot)
        await pilot.press("down", "down")
        assert cells(screen, screen.query_one("DataTable").cursor_row)[1] == "old-0"
        await pilot.press("n")
        new = write_run(runs_root, "new", state="running", started=T0 + 10, ended=None)
        await until(pilot, lambda: isinstance(app.screen, NewRunScreen), "the dialog")
        # As the dialog does when its launch worker reports (the same dialog opens from the editor).
        app.screen.post_message(NewRunScreen.Launched(info=SimpleNamespace(run_dir=new, name="new")))
        await until(pilot, lambda: screen.highlighted_run() is not None and screen.highlighted_run().name == "new",
                    "the new run highlighted")
        assert isinstance(app.screen, RunsScreen)  # launched from the Runs screen: no dashboard


def test_formatting_helpers():
    assert format_duration(None) == "-"
    assert format_duration(42) == "42s"
    assert format_duration(185) == "3m05s"
    assert format_duration(3720) == "1h02m"
    assert format_duration(3725, with_seconds=True) == "1h02m05s"
    assert format_duration(None, unknown="?") == "?"
    assert progress_bar(5, 10, width=10).plain == "█████░░░░░  50%"
    assert progress_bar(5, 10, width=10, ascii_only=True).plain == "#####-----  50%"
    assert progress_bar(0, None).plain == "-"


async def test_snapshot_80x24(snapshot_root):
    write_run(snapshot_root, "quick-1", step=100, max_steps=100)
    write_run(snapshot_root, "grok-2", state="failed", step=40, max_steps=200, preset="grokking", started=T0 + 5)
    app = TuitrainApp(runs_root=snapshot_root)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.pause()
        assert_snapshot(app, "runs_80x24")


async def test_snapshot_160x48(snapshot_root):
    write_run(snapshot_root, "quick-1", step=100, max_steps=100)
    write_run(snapshot_root, "grok-2", state="stopped", step=40, max_steps=200, preset="grokking", started=T0 + 5)
    app = TuitrainApp(runs_root=snapshot_root)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("space")
        await pilot.pause()
        assert_snapshot(app, "runs_160x48")


def _footer_keys(app) -> dict[str, int]:
    """The keys the footer shows, and the cell each ends at."""
    from tuitrain.ui.widgets.footer import KeyFooter

    footer = app.screen.query_one(KeyFooter)
    footer.render()
    return {display: end for display, _start, end, _key in footer.spans}


async def test_80_columns_show_the_key_columns_and_quit_and_help(snapshot_root):
    from textual.widgets import DataTable

    write_run(snapshot_root, "quick-1", step=100, max_steps=100)
    app = TuitrainApp(runs_root=snapshot_root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        table = screen.query_one(DataTable)
        labels = [str(c.label) for c in table.columns.values()]
        assert labels == ["", "run", "state", "progress", "step", "loss", "ETA"]
        assert table.virtual_size.width <= 80
        await until(pilot, lambda: "q" in _footer_keys(app), "the footer")
        keys = _footer_keys(app)
        for key in ("q", "?", "s", "⏎", "n", "r", "c", "␣"):
            assert keys[key] <= 80, f"{key} is off the footer at 80 columns"
        assert "K" not in keys and "d" not in keys
        await pilot.resize_terminal(120, 36)
        await until(pilot, lambda: "K" in _footer_keys(app), "the wider footer")
        keys = _footer_keys(app)
        for key in ("e", "⏎", "K", "d", "q", "?", "/", "^p"):
            assert keys[key] <= 120, f"{key} is off the footer at 120 columns"
        assert "GPU" in [str(c.label) for c in table.columns.values()]
        assert cells(screen, 0)[-1] == "-"


@pytest.mark.parametrize("width", [80, 120, 160])
async def test_the_delete_dialog_shows_its_whole_text(runs_root, width):
    write_run(runs_root, "a-run-with-a-rather-long-name-to-wrap")
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(width, 30)) as pilot:
        await loaded(pilot)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
        text = " ".join(line.strip(" █▀▄") for line in screen_text(app))
        assert "and its checkpoints." in " ".join(text.split())


async def test_status_line_says_1_run_not_1_runs(runs_root):
    write_run(runs_root, "only")
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(100, 24)) as pilot:
        screen = await loaded(pilot)
        assert str(screen.query_one("#runs-status").render()).startswith("1 run · 0 active")


async def test_slash_filters_by_name_preset_and_state(runs_root):
    write_run(runs_root, "alpha", preset="quickstart", started=T0)
    write_run(runs_root, "beta", preset="grokking", state="failed", started=T0 + 1)
    write_run(runs_root, "gamma", preset="grokking", state="stopped", started=T0 + 2)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await loaded(pilot)
        await pilot.press("slash")
        await pilot.press(*"grok")
        assert [r.name for r in screen.runs] == ["gamma", "beta"]
        await pilot.press("space", *"fail")
        assert [r.name for r in screen.runs] == ["beta"]
        assert "filter 'grok fail'" in str(screen.query_one("#runs-status").render())
        await pilot.press("enter")  # keeps the filter, back to the table
        assert screen.query_one("DataTable").has_focus and [r.name for r in screen.runs] == ["beta"]
        await pilot.press("slash", "escape")  # clears it
        assert len(screen.runs) == 3 and not screen.query_one("#runs-filter").display


async def test_a_chosen_root_lists_its_runs_and_a_adds_the_others(runs_root, tmp_path):
    from tuitrain.runs.registry import record_launched

    write_run(runs_root, "here")
    elsewhere = write_run(tmp_path / "elsewhere", "there")
    record_launched(elsewhere)  # launched with an output_dir outside the runs root
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await loaded(pilot)
        assert [r.name for r in screen.runs] == ["here"]
        assert "1 more run elsewhere (a: all)" in str(screen.query_one("#runs-status").render())
        await pilot.press("a")
        assert sorted(r.name for r in screen.runs) == ["here", "there"]
    everywhere = TuitrainApp(runs_root=runs_root, show_all=True)
    async with everywhere.run_test(size=(120, 30)) as pilot:
        screen = await loaded(pilot)
        assert sorted(r.name for r in screen.runs) == ["here", "there"]


async def test_the_list_is_not_refreshed_while_another_screen_covers_it(runs_root):
    write_run(runs_root, "idle")
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await loaded(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        assert screen._timer._active.is_set() is False  # paused while covered
        await pilot.press("escape")
        await until(pilot, lambda: screen._timer._active.is_set(), "the timer to resume")


async def test_edit_opens_the_run_s_own_preset_read_only(runs_root):
    from tuitrain.ui.screens.editor import EditorScreen

    run = write_run(runs_root, "recorded")
    (run / "preset.toml").write_text("[core]\nmax_steps = 50\n")
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot)
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.doc is not None, "the editor")
        assert app.screen.path == run / "preset.toml" and app.screen.read_only
        assert "read-only" in app.screen.sub_title
