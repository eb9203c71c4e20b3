"""`build_scheduler`: HF's schedules as torch LR schedulers with JSON-serialisable state.

Step-driven schedules are a `LambdaLR` over `config.schedules.make_lambda` (the same
formulas the UI previews). `reduce_lr_on_plateau` is torch's `ReduceLROnPlateau`, stepped
by the trainer with the evaluation metric; `greedy` is transformers' `GreedyLR`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from tuitrain.config import schedules
from tuitrain.errors import TuitrainError

METRIC_DRIVEN = schedules.METRIC_DRIVEN


def is_metric_driven(scheduler: Any) -> bool:
    """True when the scheduler steps on an evaluation metric, not on every update."""
    return isinstance(scheduler, ReduceLROnPlateau) or type(scheduler).__name__ == "GreedyLR"


def build_scheduler(optimizer: torch.optim.Optimizer, args: Any, total_steps: int, warmup_steps: int):
    """The scheduler `args.lr_scheduler_type` names, for `total_steps` updates."""
    name = getattr(args, "lr_scheduler_type", "linear")
    kwargs = dict(getattr(args, "lr_scheduler_kwargs", None) or {})
    if name == "reduce_lr_on_plateau":
        kw = schedules._resolve_kwargs(name, kwargs)
        if "mode" not in kwargs and getattr(args, "greater_is_better", None) is not None:
            kw["mode"] = "max" if args.greater_is_better else "min"
        return ReduceLROnPlateau(optimizer, **kw)
    if name == "greedy":
        try:
            from transformers.optimization import GreedyLR  # noqa: PLC0415
        except ImportError:
            raise TuitrainError("lr_scheduler_type \"greedy\" needs transformers>=5: pip install 'transformers>=5'") from None
        kw = schedules._resolve_kwargs(name, kwargs)
        return GreedyLR(optimizer, **kw)
    fn = schedules.make_lambda(name, warmup_steps, total_steps, kwargs, base_lr=args.learning_rate)
    return LambdaLR(optimizer, fn)
