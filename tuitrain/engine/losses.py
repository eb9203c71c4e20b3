"""The loss of a micro-batch, computed as transformers' `Trainer.compute_loss` computes it.

- A model that takes `num_items_in_batch` (a `**kwargs` forward, or `accepts_loss_kwargs`)
  gets the count of label items of the whole accumulation window and returns a loss
  already normalised over it (HF's fix of the accumulation loss); the trainer does not
  divide it again.
- Any other model returns its own mean, and the trainer divides it by the number of
  micro-batches in the window (HF averages micro-batch means).
- With `label_smoothing_factor`, the labels are taken out of the batch and the loss is
  HF's `LabelSmoother` on the logits, with labels shifted for an HF causal LM (a model
  class in transformers' causal-LM mapping), so the model still learns the next token.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from tuitrain.errors import TuitrainError

IGNORE_INDEX = -100


def label_key(args) -> str:
    """The batch key holding the labels (`label_names[0]`, else `labels`)."""
    return (args.label_names or ["labels"])[0]


def outputs_get(outputs: Any, name: str):
    """`outputs[name]` for a dict or attribute access for an HF-style output; None if absent."""
    if isinstance(outputs, dict):
        return outputs.get(name)
    return getattr(outputs, name, None)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    while isinstance(getattr(model, "module", None), torch.nn.Module):
        model = model.module
    return getattr(model, "_orig_mod", model)


def _causal_lm_classes() -> set[str]:
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES  # noqa: PLC0415
    except ImportError:  # no transformers: no model can be one of its causal LMs
        return set()
    return set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())


def _loss_shifts_labels(model: torch.nn.Module) -> bool:
    """HF's `_loss_shifts_labels`: the model's loss_type maps to the causal-LM loss (decoder only)."""
    loss_type = getattr(model, "loss_type", None)
    if loss_type is None:
        return False
    try:
        from transformers.loss.loss_utils import LOSS_MAPPING, ForCausalLMLoss  # noqa: PLC0415
    except ImportError:
        return False
    config = getattr(model, "config", None)
    return LOSS_MAPPING.get(loss_type) is ForCausalLMLoss and not getattr(config, "is_encoder_decoder", False)


@dataclass(frozen=True)
class LossSpec:
    """How one model's loss is computed (decided once, from the model and the arguments)."""

    label_key: str
    accepts_num_items: bool   # pass num_items_in_batch; the model normalises over the window
    count_shifted: bool       # count items over labels[..., 1:] (a causal LM's loss shifts them)
    smoothing: float
    shift_smoothed: bool      # smooth against labels shifted by one (an HF causal LM)

    @classmethod
    def of(cls, model: torch.nn.Module, args) -> "LossSpec":
        model = _unwrap(model)
        if hasattr(model, "accepts_loss_kwargs"):
            accepts = bool(model.accepts_loss_kwargs)
        else:
            params = inspect.signature(model.forward).parameters.values()
            accepts = any(p.kind is p.VAR_KEYWORD for p in params)
        smoothing = float(args.label_smoothing_factor)
        shift = bool(smoothing) and model._get_name() in _causal_lm_classes()
        return cls(label_key(args), accepts, _loss_shifts_labels(model), smoothing, shift)

    def num_items(self, window: list[dict]) -> int | None:
        """Label items of an accumulation window (entries != -100), when the model takes them."""
        if not self.accepts_num_items or not window or self.label_key not in window[0]:
            return None
        try:
            labels = [b[self.label_key][..., 1:] if self.count_shifted else b[self.label_key] for b in window]
            return int(sum(int(lab.ne(IGNORE_INDEX).sum()) for lab in labels))
        except (TypeError, AttributeError):
            return None


def smoothed_loss(logits: torch.Tensor, labels: torch.Tensor, epsilon: float, shift: bool,
                  num_items: int | None = None) -> torch.Tensor:
    """transformers' `LabelSmoother`: (1-ε)·NLL + ε·mean over classes of −log p, over the
    active (≠ -100) labels, or over `num_items` when the window's count is known."""
    if labels.is_floating_point():
        raise TuitrainError("precision.label_smoothing_factor: only applies to classification "
                            "tasks with integer labels (set it to 0)")
    if shift:
        logits, labels = logits[..., :-1, :].contiguous(), labels[..., 1:].contiguous()
    log_probs = -F.log_softmax(logits, dim=-1)
    if labels.dim() == log_probs.dim() - 1:
        labels = labels.unsqueeze(-1)
    padding = labels.eq(IGNORE_INDEX)
    labels = torch.clamp(labels, min=0)
    nll = log_probs.gather(dim=-1, index=labels).masked_fill_(padding, 0.0)
    smooth = log_probs.sum(dim=-1, keepdim=True, dtype=torch.float32).masked_fill_(padding, 0.0)
    denominator = padding.numel() - padding.long().sum() if num_items is None else num_items
    return (1 - epsilon) * nll.sum() / denominator + epsilon * smooth.sum() / (denominator * log_probs.shape[-1])


def model_loss(model: torch.nn.Module, batch: dict, spec: LossSpec, num_items: int | None = None):
    """`(loss, outputs)` of one forward pass, as HF's `compute_loss`."""
    labels = None
    if spec.smoothing and spec.label_key in batch:
        batch = dict(batch)
        labels = batch.pop(spec.label_key)
    if spec.accepts_num_items and num_items is not None:
        batch = {**batch, "num_items_in_batch": num_items}
    outputs = model(**batch)
    if labels is not None:
        logits = outputs_get(outputs, "logits")
        if logits is None and isinstance(outputs, (tuple, list)):
            logits = outputs[0]
        return smoothed_loss(logits, labels, spec.smoothing, spec.shift_smoothed, num_items), outputs
    loss = outputs[0] if isinstance(outputs, (tuple, list)) else outputs_get(outputs, "loss")
    if loss is None:
        raise TuitrainError("task: the model returned no `loss` (does the batch carry labels?)")
    return loss, outputs
