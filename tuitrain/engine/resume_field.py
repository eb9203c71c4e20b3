"""`core.resume_from_checkpoint`: a new run that starts from another run's checkpoint.

The trainer loads the checkpoint exactly as `tuitrain resume` does (weights, optimizer,
scheduler, RNG, step, logging window); this module finds and vets the folder first, so
every refusal is one line that names the field and the path.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import torch

from tuitrain.config.checkpoint_field import FIELD, checkpoint_folder
from tuitrain.errors import TuitrainError


def checkpoint_from_field(value: str, allow_foreign: bool = False) -> Path:
    """The checkpoint folder `value` names (or, with `allow_foreign`, a foreign checkpoint's
    folder or weights file), or a `TuitrainError` naming the field and path.

    `"last"` is resolved to a path when the run is launched (`tuitrain run` looks up the
    earlier runs of the preset); the engine alone cannot list runs, so it refuses it.
    """
    if value == "last":
        raise TuitrainError(f'{FIELD}: "last" is resolved by `tuitrain run`; '
                            "give the path of a checkpoint-N folder here")
    return checkpoint_folder(value, allow_foreign)


@contextlib.contextmanager
def naming_field(path: Path) -> Iterator[None]:
    """Re-raise a refusal of the checkpoint as one line that starts with the field (and path)."""
    try:
        yield
    except TuitrainError as exc:
        text = str(exc)
        if text.startswith(f"{path.name}: "):  # resume_rules.check_resume names the folder only
            text = text[len(path.name) + 2:]
        where = f"{FIELD}: " if str(path) in text else f"{FIELD}: {path}: "
        raise type(exc)(where + text) from None


def align_lr_to_schedule(optimizer, scheduler) -> None:
    """Set each group's learning rate from the live schedule at its loaded step.

    A checkpoint's optimizer holds the rate its own schedule chose for the next update; a run
    that continues it with another length (max_steps) has another schedule, and its next
    update must use that one's rate — the one an uninterrupted run of that length uses.
    """
    lambdas = getattr(scheduler, "lr_lambdas", None)
    if not lambdas:
        return  # metric-driven schedulers keep the rate they saved
    for group, base, fn in zip(optimizer.param_groups, scheduler.base_lrs, lambdas):
        rate = base * fn(scheduler.last_epoch)  # LambdaLR's own formula, so bit-identical
        if torch.is_tensor(group["lr"]):
            group["lr"].fill_(float(rate))
        else:
            group["lr"] = rate


# The optimizer group entries a fork's changed setting sets (`resume_rules.HONOURED_ON_FORK`;
# max_grad_norm is read from the arguments at every step).
FORK_GROUP_KEYS = {"learning_rate": ("lr", "initial_lr"), "weight_decay": ("weight_decay",),
                   "adam_beta1": ("betas",), "adam_beta2": ("betas",), "adam_epsilon": ("eps",)}


def group_settings(optimizer) -> list[dict]:
    """Each parameter group's hyperparameters as the preset built them (all but `params`)."""
    return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]


def apply_fork_settings(optimizer, scheduler, built: list[dict], changes: list[str]) -> None:
    """After a fork loaded its checkpoint, put back the optimizer settings the fork changed
    (`changes`: `resume_rules.check_resume`'s honoured lines) as its preset built them (`built`:
    `group_settings` before the load). The optimizer's state stays the checkpoint's; a new
    learning rate becomes the schedule's base (`align_lr_to_schedule` then sets the rate of
    the next update)."""
    changed = {line.split(":", 1)[0].rsplit(".", 1)[-1] for line in changes}
    keys = {key for name in changed for key in FORK_GROUP_KEYS.get(name, ())}
    for group, fresh in zip(optimizer.param_groups, built):
        for key in keys & set(fresh) & set(group):
            group[key] = fresh[key]
    if "learning_rate" in changed and getattr(scheduler, "base_lrs", None) is not None:
        scheduler.base_lrs = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
