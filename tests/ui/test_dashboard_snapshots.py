"""SVG snapshots of the dashboard and compare screens at 80×24 and 160×48, in the app as
users see it (its stylesheet, the default theme); the README shows the 160×48 ones.

Snapshots live in tests/ui/snapshots/; run with UPDATE_SNAPSHOTS=1 to rewrite them after
an intended change (and look at the SVGs before committing). Every input is fixed: the
runs' events, three host readings a second apart and no GPU, UTC times; the shot is taken
once the screen shows all of it and has nothing left to redraw.
"""

import time

import pytest

from _dashrun import steady_telemetry, sync, write_run
from snapshot import check_svg
from waiting import until
from tuitrain.ui.screens.compare import CompareScreen
from tuitrain.ui.screens.dashboard import DashboardScreen


@pytest.fixture
def steady(monkeypatch):
    """No GPU, fixed host readings, UTC times: the same frame on every machine."""
    steady_telemetry(monkeypatch)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


async def _shot(root, make_screen, size, ready) -> str:
    from tuitrain.ui.app import TuitrainApp

    app = TuitrainApp(runs_root=root, theme="tuitrain-dark")
    async with app.run_test(size=size) as pilot:
        app.push_screen(make_screen())
        await until(pilot, lambda: not isinstance(app.screen, type(app.runs_screen)) and ready(app.screen)
                    and not app.screen._redraw_pending, "the screen to settle")
        await pilot.pause()
        return app.export_screenshot(title="tuitrain", simplify=True)


def _dash_ready(screen) -> bool:
    # the log's lines are in it once the watcher passed twice and the screen drew what it read
    return (screen.query_one("#checkpoints").row_count == 4 and screen.info is not None
            and len(screen.query_one("#gpu-chart").series_lines) == 2 and not screen._telemetry_dirty
            and screen.polls >= 2 and not screen._log_lines and _log_at_end(screen))


def _log_at_end(screen) -> bool:
    # a write scrolls the log to its end after the next refresh: on a loaded machine the shot
    # could come between the two
    log = screen.query_one("#log")
    return log.scroll_offset.y >= log.max_scroll_y


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
@sync
async def test_dashboard_snapshot(tmp_path, steady, size):
    run = write_run(tmp_path, "snap-run", steps=200)
    svg = await _shot(tmp_path, lambda: DashboardScreen(run), size, _dash_ready)
    check_svg(svg, f"dashboard_{size[0]}x{size[1]}")


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
@sync
async def test_compare_snapshot(tmp_path, steady, size):
    runs = [write_run(tmp_path, "snap-a", steps=150), write_run(tmp_path, "snap-b", steps=100, lr=1e-3),
            write_run(tmp_path, "snap-c", steps=120, lr=3e-3)]
    svg = await _shot(tmp_path, lambda: CompareScreen(runs), size,
                      lambda s: s.query_one("#cmp-table").row_count > 3 and s.query_one("#cmp-loss").series_lines)
    check_svg(svg, f"compare_{size[0]}x{size[1]}")
