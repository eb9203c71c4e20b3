"""build_scheduler: LRs equal config.schedules step by step; plateau; JSON state."""

from __future__ import annotations

import json

import pytest
import torch

from tuitrain.config import TrainingArgs, schedules, schema
from tuitrain.engine.sched import BUILDERS, build_scheduler, is_metric_driven

torch.set_num_threads(1)

CASES = [
    ("linear", {}), ("cosine", {}), ("cosine_with_restarts", {"num_cycles": 2}),
    ("polynomial", {"power": 2.0}), ("constant", {}), ("constant_with_warmup", {}),
    ("inverse_sqrt", {}), ("cosine_with_min_lr", {"min_lr_rate": 0.1}),
    ("warmup_stable_decay", {"num_decay_steps": 5}),
]


def _opt(lr=0.5):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


@pytest.mark.parametrize("name,kwargs", CASES)
def test_lambda_schedules_match_config_formulas(name, kwargs):
    args = TrainingArgs(lr_scheduler_type=name, lr_scheduler_kwargs=kwargs, learning_rate=0.5)
    opt = _opt()
    sched = build_scheduler(opt, args, total_steps=20, warmup_steps=4)
    fn = schedules.make_lambda(name, 4, 20, kwargs, base_lr=0.5)
    for k in range(20):  # update k+1 runs at base_lr × λ(k)
        assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * fn(k), rel=1e-12, abs=1e-15)
        opt.step()
        sched.step()
    state = json.loads(json.dumps(sched.state_dict()))
    again = build_scheduler(_opt(), args, total_steps=20, warmup_steps=4)
    again.load_state_dict(state)
    assert again.get_last_lr() == sched.get_last_lr()


def test_plateau_takes_lr_scheduler_kwargs_only():
    # HF builds ReduceLROnPlateau from lr_scheduler_kwargs alone: greater_is_better does not set mode
    plain = TrainingArgs(lr_scheduler_type="reduce_lr_on_plateau", learning_rate=0.5, greater_is_better=True,
                         lr_scheduler_kwargs={"patience": 0, "factor": 0.5})
    assert build_scheduler(_opt(), plain, 10, 0).mode == "min"
    args = plain.replace(lr_scheduler_kwargs={"patience": 0, "factor": 0.5, "mode": "max"})
    opt = _opt()
    sched = build_scheduler(opt, args, 10, 0)
    assert is_metric_driven(sched) and sched.mode == "max"
    sched.step(1.0)
    sched.step(0.5)  # worse for "max": halves at once with patience 0
    assert opt.param_groups[0]["lr"] == 0.25
    json.dumps(sched.state_dict(), allow_nan=True)


def test_bad_scheduler_kwargs_are_user_errors():
    from tuitrain.errors import TuitrainError

    args = TrainingArgs(lr_scheduler_type="cosine", lr_scheduler_kwargs={"bogus": 1}, learning_rate=0.1)
    with pytest.raises(TuitrainError):
        build_scheduler(_opt(), args, 10, 0)


def test_one_table_of_schedulers_drives_schema_and_engine():
    assert set(BUILDERS) == set(schedules.SCHEDULERS)
    assert schema.field("lr_scheduler_type").choices == schedules.SCHEDULERS
    assert "greedy" in schedules.SCHEDULERS
