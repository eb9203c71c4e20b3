"""Every import in tuitrain is of the standard library, of tuitrain, of a package pyproject.toml
declares, or of an optional package imported lazily and guarded.

A fresh `pip install -e .` (no test extras) gets only what `[project] dependencies` names; a
module that imports anything else works in the developers' venv (the test extras bring it
in) and fails for every user. `tests/reliability/test_fresh_install.py` proves it end to end.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Imported only inside a function, in a `try` that handles ImportError or after a check that
# names the package and its `pip install` (the engine's optional optimizer, tracker and
# back-end packages are imported by name through importlib, not by `import`).
OPTIONAL = {
    "transformers": "HF's Adafactor and GreedyLR",
    "oneccl_bindings_for_pytorch": "ddp_backend = \"ccl\"",
}


def _declared_imports() -> dict[str, str]:
    """Import name → the declared distribution providing it."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in deps}
    out = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            if dist.lower().replace("_", "-") in names:
                out[module] = dist
    return out


def _imports(path: Path):
    """(top-level module, line, lazy: inside a function) for every absolute import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        lazy = False
        up = node
        while up in parents:
            up = parents[up]
            lazy = lazy or isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef))
        for name in names:
            yield name.split(".")[0], node.lineno, lazy


def test_every_import_is_declared_or_optional_and_lazy():
    declared = _declared_imports()
    problems = []
    for path in sorted((ROOT / "tuitrain").rglob("*.py")):
        rel = path.relative_to(ROOT)
        for top, line, lazy in _imports(path):
            if top in sys.stdlib_module_names or top == "tuitrain" or top in declared:
                continue
            if top in OPTIONAL and lazy:
                continue
            why = "an optional package imported at module level" if top in OPTIONAL else "not declared"
            problems.append(f"{rel}:{line}: import {top}: {why}")
    assert not problems, "\n".join(problems)


def test_the_packages_users_need_are_declared():
    declared = set(_declared_imports())
    # the engine (torch, safetensors, numpy for compute_metrics), the UI (textual, rich, plotext),
    # the runs package (psutil), telemetry (pynvml), preset editing (tomlkit)
    for module in ("torch", "safetensors", "numpy", "textual", "rich", "plotext", "psutil", "pynvml", "tomlkit"):
        assert module in declared, f"{module} is imported by tuitrain but not in [project] dependencies"
