"""Which preset changes a resumed run honours, and which it refuses: one table for the engine
(which checks a checkpoint before it loads it), `tuitrain resume` (which checks before it
rewrites the run's preset or starts anything) and the tests.

A change is honoured when the rest of the run can simply use the new value: cadence, length,
evaluation, output and I/O settings, each shown to take effect after a resume by
`tests/engine/test_resume_matrix.py`. Anything that changes what the loaded state means (the
model, the optimizer, the data, the batch, the precision, …) is refused, as is a setting that
acts only when a run starts, so changing it on a resume would do nothing: never ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuitrain import safeio
from tuitrain.errors import TuitrainError
from tuitrain.layout import ENGINE_STATE

# Fields whose new value a resumed run uses from the resume on.
HONOURED_ON_RESUME = frozenset({
    # length, phases, cadence
    "max_steps", "num_train_epochs", "do_train", "do_eval", "do_predict",
    "logging_strategy", "logging_steps", "logging_nan_inf_filter", "log_level", "log_level_replica",
    "log_on_each_node",
    "eval_strategy", "eval_steps", "eval_delay", "per_device_eval_batch_size",
    "save_strategy", "save_steps", "save_total_limit", "save_only_model", "save_on_each_node",
    "load_best_model_at_end", "early_stopping_patience", "early_stopping_threshold",
    # what a resume restores and skips (HF reads them when it resumes)
    "ignore_data_skip", "restore_callback_states_from_checkpoint",
    # loading and evaluation
    "dataloader_num_workers", "dataloader_pin_memory", "dataloader_persistent_workers",
    "dataloader_prefetch_factor", "dataloader_multiprocessing_context",
    "prediction_loss_only", "include_inputs_for_metrics", "include_for_metrics", "eval_accumulation_steps",
    "eval_do_concat_batches", "batch_eval_metrics", "predict_with_generate", "generation_max_length",
    "generation_num_beams", "generation_config", "fp16_full_eval", "bf16_full_eval",
    "sample_every", "sample_max_new_tokens", "sample_temperature", "sample_top_k", "sample_prompt",
    # performance and reporting
    "skip_memory_metrics", "profile", "torch_compile", "torch_compile_backend", "torch_compile_mode",
    "torch_empty_cache_steps", "activation_checkpointing", "activation_checkpointing_kwargs", "ddp_timeout",
    "logging_dir", "run_name", "report_to",
    "push_to_hub", "hub_model_id", "hub_strategy", "hub_token", "hub_private_repo", "hub_always_push",
})
# What a fork (`tuitrain fork`) also takes from its own preset: the optimizer's hyperparameters,
# set on the loaded optimizer (its state, Adam's moments included, is kept) and the schedule
# (a new learning rate is the schedule's new base). "Go back to step 300, try a lower LR."
HONOURED_ON_FORK = HONOURED_ON_RESUME | frozenset({
    "learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm",
})
# Launch settings do not change what is computed per step.
HONOURED_GROUPS = frozenset({"launch"})
# Fields that act only when a run starts: a resume refuses a change, saying why.
START_ONLY: dict[str, str] = {
    "eval_on_start": "it evaluates only when a run starts at step 0",
    "logging_first_step": "it logs only step 1",
    "resume_from_checkpoint": "it only starts a new run (`tuitrain run`)",
    "output_dir": "a resumed run stays in its own directory",
    "overwrite_output_dir": "a resumed run stays in its own directory",
    "auto_find_batch_size": "a resumed run keeps its checkpoint's batch size, as HF does",
}
# Fields renamed since a checkpoint may have been written: compared under their new name.
RENAMED = {"precision.gradient_checkpointing": "precision.activation_checkpointing",
           "precision.gradient_checkpointing_kwargs": "precision.activation_checkpointing_kwargs"}


# The most of a checkpoint's state file read to find its config (it also holds RNG states).
_STATE_BYTES = 64 * 1024 * 1024


def saved_config(checkpoint: str | Path) -> dict[str, Any] | None:
    """The preset values a checkpoint was saved with (`group.key` → value), None when its state
    cannot be read here (the engine then refuses the checkpoint with the reason)."""
    try:
        state = json.loads(safeio.read_text(Path(checkpoint) / ENGINE_STATE, _STATE_BYTES, ENGINE_STATE))
    except (OSError, ValueError, RecursionError):
        return None
    config = state.get("config") if isinstance(state, dict) else None
    return config if isinstance(config, dict) else None


def honoured_on_resume(name: str, fork: bool = False) -> bool:
    """Whether a resume (`fork`: a fork) honours a change of `name` (`group.key`)."""
    group, _, key = name.partition(".")
    return key in (HONOURED_ON_FORK if fork else HONOURED_ON_RESUME) or group in HONOURED_GROUPS


# Where a run starts: a new run from another run's checkpoint (`core.resume_from_checkpoint`)
# differs from it there by design.
NEW_RUN_FIELDS = frozenset({"core.resume_from_checkpoint", "core.output_dir", "core.overwrite_output_dir"})


# Fields another setting changes when the preset does not set them.
DERIVED = {"dataloader_drop_last": "torch_compile turns it on unless the preset sets it; "
                                   "set dataloader.dataloader_drop_last = false to keep this run's batches"}


def _why(name: str) -> str:
    """Why a resume refuses a change of `name`, where it is not "it changes what was trained"."""
    key = name.rpartition(".")[2]
    if key in START_ONLY:
        return START_ONLY[key]
    if key in DERIVED:
        return DERIVED[key]
    from tuitrain.config import schema

    try:
        f = schema.field(name)
    except KeyError:
        return ""
    return "" if f.honoured else f"not honoured: {f.honoured_note}"


def check_resume(saved: dict[str, Any] | None, current: dict[str, Any], checkpoint: str,
                 new_run: bool = False, fork: bool = False) -> list[str]:
    """Compare a checkpoint's config (`group.key` → value) with the run's preset now (`new_run`:
    a new run starting from the checkpoint, whose directory and source differ by design;
    `fork`: a fork's preset, which may also change `HONOURED_ON_FORK`).

    Returns the honoured changes as `key: old -> new` lines; raises `TuitrainError` naming
    every changed field a resume cannot honour, in one line.
    """
    if not saved:
        return []
    saved = {RENAMED.get(k, k): v for k, v in saved.items()}
    honoured, refused = [], []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if old == new or (new_run and key in NEW_RUN_FIELDS):
            continue
        if honoured_on_resume(key, fork):
            honoured.append(f"{key}: {old!r} -> {new!r}")
        else:
            refused.append(f"{key} ({_why(key)})" if _why(key) else key)
    if refused:
        raise TuitrainError(
            f"{checkpoint}: cannot {'fork' if fork else 'resume'} with changed {', '.join(refused)} "
            "(restore the saved values, or start a new run)")
    return honoured
