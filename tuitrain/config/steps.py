"""Step arithmetic shared by the engine and the UI: batches, updates, total and warmup steps.

Pure Python (no torch), so the preset editor can show derived numbers as the user
types. The rounding follows transformers' `Trainer.set_initial_training_values`
and `TrainingArguments.get_warmup_steps` so our numbers match what HF would do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tuitrain.errors import TuitrainError


@dataclass(frozen=True)
class StepPlan:
    """What a training run will do, in optimizer updates.

    `batches_per_epoch` is per process (each rank sees its shard of the data);
    `updates_per_epoch` counts optimizer steps, the last one of an epoch possibly
    accumulating fewer micro-batches (as HF does).
    """

    global_batch: int
    batches_per_epoch: int
    updates_per_epoch: int
    total_steps: int
    num_epochs: int
    warmup_steps: int


def global_batch_size(per_device: int, world_size: int, accumulation: int) -> int:
    """Examples per optimizer update across all processes."""
    return int(per_device) * int(world_size) * int(accumulation)


def batches_per_process(num_examples: int, per_device: int, world_size: int, drop_last: bool) -> int:
    """Micro-batches one process sees per epoch.

    The dataset is cut into batches of `per_device` (the last one partial unless
    `drop_last`), then the batches are dealt round-robin to the processes; with
    uneven shards every process gets the larger count (accelerate's `even_batches`)
    unless `drop_last`, where the leftovers are dropped.
    """
    if drop_last:
        batches = num_examples // per_device
        return batches // world_size
    batches = math.ceil(num_examples / per_device)
    return math.ceil(batches / world_size)


def num_warmup_steps(total_steps: int, warmup_steps: float = 0, warmup_ratio: float = 0.0) -> int:
    """Warmup length in optimizer updates.

    `warmup_steps` >= 1 is a count and wins over `warmup_ratio`; transformers 5
    also reads a `warmup_steps` in (0, 1) as a ratio of the total. A ratio gives
    `ceil(total × ratio)`.
    """
    warmup_steps = warmup_steps or 0
    warmup_ratio = warmup_ratio or 0.0
    if warmup_steps < 0:
        raise TuitrainError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if not 0.0 <= warmup_ratio <= 1.0:
        raise TuitrainError(f"warmup_ratio must be in [0, 1], got {warmup_ratio}")
    if warmup_steps >= 1:
        return int(warmup_steps)
    if warmup_steps > 0:
        return math.ceil(total_steps * warmup_steps)
    return math.ceil(total_steps * warmup_ratio)


def resolve_interval(value: float | None, total_steps: int) -> int | None:
    """A logging/eval/save interval in steps: values < 1 are ratios of the total (ceil)."""
    if value is None:
        return None
    if value < 0:
        raise TuitrainError(f"a step interval must be >= 0, got {value}")
    if 0 < value < 1:
        return math.ceil(total_steps * value)
    if value != int(value):
        raise TuitrainError(f"a step interval > 1 must be a whole number, got {value}")
    return int(value)


def plan_steps(args: Any, num_train_examples: int, world_size: int = 1) -> StepPlan:
    """Derive the step plan from HF-named arguments and the training set size.

    `max_steps > 0` fixes the total and the epoch count is rounded up to cover it;
    otherwise the total is `ceil(num_train_epochs × updates_per_epoch)` (fractional
    epochs allowed) and the epoch count is `ceil(num_train_epochs)`.
    """
    per_device = int(args.per_device_train_batch_size)
    accumulation = int(args.gradient_accumulation_steps)
    epochs = float(args.num_train_epochs)
    max_steps = int(args.max_steps)
    drop_last = bool(args.dataloader_drop_last)
    if per_device < 1 or accumulation < 1 or world_size < 1:
        raise TuitrainError(
            "per_device_train_batch_size, gradient_accumulation_steps and the world size must be >= 1"
        )
    if num_train_examples < 0:
        raise TuitrainError(f"the training set size must be >= 0, got {num_train_examples}")

    batches = batches_per_process(num_train_examples, per_device, world_size, drop_last)
    if batches == 0:
        raise TuitrainError(
            f"{num_train_examples} training examples give no full batch of "
            f"{per_device} × {world_size} processes (lower the batch size or turn off dataloader_drop_last)"
        )
    updates = max(math.ceil(batches / accumulation), 1)
    if max_steps > 0:
        total = max_steps
        num_epochs = math.ceil(total / updates)
    else:
        if epochs <= 0:
            raise TuitrainError("num_train_epochs must be > 0 when max_steps is not set")
        total = math.ceil(epochs * updates)
        num_epochs = math.ceil(epochs)
    warmup = num_warmup_steps(total, args.warmup_steps, args.warmup_ratio)
    return StepPlan(
        global_batch=global_batch_size(per_device, world_size, accumulation),
        batches_per_epoch=batches,
        updates_per_epoch=updates,
        total_steps=total,
        num_epochs=num_epochs,
        warmup_steps=warmup,
    )
