"""The app shell: no torch, navigation through the app, themes remembered, the palette."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tuitrain.ui.app import TuitrainApp
from tuitrain.ui.commands import TuitrainCommands
from tuitrain.ui.settings import settings_path
from tuitrain.ui.themes import load_themes
from tuitrain.ui.widgets.charts import LineChart
from waiting import until

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]


def test_opening_the_app_modules_never_imports_torch():
    code = (
        "import sys, tuitrain.ui.app, tuitrain.ui.screens.runs, tuitrain.ui.screens.editor, "
        "tuitrain.ui.screens.newrun, tuitrain.ui.screens.dashboard, tuitrain.ui.screens.compare, "
        "tuitrain.ui.screens.sweep, tuitrain.ui.dialogs.sweep, "
        "tuitrain.commands.app\n"
        "print([m for m in ('torch', 'tuitrain.engine', 'plotext') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_no_screen_imports_another():
    """Navigation goes through the app (`tuitrain.ui.navigation` messages)."""
    screens = REPO / "tuitrain" / "ui" / "screens"
    names = {p.stem for p in screens.glob("*.py")} - {"__init__", "base"}
    for path in screens.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[:3] == ["tuitrain", "ui", "screens"] and len(parts) > 3:
                    assert parts[3] not in names - {path.stem}, f"{path.name} imports {node.module}"


def test_shipped_themes_have_distinct_chart_colours():
    specs = load_themes()
    assert {"tuitrain-dark", "tuitrain-light", "tuitrain-high-contrast"} <= set(specs)
    trains = {spec.theme.variables["chart-train"] for spec in specs.values()}
    assert len(trains) == len(specs)
    for spec in specs.values():
        assert all(f"chart-series-{i}" in spec.theme.variables for i in range(1, 7))


async def test_charts_take_the_theme_s_colours_through_component_classes(runs_root):
    from tuitrain.ui.screens.dashboard import DashboardScreen
    from _dashrun import write_run

    run = write_run(runs_root, "colours", steps=20)
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(DashboardScreen(run))
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
        chart = app.screen.query_one("#lr-chart", LineChart)
        wanted = app.theme_specs["tuitrain-dark"].theme.variables["chart-lr"].lower()
        assert chart.style("lr").color.triplet.hex == wanted
        await pilot.press("ctrl+t")
        await pilot.pause()
        light = app.theme_specs[app.theme].theme.variables["chart-lr"].lower()
        assert chart.style("lr").color.triplet.hex == light != wanted


async def test_a_theme_without_chart_colours_gets_them_from_its_own(runs_root):
    app = TuitrainApp(runs_root=runs_root, theme="textual-light")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        variables = app.get_css_variables()
        assert variables["chart-train"] == variables["primary"]
        assert variables["chart-series-3"] == variables["success"]


async def test_the_chosen_theme_is_remembered(runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        chosen = app.theme
    assert chosen != "tuitrain-dark"
    assert f'theme = "{chosen}"' in settings_path().read_text()
    again = TuitrainApp(runs_root=runs_root)
    async with again.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert again.theme == chosen
    # an explicit --theme wins, and is not written over the remembered one
    explicit = TuitrainApp(runs_root=runs_root, theme="tuitrain-high-contrast")
    async with explicit.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert explicit.theme == "tuitrain-high-contrast"
    assert f'theme = "{chosen}"' in settings_path().read_text()


async def test_unreadable_settings_are_named_and_ignored(runs_root):
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text("theme = = broken")
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(100, 24)) as pilot:
        await until(pilot, lambda: any("settings.toml" in n.message for n in app._notifications), "the notice")
        assert app.theme == "tuitrain-dark"


@pytest.mark.parametrize("name", ["tuitrain-dark", "tuitrain-light", "tuitrain-high-contrast"])
async def test_the_app_starts_in_its_theme_with_the_theme_s_colours(runs_root, name):
    app = TuitrainApp(runs_root=runs_root, theme=name)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        theme = app.get_theme(name)
        assert app.theme == name and app.has_class(f"-theme-{name}")
        assert not any(c.startswith("-theme-") and c != f"-theme-{name}" for c in app.classes)
        assert app.has_class("-dark-mode") == theme.dark and app.has_class("-light-mode") == (not theme.dark)
        assert str(app.screen.styles.background.hex).lower() == app.get_css_variables()["background"].lower()[:7]


def _labels(app) -> list[str]:
    return [label for label, _, _ in TuitrainCommands(app.screen)._commands()]


async def test_palette_finds_commands_by_their_words_once_each_with_its_key(runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.screen.loaded, "the runs")
        provider = TuitrainCommands(app.screen)
        labels = _labels(app)
        assert len(labels) == len(set(labels))
        assert sum("Quit" in label for label in labels) == 1
        for word, key in (("run", "(n)"), ("resume", "(r)"), ("stop", "(s)"), ("compare", "(c)"),
                          ("theme", "(^t)")):
            hits = [hit async for hit in provider.search(word)]
            texts = [str(hit.text) for hit in hits]
            assert any(key in text for text in texts), (word, texts)
        assert any(label.startswith("Theme: tuitrain-light") for label in labels)


async def test_compare_command_opens_the_app_on_compare(runs_root, monkeypatch):
    from _dashrun import write_run
    from tuitrain.commands.app import compare_app
    from tuitrain.ui.screens.compare import CompareScreen

    a, b = write_run(runs_root, "cmd-a", steps=30), write_run(runs_root, "cmd-b", steps=20)
    app = compare_app(["cmd-a", str(b)])
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, CompareScreen), "the compare screen")
        assert app.screen.run_dirs == [a.resolve(), b.resolve()]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, CompareScreen), "the runs screen")


def test_compare_command_refuses_unknown_runs_in_one_line(runs_root):
    env = {"PATH": "/usr/bin:/bin", "TUITRAIN_RUNS": str(runs_root), "HOME": str(runs_root)}
    out = subprocess.run([sys.executable, "-m", "tuitrain", "compare", "nope", "nada"], capture_output=True,
                         text=True, cwd=REPO, env=env, timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "unknown run 'nope'" in out.stderr
    one = subprocess.run([sys.executable, "-m", "tuitrain", "compare", "x"], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=60)
    assert one.returncode == 2 and "at least two" in one.stderr
