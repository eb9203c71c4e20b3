"""Evaluation and prediction: loss, predictions for `compute_metrics`, generated samples."""

from __future__ import annotations

import inspect
from typing import Callable

import torch

from tuitrain.errors import TuitrainError

from .collate import unwrap_model
from .eval_gather import Gathered, ignored_outputs, labels_of, prediction_class, predictions_of
from .generation import hf_generate_kwargs, sample_kwargs
from .losses import LossSpec, model_loss
from .past import PastState
from .pretrained import is_pretrained


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def batch_rows(batch: dict) -> int:
    """Examples in a batch: the first dimension of its first tensor (HF's `find_batch_size`)."""
    first = next((v for v in batch.values() if torch.is_tensor(v) and v.dim()), None)
    return int(first.shape[0]) if first is not None else 1


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


def check_compute_metrics(compute_metrics: Callable | None, args) -> None:
    """HF's check: with batch_eval_metrics, compute_metrics takes `compute_result`."""
    if compute_metrics is None or not args.batch_eval_metrics:
        return
    try:
        params = inspect.signature(compute_metrics).parameters
    except (TypeError, ValueError):
        return
    if "compute_result" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise TuitrainError("evaluation.batch_eval_metrics: the task's compute_metrics must take a compute_result "
                            "argument (True on the last batch: return the summary then), or set "
                            "batch_eval_metrics = false")


def _lookahead(loader):
    """`(batch, is_last)` for each batch of `loader`."""
    it = iter(loader)
    batch = next(it, None)
    while batch is not None:
        following = next(it, None)
        yield batch, following is None
        batch = following


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, args, device: torch.device, autocast: Callable,
             compute_metrics: Callable | None = None, prefix: str = "eval",
             reduce_sum: Callable | None = None, spec: LossSpec | None = None,
             preprocess_logits: Callable | None = None, forwards: int = 0) -> dict[str, float]:
    """Run `loader` through `model`; return `{prefix_loss, prefix_<metric>…}` as HF's
    `evaluation_loop` does.

    The loss is the mean of the batches' losses weighted by their sizes, leaving out
    non-finite ones with `logging_nan_inf_filter`. Unless `prediction_loss_only`, the
    predictions (after `preprocess_logits(logits, labels)`), the labels and, per
    `include_for_metrics`, the inputs and per-example losses are gathered for
    `compute_metrics(EvalPrediction)`: concatenated (`eval_do_concat_batches`, else lists of
    batches), moved to the host every `eval_accumulation_steps` batches (else at the end);
    with `batch_eval_metrics`, `compute_metrics(batch's EvalPrediction, compute_result=last)` per
    batch instead, and the last call's metrics are the evaluation's. `reduce_sum` sums a
    tensor across ranks.
    `forwards` (FSDP, whose every forward pass gathers the shards of all ranks): a rank with
    fewer batches than that repeats its last one, uncounted, until all ranks have run as many.
    """
    was_training = model.training
    model.eval()
    raw = unwrap_model(model)
    spec = spec or LossSpec.of(model, args)
    want_preds = compute_metrics is not None and not args.prediction_loss_only
    per_batch = bool(args.batch_eval_metrics)
    extras = set(args.include_for_metrics)
    label_names = list(args.label_names or [spec.label_key])
    ignore = ignored_outputs(raw)
    main_input = getattr(raw, "main_input_name", "input_ids")
    accumulate_every = args.eval_accumulation_steps or 0
    mean = _LossMean(device)
    kept = {name: Gathered(args.eval_do_concat_batches) for name in ("predictions", "labels", "inputs", "losses")}
    make_prediction = prediction_class()
    metrics_result = None

    past = PastState(args.past_index)
    batch, step = None, 0
    for step, (batch, is_last) in enumerate(_lookahead(loader), start=1):
        rows = batch_rows(batch)
        batch = _to_device(batch, device)
        labels = batch.get(spec.label_key)
        loss = None
        with autocast():
            if labels is not None:  # a model that takes num_items_in_batch gets the batch's, as in HF
                loss, outputs = model_loss(model, past.feed(batch), spec, spec.num_items([batch]))
                loss = loss.detach().mean()
                mean.add(loss, rows)
            else:
                outputs = model(**past.feed(batch))
        past.keep(outputs)
        if not want_preds:
            continue
        preds = predictions_of(outputs, ignore, loss is not None)
        del outputs
        targets = labels_of(batch, label_names)
        if preds is not None and preprocess_logits is not None:
            preds = preprocess_logits(preds, targets)
        losses = loss.repeat(rows) if loss is not None and "loss" in extras else None
        if per_batch:
            if compute_metrics is not None and preds is not None and targets is not None:
                metrics_result = compute_metrics(
                    make_prediction(predictions=preds, label_ids=targets, losses=losses,
                                    inputs=batch if "inputs" in extras else None),
                    compute_result=is_last)
            continue
        for name, value in (("predictions", preds), ("labels", targets), ("losses", losses),
                            ("inputs", _main_input(batch, main_input, spec.label_key) if "inputs" in extras else None)):
            if value is not None:
                kept[name].add(value)
        if accumulate_every and step % accumulate_every == 0:
            for gathered in kept.values():
                gathered.to_cpu()
            del preds, targets, losses
            torch.cuda.empty_cache()  # as HF: the device memory the moved batches held goes back (no-op without CUDA)
    for _ in range(forwards - step):
        with autocast():
            model(**batch)
    metrics: dict[str, float] = {}
    loss_value = mean.value(args.logging_nan_inf_filter, reduce_sum)
    if want_preds and not per_batch:
        arrays = {name: gathered.result() for name, gathered in kept.items()}
        if arrays["predictions"] is not None and arrays["labels"] is not None:
            metrics_result = compute_metrics(make_prediction(
                predictions=arrays["predictions"], label_ids=arrays["labels"],
                inputs=arrays["inputs"] if "inputs" in extras else None,
                losses=arrays["losses"] if "loss" in extras else None))
    for name, value in (metrics_result or {}).items():
        metrics[name if name.startswith(f"{prefix}_") else f"{prefix}_{name}"] = _number(value)
    if loss_value is not None:
        metrics = {f"{prefix}_loss": loss_value, **metrics}
    model.train(was_training)
    return metrics


