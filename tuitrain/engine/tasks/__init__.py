"""What gets trained: the built-in tasks and the plug-in loader.

`build_task(task_spec, args, ctx)` turns a preset's `[task]` into a `TaskBundle`.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from tuitrain.errors import TuitrainError

from .bundle import EvalPrediction, TaskBundle
from .plugin import build_plugin, is_entry_point

BUILTIN = ("char_gpt", "token_gpt", "modular", "regression", "hf_causal_lm")

__all__ = ["BUILTIN", "EvalPrediction", "TaskBundle", "build_task"]


def _builder(name: str):
    from . import char_gpt, hf_causal_lm, modular, regression, token_gpt

    return {"char_gpt": char_gpt.build, "token_gpt": token_gpt.build, "modular": modular.build,
            "regression": regression.build, "hf_causal_lm": hf_causal_lm.build}[name]


def build_task(task_spec, args, ctx=None) -> TaskBundle:
    """Build the task a preset names (`task_spec.name`, `task_spec.options`).

    A relative plug-in file path is looked up from the working directory, then in
    `task_spec.base_dir` when the spec has one (`load_preset` already anchors it beside the preset).
    """
    name = str(getattr(task_spec, "name", "") or "")
    options = dict(getattr(task_spec, "options", None) or {})
    if is_entry_point(name):
        base = getattr(task_spec, "base_dir", None)
        base_dir = Path(base).parent if base and Path(base).suffix == ".toml" else (Path(base) if base else None)
        return build_plugin(name, options, args, base_dir)
    if name not in BUILTIN:
        close = difflib.get_close_matches(name, BUILTIN, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "or a package.module:function / path/file.py:function entry point"
        raise TuitrainError(f"task.name: unknown task {name!r} (built-in: {', '.join(BUILTIN)}; {hint})")
    return _builder(name)(options, args, ctx)
