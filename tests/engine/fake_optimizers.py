"""A stand-in `galore_torch` (not installed here): GaLore's classes as plain AdamW/Adafactor
subclasses, so the engine's low-rank parameter groups can be built and inspected."""

from __future__ import annotations

import contextlib
import importlib.machinery
import sys
import types
from typing import Iterator

import torch


@contextlib.contextmanager
def fake_galore() -> Iterator[types.ModuleType]:
    module = types.ModuleType("galore_torch")
    module.__spec__ = importlib.machinery.ModuleSpec("galore_torch", None)

    class GaLoreAdamW(torch.optim.AdamW):
        """Takes the groups as GaLore does (extra `rank`, `scale`, … keys on the low-rank one)."""

    module.GaLoreAdamW = module.GaLoreAdamW8bit = GaLoreAdamW
    module.GaLoreAdafactor = GaLoreAdamW
    saved = sys.modules.get("galore_torch")
    sys.modules["galore_torch"] = module
    try:
        yield module
    finally:
        if saved is None:
            sys.modules.pop("galore_torch", None)
        else:
            sys.modules["galore_torch"] = saved


def galore_groups(tmp, targets: list[str]) -> list[str]:
    """The parameter names a real run puts in GaLore's low-rank group, for `optim_target_modules`."""
    from field_harness import failure, outcome

    with fake_galore():
        result = outcome(tmp, {"optim": "galore_adamw", "optim_target_modules": targets})
    assert result.code == 0, failure(result)
    names = {id(p): n for n, p in result.model.named_parameters()}
    low = [g for g in result.trainer.optimizer.param_groups if "rank" in g]
    assert len(low) == 1
    return sorted(names[id(p)] for p in low[0]["params"])
