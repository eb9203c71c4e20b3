"""DESIGN.md's import rules, checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys

import pytest

RULES = [
    ("tuitrain.config", ["torch", "textual", "tomlkit", "psutil"]),
    ("tuitrain.runs", ["torch", "textual"]),
    ("tuitrain.telemetry", ["torch", "textual"]),
    ("tuitrain.engine", ["textual", "plotext", "tomlkit"]),
    ("tuitrain.ui", ["torch", "tuitrain.engine"]),
    ("tuitrain.cli", ["torch", "textual", "tomlkit"]),
]


@pytest.mark.parametrize("module,banned", RULES, ids=[m for m, _ in RULES])
def test_import_does_not_load(module: str, banned: list[str]) -> None:
    code = (
        "import importlib, sys, json\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps([b for b in {banned!r} if b in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing {module} loaded {out.stdout.strip()}"
