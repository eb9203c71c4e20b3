"""The run dashboard, by Pilot: live updates, keys, the 80×24 layout, units, idle cost."""

import pytest

from _dashrun import NASTY, ScreenApp, append_events, make_checkpoint, steady_telemetry, sync, write_run
from waiting import screen_text, until
from tuitrain.textfmt import format_duration
from tuitrain.ui.screens.dashboard import DashboardScreen
from tuitrain.ui.widgets.charts import LineChart, LossChart
from tuitrain.ui.widgets.checkpoints import CheckpointTable
from tuitrain.ui.widgets.logtail import LogTail
from tuitrain.ui.widgets.samples import SamplesView


def _log_text(log: LogTail) -> str:
    return "\n".join(strip.text for strip in log.lines)


def _status(screen) -> str:
    return str(screen.query_one("#status-text").render())


@sync
async def test_dashboard_shows_run_and_follows_appends(tmp_path):
    run = write_run(tmp_path, "alpha", steps=200, state="running")
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        table = screen.query_one(CheckpointTable)
        await until(pilot, lambda: table.row_count == 4, "four checkpoints")
        assert "★ best" in str(table.get_row("checkpoint-100")[-1])
        await until(pilot, lambda: "step 200/200" in _status(screen), "the status")
        # appending while open updates table, status and chart
        make_checkpoint(run, 250)
        append_events(run, [{"kind": "start", "t": 2000, "max_steps": 300, "resumed_from": None, "step": 200}] +
                      [{"kind": "train", "t": 2000 + s, "step": s, "loss": 0.5} for s in range(201, 251)] +
                      [{"kind": "checkpoint", "t": 2050, "step": 250, "path": "checkpoint-250", "bytes": 10, "is_best": False}])
        await until(pilot, lambda: table.row_count == 5, "the new checkpoint")
        await until(pilot, lambda: "step 250/300" in _status(screen), "the new status")
        chart = screen.query_one(LossChart)
        assert chart.train.xs[-1] > 240  # min/max decimation keeps the last bucket's extremes
        assert "loss" in chart.render().plain
        # log tail and samples show escapes and markup literally
        log = screen.query_one(LogTail)
        await until(pilot, lambda: "last line" in _log_text(log), "the log")
        text = _log_text(log)
        assert "\\x1b[31mRED\\x1b[0m [bold]not bold[/bold] \\x07bell" in text
        samples = str(screen.query_one(SamplesView).render())
        assert "sample at 250" not in samples and "[bold]not bold[/bold]" in samples and "\\x1b[31m" in samples


@sync
async def test_smoothing_keys_and_no_gpu_text(tmp_path, monkeypatch):
    steady_telemetry(monkeypatch)
    run = write_run(tmp_path, "beta", steps=60)
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        chart = screen.query_one(LossChart)
        assert chart.weight == 0.6
        await pilot.press("+", "+")
        assert screen.smoothing == pytest.approx(0.7) and chart.weight == pytest.approx(0.7)
        await pilot.press("-")
        assert chart.weight == pytest.approx(0.65)
        screen.smoothing = 5  # validated: kept in [0, 0.99]
        assert chart.weight == 0.99
        await until(pilot, lambda: "no NVIDIA GPU" in str(screen.query_one("#gpu-text").render()), "the GPU text")
        assert "run CUDA: allocated 1.25 GiB" in str(screen.query_one("#gpu-text").render())
        await pilot.press("escape")


@sync
async def test_the_host_chart_has_a_time_axis_and_ram_beside_cpu(tmp_path, monkeypatch):
    steady_telemetry(monkeypatch)
    run = write_run(tmp_path, "host", steps=20)
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(160, 48)) as pilot:
        chart = app.screen.query_one("#gpu-chart", LineChart)
        await until(pilot, lambda: len(chart.series_lines) == 2, "the host lines")
        assert [line.label for line in chart.series_lines] == ["host CPU", "host RAM"]
        # psutil's first CPU figure is meaningless: the lines start at the second reading
        assert chart.series_lines[0].series.xs == [-1.0, 0.0] and chart.series_lines[0].series.ys == [16.0, 20.0]
        axis = chart.render().plain.splitlines()[-1]
        assert axis.split() == ["↑%", "-1s", "seconds", "0s"]


