"""report_to: TensorBoard, W&B and MLflow get every metric with HF's names and the step.

The packages are recording fakes in sys.modules; a `None` entry makes an import fail.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fake_integrations import install_mlflow, install_tensorboard, install_wandb
from trainer_fixtures import events, regression_preset, run
from tuitrain.errors import TuitrainError

EVAL = {"max_steps": 4, "eval_strategy": "steps", "eval_steps": 2}


def _expected(run_dir):
    train = {e["step"]: e for e in events(run_dir, "train")}
    evals = {e["step"]: e for e in events(run_dir, "eval")}
    assert sorted(train) == [1, 2, 3, 4] and sorted(evals) == [2, 4]
    return train, evals


def test_tensorboard_gets_hf_names_at_the_right_steps_and_is_closed(tmp_path, monkeypatch):
    tb = install_tensorboard(monkeypatch)
    assert run(regression_preset(report_to=["tensorboard"], **EVAL), tmp_path) == 0
    train, evals = _expected(tmp_path)
    (log_dir,) = tb.named("init")
    assert log_dir[0].startswith(str(tmp_path / "runs") + "/")  # RUN_DIR/runs/<time>_<host>
    scalars = {(tag, step): value for tag, value, step in tb.named("add_scalar")}
    for step, e in train.items():
        assert scalars["train/loss", step] == pytest.approx(e["loss"])
        assert scalars["train/learning_rate", step] == pytest.approx(e["learning_rate"])
        assert scalars["train/epoch", step] == pytest.approx(e["epoch"])
    for step, e in evals.items():
        assert scalars["eval/loss", step] == pytest.approx(e["eval_loss"])
        assert scalars["eval/r2", step] == pytest.approx(e["eval_r2"])
    assert not any(tag.startswith("train/step") or tag.endswith("/t") for tag, _ in scalars)
    assert tb.named("add_text")[0][0] == "args"
    assert tb.calls[-1] == ("close",)


def test_logging_dir_is_relative_to_the_run_directory(tmp_path, monkeypatch):
    tb = install_tensorboard(monkeypatch)
    assert run(regression_preset(max_steps=1, report_to="tensorboard", logging_dir="tb/logs"), tmp_path) == 0
    assert tb.named("init") == [(str(tmp_path / "tb" / "logs"),)]


def test_wandb_gets_config_and_global_step_and_finishes(tmp_path, monkeypatch):
    wandb = install_wandb(monkeypatch)
    preset = regression_preset(report_to=["wandb"], run_name="exp-7", hub_token="hf_secret", **EVAL)
    assert run(preset, tmp_path) == 0
    train, evals = _expected(tmp_path)
    ((init,),) = wandb.named("init")
    assert init["project"] == "tuitrain" and init["name"] == "exp-7" and init["dir"] == str(tmp_path)
    assert init["config"]["learning_rate"] == 0.01 and init["config"]["task"] == "regression"
    assert init["config"]["hub_token"] == "<HUB_TOKEN>"
    logged = [data for data, _ in wandb.named("log")]
    by_step = {(d["train/global_step"], k): v for d in logged for k, v in d.items()}
    for step, e in train.items():
        assert by_step[step, "train/loss"] == pytest.approx(e["loss"])
    for step, e in evals.items():
        assert by_step[step, "eval/loss"] == pytest.approx(e["eval_loss"])
    assert wandb.named("finish") == [({"exit_code": 0},)]


def test_mlflow_gets_params_and_raw_metric_names_with_step(tmp_path, monkeypatch):
    mlflow = install_mlflow(monkeypatch)
    assert run(regression_preset(report_to=["mlflow"], **EVAL), tmp_path) == 0
    train, evals = _expected(tmp_path)
    assert mlflow.named("start_run") == [(tmp_path.name,)]  # run_name unset: the run's name
    params = {k: v for (batch,) in mlflow.named("log_params") for k, v in batch.items()}
    assert params["learning_rate"] == 0.01 and params["max_steps"] == 4
    metrics = {(step, k): v for batch, step in mlflow.named("log_metrics") for k, v in batch.items()}
    for step, e in train.items():
        assert metrics[step, "loss"] == pytest.approx(e["loss"])
    for step, e in evals.items():
        assert metrics[step, "eval_loss"] == pytest.approx(e["eval_loss"])
    assert mlflow.calls[-1] == ("end_run", "FINISHED")


def test_all_means_every_installed_tracker(tmp_path, monkeypatch):
    wandb, mlflow = install_wandb(monkeypatch), install_mlflow(monkeypatch)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    assert run(regression_preset(max_steps=2, report_to=["all"]), tmp_path) == 0
    assert wandb.named("init") and mlflow.named("start_run")
    wandb2 = install_wandb(monkeypatch)
    assert run(regression_preset(max_steps=2, report_to=["none"]), tmp_path / "none") == 0
    assert wandb2.calls == []


@pytest.mark.parametrize("tracker, modules, pip", [
    ("tensorboard", ("torch.utils.tensorboard", "tensorboardX"), "tensorboard"),
    ("wandb", ("wandb",), "wandb"),
    ("mlflow", ("mlflow",), "mlflow"),
])
def test_missing_package_is_one_line_before_any_step(tmp_path, monkeypatch, tracker, modules, pip):
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(TuitrainError) as info:
        run(regression_preset(max_steps=2, report_to=[tracker]), tmp_path)
    message = info.value.one_line()
    assert "\n" not in message and "report_to" in message and f"pip install {pip}" in message
    assert not (tmp_path / "metrics.jsonl").exists() or not events(tmp_path, "train")


def test_a_failing_tracker_is_dropped_with_a_warning_and_training_goes_on(tmp_path, monkeypatch):
    install_wandb(monkeypatch, fail_log=True)
    mlflow = install_mlflow(monkeypatch)
    assert run(regression_preset(max_steps=3, report_to=["wandb", "mlflow"]), tmp_path) == 0
    warnings = events(tmp_path, "warning")
    assert len(warnings) == 1 and warnings[0]["message"].startswith("report_to wandb: ConnectionError")
    # steps 1-3, then the end-of-training summary (train_loss, train_runtime, …) at step 3
    assert [step for _, step in mlflow.named("log_metrics")] == [1, 2, 3, 3]
    assert "train_loss" in mlflow.named("log_metrics")[-1][0]
    assert events(tmp_path, "status")[-1]["state"] == "finished"


def test_trackers_are_closed_with_the_failure_state(tmp_path, monkeypatch):
    from tuitrain.engine.trainer import Trainer

    tb, wandb, mlflow = install_tensorboard(monkeypatch), install_wandb(monkeypatch), install_mlflow(monkeypatch)

    def broken(self, *a, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(Trainer, "_evaluate", broken)
    preset = regression_preset(report_to=["tensorboard", "wandb", "mlflow"], **EVAL)
    assert run(preset, tmp_path) == 1
    assert tb.calls[-1] == ("close",)
    assert wandb.named("finish") == [({"exit_code": 1},)]
    assert mlflow.calls[-1] == ("end_run", "FAILED")


def test_a_stopped_run_ends_the_trackers_as_stopped(tmp_path, monkeypatch):
    from tuitrain.engine.trainer import Trainer

    tb, wandb, mlflow = install_tensorboard(monkeypatch), install_wandb(monkeypatch), install_mlflow(monkeypatch)
    after = Trainer._after_step

    def stop_at_2(self, *a, **kw):
        self.stop.requested = self.state.global_step == 2
        return after(self, *a, **kw)

    monkeypatch.setattr(Trainer, "_after_step", stop_at_2)
    assert run(regression_preset(max_steps=4, report_to=["tensorboard", "wandb", "mlflow"]), tmp_path) == 0
    assert events(tmp_path, "status")[-1]["state"] == "stopped"
    assert [step for _, step in mlflow.named("log_metrics")] == [1, 2]
    assert tb.calls[-1] == ("close",)
    assert wandb.named("finish") == [({"exit_code": 0},)]
    assert mlflow.calls[-1] == ("end_run", "KILLED")


def test_a_resumed_or_rewound_run_purges_tensorboard_past_its_step(tmp_path, monkeypatch):
    """The resumed segment writes into the earlier segment's folder with purge_step, so
    TensorBoard hides what that folder holds past the step the run continues from."""
    tb = install_tensorboard(monkeypatch)
    preset = regression_preset(max_steps=8, report_to="tensorboard", save_strategy="steps", save_steps=4)
    assert run(preset, tmp_path) == 0
    (first,) = tb.named("init")
    Path(first[0]).mkdir(parents=True)  # the real SummaryWriter creates its folder
    assert run(preset, tmp_path, resume_from="checkpoint-4") == 0
    assert tb.named("init")[1] == first
    assert tb.named("purge_step") == [(first[0], 5)]
