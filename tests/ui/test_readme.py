"""The README's key table and screenshots match the app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.binding import Binding

from tuitrain.ui.screens.compare import CompareScreen
from tuitrain.ui.screens.dashboard import DashboardScreen
from tuitrain.ui.screens.editor import EditorScreen
from tuitrain.ui.screens.runs import RunsScreen
from tuitrain.ui.screens.sweep import SweepScreen

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
# how the README writes a key -> Textual's name for it
NAMES = {"esc": "escape", "+": "plus", "-": "minus", "/": "slash", "[": "left_square_bracket",
         "]": "right_square_bracket", "{": "left_curly_bracket", "}": "right_curly_bracket"}
SCREENS = {"Runs (home)": RunsScreen, "Preset editor": EditorScreen, "Run dashboard": DashboardScreen,
           "Compare": CompareScreen, "Sweep": SweepScreen}


def _row(screen: str) -> str:
    match = re.search(rf"^\| {re.escape(screen)} \| (.*) \|$", README, re.M)
    assert match, f"no README row for {screen}"
    return match.group(1)


def _readme_keys(row: str) -> set[str]:
    keys = {NAMES.get(key, key) for key in re.findall(r"`([^`]+)`", row)}
    if re.search(r"`(\d)`–`(\d)`", row):  # `1`–`5`
        lo, hi = map(int, re.search(r"`(\d)`–`(\d)`", row).groups())
        keys |= {str(i) for i in range(lo, hi + 1)}
    return keys


@pytest.mark.parametrize("title", list(SCREENS))
def test_the_key_table_lists_every_key_of_each_screen_and_no_other(title):
    bound = set()
    for binding in SCREENS[title].BINDINGS:
        assert isinstance(binding, Binding)
        keys = binding.key.split(",")
        if binding.action.startswith("smoothing"):
            keys = keys[:1]  # `+` also answers to `=`: the README names `+`
        if binding.key == "shift+tab":
            continue  # the reverse of tab, as everywhere
        bound.add(keys[0])
    written = _readme_keys(_row(title))
    assert bound - written == set(), f"{title}: keys the README does not list"
    assert {k for k in written if len(k) <= 12} - bound == set(), f"{title}: the README lists keys that do nothing"


def test_the_screenshots_are_the_snapshots_the_tests_compare():
    shots = re.findall(r"!\[[^\]]*\]\(([^)]+\.svg)\)", README)
    assert len(shots) == 4
    root = Path(__file__).resolve().parents[2]
    for shot in shots:
        assert shot.startswith("tests/ui/snapshots/") and (root / shot).is_file(), shot
