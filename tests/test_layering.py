"""DESIGN.md's import rules, checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys

import pytest

RULES = [
    ("tuitrain.layout", ["torch", "textual", "tomlkit", "psutil"]),
    ("tuitrain.config", ["torch", "textual", "tomlkit", "psutil"]),
    ("tuitrain.runs", ["torch", "textual"]),
    ("tuitrain.sweeps.queue", ["torch", "textual", "tomlkit"]),
    ("tuitrain.sweeps.results", ["torch", "textual", "tomlkit"]),
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


# Shared by the engine, runs and ui: the standard library and each other only.
STDLIB_ONLY = ["tuitrain.errors", "tuitrain.paths", "tuitrain.textfmt", "tuitrain.layout", "tuitrain.procid",
               "tuitrain.runlock", "tuitrain.safeio"]


@pytest.mark.parametrize("module", STDLIB_ONLY)
def test_shared_modules_import_only_the_standard_library(module: str) -> None:
    code = (
        "import importlib, sys, json\n"
        "before = set(sys.modules)\n"
        f"importlib.import_module({module!r})\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(json.dumps(sorted(m for m in new if m not in sys.stdlib_module_names and m != 'tuitrain')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing {module} loaded {out.stdout.strip()}"
