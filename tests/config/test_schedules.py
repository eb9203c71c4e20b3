"""LR multipliers against transformers' own schedulers, plus values pinned by formula."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)

from tuitrain.config.schedules import curve_steps, lr_curve, lr_multiplier, make_lambda  # noqa: E402
from tuitrain.errors import TuitrainError  # noqa: E402

BASE_LR = 3e-4
TOTAL, WARMUP = 200, 20
CASES = [
    ("linear", {}),
    ("cosine", {}),
    ("cosine", {"num_cycles": 1.5}),
    ("cosine_with_restarts", {}),
    ("cosine_with_restarts", {"num_cycles": 3}),
    ("polynomial", {}),
    ("polynomial", {"lr_end": 1e-5, "power": 2.0}),
    ("constant", {}),
    ("constant_with_warmup", {}),
    ("inverse_sqrt", {}),
    ("inverse_sqrt", {"timescale": 50}),
    ("cosine_with_min_lr", {"min_lr": 1e-5}),
    ("cosine_with_min_lr", {"min_lr_rate": 0.1, "num_cycles": 0.75}),
    ("cosine_warmup_with_min_lr", {"min_lr_rate": 0.05}),
    ("cosine_warmup_with_min_lr", {"min_lr": 3e-5, "warmup_lr_rate": 0.2}),
    ("warmup_stable_decay", {"num_decay_steps": 60}),
    ("warmup_stable_decay", {"num_decay_steps": 50, "num_stable_steps": 100, "decay_type": "1-sqrt",
                             "warmup_type": "cosine", "min_lr_ratio": 0.1}),
    ("warmup_stable_decay", {"num_decay_steps": 40, "decay_type": "linear", "warmup_type": "1-sqrt"}),
]


def hf_lrs(name: str, kwargs: dict, warmup: int, total: int) -> list[float]:
    """LR of each update 1..total, read from transformers' scheduler on a dummy optimizer."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
    sched = transformers.get_scheduler(
        name, opt, num_warmup_steps=warmup, num_training_steps=total,
        scheduler_specific_kwargs=dict(kwargs),
    )
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_transformers(name: str, kwargs: dict) -> None:
    expected = hf_lrs(name, kwargs, WARMUP, TOTAL)
    args = SimpleNamespace(learning_rate=BASE_LR, lr_scheduler_type=name, lr_scheduler_kwargs=kwargs)
    ours = lr_curve(args, TOTAL, WARMUP)
    assert len(ours) == TOTAL
    fn = make_lambda(name, WARMUP, TOTAL, kwargs, BASE_LR)  # what the engine's LambdaLR calls
    for k, (a, b) in enumerate(zip(ours, expected), start=1):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-18), f"update {k}"
        assert BASE_LR * fn(k - 1) == pytest.approx(b, rel=1e-12, abs=1e-18), f"update {k}"


def test_plateau_preview_is_flat() -> None:
    args = SimpleNamespace(learning_rate=0.1, lr_scheduler_type="reduce_lr_on_plateau",
                           lr_scheduler_kwargs={"patience": 3})
    assert lr_curve(args, 10, 2) == [0.1] * 10


def lam(name: str, step: int, **kw) -> float:
    return lr_multiplier(name, step, warmup_steps=10, total_steps=110, base_lr=1.0, **kw)


# (name, kwargs, step, expected λ) with step 10 = warmup end, 60 = mid-decay, 109 = last update.
PINNED = [
    ("linear", {}, 5, 0.5), ("linear", {}, 10, 1.0), ("linear", {}, 60, 0.5), ("linear", {}, 109, 0.01),
    ("cosine", {}, 10, 1.0), ("cosine", {}, 60, 0.5),
    ("cosine", {}, 109, 0.5 * (1 + math.cos(math.pi * 0.99))),
    ("cosine_with_restarts", {"num_cycles": 2}, 10, 1.0),
    ("cosine_with_restarts", {"num_cycles": 2}, 35, 0.5),
    ("cosine_with_restarts", {"num_cycles": 2}, 60, 1.0),  # the restart
    ("cosine_with_restarts", {"num_cycles": 2}, 109, 0.5 * (1 + math.cos(math.pi * 0.98))),
    ("polynomial", {"lr_end": 0.1, "power": 2.0}, 10, 1.0),
    ("polynomial", {"lr_end": 0.1, "power": 2.0}, 60, 0.9 * 0.25 + 0.1),
    ("polynomial", {"lr_end": 0.1, "power": 2.0}, 109, 0.9 * 0.0001 + 0.1),
    ("polynomial", {}, 60, (1 - 1e-7) * 0.5 + 1e-7),
    ("constant", {}, 0, 1.0), ("constant", {}, 109, 1.0),
    ("constant_with_warmup", {}, 0, 0.0), ("constant_with_warmup", {}, 10, 1.0),
    ("constant_with_warmup", {}, 109, 1.0),
    ("inverse_sqrt", {}, 10, 1.0), ("inverse_sqrt", {}, 40, 0.5), ("inverse_sqrt", {}, 109, 1 / math.sqrt(10.9)),
    ("cosine_with_min_lr", {"min_lr_rate": 0.1}, 10, 1.0),
    ("cosine_with_min_lr", {"min_lr_rate": 0.1}, 60, 0.55),
    ("cosine_with_min_lr", {"min_lr": 0.2}, 109, 0.5 * (1 + math.cos(math.pi * 0.99)) * 0.8 + 0.2),
    ("cosine_warmup_with_min_lr", {"min_lr_rate": 0.0}, 9, 1.0),
    ("cosine_warmup_with_min_lr", {"min_lr_rate": 0.0}, 59, 0.5),
    ("cosine_warmup_with_min_lr", {"min_lr_rate": 0.1}, 109, 0.1),
    ("warmup_stable_decay", {"num_decay_steps": 40}, 10, 1.0),
    ("warmup_stable_decay", {"num_decay_steps": 40}, 69, 1.0),
    ("warmup_stable_decay", {"num_decay_steps": 40}, 90, 0.5),
    ("warmup_stable_decay", {"num_decay_steps": 40, "decay_type": "linear", "min_lr_ratio": 0.2}, 109,
     (1 - 39 / 40) * 0.8 + 0.2),
]


