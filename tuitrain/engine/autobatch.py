"""`core.auto_find_batch_size`: what the trainer's retry needs to shrink the batch.

As transformers does (through accelerate's `find_executable_batch_size`): an out-of-memory
error in the training phase multiplies `per_device_train_batch_size` by 0.9 (rounded down)
and `Trainer.train` runs training again from step 0 — a fresh model, optimizer and schedule,
with the step plan of the new batch. Each retry emits a `warning` event and a line on stdout,
and the run's `preset.toml` is rewritten with the batch in use (the asked-for one is kept in
`preset.prev-N.toml`, `record_batch`), so the `start` event, `tuitrain resume` and the UI see
the batch that ran. Reaching 0 fails the run. Only out-of-memory errors are retried.

An out-of-memory error in evaluation shrinks `per_device_eval_batch_size` the same way and runs
that evaluation again (`smaller_eval_batch`); training goes on where it was.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from tuitrain.errors import TuitrainError

from . import checkpoint as ckpt

FIELD = "core.auto_find_batch_size"
SHRINK = 0.9  # accelerate's default reduce_batch_size_fn: int(batch_size * 0.9)
# accelerate's should_reduce_batch_size messages, for back-ends that raise a plain RuntimeError.
_OOM_MESSAGES = (
    "CUDA out of memory.", "HIP out of memory.", "XPU out of memory.", "MPS backend out of memory",
    "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED.", "DefaultCPUAllocator: can't allocate memory",
)


class SmallerBatchNeeded(Exception):
    """Training ran out of memory at `batch_size`; the caller retries with a smaller one."""

    def __init__(self, batch_size: int, step: int, reason: str) -> None:
        super().__init__(f"out of memory at per_device_train_batch_size={batch_size} (step {step}): {reason}")
        self.batch_size, self.step, self.reason = batch_size, step, reason


def is_oom(exc: BaseException) -> bool:
    """Whether `exc` is an out-of-memory error (torch's type, or a back-end's RuntimeError text)."""
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom):
        return True
    return (isinstance(exc, RuntimeError) and len(exc.args) == 1 and isinstance(exc.args[0], str)
            and any(text in exc.args[0] for text in _OOM_MESSAGES))


def next_batch_size(batch_size: int) -> int:
    """The batch to try after `batch_size` ran out of memory (0: none left)."""
    return int(batch_size * SHRINK)


def smaller_batch(exc: BaseException, args, resumed_from: str | None, world_size: int) -> int | None:
    """The batch to retry training with after `exc`, or None when `exc` is not for a retry
    (not out of memory, or auto_find_batch_size off): the caller re-raises it. Raises
    `TuitrainError` when memory ran out but no smaller batch can be tried."""
    if not (args.auto_find_batch_size and is_oom(exc)):
        return None
    batch = args.per_device_train_batch_size
    if resumed_from:
        raise TuitrainError(
            f"{FIELD}: out of memory at per_device_train_batch_size={batch} in a run resumed from "
            f"{resumed_from}, whose batch size is fixed (start a new run with a smaller "
            "per_device_train_batch_size)") from exc
    return _shrunk(exc, "", "per_device_train_batch_size", batch, world_size)


def _shrunk(exc: BaseException, what: str, field: str, batch: int, world_size: int) -> int:
    """The next smaller `field` after `batch` ran out of memory (`what`: "evaluation " or "");
    `TuitrainError` when there is none or several processes would have to agree on it."""
    if world_size > 1:
        raise TuitrainError(
            f"{FIELD}: {what}out of memory at {field}={batch} with {world_size} processes; "
            f"the batch is shrunk only in single-process runs (lower {field})") from exc
    smaller = next_batch_size(batch)
    if smaller < 1:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TuitrainError(f"{FIELD}: {what}out of memory even at {field}={batch}; "
                            f"no batch size fits ({reason})") from None
    return smaller


def smaller_eval_batch(exc: BaseException, args, world_size: int) -> int | None:
    """The eval batch to retry an evaluation with after `exc` (0.9× as large), or None when
    `exc` is not for a retry. Evaluation keeps no state, so it simply runs again from its first
    batch; the training batch is not touched (transformers only tells you to lower the eval
    batch). Raises `TuitrainError` when no smaller eval batch can be tried."""
    if not (args.auto_find_batch_size and is_oom(exc)):
        return None
    return _shrunk(exc, "evaluation ran ", "per_device_eval_batch_size", args.per_device_eval_batch_size, world_size)


def discard_checkpoints(run_dir: Path, before: set) -> None:
    """Delete the checkpoints written since `before` was listed (an abandoned attempt's)."""
    for path in set(ckpt.list_checkpoints(run_dir)) - before:
        shutil.rmtree(path, ignore_errors=True)


def record_batch(run_dir: Path, preset, keep_original: bool) -> bool:
    """Rewrite `run_dir/preset.toml` with the batch now used; True when the original was kept."""
    current = run_dir / "preset.toml"
    if not current.is_file() or not hasattr(preset, "to_toml"):
        return False
    kept = False
    if keep_original:
        n = 1
        while (run_dir / f"preset.prev-{n}.toml").exists():
            n += 1
        shutil.copy2(current, run_dir / f"preset.prev-{n}.toml")
        kept = True
    tmp = current.with_name(f".preset.toml.tmp-{os.getpid()}")
    tmp.write_text(preset.to_toml(), encoding="utf-8")
    os.chmod(tmp, os.stat(current).st_mode & 0o777)  # a preset holding secrets stays 0600
    os.replace(tmp, current)
    return kept
