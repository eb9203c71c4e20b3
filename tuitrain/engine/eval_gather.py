"""What an evaluation hands `compute_metrics`, gathered as transformers' `evaluation_loop` does.

- `predictions_of(outputs, ignore)` / `labels_of(batch, names)`: HF's `prediction_step`: the
  outputs other than the loss and the config's `keys_to_ignore_at_inference` (one tensor when
  there is one, a tuple otherwise); the label tensors (a tuple for several `label_names`).
- `Gathered`: HF's `EvalLoopContainer`: batches concatenated along the first dimension (ragged
  trailing dimensions padded with -100) or, without `eval_do_concat_batches`, kept as a list;
  `to_cpu()` moves what is held to NumPy on the host (every `eval_accumulation_steps`
  batches, and at the end).
- `prediction_class()`: transformers' `EvalPrediction` when transformers is imported (an HF
  model or plug-in imported it), else the bundle's equivalent with the same fields.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import torch

from .tasks.bundle import EvalPrediction

PADDING_INDEX = -100


def prediction_class():
    """The `EvalPrediction` class `compute_metrics` gets."""
    if "transformers" in sys.modules:
        try:
            from transformers.trainer_utils import EvalPrediction as HFEvalPrediction  # noqa: PLC0415
        except ImportError:
            return EvalPrediction
        return HFEvalPrediction
    return EvalPrediction


def ignored_outputs(model) -> list[str]:
    """HF's default `ignore_keys`: the config's `keys_to_ignore_at_inference` (["cache"] when the
    config does not say), nothing for a model without a config."""
    config = getattr(model, "config", None)
    if config is None:
        return []
    return list(getattr(config, "keys_to_ignore_at_inference", ["cache"]))


def predictions_of(outputs: Any, ignore: list[str], has_loss: bool):
    """The outputs compute_metrics sees: every output but the loss and the ignored ones."""
    if isinstance(outputs, Mapping):
        found = tuple(v for k, v in outputs.items() if k not in ignore and k != "loss" and v is not None)
    elif isinstance(outputs, (tuple, list)):
        found = tuple(outputs[1:] if has_loss else outputs)
    else:
        found = (outputs,)
    found = _detach(found)
    if not found:
        return None
    return found[0] if len(found) == 1 else found


def labels_of(batch: dict, names: list[str]):
    """The label tensors of a batch (None unless every one of `names` is there)."""
    if not names or any(batch.get(n) is None for n in names):
        return None
    labels = _detach(tuple(batch[n] for n in names))
    return labels[0] if len(labels) == 1 else labels


def _detach(value):
    if isinstance(value, (list, tuple)):
        return type(value)(_detach(v) for v in value)
    if isinstance(value, Mapping):
        return type(value)({k: _detach(v) for k, v in value.items()})
    return value.detach() if torch.is_tensor(value) else value


def _pad_concat(a, b):
    """`a` and `b` stacked along dim 0 (a 0-d one as 1-d), trailing dims padded with -100 where they differ."""
    is_torch = torch.is_tensor(a)
    if is_torch:
        a, b = torch.atleast_1d(a), torch.atleast_1d(b)
    else:
        a, b = sys.modules["numpy"].atleast_1d(a), sys.modules["numpy"].atleast_1d(b)
    if a.ndim <= 1 or a.shape[1:] == b.shape[1:]:
        return torch.cat((a, b)) if is_torch else sys.modules["numpy"].concatenate((a, b))
    shape = (a.shape[0] + b.shape[0], *(max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])))
    if is_torch:
        out = a.new_full(shape, PADDING_INDEX)
    else:
        out = sys.modules["numpy"].full(shape, PADDING_INDEX, dtype=a.dtype)
    out[(slice(0, a.shape[0]), *(slice(0, s) for s in a.shape[1:]))] = a
    out[(slice(a.shape[0], None), *(slice(0, s) for s in b.shape[1:]))] = b
    return out


def nested_concat(a, b):
    """HF's `nested_concat`: the same structure, every leaf concatenated."""
    if isinstance(a, (list, tuple)):
        return type(a)(nested_concat(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping):
        return type(a)({k: nested_concat(v, b[k]) for k, v in a.items()})
    if torch.is_tensor(a) or hasattr(a, "shape"):
        return _pad_concat(a, b)
    raise TypeError(f"cannot concatenate eval outputs of type {type(a).__name__}")


def numpify(value):
    """HF's `nested_numpify`: host NumPy arrays (bfloat16 as float32, which NumPy lacks)."""
    if isinstance(value, (list, tuple)):
        return type(value)(numpify(v) for v in value)
    if isinstance(value, Mapping):
        return type(value)({k: numpify(v) for k, v in value.items()})
    if torch.is_tensor(value):
        value = value.cpu()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.numpy()
    return value


class Gathered:
    """HF's `EvalLoopContainer`: one kind of eval output across batches."""

    def __init__(self, concat: bool) -> None:
        self.concat = concat
        self.tensors: Any = None  # still where the model put them
        self.arrays: Any = None   # on the host, as NumPy

    def add(self, value) -> None:
        if self.tensors is None:
            self.tensors = value if self.concat else [value]
        elif self.concat:
            self.tensors = nested_concat(self.tensors, value)
        else:
            self.tensors.append(value)

    def to_cpu(self) -> None:
        if self.tensors is None:
            return
        arrays = numpify(self.tensors)
        if self.arrays is None:
            self.arrays = arrays
        elif self.concat:
            self.arrays = nested_concat(self.arrays, arrays)
        else:
            self.arrays.extend(arrays)
        self.tensors = None

    def result(self):
        self.to_cpu()
        return self.arrays
