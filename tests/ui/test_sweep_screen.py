"""The Sweep screen: results table (sorting, best row, diverged), overlaid curves coloured
per member, a member's dashboard on enter, stop/resume through the queue — by Pilot, on
sweep directories the tests write (no training)."""

from __future__ import annotations

import pytest
from _dashrun import ScreenApp
from _sweepdirs import LiveRuns, shootout, write_sweep
from textual.widgets import DataTable
from waiting import until

from tuitrain.ui import navigation
from tuitrain.ui.screens.sweep import SweepScreen
from tuitrain.ui.widgets.charts import LineChart

pytestmark = pytest.mark.anyio


class Recorder(ScreenApp):
    """Opens one screen and records the navigation messages it posts to the app."""

    def __init__(self, make_screen) -> None:
        super().__init__(make_screen)
        self.asked: list = []

    def on_open_dashboard(self, message: navigation.OpenDashboard) -> None:
        self.asked.append(message)


def table_rows(screen) -> list[list[str]]:
    table = screen.query_one("#sweep-table", DataTable)
    return [[c.plain for c in table.get_row_at(i)] for i in range(table.row_count)]


def headers(screen) -> list[str]:
    return [c.label.plain for c in screen.query_one("#sweep-table", DataTable).columns.values()]


async def opened(pilot) -> SweepScreen:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep screen")
    screen = app.screen
    await until(pilot, lambda: screen.query_one("#sweep-table", DataTable).row_count
                and screen.query_one("#sweep-eval", LineChart).series_lines, "the results and the curves")
    return screen


@pytest.fixture
def live():
    holder = LiveRuns()
    yield holder
    holder.release()


async def test_results_table_best_row_and_diverged(runs_root, live):
    sweep = shootout(runs_root, live)
    app = Recorder(lambda: SweepScreen(sweep))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await opened(pilot)
        assert headers(screen)[:4] == ["", "lr_scheduler_type", "warmup_ratio", "state"]
        rows = table_rows(screen)
        assert [r[1:3] for r in rows] == [["linear", "0"], ["linear", "0.1"], ["cosine", "0"], ["cosine", "0.1"],
                                          ["constant", "0"], ["constant", "0.1"]]
        # each member's glyph, in the sweep's order, as in the charts' legends
        assert [r[0][1] for r in rows] == ["●", "▲", "■", "◆", "✚", "✖"]
        states = [r[3] for r in rows]
        assert states == ["finished", "finished", "diverged", "running", "running", "queued"]
        # the best member (lowest best eval loss: the 0.8-scaled curve) is starred and bold
        assert rows[1][0].startswith("★") and not any(r[0].startswith("★") for r in rows[:1] + rows[2:])
        best = screen.query_one("#sweep-table", DataTable).get_row_at(1)[0]
        assert "bold" in str(best.style) or any("bold" in str(span.style) for span in best.spans)
        # a diverged member is drawn distinctly from a failed or finished one
        diverged = screen.query_one("#sweep-table", DataTable).get_row_at(2)[3]
        assert "reverse" in str(diverged.style)
        assert headers(screen)[7] == "train loss" and rows[2][7] == "NaN"  # its loss said, not hidden
        head = str(screen.query_one("#sweep-head").render())
        assert "3/6 done, 2 running, 1 queued" in head and "best ▲ linear, 0.1 (best eval" in head
        # the curves: every member with events, in its own colour and glyph
        eval_chart = screen.query_one("#sweep-eval", LineChart)
        assert [line.glyph for line in eval_chart.series_lines] == ["●", "▲", "■", "◆", "✚"]
        assert [line.label for line in eval_chart.series_lines] == ["linear, 0", "linear, 0.1", "cosine, 0",
                                                                    "cosine, 0.1", "constant, 0"]
        lr = screen.query_one("#sweep-lr", LineChart)
        assert [line.style for line in lr.series_lines] == [f"series-{i}" for i in range(1, 6)]


async def test_sort_by_any_column_and_back(runs_root):
    sweep = write_sweep(runs_root, "warm", [
        {"values": {"optimizer.warmup_ratio": w}, "scale": s} for w, s in ((0.0, 1.2), (0.1, 0.7), (0.2, 1.0))])
    app = Recorder(lambda: SweepScreen(sweep))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await opened(pilot)
        first = [r[1] for r in table_rows(screen)]
        assert first == ["0", "0.1", "0.2"]
        # o: next column (member, then warmup_ratio, state, step, best eval …)
        await pilot.press("o", "o")
        assert screen.sort_column == "values.optimizer.warmup_ratio"
        await pilot.press("O")  # the other way round
        assert [r[1] for r in table_rows(screen)] == ["0.2", "0.1", "0"]
        assert headers(screen)[1] == "warmup_ratio ▼"
        while screen.sort_column != "best_eval_loss":
            await pilot.press("o")
        assert [r[1] for r in table_rows(screen)] == ["0.1", "0.2", "0"]
        # the best row moves with its member; the member keeps its glyph
        assert table_rows(screen)[0][0].startswith("★▲")
        # a click on a header sorts by it, a second click reverses
        table = screen.query_one("#sweep-table", DataTable)
        table.post_message(DataTable.HeaderSelected(table, table.columns["train_loss"].key, 0, table.columns["train_loss"].label))
        await until(pilot, lambda: screen.sort_column == "train_loss", "sorting by train loss")
        assert [r[1] for r in table_rows(screen)] == ["0.1", "0.2", "0"] and not screen.descending