@sync
async def test_throughput_has_its_own_charts_and_readable_numbers(tmp_path):
    from tuitrain.runs.series import Series
    from tuitrain.ui.screens.dashboard import throughput

    done = write_run(tmp_path, "done", steps=100)
    app = ScreenApp(lambda: DashboardScreen(done))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        # a finished run shows its average throughput, in readable units
        await until(pilot, lambda: "avg 6.4k tok/s" in _status(screen), "the average")
        assert "avg 100 samples/s" in _status(screen)
        samples, tokens = screen.query_one("#speed-chart", LineChart), screen.query_one("#tokens-chart", LineChart)
        await until(pilot, lambda: tokens.display and tokens.series_lines, "the tokens chart")
        assert samples.y_label == "samples/s" and tokens.y_label == "tok/s"
        assert "6.4k┤" in tokens.render().plain and "100┤" in samples.render().plain
    series = Series("tokens_per_second")
    for step, value in enumerate((1000.0, 2000.0, 6000.0), 1):
        series.append(step, value)
    assert throughput(series, finished=False) == ("", 6000.0)  # while training: the latest
    assert throughput(series, finished=True) == ("avg ", 3000.0)


@sync
async def test_80x24_keeps_status_loss_and_lr_in_view_and_the_rest_one_key_away(tmp_path, monkeypatch):
    steady_telemetry(monkeypatch)
    run = write_run(tmp_path, "small", steps=150)
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.query_one(CheckpointTable).row_count == 3, "the checkpoints")
        whole = screen.region
        for panel in ("#status-panel", "#loss-panel", "#lr-panel"):
            region = screen.query_one(panel).region
            assert region.height >= 4 and whole.contains_region(region), panel
        assert screen.query_one("#loss-chart").region.height >= 6
        assert screen.query_one("#gpu-panel").display and not screen.query_one("#ckpt-panel").display
        await pilot.press("3")
        await until(pilot, lambda: screen.query_one("#ckpt-panel").display, "the checkpoints panel")
        assert not screen.query_one("#gpu-panel").display
        assert whole.contains_region(screen.query_one("#ckpt-panel").region)
        await pilot.press("tab")
        await until(pilot, lambda: screen.query_one("#log-panel").display, "the log panel")
        assert "[4 log]" in str(screen.query_one("#lower-tabs").render())
        await pilot.resize_terminal(160, 48)
        await until(pilot, lambda: screen.has_class("-tall"), "the tall layout")
        assert all(screen.query_one(f"#{p}").display for p in ("gpu-panel", "ckpt-panel", "log-panel", "samples-panel"))


@sync
async def test_elapsed_and_eta_agree_with_the_runs_list_and_survive_a_resume(tmp_path):
    import json
    import time

    from tuitrain.runs.registry import run_info
    from tuitrain.ui.screens.runs import run_row

    run = write_run(tmp_path, "resumed", steps=100, state="stopped")
    data = json.loads((run / "run.json").read_text())
    # trained 100 s before it was stopped and resumed; this segment ran from 1000 to 1130
    data.update(trained_before=100.0, started=1000.0, ended=1130.0)
    (run / "run.json").write_text(json.dumps(data))
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.info is not None, "the run's info")
        info = run_info(run)
        assert info.elapsed_s == 230.0
        listed = dict(zip(("run", "state", "elapsed"), [c.plain for c in run_row(
            info, time.time(), columns=("run", "state", "elapsed"))]))
        assert listed["elapsed"] == format_duration(230.0) == "3m50s"
        await until(pilot, lambda: "elapsed 3m50s" in _status(screen), "the status")


