"""`core.auto_find_batch_size`: an out-of-memory error shrinks the batch and restarts training
from scratch; other errors, and runs without the flag, fail as before."""

from __future__ import annotations

import textwrap
import tomllib
import weakref

import pytest
import torch

from trainer_fixtures import events, losses_by_step
from tuitrain.config import load_preset
from tuitrain.engine import main
from tuitrain.engine.autobatch import is_oom, next_batch_size

# The regression task, whose forward "runs out of memory" in training when a batch holds more
# than `fits` examples, from its `after`-th forward call on (earlier calls succeed).
PLUGIN = textwrap.dedent(
    """
    import torch
    from tuitrain.engine.tasks import regression

    def build(options, args):
        opts = dict(options)
        fits, after, error = int(opts.pop("fits")), int(opts.pop("after", 0)), opts.pop("error", "oom")
        eval_fits = int(opts.pop("eval_fits", 1 << 30))
        bundle = regression.build(opts, args)
        model, forward, calls = bundle.model, bundle.model.forward, [0]

        def guarded(x, labels=None):
            if model.training:
                calls[0] += 1
                if x.shape[0] > fits and calls[0] > after:
                    if error == "oom":
                        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
                    raise ValueError("a bug, not a memory problem")
            elif x.shape[0] > eval_fits:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
            return forward(x, labels)

        model.forward = guarded
        return bundle
    """
)


def _run_dir(tmp_path, name="run", batch=8, eval_batch=None, **options):
    """A run directory holding the resolved preset, as `tuitrain run` leaves it (evaluating
    every epoch when `eval_batch` is given)."""
    plugin = tmp_path / "oomtask.py"
    plugin.write_text(PLUGIN)
    auto = options.pop("auto", True)
    extra = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in {"fits": 5, **options}.items())
    evaluation = "" if eval_batch is None else f"per_device_eval_batch_size = {eval_batch}\n"
    eval_strategy = "" if eval_batch is None else 'eval_strategy = "epoch"\n'
    preset = tmp_path / f"{name}.toml"
    preset.write_text(
        f'[task]\nname = "oomtask.py:build"\n[task.options]\nn_samples = 50\nn_features = 4\nhidden = 8\n{extra}'
        f"[core]\nper_device_train_batch_size = {batch}\nnum_train_epochs = 2\n"
        f"auto_find_batch_size = {str(auto).lower()}\n{evaluation}"
        '[optimizer]\nlearning_rate = 0.01\n[logging]\nlogging_steps = 1\nsave_strategy = "epoch"\n'
        f"{eval_strategy}[reproducibility]\nseed = 3\n")
    run_dir = tmp_path / name
    run_dir.mkdir()
    (run_dir / "preset.toml").write_text(load_preset(preset).to_toml())
    return run_dir


def _batch(path) -> int:
    return tomllib.loads(path.read_text())["core"]["per_device_train_batch_size"]


def test_out_of_memory_shrinks_the_batch_and_restarts_from_scratch(tmp_path, capsys):
    # 40 training examples, 2 epochs. Batch 8 (5 steps an epoch) saves checkpoint-5, then runs
    # out of memory in step 6; 7 (6 steps an epoch, the last a batch of 5) saves checkpoint-6 and
    # runs out in step 7; 6 runs out in step 6; 5 fits: 8 steps an epoch, 16 in all.
    run_dir = _run_dir(tmp_path, after=5)
    assert main([str(run_dir)]) == 0
    out = capsys.readouterr().out
    for old, new, step in ((8, 7, 5), (7, 6, 6), (6, 5, 5)):
        assert (f"out of memory at per_device_train_batch_size={old} (step {step}); "
                f"restarting training from step 0 with per_device_train_batch_size={new}") in out
    warnings = events(run_dir, "warning")
    assert [w["step"] for w in warnings] == [5, 6, 5]
    assert all(w["message"].startswith("core.auto_find_batch_size: out of memory") for w in warnings)
    starts = events(run_dir, "start")
    assert [s["config"]["core.per_device_train_batch_size"] for s in starts] == [8, 7, 6, 5]
    assert starts[-1]["max_steps"] == 16 and starts[-1]["step"] == 0
    assert events(run_dir, "status")[-1]["state"] == "finished"
    # The recorded preset says what ran; the asked-for one is kept beside it.
    assert _batch(run_dir / "preset.toml") == 5 and _batch(run_dir / "preset.prev-1.toml") == 8
    assert not (run_dir / "preset.prev-2.toml").exists()
    # The abandoned attempts' checkpoint-5 and -6 are gone; the kept ones are the batch-5 run's.
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == ["checkpoint-16", "checkpoint-8"]
    # From scratch: the final attempt is exactly a run started at batch 5.
    direct = _run_dir(tmp_path, name="direct", batch=5, auto=False)
    assert main([str(direct)]) == 0
    final = {e["step"]: e["loss"] for e in events(run_dir, "train")[-16:]}
    assert final == losses_by_step(direct) and sorted(final) == list(range(1, 17))


