"""A fork's trainer: exact when nothing changes, and a changed learning rate (or other optimizer
setting) honoured from the fork on, never ignored (HF's resume keeps the checkpoint's rate)."""

from __future__ import annotations

import pytest

from tuitrain.errors import TuitrainError
from tuitrain.runs.fork import link_checkpoint

from trainer_fixtures import events, losses_by_step, regression_preset, run

BASE = {"max_steps": 20, "save_strategy": "steps", "save_steps": 10, "lr_scheduler_type": "linear",
        "warmup_steps": 3}
FORK = {"parent": {"run": "parent", "checkpoint": "checkpoint-10", "step": 10, "fork": True}}


def _fork_dir(parent, root, name="fork"):
    fork = root / name
    fork.mkdir()
    link_checkpoint(parent / "checkpoint-10", fork / "checkpoint-10")
    return fork


def _train(preset, run_dir, resume_from=None, lineage=None) -> int:
    from tuitrain.engine.trainer import Trainer

    trainer = Trainer(preset, run_dir, resume_from=resume_from, lineage=lineage)
    try:
        return trainer.train()
    finally:
        trainer.close()


def _rates(run_dir) -> dict[int, float]:
    return {e["step"]: e["learning_rate"] for e in events(run_dir, "train")}


def test_a_fork_that_changes_nothing_continues_exactly(tmp_path):
    parent = tmp_path / "parent"
    assert run(regression_preset(**BASE), parent) == 0
    fork = _fork_dir(parent, tmp_path)
    assert _train(regression_preset(**BASE), fork, "checkpoint-10", FORK) == 0
    mine, theirs = losses_by_step(fork), losses_by_step(parent)
    assert sorted(mine) == list(range(11, 21))
    assert all(mine[s] == theirs[s] for s in mine)  # bit for bit
    start = events(fork, "start")[0]
    assert start["parent"] == FORK["parent"] and (start["step"], start["resumed_from"]) == (10, "checkpoint-10")


def test_a_fork_with_a_lower_learning_rate_runs_at_it(tmp_path):
    parent = tmp_path / "parent"
    assert run(regression_preset(**BASE), parent) == 0
    lower = dict(BASE, learning_rate=0.002, max_grad_norm=0.5, adam_beta2=0.99)
    fork = _fork_dir(parent, tmp_path)
    assert _train(regression_preset(**lower), fork, "checkpoint-10", FORK) == 0
    fresh = tmp_path / "fresh"
    assert run(regression_preset(**lower), fresh) == 0
    # the fork's schedule is the new rate's, step for step (the checkpoint's Adam moments are kept)
    assert {s: r for s, r in _rates(fork).items()} == {s: r for s, r in _rates(fresh).items() if s > 10}
    assert _rates(fork)[11] != _rates(parent)[11]
    assert losses_by_step(fork)[12] != losses_by_step(parent)[12]  # (11 ran on the same weights)


def test_a_resume_still_refuses_a_changed_learning_rate(tmp_path):
    parent = tmp_path / "parent"
    assert run(regression_preset(**BASE), parent) == 0
    with pytest.raises(TuitrainError, match="cannot resume with changed optimizer.learning_rate"):
        _train(regression_preset(**dict(BASE, learning_rate=0.002)), parent, "checkpoint-10")
    fork = _fork_dir(parent, tmp_path)
    with pytest.raises(TuitrainError, match="cannot fork with changed optimizer.lr_scheduler_type"):
        _train(regression_preset(**dict(BASE, lr_scheduler_type="cosine")), fork, "checkpoint-10", FORK)
