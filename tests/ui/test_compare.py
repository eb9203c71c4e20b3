import time

from _dashrun import ScreenApp, append_events, sync, write_run
from textual.widgets import DataTable

from tuitrain.ui.screens.compare import CompareScreen, differing, flatten
from tuitrain.ui.widgets.charts import LineChart


def test_differing_keys():
    a = flatten({"name": "a", "args": {"lr": 1, "bs": 8}})
    b = flatten({"name": "b", "args": {"lr": 2, "bs": 8, "wd": 0.1}})
    assert differing([a, b]) == ["args.lr", "args.wd", "name"]


def _rows(table):
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@sync
async def test_compare_overlays_runs_and_lists_differences(tmp_path):
    a = write_run(tmp_path, "run-a", steps=120, lr=3e-4)
    b = write_run(tmp_path, "run-b", steps=80, lr=1e-3, preset_extra='optim = "[bold]adamw\\u001b[0m"\n', state="running")
    (tmp_path / "run-c").mkdir()
    (tmp_path / "run-c" / "preset.toml").write_text("not = = toml")
    app = ScreenApp(lambda: CompareScreen([a, b, tmp_path / "run-c"]))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        table = screen.query_one("#cmp-table", DataTable)
        deadline = time.monotonic() + 5
        while table.row_count == 0 and time.monotonic() < deadline:
            await pilot.pause(0.05)
        rows = {r[0]: r[1:] for r in _rows(table)}
        assert rows["args.learning_rate"][:2] == ["0.0003", "0.001"]
        assert rows["args.optim"][1] == "[bold]adamw\\x1b[0m"  # literal, escaped
        assert rows["final loss"][2] == "–"
        assert "args.per_device_train_batch_size" not in rows
        assert "unreadable preset" in str(screen.query_one("#compare-errors").render())
        loss = screen.query_one("#cmp-loss", LineChart)
        assert [line.label for line in loss.series_lines] == ["run-a", "run-b"]
        text = loss.render().plain
        assert "run-a" in text and "run-b" in text
        # a run that keeps logging shows up in the table
        append_events(b, [{"kind": "train", "t": 5000, "step": 81, "loss": 0.01}])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            await pilot.pause(0.1)
            rows = {r[0]: r[1:] for r in _rows(table)}
            if rows["final loss"][1] == "0.01":
                break
        assert rows["final loss"][1] == "0.01"
        await pilot.press("tab", "escape")


@sync
async def test_compare_at_80x24(tmp_path):
    a = write_run(tmp_path, "a", steps=40)
    b = write_run(tmp_path, "b", steps=40, lr=1e-3)
    app = ScreenApp(lambda: CompareScreen([a, b]))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)
        assert app.screen.has_class("narrow")
        await pilot.resize_terminal(200, 60)
        await pilot.pause(0.3)
        assert app.screen.has_class("wide")