@sync
async def test_an_idle_dashboard_redraws_nothing(tmp_path, monkeypatch):
    steady_telemetry(monkeypatch)
    run = write_run(tmp_path, "idle", steps=200)
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        loss = screen.query_one(LossChart)
        # Settled: everything read once and drawn (the telemetry and the log too, as the snapshots wait).
        await until(pilot, lambda: screen.query_one(CheckpointTable).row_count == 4 and loss.builds >= 1
                    and screen.info is not None and screen.polls >= 2 and not screen._telemetry_dirty
                    and not screen._log_lines and not screen._redraw_pending, "the first frame")
        redraws, builds = screen.redraws, loss.builds
        polls = screen.polls
        await until(pilot, lambda: screen.polls >= polls + 4, "four more polls of the run")
        assert (screen.redraws, loss.builds) == (redraws, builds)


@sync
async def test_corrupt_line_is_reported(tmp_path):
    run = write_run(tmp_path, "gamma", steps=30, corrupt=True)
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await until(pilot, lambda: "skipped 1 corrupt line" in _status(screen), "the status")
        await until(pilot, lambda: any("skipped 1 unreadable" in n.message for n in app._notifications), "the notice")


@sync
async def test_stop_asks_first(tmp_path, monkeypatch):
    calls = []
    import tuitrain.runs.launch as launch

    monkeypatch.setattr(launch, "stop", lambda run: calls.append(run))
    run = write_run(tmp_path, "eps", steps=20, state="running")
    app = ScreenApp(lambda: DashboardScreen(run))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s")
        await pilot.press("n")
        await pilot.pause()
        assert calls == []
        await pilot.press("s")
        await pilot.press("y")
        await until(pilot, lambda: calls == [run], "the stop")


@sync
async def test_footer_keeps_stop_quit_and_help_in_80_columns(tmp_path):
    from tuitrain.ui.app import TuitrainApp
    from tuitrain.ui.widgets.footer import KeyFooter

    run = write_run(tmp_path, "gamma", steps=20)
    app = TuitrainApp(runs_root=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(DashboardScreen(run))
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
        footer = app.screen.query_one(KeyFooter)
        footer.render()
        keys = {display: end for display, _start, end, _key in footer.spans}
        for key in ("s", "q", "?", "r", "R"):
            assert keys[key] <= 80, f"{key} is off the footer at 80 columns"
        # a click on a key presses it
        start = next(s for d, s, _e, _k in footer.spans if d == "?")
        await pilot.click(KeyFooter, offset=(start + 1, 0))
        from tuitrain.ui.screens.help import HelpScreen

        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help from the footer")
        await pilot.press("escape", "q")
    assert app.return_code == 0


@sync
async def test_no_color_and_ascii_keep_the_curves_apart(tmp_path, monkeypatch):
    """NO_COLOR (Textual draws in monochrome) and a non-UTF-8 locale (ASCII only)."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("LC_ALL", "C")
    from tuitrain.ui.app import TuitrainApp

    run = write_run(tmp_path, "plain", steps=120)
    app = TuitrainApp(runs_root=tmp_path)
    async with app.run_test(size=(100, 36)) as pilot:
        assert app.no_color and app.ascii_only
        app.push_screen(DashboardScreen(run))
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen)
                    and app.screen.query_one(CheckpointTable).row_count == 2, "the dashboard")
        lines = screen_text(app)
        loss = app.screen.query_one("#loss-panel").region
        panel = "\n".join(line[loss.x:loss.right] for line in lines[loss.y:loss.bottom])
        assert all(ord(ch) < 128 for ch in panel), panel
        assert "o train" in panel and "x eval" in panel  # the glyphs tell the series apart
        assert panel.splitlines()[0].startswith("+-")  # ASCII border
