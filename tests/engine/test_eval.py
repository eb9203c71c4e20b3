"""Evaluation-driven features: best model, rotation keeping the best, early stopping, plateau."""

from __future__ import annotations

from trainer_fixtures import events, regression_preset, run


def test_rotation_never_deletes_the_best_and_early_stopping_stops(tmp_path):
    # greater_is_better on a loss: the first eval stays best, so patience 2 stops after 3 evals
    preset = regression_preset(max_steps=40, eval_strategy="steps", eval_steps=2, save_strategy="steps",
                               save_steps=2, save_total_limit=1, metric_for_best_model="loss",
                               greater_is_better=True, early_stopping_patience=2,
                               load_best_model_at_end=True)
    assert run(preset, tmp_path) == 0
    assert [e["step"] for e in events(tmp_path, "eval")] == [2, 4, 6]
    assert [e["is_best"] for e in events(tmp_path, "checkpoint")] == [True, False, False]
    # save_total_limit = 1 with a best checkpoint: at the end only the best is left (as HF)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2"]
    assert events(tmp_path, "status")[-1]["state"] == "finished"


def test_prediction_loss_only_skips_compute_metrics(tmp_path):
    assert run(regression_preset(do_eval=True, prediction_loss_only=True), tmp_path) == 0
    assert set(events(tmp_path, "eval")[0]) == {"kind", "t", "step", "epoch", "eval_loss"}


def test_reduce_lr_on_plateau_steps_after_each_eval(tmp_path):
    # mode comes from lr_scheduler_kwargs alone (as HF): "max" makes a falling loss a plateau
    preset = regression_preset(max_steps=8, lr_scheduler_type="reduce_lr_on_plateau",
                               lr_scheduler_kwargs={"patience": 0, "factor": 0.5, "mode": "max"},
                               eval_strategy="steps", eval_steps=2, metric_for_best_model="loss")
    assert run(preset, tmp_path) == 0
    lrs = [e["learning_rate"] for e in events(tmp_path, "train")]
    assert lrs[0] == 0.01 and lrs[-1] < lrs[0]


def test_sample_every_on_a_task_that_cannot_sample_is_a_warning_event(tmp_path):
    # the validator's notice covers built-in tasks; a plug-in's bundle is only known here
    assert run(regression_preset(max_steps=2, sample_every=1), tmp_path) == 0
    (warning,) = events(tmp_path, "warning")
    assert warning["message"].startswith("evaluation.sample_every: this task cannot generate samples")
    assert events(tmp_path, "sample") == []


def test_eval_accumulation_steps_moves_predictions_to_the_host_every_n_batches(tmp_path, monkeypatch):
    # What the setting changes (on a GPU, the memory the gathered logits hold): predictions leave
    # the device in chunks of N batches instead of all at once at the end, as HF's loop does.
    from tuitrain.engine import eval_gather

    moved = []
    real = eval_gather.numpify

    def spy(value):
        if eval_gather.torch.is_tensor(value):  # the regression's predictions, then its labels
            moved.append(value.shape[0])
        return real(value)

    monkeypatch.setattr(eval_gather, "numpify", spy)
    # 9 eval examples in batches of 2: 5 batches
    for steps, chunks in ((None, [9]), (2, [4, 4, 1]), (1, [2, 2, 2, 2, 1])):
        moved.clear()
        assert run(regression_preset(do_eval=True, max_steps=1, per_device_eval_batch_size=2,
                                     eval_accumulation_steps=steps), tmp_path / str(steps)) == 0
        assert moved == [rows for rows in chunks for _ in ("predictions", "labels")], steps
        assert "eval_mse" in events(tmp_path / str(steps), "eval")[0]