def test_out_of_memory_in_evaluation_shrinks_the_eval_batch_only(tmp_path, capsys):
    # 10 eval examples: batches of 8 "run out"; 8 -> 7 -> 6 -> 5 fits. Training (batch 8,
    # which fits) goes on where it was; the run is the one a direct eval batch of 5 gives.
    run_dir = _run_dir(tmp_path, eval_batch=8, fits=8, eval_fits=5)
    assert main([str(run_dir)]) == 0
    out = capsys.readouterr().out
    for old, new in ((8, 7), (7, 6), (6, 5)):
        assert (f"evaluation ran out of memory at per_device_eval_batch_size={old} (step 5); "
                f"evaluating again with per_device_eval_batch_size={new}") in out
    assert [w["step"] for w in events(run_dir, "warning")] == [5, 5, 5]
    assert len(events(run_dir, "start")) == 1  # training never restarted
    assert events(run_dir, "status")[-1]["state"] == "finished"
    config = tomllib.loads((run_dir / "preset.toml").read_text())["core"]
    assert (config["per_device_train_batch_size"], config["per_device_eval_batch_size"]) == (8, 5)
    assert tomllib.loads((run_dir / "preset.prev-1.toml").read_text())["core"]["per_device_eval_batch_size"] == 8
    direct = _run_dir(tmp_path, name="direct", eval_batch=5, fits=8, eval_fits=5, auto=False)
    assert main([str(direct)]) == 0
    assert losses_by_step(run_dir) == losses_by_step(direct)
    ours, theirs = events(run_dir, "eval"), events(direct, "eval")
    assert [e["step"] for e in ours] == [e["step"] for e in theirs] == [5, 10]
    for a, b in zip(ours, theirs):
        assert a["eval_loss"] == pytest.approx(b["eval_loss"], rel=1e-6)


def test_no_eval_batch_that_fits_fails_with_a_clear_error(tmp_path):
    run_dir = _run_dir(tmp_path, eval_batch=2, fits=8, eval_fits=0)
    assert main([str(run_dir)]) == 1
    assert events(run_dir, "status")[-1]["error"].startswith(
        "tuitrain: core.auto_find_batch_size: evaluation ran out of memory even at per_device_eval_batch_size=1")
    assert len(events(run_dir, "start")) == 1  # never taken for a training batch that is too big


def test_the_model_that_ran_out_is_freed_before_the_next_is_built(tmp_path, monkeypatch):
    from tuitrain.engine import trainer as trainer_mod

    run_dir = _run_dir(tmp_path, batch=6)
    models, alive_at_build = [], []
    build = trainer_mod.build_task

    def recording_build(*a, **kw):
        alive_at_build.append([ref() is not None for ref in models])
        bundle = build(*a, **kw)
        models.append(weakref.ref(bundle.model))
        return bundle

    monkeypatch.setattr(trainer_mod, "build_task", recording_build)
    trainer = trainer_mod.Trainer(load_preset(run_dir / "preset.toml"), run_dir)
    try:
        assert trainer.train() == 0
    finally:
        trainer.close()
    assert alive_at_build == [[], [False]]


def test_other_errors_are_not_retried(tmp_path):
    run_dir = _run_dir(tmp_path, error="value")
    assert main([str(run_dir)]) == 1
    assert events(run_dir, "warning") == [] and len(events(run_dir, "start")) == 1
    assert events(run_dir, "status")[-1]["error"] == "ValueError: a bug, not a memory problem"
    assert _batch(run_dir / "preset.toml") == 8


def test_without_the_flag_out_of_memory_fails_the_run(tmp_path):
    run_dir = _run_dir(tmp_path, auto=False)
    assert main([str(run_dir)]) == 1
    assert events(run_dir, "status")[-1]["error"].startswith("OutOfMemoryError: CUDA out of memory.")
    assert events(run_dir, "warning") == []


def test_no_batch_that_fits_fails_with_a_clear_error(tmp_path, capsys):
    run_dir = _run_dir(tmp_path, batch=2, fits=0)
    assert main([str(run_dir)]) == 1
    assert len(events(run_dir, "warning")) == 1  # 2 -> 1; 1 -> 0 is the end
    error = events(run_dir, "status")[-1]["error"]
    assert error.startswith("tuitrain: core.auto_find_batch_size: out of memory even at "
                            "per_device_train_batch_size=1; no batch size fits (CUDA out of memory.")
    assert "no batch size fits" in capsys.readouterr().err


def test_a_resumed_run_keeps_its_batch_and_fails_clearly(tmp_path):
    from trainer_fixtures import regression_preset, run
    from tuitrain.engine.trainer import Trainer

    make = lambda: regression_preset(auto_find_batch_size=True, save_strategy="steps", save_steps=4)  # noqa: E731
    assert run(make(), tmp_path) == 0
    trainer = Trainer(make(), tmp_path, resume_from="checkpoint-4")

    def out_of_memory(window):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    trainer._optimizer_step = out_of_memory
    try:
        assert trainer.train() == 1
    finally:
        trainer.close()
    assert events(tmp_path, "status")[-1]["error"].startswith(
        "tuitrain: core.auto_find_batch_size: out of memory at per_device_train_batch_size=8 in a run "
        "resumed from checkpoint-4, whose batch size is fixed")


def test_what_counts_as_out_of_memory():
    assert is_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB"))
    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes"))
    assert not is_oom(RuntimeError("shape mismatch"))
    assert not is_oom(MemoryError())  # a Python-side MemoryError is not a batch-size problem
    assert [next_batch_size(n) for n in (128, 8, 2, 1)] == [115, 7, 1, 0]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
