"""SVG snapshots of the dashboard and compare screens at 80×24 and 160×48.

Snapshots live in tests/ui/snapshots/; run with UPDATE_SNAPSHOTS=1 to rewrite them after
an intended change (and look at the SVGs before committing).
"""

import sys
import time
from pathlib import Path

import pytest

from _dashrun import ScreenApp, sync, write_run
from snapshot import check_svg
from tuitrain.telemetry import TelemetrySampler
from tuitrain.telemetry.host import HostSample
from tuitrain.ui.screens.compare import CompareScreen
from tuitrain.ui.screens.dashboard import DashboardScreen


@pytest.fixture
def steady(monkeypatch):
    """No GPU, fixed host readings, UTC times: the same frame on every machine.

    The sampler holds exactly three readings from its first sample on, so the host chart
    does not depend on how many seconds the shot took.
    """
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr("tuitrain.telemetry.sample_host", lambda: HostSample(12.0, 3.5, 16.0))
    take = TelemetrySampler.sample

    def three_readings(sampler):
        while len(sampler.readings) < 3:
            take(sampler)
        return sampler.readings[-1]

    monkeypatch.setattr(TelemetrySampler, "sample", three_readings)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


async def _shot(app, size, ready) -> str:
    async with app.run_test(size=size) as pilot:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            await pilot.pause(0.1)
            app.screen.redraw()
            if ready(app.screen):
                break
        await pilot.pause(0.3)
        return app.export_screenshot(simplify=True)


def _dash_ready(screen) -> bool:
    return (screen.query_one("#checkpoints").row_count == 4 and len(screen.telemetry.readings) == 3
            and not screen._telemetry_dirty and "RED" in "".join(s.text for s in screen.query_one("#log").lines))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
@sync
async def test_dashboard_snapshot(tmp_path, steady, size):
    run = write_run(tmp_path, "snap-run", steps=200)
    svg = await _shot(ScreenApp(lambda: DashboardScreen(run)), size, _dash_ready)
    check_svg(svg, f"dashboard_{size[0]}x{size[1]}")


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
@sync
async def test_compare_snapshot(tmp_path, steady, size):
    a = write_run(tmp_path, "snap-a", steps=150)
    b = write_run(tmp_path, "snap-b", steps=100, lr=1e-3)
    svg = await _shot(ScreenApp(lambda: CompareScreen([a, b])), size,
                      lambda s: s.query_one("#cmp-table").row_count > 3)
    check_svg(svg, f"compare_{size[0]}x{size[1]}")
