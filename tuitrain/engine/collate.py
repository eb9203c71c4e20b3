"""Turning a list of dataset items into a batch, as transformers' `Trainer` does by default.

- No `collate_fn` in the bundle: HF's `default_data_collator` rules (implemented here, so the
  engine does not need transformers): `label` / `label_ids` become `labels` (long for ints,
  float otherwise), tensors are stacked, NumPy arrays stacked, lists and numbers made into
  tensors; `None` and string values are left out. A bundle with a `processing_class` that can
  `pad` (a tokenizer) gets HF's `DataCollatorWithPadding` instead: `processing_class.pad(...)`
  to the longest item, then the same label renaming.
- `remove_unused_columns`: item keys that are not parameters of the model's `forward` (HF's
  signature columns: the parameter names, `label`, `label_ids` and the label names) are
  dropped before collating; an item left with none of them is an error naming the columns.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Mapping
from typing import Any, Callable

import torch
from torch.utils.data import default_collate

from tuitrain.errors import TuitrainError

__all__ = ["default_data_collator", "PaddingCollator", "default_collator", "find_labels",
           "signature_columns", "RemoveColumnsCollator", "check_columns", "unwrap_model"]


def _is_ndarray(value: Any) -> bool:
    np = sys.modules.get("numpy")  # an item holding an ndarray means numpy is imported
    return np is not None and isinstance(value, np.ndarray)


def _is_integer(value: Any) -> bool:
    np = sys.modules.get("numpy")
    return isinstance(value, int) or (np is not None and isinstance(value, np.integer))


def default_data_collator(features: list) -> dict[str, Any]:
    """HF's `torch_default_data_collator`, rule for rule."""
    if not isinstance(features[0], Mapping):
        if not hasattr(features[0], "__dict__"):  # tuples and plain tensors: torch's own collate
            return default_collate(features)
        features = [vars(f) for f in features]
    first = features[0]
    batch: dict[str, Any] = {}
    if "label" in first and first["label"] is not None:
        label = first["label"].item() if torch.is_tensor(first["label"]) else first["label"]
        dtype = torch.long if _is_integer(label) else torch.float
        batch["labels"] = torch.tensor([f["label"] for f in features], dtype=dtype)
    elif "label_ids" in first and first["label_ids"] is not None:
        if torch.is_tensor(first["label_ids"]):
            batch["labels"] = torch.stack([f["label_ids"] for f in features])
        else:
            dtype = torch.long if _is_integer(first["label_ids"][0]) else torch.float
            batch["labels"] = torch.tensor([f["label_ids"] for f in features], dtype=dtype)
    for key, value in first.items():
        if key in ("label", "label_ids") or value is None or isinstance(value, str):
            continue
        if torch.is_tensor(value):
            batch[key] = torch.stack([f[key] for f in features])
        elif _is_ndarray(value):
            batch[key] = torch.from_numpy(sys.modules["numpy"].stack([f[key] for f in features]))
        else:
            try:
                batch[key] = torch.tensor([f[key] for f in features])
            except (ValueError, TypeError) as exc:
                raise TuitrainError(
                    f"task: the items' {key!r} values cannot be batched ({exc}); items of different lengths "
                    "need padding: give the task a tokenizer (processing_class) or a collate_fn") from None
    return batch


class PaddingCollator:
    """HF's `DataCollatorWithPadding`: pad to the longest item with the tokenizer, rename labels."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, features: list[dict]) -> dict[str, Any]:
        batch = dict(self.tokenizer.pad(features, padding=True, return_tensors="pt"))
        if "label" in batch:
            batch["labels"] = batch.pop("label")
        if "label_ids" in batch:
            batch["labels"] = batch.pop("label_ids")
        return batch


def default_collator(bundle) -> Callable:
    """The bundle's `collate_fn`, else HF's default: padding with a tokenizer, else the plain rules."""
    if bundle.collate_fn is not None:
        return bundle.collate_fn
    processor = getattr(bundle, "processing_class", None)
    if processor is not None and callable(getattr(processor, "pad", None)):
        return PaddingCollator(processor)
    return default_data_collator


def unwrap_model(model):
    while isinstance(getattr(model, "module", None), torch.nn.Module):
        model = model.module
    model = getattr(model, "_orig_mod", model)
    get_base = getattr(model, "get_base_model", None)  # a PEFT model: its base model's forward
    return get_base() if callable(get_base) else model


def find_labels(model) -> list[str]:
    """HF's `find_labels`: the forward parameters whose name holds "label" (and a
    question-answering model's start/end positions)."""
    model = unwrap_model(model)
    try:
        params = inspect.signature(type(model).forward).parameters
    except (TypeError, ValueError, AttributeError):
        return []
    if "QuestionAnswering" in type(model).__name__:
        return [p for p in params if "label" in p or p in ("start_positions", "end_positions")]
    return [p for p in params if "label" in p]


def signature_columns(model, args) -> list[str] | None:
    """HF's signature columns: every parameter name of `forward` (a `**kwargs` catches none
    of the others), `label`, `label_ids` and the label names (`label_names`, else the model's).
    None when the forward has no inspectable signature (keep everything)."""
    try:
        names = [p for p in inspect.signature(unwrap_model(model).forward).parameters]
    except (TypeError, ValueError):
        return None
    labels = list(args.label_names) if args.label_names is not None else find_labels(model)
    return names + sorted({"label", "label_ids", *labels} - set(names))


class RemoveColumnsCollator:
    """HF's `RemoveColumnsCollator`: keeps each item's signature columns, then collates."""

    def __init__(self, collate: Callable, columns: list[str], model_name: str) -> None:
        self.collate, self.columns, self.model_name = collate, frozenset(columns), model_name

    def __call__(self, features: list):
        if features and isinstance(features[0], Mapping):
            kept = [{k: v for k, v in f.items() if k in self.columns} for f in features]
            if not kept[0] and features[0]:
                dropped = ", ".join(sorted(map(str, features[0])))
                raise TuitrainError(
                    f"dataloader.remove_unused_columns: no column of the dataset ({dropped}) is an argument of "
                    f"{self.model_name}.forward; rename the columns, or set remove_unused_columns = false")
            features = kept
        return self.collate(features)


def check_columns(dataset, columns: list[str] | None, model_name: str) -> None:
    """A `datasets.Dataset` whose columns miss the signature entirely fails before any step (HF's check)."""
    names = getattr(dataset, "column_names", None)
    if columns is None or not isinstance(names, list) or not names:
        return
    if not set(names) & set(columns):
        raise TuitrainError(
            f"dataloader.remove_unused_columns: no column of the dataset ({', '.join(map(str, names))}) is an "
            f"argument of {model_name}.forward; rename the columns, or set remove_unused_columns = false")
