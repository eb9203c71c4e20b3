"""Which preset changes a resumed run (or a fork) honours, and which it refuses.

Stdlib only: the engine applies them when it loads a checkpoint, and `tuitrain.runs.fork`
checks a fork against them before it creates anything."""

from __future__ import annotations

from tuitrain.errors import TuitrainError

# Fields whose new value a resumed run simply uses (cadence, length, eval-only and I/O knobs).
HONOURED_ON_RESUME = frozenset({
    "max_steps", "num_train_epochs", "do_train", "do_eval", "do_predict",
    "output_dir", "overwrite_output_dir", "logging_dir", "run_name", "report_to", "disable_tqdm",
    "push_to_hub", "hub_model_id", "hub_strategy", "hub_token", "hub_private_repo", "hub_always_push",
    "logging_strategy", "logging_steps", "logging_first_step", "logging_nan_inf_filter",
    "eval_strategy", "eval_steps", "eval_delay", "eval_on_start", "per_device_eval_batch_size",
    "save_strategy", "save_steps", "save_total_limit", "save_only_model", "save_on_each_node",
    "load_best_model_at_end", "early_stopping_patience", "early_stopping_threshold",
    "dataloader_num_workers", "dataloader_pin_memory", "dataloader_persistent_workers",
    "dataloader_prefetch_factor", "prediction_loss_only", "include_inputs_for_metrics",
    "eval_accumulation_steps", "predict_with_generate", "generation_max_length",
    "generation_num_beams", "generation_config", "skip_memory_metrics", "profile",
    "fp16_full_eval", "bf16_full_eval", "torch_compile", "torch_compile_backend",
    "torch_compile_mode", "activation_checkpointing", "activation_checkpointing_kwargs",
    "resume_from_checkpoint", "auto_find_batch_size",
})

# What a fork (`tuitrain fork`) also takes from its own preset: the optimizer's hyperparameters,
# set on the loaded optimizer (its state, Adam's moments included, is kept) and the schedule
# (a new learning rate is the schedule's new base). "Go back to step 300, try a lower LR."
HONOURED_ON_FORK = HONOURED_ON_RESUME | frozenset({
    "learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm",
})

# Launch settings do not change what is computed per step.
HONOURED_GROUPS = frozenset({"launch"})
# Fields renamed since a checkpoint may have been written: compared under their new name.
RENAMED = {"precision.gradient_checkpointing": "precision.activation_checkpointing",
           "precision.gradient_checkpointing_kwargs": "precision.activation_checkpointing_kwargs"}


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def check_resume_config(saved: dict | None, current: dict, checkpoint: str, fork: bool = False) -> list[str]:
    """Compare the checkpoint's config with the run's preset now (`fork`: a fork's, which
    may also change `HONOURED_ON_FORK`).

    Returns the honoured changes as `key: old -> new` lines; raises `TuitrainError` naming
    every changed field a resume (or fork) cannot honour (the run would not be the same run).
    """
    allowed = HONOURED_ON_FORK if fork else HONOURED_ON_RESUME
    if not saved:
        return []
    saved = {RENAMED.get(k, k): v for k, v in saved.items()}
    honoured, refused = [], []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if old == new:
            continue
        line = f"{key}: {old!r} -> {new!r}"
        if _short(key) in allowed or key.split(".", 1)[0] in HONOURED_GROUPS:
            honoured.append(line)
        else:
            refused.append(key)
    if refused:
        doing = "fork" if fork else "resume"
        raise TuitrainError(
            f"{checkpoint}: cannot {doing} with changed {', '.join(refused)} "
            "(restore the saved values, or start a new run)")
    return honoured
