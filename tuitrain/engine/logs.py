"""The engine's log lines and their levels: HF's `log_level`, `log_level_replica` and
`log_on_each_node`.

As transformers' Trainer does, the process that logs (global rank 0, or each node's local
rank 0 with `log_on_each_node`) sets the library's verbosity to `log_level`, every other
process to `log_level_replica`; "passive" keeps the level as it is (warning by default).
The lines at info level are HF's: the "***** Running training *****" block, where a resumed
run continues, "***** Running Evaluation *****", "Saving model checkpoint to …". They go to
stderr (the run's `stdout.log`). transformers' own logger gets the same level when a plug-in
task has imported transformers (it is never imported here).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

# HF's `trainer_log_levels`; None: passive (leave the level alone)
LEVELS: dict[str, int | None] = {"detail": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO,
                                 "warning": logging.WARNING, "error": logging.ERROR,
                                 "critical": logging.CRITICAL, "passive": None}
DEFAULT_LEVEL = logging.WARNING  # transformers' default verbosity
logger = logging.getLogger("tuitrain.engine")


class _Stderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of each line (redirections included)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def should_log(args: Any, ctx: Any) -> bool:
    """HF's `TrainingArguments.should_log`: the node's local rank 0 with `log_on_each_node`,
    else global rank 0 only."""
    return ctx.local_rank == 0 if args.log_on_each_node else ctx.rank == 0


def process_log_level(args: Any, ctx: Any) -> int | None:
    """HF's `get_process_log_level`: `log_level` where this process logs, `log_level_replica`
    elsewhere; None for "passive"."""
    return LEVELS[args.log_level if should_log(args, ctx) else args.log_level_replica]


def configure(args: Any, ctx: Any) -> int:
    """Set this process's engine (and loaded transformers') log level; returns the level."""
    root = logging.getLogger("tuitrain")
    if not any(isinstance(h, _Stderr) for h in root.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
        root.propagate = False
        root.setLevel(DEFAULT_LEVEL)
    level = process_log_level(args, ctx)
    if level is not None:
        root.setLevel(level)
        transformers = sys.modules.get("transformers")
        if transformers is not None:
            try:
                transformers.utils.logging.set_verbosity(level)
            except AttributeError:  # a stand-in module, or a transformers without its logging
                pass
    return root.getEffectiveLevel()


def training_started(plan: Any, args: Any, examples: int, world_size: int, params: int, step: int,
                     resumed: bool) -> None:
    """HF's banner at the start of training (and where a resumed run goes on)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    batch = args.per_device_train_batch_size
    lines = ["***** Running training *****", f"  Num examples = {examples:,}", f"  Num Epochs = {plan.num_epochs:,}",
             f"  Instantaneous batch size per device = {batch:,}",
             f"  Total train batch size (w. parallel, distributed & accumulation) = "
             f"{batch * args.gradient_accumulation_steps * world_size:,}",
             f"  Gradient Accumulation steps = {args.gradient_accumulation_steps}",
             f"  Total optimization steps = {plan.total_steps:,}",
             f"  Number of trainable parameters = {params:,}"]
    if resumed:
        epochs, batches = divmod(step, plan.updates_per_epoch)
        lines += ["  Continuing training from checkpoint, will skip to saved global_step",
                  f"  Continuing training from epoch {epochs}", f"  Continuing training from global step {step}"]
        if args.ignore_data_skip:
            lines.append(f"  ignore_data_skip: the data of epoch {epochs} starts from its first batch")
        else:
            lines.append(f"  Will skip the first {epochs} epochs then the first "
                         f"{batches * args.gradient_accumulation_steps} batches in the first epoch.")
    logger.info("\n".join(lines))


def evaluation_started(examples: int, batch_size: int, description: str = "Evaluation") -> None:
    """HF's `evaluation_loop` banner."""
    logger.info("\n".join((f"***** Running {description} *****", f"  Num examples = {examples:,}",
                           f"  Batch size = {batch_size}")))