async def test_enter_opens_the_members_dashboard(runs_root, live):
    sweep = shootout(runs_root, live)
    app = Recorder(lambda: SweepScreen(sweep))
    async with app.run_test(size=(160, 48)) as pilot:
        await opened(pilot)
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.asked, "the dashboard to be asked for")
        assert app.asked[0].run_dir.name == "lr_scheduler_type=linear,warmup_ratio=0.1"
        assert app.asked[0].run_dir.parent == sweep.resolve()


async def test_stop_asks_first_and_resume_says_why_not(runs_root, monkeypatch):
    from tuitrain.sweeps import queue
    from tuitrain.ui.dialogs.confirm import ConfirmScreen

    sweep = write_sweep(runs_root, "done", [{"values": {"optimizer.warmup_ratio": w}} for w in (0.0, 0.1)])
    app = Recorder(lambda: SweepScreen(sweep))
    async with app.run_test(size=(120, 36)) as pilot:
        await opened(pilot)
        # the queue's own refusal, in one line: every member has ended
        await pilot.press("r")
        await until(pilot, lambda: any("every member has ended" in n.message for n in app._notifications), "the refusal")
        stopped = []
        monkeypatch.setattr(queue, "stop_sweep", lambda where: stopped.append(where))
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("n")
        await pilot.pause()
        assert stopped == []  # cancelled: nothing stopped
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: stopped, "stop_sweep")
        assert stopped == [sweep]


async def test_ascii_terminal_draws_the_sweep_in_ascii(runs_root, live):
    from tuitrain.ui.app import TuitrainApp
    from tuitrain.ui.screens.runs import RunsScreen

    sweep = shootout(runs_root, live)
    app = TuitrainApp(runs_root=runs_root, ascii_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.sweeps
                    and app.screen.query_one(DataTable).row_count == 1, "the sweep's row")
        assert app.screen.query_one(DataTable).get_row_at(0)[0].plain == ">"
        app.post_message(navigation.OpenSweep(sweep))
        screen = await opened(pilot)
        firsts = [r[0] for r in table_rows(screen)]
        assert all(cell.isascii() for cell in firsts) and firsts[1].startswith("*")  # the best member's star
        assert all(line.glyph.isascii() for line in screen.query_one("#sweep-eval", LineChart).series_lines)


async def test_a_diverged_members_dashboard_says_so_distinctly(runs_root):
    from tuitrain.ui.app import TuitrainApp
    from tuitrain.ui.screens.dashboard import DashboardScreen

    sweep = write_sweep(runs_root, "lrs", [
        {"values": {"optimizer.learning_rate": 1e-3}},
        {"values": {"optimizer.learning_rate": 1.0}, "state": "diverged", "steps": 15, "diverge_at": 12}])
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(160, 48)) as pilot:
        app.post_message(navigation.OpenSweep(sweep))
        await opened(pilot)
        await pilot.press("down", "enter")  # the sweep screen → the member's dashboard, through the app
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "the member's dashboard")
        status = app.screen.query_one("#status-text")
        await until(pilot, lambda: "state diverged" in str(status.render()), "the state")
        assert status.has_class("-diverged") and "sweep lrs" in str(status.render())


async def test_members_the_device_refused_are_listed_one_line_each(runs_root):
    sweep = write_sweep(runs_root, "prec", [{"values": {"precision.bf16": False}}], refused=[
        {"name": "fp16=true", "values": {"precision.fp16": True},
         "reason": "fp16 mixed precision needs a CUDA device (this one is cpu)\nmore detail"}])
    app = Recorder(lambda: SweepScreen(sweep))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot)
        await until(pilot, lambda: screen.query_one("#sweep-refused").display, "the refused line")
        assert str(screen.query_one("#sweep-refused").render()) == (
            "refused fp16=true: fp16 mixed precision needs a CUDA device (this one is cpu)")


async def test_the_table_and_curves_follow_a_member_that_logs(runs_root, live, monkeypatch):
    import json
    import time

    from tuitrain.ui.screens import sweep as sweep_screen

    monkeypatch.setattr(sweep_screen, "RESULTS_EVERY_S", 0.2)  # not 3 s: the test waits for the next read
    sweep = shootout(runs_root, live)
    app = Recorder(lambda: SweepScreen(sweep))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await opened(pilot)
        assert table_rows(screen)[3][4] == "20/40"
        run = sweep / "lr_scheduler_type=cosine,warmup_ratio=0.1"
        with open(run / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps({"kind": "train", "t": time.time(), "step": 21, "loss": 0.25,
                                 "learning_rate": 1e-4}) + "\n")
        await until(pilot, lambda: table_rows(screen)[3][4] == "21/40", "the new step in the table")
        loss = screen.query_one("#sweep-loss", LineChart)
        await until(pilot, lambda: loss.series_lines[3].series.xs[-1] == 21, "the new step on the chart")
