"""What a task hands the trainer: the model, its data and how to score it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable


@dataclass
class EvalPrediction:
    """Gathered outputs of an evaluation, passed to `compute_metrics` (HF's shape)."""

    predictions: Any
    label_ids: Any
    inputs: Any = None


@dataclass
class TaskBundle:
    """Everything the trainer needs from a task.

    `model.forward(**batch)` returns a dict with `loss` (mean over the micro-batch) when
    labels are given, and `logits`. Datasets are map-style with dict items.
    """

    model: Any
    train_dataset: Any
    eval_dataset: Any = None
    collate_fn: Callable[[list], dict] | None = None
    compute_metrics: Callable[[EvalPrediction], dict] | None = None
    tokens_per_example: int | None = None
    decode: Callable[[list[int]], str] | None = None
    sample_prompt: Callable[[], Any] | None = None

    @classmethod
    def field_names(cls) -> list[str]:
        """The keys a plug-in's dict may carry."""
        return [f.name for f in fields(cls)]
