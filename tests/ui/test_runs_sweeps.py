"""The Runs screen groups a sweep's members under one row with the sweep's progress: fold,
unfold, filter, open the Sweep screen, stop and resume the sweep, mark its members — by
Pilot, on sweep directories the tests write (no training)."""

from __future__ import annotations

import pytest
from _sweepdirs import LiveRuns, shootout, write_sweep
from conftest import T0, write_run
from textual.widgets import DataTable
from waiting import until

from tuitrain.ui.app import TuitrainApp
from tuitrain.ui.dialogs.confirm import ConfirmScreen
from tuitrain.ui.screens.runs import RunsScreen
from tuitrain.ui.runsweeps import SWEEP_KEY

pytestmark = pytest.mark.anyio


@pytest.fixture
def live():
    holder = LiveRuns()
    yield holder
    holder.release()


async def listed(pilot, rows: int) -> RunsScreen:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded and app.screen.sweeps
                and app.screen.query_one(DataTable).row_count == rows, f"{rows} rows listed")
    return app.screen


def rows(screen) -> list[list[str]]:
    table = screen.query_one(DataTable)
    return [[c.plain for c in table.get_row_at(i)] for i in range(table.row_count)]


def cursor_key(screen) -> str:
    table = screen.query_one(DataTable)
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


async def test_one_row_per_sweep_with_its_progress_then_its_members(runs_root, live):
    sweep = shootout(runs_root, live)
    write_run(runs_root, "lonely", started=T0 - 50)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await listed(pilot, 2)
        table = rows(screen)
        assert table[0][:3] == ["▸", "shoot (6 members)", "3/6 done, 2 running, 1 queued, 1 diverged"]
        assert table[1][1] == "lonely"
        assert "1 sweep" in str(screen.query_one("#runs-status").render())
        await pilot.press("f")  # unfold: the members, in the sweep's order, beneath it
        await until(pilot, lambda: screen.query_one(DataTable).row_count == 8, "the members")
        table = rows(screen)
        assert table[0][0] == "▾"
        # each member by its varied values (its whole name, `shoot/lr_scheduler_type=…`, would be cut)
        assert [r[1] for r in table[1:7]] == ["  linear, 0", "  linear, 0.1", "  cosine, 0", "  cosine, 0.1",
                                              "  constant, 0", "  constant, 0.1"]
        assert [r[2] for r in table[1:7]] == ["finished", "finished", "diverged", "running", "running", "queued"]
        # the diverged member's state is drawn unlike any other
        diverged = screen.query_one(DataTable).get_row_at(3)[2]
        failed_like = screen.query_one(DataTable).get_row_at(1)[2]
        assert "reverse" in str(diverged.style) and diverged.style != failed_like.style
        # ← on a member row folds its sweep and leaves the cursor on the sweep's row
        await pilot.press("down", "down", "f")
        await until(pilot, lambda: screen.query_one(DataTable).row_count == 2, "the sweep folded")
        assert cursor_key(screen) == SWEEP_KEY + str(sweep.resolve())
        await pilot.press("right")  # → unfolds, ← folds
        await until(pilot, lambda: screen.query_one(DataTable).row_count == 8, "unfolded by →")
        await pilot.press("left")
        await until(pilot, lambda: screen.query_one(DataTable).row_count == 2, "folded by ←")


async def test_filter_shows_the_matching_members_under_their_sweep(runs_root, live):
    shootout(runs_root, live)
    write_run(runs_root, "cosine-alone", started=T0 - 50)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await listed(pilot, 2)
        await pilot.press("slash", *"cosine")
        await until(pilot, lambda: screen.query_one(DataTable).row_count == 4, "the matching rows")
        assert [r[1] for r in rows(screen)] == ["shoot (6 members)", "  cosine, 0", "  cosine, 0.1", "cosine-alone"]


async def test_enter_on_the_sweep_row_opens_the_sweep_screen(runs_root):
    write_sweep(runs_root, "warm", [{"values": {"optimizer.warmup_ratio": w}} for w in (0.0, 0.1)])
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(120, 36)) as pilot:
        await listed(pilot, 1)
        await pilot.press("enter")
        from tuitrain.ui.screens.sweep import SweepScreen

        await until(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep screen")
        assert app.screen.info.name == "warm"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen), "back on the runs")


async def test_stop_asks_then_stops_the_sweep_and_resume_says_why_not(runs_root, live, monkeypatch):
    from tuitrain.sweeps import queue

    sweep = shootout(runs_root, live)
    stopped = []
    # the queue's own tests stop real queues; here: that the row's `s` asks, then stops this sweep
    monkeypatch.setattr(queue, "stop_sweep", lambda where: stopped.append(where))
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        await listed(pilot, 1)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: stopped, "stop_sweep")
        assert stopped == [sweep.resolve()]
        assert any("Stopping the sweep shoot" in n.message for n in app._notifications)
        live.release()  # the queue and its members ended
        await pilot.press("K")
        assert any("Kill acts on one run" in n.message for n in app._notifications)


async def test_resume_of_an_ended_sweep_shows_the_queues_one_line_error(runs_root):
    write_sweep(runs_root, "done", [{"values": {"optimizer.warmup_ratio": w}} for w in (0.0, 0.1)])
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        await listed(pilot, 1)
        await pilot.press("r")
        await until(pilot, lambda: any("every member has ended" in n.message for n in app._notifications),
                    "the refusal")


