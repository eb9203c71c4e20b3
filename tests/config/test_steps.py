"""Step arithmetic, checked against numbers worked out by hand with HF's rounding."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tuitrain.config.steps import (
    global_batch_size, num_warmup_steps, plan_steps, resolve_interval,
)
from tuitrain.errors import TuitrainError


def ns(**kw) -> SimpleNamespace:
    base = dict(per_device_train_batch_size=8, gradient_accumulation_steps=1, num_train_epochs=3.0,
                max_steps=-1, dataloader_drop_last=False, warmup_steps=0, warmup_ratio=0.0)
    base.update(kw)
    return SimpleNamespace(**base)


def test_global_batch() -> None:
    assert global_batch_size(8, 4, 2) == 64


def test_epochs_with_accumulation_rounds_last_update_up() -> None:
    # 1000 examples / 8 = 125 batches; 125 / 4 accumulation = 31.25 → 32 updates (HF 5 keeps the tail).
    plan = plan_steps(ns(gradient_accumulation_steps=4), 1000)
    assert (plan.batches_per_epoch, plan.updates_per_epoch, plan.total_steps, plan.num_epochs) == (125, 32, 96, 3)
    assert plan.global_batch == 32


def test_drop_last_floors_batches() -> None:
    plan = plan_steps(ns(dataloader_drop_last=True, num_train_epochs=1), 1000 + 7)
    assert plan.batches_per_epoch == 125 and plan.total_steps == 125


def test_fractional_epochs() -> None:
    plan = plan_steps(ns(num_train_epochs=2.5), 100)  # 13 batches/epoch → ceil(32.5) = 33
    assert (plan.updates_per_epoch, plan.total_steps, plan.num_epochs) == (13, 33, 3)


def test_max_steps_wins_and_epochs_cover_it() -> None:
    plan = plan_steps(ns(max_steps=30), 100)
    assert (plan.total_steps, plan.num_epochs) == (30, 3)  # ceil(30 / 13)


def test_world_size_shards_batches() -> None:
    # 1000 / 8 = 125 batches dealt to 3 processes: 42 each (even batches).
    plan = plan_steps(ns(num_train_epochs=1), 1000, world_size=3)
    assert plan.batches_per_epoch == 42 and plan.global_batch == 24
    assert plan_steps(ns(num_train_epochs=1, dataloader_drop_last=True), 1000, world_size=3).batches_per_epoch == 41


def test_tiny_dataset_still_one_update() -> None:
    assert plan_steps(ns(gradient_accumulation_steps=16), 10).updates_per_epoch == 1


def test_warmup() -> None:
    assert num_warmup_steps(1000, 0, 0.1) == 100
    assert num_warmup_steps(999, 0, 0.1) == 100  # ceil(99.9)
    assert num_warmup_steps(1000, 50, 0.1) == 50  # steps win
    assert num_warmup_steps(1000, 0.05, 0.0) == 50  # transformers 5: a float < 1 is a ratio
    assert plan_steps(ns(max_steps=200, warmup_ratio=0.03), 100).warmup_steps == 6


def test_resolve_interval() -> None:
    assert resolve_interval(0.1, 1001) == 101
    assert resolve_interval(500, 1001) == 500
    assert resolve_interval(None, 10) is None
    with pytest.raises(TuitrainError):
        resolve_interval(2.5, 100)


def test_bad_inputs() -> None:
    with pytest.raises(TuitrainError):
        plan_steps(ns(per_device_train_batch_size=0), 100)
    with pytest.raises(TuitrainError, match="no full batch"):
        plan_steps(ns(dataloader_drop_last=True), 3)
    with pytest.raises(TuitrainError):
        num_warmup_steps(100, 0, 1.5)
