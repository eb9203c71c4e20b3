"""A tiny regression task whose training steps a test can hold: `[task] name =
"…/_gated_task.py:build"` with options `control` (a folder) and `hold_at` (step numbers).

Each training forward writes its step number to `control/step`; at a step of `hold_at` it
creates `control/held-N` and waits until the test creates `control/go-N`.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from tuitrain.engine.tasks import regression


def build(options, args):
    control = Path(options["control"])
    holds = set(options.get("hold_at", []))
    bundle = regression.build({"n_samples": 64, "n_features": 4, "hidden": 8, "noise": 0.1}, args)
    model = bundle.model
    inner = model.forward
    calls = [0]

    @functools.wraps(inner)  # the engine reads the model's own forward signature through it
    def forward(*a, **kw):
        if model.training:
            calls[0] += 1
            (control / "step").write_text(str(calls[0]))
            if calls[0] in holds:
                (control / f"held-{calls[0]}").touch()
                while not (control / f"go-{calls[0]}").exists():
                    time.sleep(0.02)
        return inner(*a, **kw)

    model.forward = forward
    return bundle
