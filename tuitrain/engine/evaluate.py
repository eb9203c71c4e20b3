"""Evaluation and prediction: loss, predictions for `compute_metrics`, generated samples."""

from __future__ import annotations

from typing import Callable

import torch

from .generation import sample_kwargs
from .losses import LossSpec, model_loss, outputs_get
from .past import PastState
from .tasks.bundle import EvalPrediction


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def batch_rows(batch: dict) -> int:
    """Examples in a batch: the first dimension of its first tensor (HF's `find_batch_size`)."""
    first = next((v for v in batch.values() if torch.is_tensor(v) and v.dim()), None)
    return int(first.shape[0]) if first is not None else 1


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


class _LossMean:
    """HF's eval loss: each batch's mean loss weighted by its rows; with the NaN filter, the
    batches whose loss is not finite are left out (unless none is finite). No host sync."""

    def __init__(self, device: torch.device) -> None:
        # [loss × rows over every batch, rows, over finite batches only, their rows]
        self.sums = torch.zeros(4, device=device, dtype=torch.float64)
        self.seen = False

    def add(self, loss: torch.Tensor, rows: int) -> None:
        loss = loss.detach().double()
        finite = torch.isfinite(loss).double()
        weighted = loss * rows
        self.sums += torch.stack([weighted, loss.new_tensor(float(rows)),
                                  torch.where(finite > 0, weighted, 0.0), finite * rows])
        self.seen = True

    def value(self, nan_filter: bool, reduce_sum: Callable | None) -> float | None:
        if not self.seen:
            return None
        sums = reduce_sum(self.sums) if reduce_sum is not None else self.sums
        total, rows, finite_total, finite_rows = sums.tolist()
        if nan_filter and finite_rows > 0:
            return finite_total / finite_rows
        return total / max(rows, 1.0)


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, args, device: torch.device, autocast: Callable,
             compute_metrics: Callable | None = None, prefix: str = "eval",
             reduce_sum: Callable | None = None, spec: LossSpec | None = None, forwards: int = 0) -> dict[str, float]:
    """Run `loader` through `model`; return `{prefix_loss, prefix_<metric>…}` as HF's
    `evaluation_loop` does.

    The loss is the mean of the batches' losses weighted by their sizes, leaving out
    non-finite ones with `logging_nan_inf_filter`. Predictions (logits) and labels are
    gathered for `compute_metrics` unless `prediction_loss_only`; they move to the CPU
    every `eval_accumulation_steps` batches (every batch when unset would cost a sync, so
    they stay on the device until the end, like HF). `reduce_sum` sums a tensor across ranks.
    `forwards` (FSDP, whose every forward pass gathers the shards of all ranks): a rank with
    fewer batches than that repeats its last one, uncounted, until all ranks have run as many.
    """
    was_training = model.training
    model.eval()
    spec = spec or LossSpec.of(model, args)
    key = spec.label_key
    want_preds = compute_metrics is not None and not args.prediction_loss_only
    want_inputs = want_preds and "inputs" in args.include_for_metrics
    accumulate_every = args.eval_accumulation_steps or 0
    mean = _LossMean(device)
    on_device: tuple[list, list, list] = ([], [], [])  # predictions, labels, inputs
    on_cpu: tuple[list, list, list] = ([], [], [])

    def flush() -> None:
        for dev, cpu in zip(on_device, on_cpu):
            cpu.extend(t.cpu() for t in dev)
            dev.clear()

    past = PastState(args.past_index)
    batch, i = None, 0
    for i, batch in enumerate(loader, start=1):
        rows = batch_rows(batch)
        batch = _to_device(batch, device)
        labels = batch.get(key)
        with autocast():
            if labels is not None:  # a model that takes num_items_in_batch gets the batch's, as in HF
                loss, outputs = model_loss(model, past.feed(batch), spec, spec.num_items([batch]))
                mean.add(loss.mean(), rows)
            else:
                outputs = model(**past.feed(batch))
        past.keep(outputs)
        if want_preds:
            logits = outputs_get(outputs, "logits")
            if logits is not None:
                on_device[0].append(logits.detach().float())
            if labels is not None:
                on_device[1].append(labels.detach())
            if want_inputs:
                ik = _input_key(batch, key)
                if ik is not None:
                    on_device[2].append(batch[ik].detach())
            if accumulate_every and i % accumulate_every == 0:
                flush()
    for _ in range(forwards - i):
        with autocast():
            model(**batch)
    flush()
    metrics: dict[str, float] = {}
    loss = mean.value(args.logging_nan_inf_filter, reduce_sum)
    if want_preds and on_cpu[0]:
        result = compute_metrics(EvalPrediction(_concat(on_cpu[0]), _concat(on_cpu[1]),
                                                _concat(on_cpu[2]) if want_inputs else None))
        for name, value in (result or {}).items():
            metrics[name if name.startswith(f"{prefix}_") else f"{prefix}_{name}"] = float(value)
    if loss is not None:
        metrics = {f"{prefix}_loss": loss, **metrics}
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
    text = args.sample_prompt or ""
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