def _main_input(batch: dict, main_input: str, label_key: str):
    """HF passes `inputs[model.main_input_name]`; a batch without it gives its first tensor."""
    value = batch.get(main_input)
    if value is None:
        value = next((v for k, v in batch.items() if k != label_key and torch.is_tensor(v)), None)
    return value.detach() if torch.is_tensor(value) else value


def _number(value) -> float:
    """A metric as a plain float (NumPy and tensor scalars too, as HF's denumpify_detensorize)."""
    if torch.is_tensor(value):
        value = value.item()
    item = getattr(value, "item", None)  # NumPy scalars
    return float(item() if callable(item) else value)


def can_sample(model: torch.nn.Module, bundle) -> bool:
    """Whether `generate_sample` can write a sample for this model and task."""
    return callable(getattr(model, "generate", None)) and bundle.decode is not None and bundle.sample_prompt is not None


@torch.no_grad()
def generate_sample(model: torch.nn.Module, bundle, args, device: torch.device,
                    autocast: Callable, generation: dict | None = None) -> str | None:
    """Text generated from the task's `sample_prompt` (None when the task cannot generate)."""
    if not can_sample(model, bundle):
        return None
    generate = model.generate
    was_training = model.training
    model.eval()
    text = args.sample_prompt or ""
    prompt = bundle.sample_prompt(text) if callable(bundle.sample_prompt) else bundle.sample_prompt
    if not torch.is_tensor(prompt):
        prompt = torch.tensor(prompt, dtype=torch.long)
    if prompt.dim() == 1:
        prompt = prompt.unsqueeze(0)
    kwargs = sample_kwargs(args, generation or {}, int(prompt.shape[-1]))
    if is_pretrained(model):
        kwargs = hf_generate_kwargs(kwargs, model, prompt)
    with autocast():
        out = generate(prompt.to(device), **kwargs)
    model.train(was_training)
    return bundle.decode(out[0].tolist())
