"""Hostile preset text in the preset editor: shown literally, never acted on, saved unchanged.

A preset (and its file name) carries ANSI escapes, Rich/Textual markup and control
characters. What the editor draws (inputs, help and error lines, the header's title) must
hold no raw control character and show the markup as typed; an edit elsewhere and a save
must leave those values byte-for-byte as they were.
"""

from __future__ import annotations

import tomllib

import pytest

from tuitrain.textfmt import escape_controls
from tuitrain.ui.app import TuitrainApp
from tuitrain.ui.screens.editor import EditorScreen
from tuitrain.ui.widgets.form import GroupForm

pytestmark = pytest.mark.anyio

HOSTILE = "\x1b[31m[bold red]x[/]\x07\x9b2J\x1b]0;pwned\x07"
HOSTILE_TOML = '"\\u001b[31m[bold red]x[/]\\u0007\\u009b2J\\u001b]0;pwned\\u0007"'
NAME = "[bold red]evil\x1b[7m"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _preset(tmp_path):
    path = tmp_path / f"{NAME}.toml"
    path.write_text(f"""# a preset with hostile strings
[task]
name = "regression"

[core]
output_dir = {HOSTILE_TOML}  # kept as written
max_steps = 20

[optimizer]
lr_scheduler_type = {HOSTILE_TOML}

[reproducibility]
run_name = {HOSTILE_TOML}
""", encoding="utf-8")
    return path


def _screen_lines(app) -> list[str]:
    """The text of every cell the app would send to the terminal now."""
    update = app.screen._compositor.render_update(full=True)
    return ["".join(segment.text for segment in strip) for strip in update.strips]


def _region_text(lines: list[str], region) -> str:
    """The text drawn in `region`, its lines joined by spaces (wrapped text reads whole)."""
    rows = lines[region.y:region.y + region.height]
    return " ".join(row[region.x:region.x + region.width].strip() for row in rows)


def _controls(lines: list[str]) -> list[str]:
    return [line for line in lines if any(ord(c) < 0x20 or ord(c) == 0x7F or 0x80 <= ord(c) < 0xA0 for c in line)]


async def test_hostile_preset_text_is_drawn_literally_and_saved_unchanged(tmp_path):
    path = _preset(tmp_path)
    shown = escape_controls(HOSTILE)
    assert "[bold red]x[/]" in shown and "\\x1b[31m" in shown
    app = TuitrainApp(runs_root=tmp_path / "runs")
    async with app.run_test(size=(160, 48)) as pilot:
        app.push_screen(EditorScreen(path))
        await pilot.pause(0.5)
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        lines = _screen_lines(app)
        assert not _controls(lines), _controls(lines)
        # Title: the file name with its markup as typed and its escape made visible.
        assert "[bold red]evil\\x1b[7m.toml" in lines[0]
        # Input: the value in full, literally.
        output_dir = screen.query_one("#field-core-output_dir")
        assert output_dir.value == shown
        assert any(shown[:24] in line for line in lines)
        # The unknown scheduler: one status line and the field's error, both literal.
        status = " ".join(line.strip() for line in lines[-6:])  # the status line may wrap
        assert "lr_scheduler_type" in status and "[bold red]x[/]" in status and "\\x1b[31m" in status

        await screen.select_group("optimizer")
        await pilot.pause(0.3)
        row = screen.query_one(GroupForm).rows()["optimizer.lr_scheduler_type"]
        row.scroll_visible(animate=False, immediate=True)
        await pilot.pause(0.2)
        assert row.error and "[bold red]x[/]" in row.error and "\x1b" not in row.error
        lines = _screen_lines(app)
        assert not _controls(lines), _controls(lines)
        drawn = _region_text(lines, row.query_one(".field-error").region)
        assert drawn.startswith("✗") and "[bold red]x[/]" in drawn and "\\x1b[31m" in drawn

        # A pasted control character is shown escaped; a typed bad number errs literally.
        lr = screen.query_one("#field-optimizer-learning_rate")
        lr.value = "\x1b[2J[b]1"
        await pilot.pause(0.2)
        assert lr.value == "\\x1b[2J[b]1"
        lr_row = screen.query_one(GroupForm).rows()["optimizer.learning_rate"]
        lr_row.scroll_visible(animate=False, immediate=True)
        await pilot.pause(0.2)
        assert lr_row.error and "\\x1b[2J[b]1" in lr_row.error
        lines = _screen_lines(app)
        assert not _controls(lines), _controls(lines)
        drawn = _region_text(lines, lr_row.query_one(".field-error").region)
        assert "\\x1b[2J[b]1" in drawn and "not a number" in drawn
        lr.value = "0.01"
        await pilot.pause(0.2)
        assert lr_row.error is None

        # Editing another field and saving keeps the hostile values exactly.
        await screen.select_group("core")
        await pilot.pause(0.3)
        screen.query_one("#field-core-max_steps").value = "30"
        await pilot.pause(0.5)
        assert screen.dirty
        assert screen._save_to(path)
        await pilot.pause(0.1)
        lines = _screen_lines(app)
        assert not _controls(lines), _controls(lines)
    saved = tomllib.loads(path.read_text(encoding="utf-8"))
    assert saved["core"]["output_dir"] == HOSTILE
    assert saved["optimizer"]["lr_scheduler_type"] == HOSTILE
    assert saved["reproducibility"]["run_name"] == HOSTILE
    assert saved["core"]["max_steps"] == 30 and saved["optimizer"]["learning_rate"] == 0.01
    assert "# kept as written" in path.read_text(encoding="utf-8")