@pytest.mark.parametrize("name,kwargs,step,expected", PINNED)
def test_pinned_values(name: str, kwargs: dict, step: int, expected: float) -> None:
    assert lam(name, step, **kwargs) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_hf_convention_first_update_runs_at_lambda_zero() -> None:
    args = SimpleNamespace(learning_rate=1.0, lr_scheduler_type="linear", lr_scheduler_kwargs={})
    curve = lr_curve(args, 110, 10)
    assert curve[0] == 0.0 and curve[10] == 1.0  # update 11 is the first at full LR


@pytest.mark.parametrize("name,kwargs,base_lr,fragment", [
    ("polynomial", {"lr_end": 1e-3}, 1e-3, "lr_end"),
    ("cosine_with_min_lr", {}, 1e-3, "exactly one of min_lr or min_lr_rate"),
    ("cosine_with_min_lr", {"min_lr": 1e-5, "min_lr_rate": 0.1}, 1e-3, "exactly one"),
    ("cosine", {"num_cycle": 2}, 1e-3, "num_cycle not accepted by cosine"),
    ("warmup_stable_decay", {}, 1e-3, "num_decay_steps"),
    ("warmup_stable_decay", {"num_decay_steps": 10, "decay_type": "exp"}, 1e-3, "decay_type"),
    ("cosine_annealing", {}, 1e-3, "unknown scheduler"),
])
def test_bad_kwargs_raise(name: str, kwargs: dict, base_lr: float, fragment: str) -> None:
    with pytest.raises(TuitrainError, match=fragment):
        make_lambda(name, 10, 100, kwargs, base_lr)


@pytest.mark.parametrize("name", ["cosine", "linear", "constant_with_warmup", "polynomial"])
def test_decimated_and_full_curves_are_the_per_step_schedule(name: str) -> None:
    """The full curve (computed without a call per step; its speed is in
    bench/schedule_bench.py) and the decimated one hold exactly the per-step λ's values."""
    args = SimpleNamespace(learning_rate=1e-3, lr_scheduler_type=name, lr_scheduler_kwargs={})
    total, warmup = 20_000, 1000
    steps = curve_steps(total, 200)
    assert len(steps) == 200 and steps[0] == 1 and steps[-1] == total
    fn = make_lambda(name, warmup, total, {}, 1e-3)
    per_step = [1e-3 * fn(k - 1) for k in range(1, total + 1)]
    assert lr_curve(args, total, warmup) == per_step
    assert lr_curve(args, total, warmup, points=200) == [per_step[k - 1] for k in steps]


def run_schedule_command(argv: list[str]) -> int:
    import argparse

    from tuitrain.commands import schedule

    parser = argparse.ArgumentParser()
    schedule.register(parser.add_subparsers())
    ns = parser.parse_args(["schedule", *argv])
    return ns.func(ns)


def test_schedule_command_draws_and_summarises(tmp_path, capsys) -> None:
    pytest.importorskip("plotext")
    preset = tmp_path / "p.toml"
    preset.write_text(
        '[task]\nname = "regression"\n\n[core]\nmax_steps = 1000\n\n'
        '[optimizer]\nlearning_rate = 0.002\nlr_scheduler_type = "cosine"\nwarmup_steps = 100\n'
    )
    assert run_schedule_command([str(preset), "--width", "60", "--height", "12"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # not a TTY: plain text
    assert "peak 0.002" in out and "warmup end (100)" in out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("cosine: warmup 100 steps, total 1000 steps, peak LR 0.002")
    # final LR: update 1000 runs at λ(999) = 0.5 (1 + cos(π · 899/900))
    assert f"final LR {0.002 * 0.5 * (1 + math.cos(math.pi * 899 / 900)):.3g}" in summary


def test_schedule_command_needs_steps_for_plugin_task(tmp_path) -> None:
    preset = tmp_path / "p.toml"
    preset.write_text('[task]\nname = "mypkg.tasks:build"\n')
    with pytest.raises(TuitrainError, match="pass --steps"):
        run_schedule_command([str(preset)])
    assert run_schedule_command([str(preset), "--steps", "50", "--width", "40", "--height", "8"]) == 0
