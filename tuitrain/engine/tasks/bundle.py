"""What a task hands the trainer: the model, its data and how to score it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable


class EvalPrediction:
    """Gathered outputs of an evaluation, passed to `compute_metrics`: transformers'
    `EvalPrediction`, field for field, for tasks that do not import transformers (the engine
    passes transformers' own class when it is imported). Unpacks as
    `predictions, label_ids[, inputs][, losses]`."""

    def __init__(self, predictions: Any, label_ids: Any, inputs: Any = None, losses: Any = None) -> None:
        self.predictions, self.label_ids, self.inputs, self.losses = predictions, label_ids, inputs, losses
        self.elements = (predictions, label_ids) + ((inputs,) if inputs is not None else ()) + (
            (losses,) if losses is not None else ())

    def __iter__(self):
        return iter(self.elements)

    def __getitem__(self, idx: int):
        if idx < 0 or idx >= len(self.elements):
            raise IndexError("tuple index out of range")
        return self.elements[idx]


@dataclass
class TaskBundle:
    """Everything the trainer needs from a task.

    `model.forward(**batch)` returns a dict with `loss` (mean over the micro-batch) when
    labels are given, and `logits`. Datasets are map-style with dict items (a
    `datasets.Dataset` is one).

    - `collate_fn`: None gives HF's default collator (`DataCollatorWithPadding` with a
      `processing_class` that can pad, `default_data_collator` otherwise).
    - `compute_metrics(EvalPrediction)`: as HF's; with `batch_eval_metrics` it is called per
      batch as `compute_metrics(pred, compute_result=is_last_batch)`.
    - `preprocess_logits_for_metrics(logits, labels)`: as HF's, per eval batch, before the
      predictions are gathered (e.g. an argmax, so the logits are never all kept).
    - `processing_class`: the tokenizer (or processor): pads batches without a collate_fn and
      is saved with every checkpoint and the final model (`save_pretrained`).
    - `test_dataset`: what `do_predict` predicts on (the eval set when None).
    - `model_card`: what the final model's README.md says: `base_model`, `datasets` (Hub
      ids), `dataset` (a description), `language`, `license`, `tags` (all optional).
    """

    model: Any
    train_dataset: Any
    eval_dataset: Any = None
    collate_fn: Callable[[list], dict] | None = None
    compute_metrics: Callable[[EvalPrediction], dict] | None = None
    tokens_per_example: int | None = None
    decode: Callable[[list[int]], str] | None = None
    sample_prompt: Callable[[], Any] | None = None
    preprocess_logits_for_metrics: Callable[[Any, Any], Any] | None = None
    processing_class: Any = None
    test_dataset: Any = None
    model_card: dict | None = None

    @classmethod
    def field_names(cls) -> list[str]:
        """The keys a plug-in's dict may carry."""
        return [f.name for f in fields(cls)]
