"""The compare screen: overlaid runs that all stay visible, log scale, step range, the table."""

from _dashrun import ScreenApp, append_events, sync, write_run
from textual.widgets import DataTable
from waiting import until

from tuitrain.ui.screens.compare import CompareScreen, differing, flatten
from tuitrain.ui.widgets.chartdraw import GLYPHS
from tuitrain.ui.widgets.charts import LineChart


def test_differing_keys():
    a = flatten({"name": "a", "args": {"lr": 1, "bs": 8}})
    b = flatten({"name": "b", "args": {"lr": 2, "bs": 8, "wd": 0.1}})
    assert differing([a, b]) == ["args.lr", "args.wd", "name"]


def _rows(table):
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def _loaded(screen, rows: int = 3):
    return lambda: screen.query_one("#cmp-table", DataTable).row_count > rows and screen.query_one(
        "#cmp-loss", LineChart).series_lines


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
        await until(pilot, _loaded(screen), "the table")
        rows = {r[0]: r[1:] for r in _rows(table)}
        assert rows["args.learning_rate"][:2] == ["0.0003", "0.001"]
        assert rows["args.optim"][1] == "[bold]adamw\\x1b[0m"  # literal, escaped
        assert rows["final loss"][2] == "–"
        assert "args.per_device_train_batch_size" not in rows
        assert "unreadable preset" in str(screen.query_one("#compare-errors").render())
        labels = [str(c.label) for c in table.columns.values()]
        assert labels == ["", "● run-a", "▲ run-b", "■ run-c"]  # each run's glyph, as in the charts
        loss = screen.query_one("#cmp-loss", LineChart)
        assert [line.label for line in loss.series_lines] == ["run-a", "run-b"]
        text = loss.render().plain
        assert "● run-a" in text and "▲ run-b" in text  # the glyph beside its name, on one line
        # a run that keeps logging shows up in the table
        append_events(b, [{"kind": "train", "t": 5000, "step": 81, "loss": 0.01}])
        await until(pilot, lambda: {r[0]: r[1:] for r in _rows(table)}["final loss"][1] == "0.01", "the new loss")
        await pilot.press("tab", "escape")


@sync
async def test_every_run_stays_visible_where_curves_coincide(tmp_path):
    """Three runs with the same curve: a cell has one colour, so the glyphs must show each."""
    runs = [write_run(tmp_path, f"same-{i}", steps=200) for i in range(3)]
    app = ScreenApp(lambda: CompareScreen(runs))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await until(pilot, _loaded(screen), "the charts")
        loss = screen.query_one("#cmp-loss", LineChart)
        plot = loss.render()
        body = "\n".join(plot.plain.splitlines()[1:-1])
        for mark in GLYPHS[:3]:
            assert body.count(mark) >= 2, (mark, body)
        # each glyph is drawn in its run's colour
        styles = {mark: loss.series_style(i).color for i, mark in enumerate(GLYPHS[:3])}
        seen = 0
        for span in plot.spans:
            for ch in plot.plain[span.start:span.end]:
                if ch in styles:
                    assert span.style.color == styles[ch], ch
                    seen += 1
        assert seen >= 6


@sync
async def test_log_scale_and_step_range_keys(tmp_path):
    a = write_run(tmp_path, "long", steps=200)
    b = write_run(tmp_path, "short", steps=100, lr=1e-3)
    app = ScreenApp(lambda: CompareScreen([a, b]))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await until(pilot, _loaded(screen), "the charts")
        loss = screen.query_one("#cmp-loss", LineChart)
        await pilot.press("l")
        await until(pilot, lambda: loss.log_y and "(log)" in loss.render().plain, "the log scale")
        await pilot.press("l")
        await until(pilot, lambda: not loss.log_y, "linear again")
        await pilot.press("right_square_bracket", "right_square_bracket", "left_curly_bracket")
        assert screen.window == (0.2, 0.9)
        await until(pilot, lambda: loss.x_limits == (40.0, 180.0), "the range")
        assert loss.render().plain.splitlines()[-1].split()[1:] == ["40", "step", "180"]
        assert all(40 <= x <= 180 for line in loss.series_lines for x in line.series.xs)
        assert "steps 40-180 of 200" in str(screen.query_one("#compare-range").render())
        for _ in range(12):  # the range never closes up
            await pilot.press("right_square_bracket")
        assert screen.window[1] - screen.window[0] >= 0.1 - 1e-9
        await pilot.press("0")
        await until(pilot, lambda: loss.x_limits is None, "every step")


@sync
async def test_the_table_scrolls_to_every_run_at_80_columns(tmp_path):
    runs = [write_run(tmp_path, f"a-long-run-name-number-{i}", steps=40, lr=1e-4 * (i + 1)) for i in range(3)]
    app = ScreenApp(lambda: CompareScreen(runs))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        table = screen.query_one("#cmp-table", DataTable)
        await until(pilot, _loaded(screen), "the table")
        assert table.virtual_size.width > table.size.width  # three runs do not fit at once
        await pilot.press("tab", "tab", "tab")
        await until(pilot, lambda: table.has_focus, "the table focused")
        for _ in range(3):
            await pilot.press("right")
        await until(pilot, lambda: table.scroll_x > 0, "the table scrolled")
        assert table.scroll_x == table.max_scroll_x  # the last run's column is in view
        assert table.cursor_column == 3


@sync
async def test_compare_at_80x24(tmp_path):
    a = write_run(tmp_path, "a", steps=40)
    b = write_run(tmp_path, "b", steps=40, lr=1e-3)
    app = ScreenApp(lambda: CompareScreen([a, b]))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.has_class("-narrow"), "the narrow layout")
        await pilot.resize_terminal(200, 60)
        await until(pilot, lambda: app.screen.has_class("-wide"), "the wide layout")
