"""HF-style data without a collate_fn: a `datasets.Dataset` with a column the model does not take,
collated by HF's default rules (padded by the task's tokenizer), trained beside transformers.Trainer;
and the collators themselves against transformers' on the same items."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import DataCollatorWithPadding, default_data_collator

from harness import assert_same, run_engine, run_hf
from parity_task import word_tokenizer
from tuitrain.engine.collate import PaddingCollator
from tuitrain.engine.collate import default_data_collator as ours_default


@pytest.mark.parametrize("kind", ["seqcls", "lm_ds"])
def test_a_datasets_dataset_with_a_text_column_and_no_collator_trains_as_transformers(tmp_path, kind):
    settings = {"eval_strategy": "steps", "eval_steps": 2, "max_steps": 6}
    assert_same(run_engine(tmp_path, settings, {"model": kind}), run_hf(tmp_path, settings, {"model": kind}))


def _equal(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("features", [
    [{"label": 1, "x": [1.0, 2.0]}, {"label": 0, "x": [3.0, 4.0]}],
    [{"label": 0.5, "input_ids": [1, 2]}, {"label": 1.5, "input_ids": [3, 4]}],
    [{"label": torch.tensor(2), "x": torch.ones(3)}, {"label": torch.tensor(1), "x": torch.zeros(3)}],
    [{"label_ids": [1, 2, 3], "text": "a", "skip": None}, {"label_ids": [4, 5, 6], "text": "b", "skip": None}],
    [{"label_ids": torch.tensor([1.0, 2.0]), "x": np.arange(3)}, {"label_ids": torch.tensor([3.0, 4.0]), "x": np.arange(3)}],
    [{"labels": [1, 2], "input_ids": [3, 4], "flag": True}, {"labels": [5, 6], "input_ids": [7, 8], "flag": False}],
    [{"label": np.int64(1), "x": np.float32(0.5)}, {"label": np.int64(0), "x": np.float32(1.5)}],
], ids=["int-label", "float-label", "tensor-label", "label-ids-list", "label-ids-tensor", "labels-bool", "numpy"])
def test_default_collator_is_transformers_default_data_collator(features):
    _equal(ours_default(features), default_data_collator(features))


def test_padding_collator_is_transformers_data_collator_with_padding():
    tokenizer = word_tokenizer()
    texts = ["the cat sat", "a dog ran on the mat", "then"]
    features = [{**tokenizer(t), "label": i} for i, t in enumerate(texts)]
    ours, theirs = PaddingCollator(tokenizer)(features), DataCollatorWithPadding(tokenizer)(features)
    _equal(dict(ours), dict(theirs))
    assert ours["input_ids"].shape == (3, 6) and "label" not in ours
