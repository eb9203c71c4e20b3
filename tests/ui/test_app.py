"""The app shell: no torch, themes with chart colours, palette offers every key action."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tuitrain.ui.app import TuitrainApp
from tuitrain.ui.commands import TuitrainCommands
from tuitrain.ui.themes import chart_colors, load_themes

pytestmark = pytest.mark.anyio


def test_opening_the_app_modules_never_imports_torch():
    code = (
        "import sys, tuitrain.ui.app, tuitrain.ui.screens.runs, tuitrain.ui.screens.editor, "
        "tuitrain.ui.screens.newrun, tuitrain.commands.app\n"
        "print([m for m in ('torch', 'tuitrain.engine') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"


def test_shipped_themes_have_distinct_chart_colours():
    specs = load_themes()
    assert {"tuitrain-dark", "tuitrain-light", "tuitrain-high-contrast"} <= set(specs)
    assert len({spec.chart.train for spec in specs.values()}) == len(specs)


async def test_chart_colours_follow_the_theme_and_palette_lists_actions(runs_root):
    app = TuitrainApp(runs_root=runs_root)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause(0.2)
        dark = chart_colors(app)
        await pilot.press("ctrl+t")
        assert app.theme != "tuitrain-dark"
        assert chart_colors(app) != dark
        provider = TuitrainCommands(app.screen)
        labels = [label for label, _, _ in provider._commands()]
        for word in ("New", "Stop", "Kill", "Resume", "Compare", "Delete", "Quit", "Theme: tuitrain-light"):
            assert any(word in label for label in labels), word


@pytest.mark.parametrize("name", ["tuitrain-dark", "tuitrain-light", "tuitrain-high-contrast"])
async def test_the_app_starts_in_its_theme_with_the_theme_s_colours(runs_root, name):
    app = TuitrainApp(runs_root=runs_root, theme=name)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        theme = app.get_theme(name)
        assert app.theme == name and app.has_class(f"-theme-{name}")
        assert not any(c.startswith("-theme-") and c != f"-theme-{name}" for c in app.classes)
        assert app.has_class("-dark-mode") == theme.dark and app.has_class("-light-mode") == (not theme.dark)
        assert str(app.screen.styles.background.hex).lower() == app.get_css_variables()["background"].lower()[:7]
