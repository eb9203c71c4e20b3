"""Evaluation and prediction: loss, predictions for `compute_metrics`, generated samples."""

from __future__ import annotations

from typing import Callable

import torch

from .generation import sample_kwargs

from .tasks.bundle import EvalPrediction
from .losses import count_items, label_key, outputs_get, summed_loss
from .past import PastState


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _concat(chunks: list[torch.Tensor]):
    """Concatenate along the batch dim, padding ragged trailing dims with -100."""
    if not chunks:
        return None
    if all(c.shape[1:] == chunks[0].shape[1:] for c in chunks):
        return torch.cat(chunks).numpy()
    shape = [max(c.shape[d] for c in chunks) for d in range(1, chunks[0].dim())]
    out = []
    for c in chunks:
        padded = torch.full((c.shape[0], *shape), -100, dtype=c.dtype)
        padded[tuple([slice(None)] + [slice(0, s) for s in c.shape[1:]])] = c
        out.append(padded)
    return torch.cat(out).numpy()


def _input_key(batch: dict, labels: str) -> str | None:
    if "input_ids" in batch:
        return "input_ids"
    return next((k for k, v in batch.items() if k != labels and torch.is_tensor(v)), None)


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, args, device: torch.device, autocast: Callable,
             compute_metrics: Callable | None = None, prefix: str = "eval",
             all_reduce_sum: Callable | None = None) -> dict[str, float]:
    """Run `loader` through `model`; return `{prefix_loss, prefix_<metric>…}`.

    The loss is the mean over every label item of the set. Predictions (logits) and labels
    are gathered for `compute_metrics` unless `prediction_loss_only`; they move to the CPU
    every `eval_accumulation_steps` batches (every batch when unset would cost a sync, so
    they stay on the device until the end, like HF).
    """
    was_training = model.training
    model.eval()
    key = label_key(args)
    smoothing = float(getattr(args, "label_smoothing_factor", 0.0) or 0.0)
    want_preds = compute_metrics is not None and not getattr(args, "prediction_loss_only", False)
    want_inputs = want_preds and bool(getattr(args, "include_inputs_for_metrics", False))
    accumulate_every = getattr(args, "eval_accumulation_steps", None) or 0
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    n_items = 0
    preds_dev: list[torch.Tensor] = []
    labels_dev: list[torch.Tensor] = []
    inputs_dev: list[torch.Tensor] = []
    preds_cpu: list[torch.Tensor] = []
    labels_cpu: list[torch.Tensor] = []
    inputs_cpu: list[torch.Tensor] = []

    def flush() -> None:
        preds_cpu.extend(t.cpu() for t in preds_dev)
        labels_cpu.extend(t.cpu() for t in labels_dev)
        inputs_cpu.extend(t.cpu() for t in inputs_dev)
        preds_dev.clear(), labels_dev.clear(), inputs_dev.clear()

    past = PastState(getattr(args, "past_index", -1))
    for i, batch in enumerate(loader, start=1):
        items = count_items(batch, key)
        n_items += items
        batch = _to_device(batch, device)
        with autocast():
            outputs = model(**past.feed(batch))
        past.keep(outputs)
        labels = batch.get(key)
        loss_sum += summed_loss(outputs, labels, items, smoothing).double()
        if want_preds:
            logits = outputs_get(outputs, "logits")
            if logits is not None:
                preds_dev.append(logits.detach().float())
            if labels is not None:
                labels_dev.append(labels.detach())
            if want_inputs:
                ik = _input_key(batch, key)
                if ik is not None:
                    inputs_dev.append(batch[ik].detach())
            if accumulate_every and i % accumulate_every == 0:
                flush()
    flush()
    if all_reduce_sum is not None:
        loss_sum, n_items = all_reduce_sum(loss_sum, n_items)
    metrics = {f"{prefix}_loss": float(loss_sum.item()) / max(n_items, 1)}
    if want_preds and preds_cpu:
        result = compute_metrics(EvalPrediction(_concat(preds_cpu), _concat(labels_cpu),
                                                _concat(inputs_cpu) if want_inputs else None))
        for name, value in (result or {}).items():
            name = name if name.startswith(f"{prefix}_") else f"{prefix}_{name}"
            metrics[name] = float(value)
    model.train(was_training)
    return metrics


@torch.no_grad()
def generate_sample(model: torch.nn.Module, bundle, args, device: torch.device,
                    autocast: Callable, generation: dict | None = None) -> str | None:
    """Text generated from the task's `sample_prompt` (None when the task cannot generate)."""
    generate = getattr(model, "generate", None)
    if generate is None or bundle.decode is None or bundle.sample_prompt is None:
        return None
    was_training = model.training
    model.eval()
    text = getattr(args, "sample_prompt", "") or ""
    prompt = bundle.sample_prompt(text) if callable(bundle.sample_prompt) else bundle.sample_prompt
    if not torch.is_tensor(prompt):
        prompt = torch.tensor(prompt, dtype=torch.long)
    if prompt.dim() == 1:
        prompt = prompt.unsqueeze(0)
    kwargs = sample_kwargs(args, generation or {}, int(prompt.shape[-1]))
    with autocast():
        out = generate(prompt.to(device), **kwargs)
    model.train(was_training)
    return bundle.decode(out[0].tolist())