async def test_space_on_the_sweep_marks_every_member_for_compare(runs_root):
    write_sweep(runs_root, "warm", [{"values": {"optimizer.warmup_ratio": w}} for w in (0.0, 0.1, 0.2)])
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await listed(pilot, 1)
        await pilot.press("space")
        assert len(screen.marked) == 3
        await pilot.press("c")
        from tuitrain.ui.screens.compare import CompareScreen

        await until(pilot, lambda: isinstance(app.screen, CompareScreen), "the compare screen")
        assert len(app.screen.run_dirs) == 3


async def test_the_palette_opens_a_sweep_by_name(runs_root):
    write_sweep(runs_root, "warm", [{"values": {"optimizer.warmup_ratio": w}} for w in (0.0, 0.1)])
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        await listed(pilot, 1)
        await pilot.press("down")  # away from the sweep's row: the palette finds it by name
        await pilot.press("ctrl+p", *"Sweep: warm")
        await pilot.pause()
        await pilot.press("enter")
        from tuitrain.ui.screens.sweep import SweepScreen

        await until(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep screen from the palette")


async def test_a_sweep_that_ends_is_announced_once_and_a_diverged_member_at_once(runs_root, live):
    import json

    sweep = shootout(runs_root, live)
    app = TuitrainApp(runs_root=runs_root)
    bells = []
    app.bell = lambda: bells.append(1)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await listed(pilot, 1)
        # the running and queued members end: one diverges, the others finish; the queue ends
        info = json.loads((sweep / "sweep.json").read_text())
        for entry, state in zip(info["members"][3:], ("diverged", "finished", "finished")):
            run = sweep / entry["dir"]
            record = json.loads((run / "run.json").read_text())
            (run / "run.json").write_text(json.dumps({**record, "state": state, "error": "loss is nan at step 20"
                                                      if state == "diverged" else None}))
            with open(run / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps({"kind": "status", "t": 1.0, "state": state, "error": None}) + "\n")
        info["queue"]["state"] = "finished"
        (sweep / "sweep.json").write_text(json.dumps(info))
        live.release()
        screen.refresh_runs()
        await until(pilot, lambda: any(n.message.startswith("Sweep shoot ended") for n in app._notifications),
                    "the sweep's notice")
        messages = [n.message for n in app._notifications]
        assert any(m.startswith("Run shoot/lr_scheduler_type=cosine,warmup_ratio=0.1 diverged") for m in messages)
        assert not any("finished" in m and m.startswith("Run shoot/") for m in messages)  # the sweep speaks for them
        assert "6/6 done" in next(m for m in messages if m.startswith("Sweep shoot ended"))
        assert len(bells) == 1


async def test_the_sweeps_bar_counts_members_not_started_yet(runs_root, live):
    """A queued member does not know its steps: it counts as long as the others, not as nothing."""
    shootout(runs_root, live)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await listed(pilot, 1)
        # 40 + 40 + 25 + 20 + 12 + 0 steps of 6 × 40
        assert rows(screen)[0][4].endswith("57%") and rows(screen)[0][5] == "137/240"


async def test_a_stopped_sweep_is_said_stopped_not_ended(runs_root, live):
    import json

    sweep = shootout(runs_root, live)
    app = TuitrainApp(runs_root=runs_root)
    bells = []
    app.bell = lambda: bells.append(1)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await listed(pilot, 1)
        info = json.loads((sweep / "sweep.json").read_text())
        for entry in info["members"][3:5]:  # the running members stop (a checkpoint each); one stays queued
            run = sweep / entry["dir"]
            record = json.loads((run / "run.json").read_text())
            (run / "run.json").write_text(json.dumps({**record, "state": "stopped"}))
        info["queue"]["state"] = "stopped"
        (sweep / "sweep.json").write_text(json.dumps(info))
        live.release()
        screen.refresh_runs()
        await until(pilot, lambda: any(n.message.startswith("Sweep shoot stopped") for n in app._notifications),
                    "the notice")
        assert not any(n.message.startswith("Sweep shoot ended") for n in app._notifications) and not bells


async def test_an_unreadable_sweep_json_leaves_its_members_listed_and_says_why(runs_root):
    sweep = write_sweep(runs_root, "broken", [{"values": {"optimizer.warmup_ratio": w}} for w in (0.0, 0.1)])
    (sweep / "sweep.json").write_text("{not json")
    write_run(runs_root, "lonely", started=T0 - 50)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await until(pilot, lambda: isinstance(screen, RunsScreen) and screen.loaded
                    and screen.query_one(DataTable).row_count == 3, "every run listed")
        assert screen.sweeps == [] and {r[1] for r in rows(screen)} == {
            "broken/warmup_ratio=0", "broken/warmup_ratio=0.1", "lonely"}  # each on its own row, by its name
        from tuitrain.ui.navigation import OpenSweep

        app.post_message(OpenSweep(sweep))
        await until(pilot, lambda: any("Cannot open the sweep" in n.message for n in app._notifications), "the notice")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen), "back on the runs")
