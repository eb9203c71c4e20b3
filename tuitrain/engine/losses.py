"""Loss from a model's outputs, as a sum over label items so windows can be normalised.

HF's `num_items_in_batch` idea: the loss of an accumulation window is the sum of the
item losses of all its micro-batches divided by the number of items in the window, so
`accumulation × batch` gives the same gradients as one big batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from tuitrain.errors import TuitrainError

IGNORE_INDEX = -100


def label_key(args) -> str:
    """The batch key holding the labels (`label_names[0]`, else `labels`)."""
    names = getattr(args, "label_names", None) or ["labels"]
    return names[0]


def count_items(batch: dict, key: str) -> int:
    """Label items in a CPU batch (entries != -100 for class labels; rows otherwise)."""
    labels = batch.get(key)
    if labels is None or not torch.is_tensor(labels):
        first = next((v for v in batch.values() if torch.is_tensor(v)), None)
        return int(first.shape[0]) if first is not None and first.dim() else 1
    if labels.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8):
        return int((labels != IGNORE_INDEX).sum())
    return int(labels.shape[0]) if labels.dim() else 1


def outputs_get(outputs: Any, name: str):
    """`outputs[name]` for a dict or attribute access for an HF-style output; None if absent."""
    if isinstance(outputs, dict):
        return outputs.get(name)
    return getattr(outputs, name, None)


def summed_loss(outputs: Any, labels: torch.Tensor | None, n_items: int,
                label_smoothing: float = 0.0) -> torch.Tensor:
    """The sum of the item losses of one micro-batch.

    The model's mean `loss` is scaled back by the micro-batch's item count. With label
    smoothing (or a model that returns no loss) and integer labels, and logits of shape
    `labels.shape + (classes,)`, the engine computes the cross-entropy itself; computing it
    when the model already has would cost a second pass over the logits every step.
    """
    loss = outputs_get(outputs, "loss")
    if loss is not None and not label_smoothing:
        return loss.float() * n_items
    logits = outputs_get(outputs, "logits")
    if (labels is not None and logits is not None and not labels.is_floating_point()
            and logits.dim() == labels.dim() + 1 and logits.shape[:-1] == labels.shape):
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                               ignore_index=IGNORE_INDEX, reduction="sum",
                               label_smoothing=label_smoothing)
    if label_smoothing:
        raise TuitrainError("precision.label_smoothing_factor: only applies to classification "
                            "tasks with integer labels (set it to 0)")
    if loss is None:
        raise TuitrainError("task: the model returned no `loss` (does the batch carry labels?)")
    return loss.float() * n_items
