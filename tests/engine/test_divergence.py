"""A run whose loss turns NaN/inf stops as `diverged`, with a checkpoint saved first, and the
check costs no per-step host sync: it is made at logging steps only. A lone bad batch whose
update leaves the weights finite is ridden over, as transformers does."""

from __future__ import annotations

import torch

from trainer_fixtures import events, regression_preset, run
from tuitrain.layout import complete_checkpoints


def test_a_huge_learning_rate_diverges_and_saves_a_checkpoint(tmp_path):
    preset = regression_preset(max_steps=40, learning_rate=1e6, logging_steps=1, max_grad_norm=0.0)
    assert run(preset, tmp_path) == 0
    (status,) = [e for e in events(tmp_path, "status") if e["state"] != "running"]
    assert status["state"] == "diverged"
    trained = events(tmp_path, "train")
    stopped_at = trained[-1]["step"]
    assert stopped_at < 40  # it did not burn the remaining steps
    assert [c.name for c in complete_checkpoints(tmp_path)] == [f"checkpoint-{stopped_at}"]
    warning = [e for e in events(tmp_path, "warning") if e.get("code") == "diverged"]
    assert warning and "NaN/inf" in warning[0]["message"] and warning[0]["step"] == stopped_at
    assert not events(tmp_path, "summary")  # no end-of-training summary: it did not finish


def test_a_nan_is_caught_at_the_next_logging_step_only(tmp_path, monkeypatch):
    """A NaN injected into the loss at step 3 stops the run at step 5, the next logging step:
    the loop never reads the loss back between logging steps."""
    from tuitrain.engine import trainer as trainer_mod

    real = trainer_mod.model_loss
    calls = {"n": 0}

    def poisoned(model, batch, spec, num_items):
        loss, outputs = real(model, batch, spec, num_items)
        calls["n"] += 1
        if calls["n"] == 3:
            loss = loss * torch.tensor(float("nan"))
        return loss, outputs

    monkeypatch.setattr(trainer_mod, "model_loss", poisoned)
    preset = regression_preset(max_steps=12, logging_steps=5, logging_nan_inf_filter=False)
    assert run(preset, tmp_path) == 0
    assert [e["step"] for e in events(tmp_path, "train")] == [5]
    assert events(tmp_path, "train")[0]["loss"] is None  # NaN is written as null
    assert events(tmp_path, "status")[-1]["state"] == "diverged"
    assert [c.name for c in complete_checkpoints(tmp_path)] == ["checkpoint-5"]


def test_with_the_nan_filter_the_logged_loss_stays_finite_and_the_run_still_stops(tmp_path, monkeypatch):
    """HF's logging_nan_inf_filter hides a NaN in the logged mean; the divergence stop still sees it."""
    from tuitrain.engine import trainer as trainer_mod

    real = trainer_mod.model_loss

    def poisoned(model, batch, spec, num_items):
        loss, outputs = real(model, batch, spec, num_items)
        return loss * torch.tensor(float("nan")), outputs

    monkeypatch.setattr(trainer_mod, "model_loss", poisoned)
    preset = regression_preset(max_steps=12, logging_steps=2, logging_nan_inf_filter=True)
    assert run(preset, tmp_path) == 0
    assert [e["step"] for e in events(tmp_path, "train")] == [2]
    assert events(tmp_path, "status")[-1]["state"] == "diverged"


def test_a_lone_nan_batch_that_leaves_the_weights_finite_does_not_stop_the_run(tmp_path, monkeypatch):
    """`loss + nan` logs NaN but its gradient is the loss's own: the weights stay finite, and the
    run goes on to the end (transformers' logging_nan_inf_filter rides over such a batch too)."""
    from tuitrain.engine import trainer as trainer_mod

    real = trainer_mod.model_loss
    calls = {"n": 0}

    def blip(model, batch, spec, num_items):
        loss, outputs = real(model, batch, spec, num_items)
        calls["n"] += 1
        return (loss + torch.tensor(float("nan")) if calls["n"] == 3 else loss), outputs

    monkeypatch.setattr(trainer_mod, "model_loss", blip)
    assert run(regression_preset(max_steps=8, logging_steps=4), tmp_path) == 0
    assert [e["step"] for e in events(tmp_path, "train")] == [4, 8]
    assert events(tmp_path, "status")[-1]["state"] == "finished"
