"""past_index: output N of each forward pass comes back as `mems`, reset per epoch and per evaluation."""

from __future__ import annotations

import pytest
import torch

from trainer_fixtures import FakePreset, events, run
from tuitrain.engine.past import PastState, output_at
from tuitrain.errors import TuitrainError

TASK = '''
import torch
from torch import nn
from tuitrain.engine.tasks import TaskBundle

SEEN = []  # (training?, mems passed in) for every forward pass


class Counter(nn.Module):
    """Returns (loss, logits, mems) where mems counts the forward passes since the cache was empty."""

    def __init__(self):
        super().__init__()
        self.w = nn.Linear(2, 1)

    def forward(self, x, labels=None, mems=None):
        SEEN.append((self.training, None if mems is None else int(mems)))
        pred = self.w(x)
        count = torch.tensor(1 if mems is None else int(mems) + 1)
        return {"loss": nn.functional.mse_loss(pred, labels), "logits": pred, "mems": count}


class Data(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": torch.tensor([float(i), 1.0]), "labels": torch.tensor([float(i)])}


def build(options, args):
    return TaskBundle(model=Counter(), train_dataset=Data(8), eval_dataset=Data(4))
'''


def _preset(task: str, **overrides) -> FakePreset:
    base = {"per_device_train_batch_size": 2, "num_train_epochs": 2, "learning_rate": 0.01,
            "logging_steps": 1, "save_strategy": "no", "seed": 1, "eval_strategy": "steps",
            "eval_steps": 3, "per_device_eval_batch_size": 2}
    return FakePreset(task, {}, {**base, **overrides})


def _seen(tmp_path):
    import sys

    path = str(tmp_path / "counter_task.py")
    return next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == path).SEEN


def test_the_past_output_is_fed_back_and_reset_per_epoch_and_evaluation(tmp_path):
    (tmp_path / "counter_task.py").write_text(TASK)
    run_dir = tmp_path / "run"
    assert run(_preset(f"{tmp_path / 'counter_task.py'}:build", past_index=2), run_dir) == 0
    seen = _seen(tmp_path)
    train = [m for training, m in seen if training]
    # 4 updates per epoch, evaluation after updates 3, 6 and the last, 8: the cache restarts after each.
    assert train == [None, 1, 2, None, None, 1, None, 1]
    assert [m for training, m in seen if not training] == [None, 1, None, 1, None, 1]
    assert [e["step"] for e in events(run_dir, "eval")] == [3, 6, 8]


def test_without_past_index_no_mems_are_passed(tmp_path):
    (tmp_path / "counter_task.py").write_text(TASK)
    assert run(_preset(f"{tmp_path / 'counter_task.py'}:build"), tmp_path / "run") == 0
    assert {m for _, m in _seen(tmp_path)} == {None}


def test_output_at_reads_dicts_tuples_and_refuses_a_missing_index():
    assert output_at({"loss": 1, "logits": 2, "mems": 3}, 2) == 3
    assert output_at((1, 2), 1) == 2
    state = PastState(0)
    state.keep((torch.tensor(5.0),))
    assert float(state.feed({"x": 1})["mems"]) == 5.0
    with pytest.raises(TuitrainError, match="evaluation.past_index: 3 is past the model's 2 outputs"):
        output_at((1, 2), 3)
