"""`build_scheduler`: HF's schedules as torch LR schedulers with JSON-serialisable state.

`BUILDERS` maps every `lr_scheduler_type` (exactly `config.schedules.SCHEDULERS`, the table
that also gives the schema its choices and the validator the accepted kwargs) to its
construction, as transformers' `get_scheduler` does it: step-driven schedules are a
`LambdaLR` over `config.schedules.make_lambda` (the formulas the UI previews);
`reduce_lr_on_plateau` is torch's `ReduceLROnPlateau` and `greedy` transformers' `GreedyLR`,
both built from `lr_scheduler_kwargs` alone and stepped by the trainer with the metric.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from tuitrain.config import schedules
from tuitrain.errors import TuitrainError

METRIC_DRIVEN = schedules.METRIC_DRIVEN


def is_metric_driven(scheduler: Any) -> bool:
    """True when the scheduler steps on an evaluation metric, not on every update."""
    return isinstance(scheduler, ReduceLROnPlateau) or type(scheduler).__name__ == "GreedyLR"


def _plateau(optimizer, args, total_steps: int, warmup_steps: int):
    # HF passes lr_scheduler_kwargs only: mode stays "min" unless the kwargs say otherwise
    return ReduceLROnPlateau(optimizer, **schedules.resolve_kwargs("reduce_lr_on_plateau", args.lr_scheduler_kwargs))


def _greedy(optimizer, args, total_steps: int, warmup_steps: int):
    try:
        from transformers.optimization import GreedyLR  # noqa: PLC0415
    except ImportError:
        raise TuitrainError("lr_scheduler_type \"greedy\" needs transformers>=5: pip install 'transformers>=5'") from None
    return GreedyLR(optimizer, **schedules.resolve_kwargs("greedy", args.lr_scheduler_kwargs))


def _lambda(optimizer, args, total_steps: int, warmup_steps: int):
    fn = schedules.make_lambda(args.lr_scheduler_type, warmup_steps, total_steps, args.lr_scheduler_kwargs,
                               base_lr=args.learning_rate)
    return LambdaLR(optimizer, fn)


BUILDERS: dict[str, Callable[..., Any]] = {
    name: {"reduce_lr_on_plateau": _plateau, "greedy": _greedy}.get(name, _lambda) for name in schedules.SCHEDULERS
}


def build_scheduler(optimizer: torch.optim.Optimizer, args: Any, total_steps: int, warmup_steps: int):
    """The scheduler `args.lr_scheduler_type` names, for `total_steps` updates."""
    build = BUILDERS.get(args.lr_scheduler_type)
    if build is None:
        raise TuitrainError(f"lr_scheduler_type: unknown scheduler {args.lr_scheduler_type!r} "
                            f"(choose one of {', '.join(BUILDERS)})")
    return build(optimizer, args, total_steps, warmup_steps)
