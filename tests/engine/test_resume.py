"""Resume is exact: the steps after a checkpoint give bit-identical losses, and a changed
preset is honoured or refused, never ignored."""

from __future__ import annotations

import shutil

import pytest

from trainer_fixtures import char_gpt_preset, events, losses_by_step, regression_preset, run
from tuitrain.errors import TuitrainError


def _resume_matches(tmp_path, make, **overrides):
    full = tmp_path / "full"
    assert run(make(save_strategy="steps", save_steps=3, **overrides), full) == 0
    straight = losses_by_step(full)
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-3", resumed / "checkpoint-3")
    assert run(make(save_strategy="steps", save_steps=3, **overrides), resumed, resume_from="checkpoint-3") == 0
    after = losses_by_step(resumed)
    assert sorted(after) == [s for s in sorted(straight) if s > 3]
    for step, loss in after.items():
        assert loss == straight[step], f"step {step}: {loss!r} != {straight[step]!r}"
    start = events(resumed, "start")[0]
    assert start["resumed_from"] == "checkpoint-3" and start["step"] == 3


def test_resume_mid_epoch_is_bit_exact_with_dropout(tmp_path):
    # 40 examples / batch 4 = 10 updates per epoch: step 3 is mid-epoch; dropout needs RNG restore
    _resume_matches(tmp_path, char_gpt_preset)


def test_resume_with_gradient_accumulation(tmp_path):
    # 6 batches per epoch, accumulation 4 -> a partial last window; step 3 is in epoch 1
    _resume_matches(tmp_path, regression_preset, gradient_accumulation_steps=4)


def test_resume_with_dataloader_workers(tmp_path):
    _resume_matches(tmp_path, regression_preset, dataloader_num_workers=2, max_steps=6)


def test_resume_mid_logging_window_keeps_the_window(tmp_path):
    _resume_matches(tmp_path, regression_preset, logging_steps=2)


def test_stopped_then_resumed_appends_to_same_stream(tmp_path):
    from tuitrain.engine.trainer import Trainer

    full = tmp_path / "full"
    assert run(regression_preset(), full) == 0
    straight = losses_by_step(full)
    part = tmp_path / "part"
    trainer = Trainer(regression_preset(), part)
    original = trainer._optimizer_step

    def stop_after_fourth(window):
        original(window)
        if trainer.state.global_step == 3:  # the step being taken is step 4
            trainer.stop.requested, trainer.stop.signal_name = True, "SIGTERM"

    trainer._optimizer_step = stop_after_fourth
    assert trainer.train() == 0
    trainer.close()
    assert events(part, "status")[-1]["state"] == "stopped"
    assert (part / "checkpoint-4").is_dir()
    assert run(regression_preset(), part, resume_from="checkpoint-4") == 0
    assert losses_by_step(part) == straight
    assert [e["state"] for e in events(part, "status")] == ["running", "stopped", "running", "finished"]


def test_changed_batch_size_is_refused(tmp_path):
    assert run(regression_preset(save_strategy="steps", save_steps=4), tmp_path) == 0
    with pytest.raises(TuitrainError, match="per_device_train_batch_size"):
        run(regression_preset(save_strategy="steps", save_steps=4, per_device_train_batch_size=4),
            tmp_path, resume_from="checkpoint-4")


def test_extended_max_steps_and_cadence_are_honoured(tmp_path):
    assert run(regression_preset(save_strategy="steps", save_steps=4), tmp_path) == 0
    assert run(regression_preset(save_strategy="steps", save_steps=4, max_steps=12, logging_steps=2),
               tmp_path, resume_from="checkpoint-8") == 0
    resumed = [e["step"] for e in events(tmp_path, "train") if e["step"] > 8]
    assert resumed == [10, 12]
    assert events(tmp_path, "start")[-1]["max_steps"] == 12


def test_eval_on_start_is_not_repeated_by_a_resume(tmp_path):
    # A deliberate difference (README): transformers evaluates at the start of every train()
    # call, a resumed one too; here the resumed run goes on as the uninterrupted one did.
    make = lambda: regression_preset(eval_on_start=True, eval_strategy="steps", eval_steps=4,  # noqa: E731
                                     save_strategy="steps", save_steps=4)
    full = tmp_path / "full"
    assert run(make(), full) == 0
    assert [e["step"] for e in events(full, "eval")] == [0, 4, 8]
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-4", resumed / "checkpoint-4")
    assert run(make(), resumed, resume_from="checkpoint-4") == 0
    assert [e["step"] for e in events(resumed, "eval")] == [8]


def test_a_checkpoint_from_before_the_rename_of_gradient_checkpointing_resumes():
    from tuitrain.config.resume_rules import check_resume as check_resume_config

    current = regression_preset().values()
    saved = {("precision.gradient_checkpointing" if k == "precision.activation_checkpointing" else k): v
             for k, v in current.items()}
    assert check_resume_config(saved, current, "checkpoint-4") == []


@pytest.mark.parametrize("restore", [False, True])
def test_early_stopping_patience_restarts_on_resume_unless_asked(tmp_path, restore):
    # HF restores the EarlyStoppingCallback's counter only with restore_callback_states_from_checkpoint
    from tuitrain.engine.trainer import Trainer

    make = lambda: regression_preset(eval_strategy="steps", eval_steps=1, save_strategy="steps", save_steps=1,  # noqa: E731
                                     metric_for_best_model="loss", greater_is_better=True, early_stopping_patience=5,
                                     restore_callback_states_from_checkpoint=restore)
    assert run(make(), tmp_path) == 0
    trainer = Trainer(make(), tmp_path, resume_from="checkpoint-4")
    try:
        assert trainer.state.best.patience_counter == (3 if restore else 0)
        assert trainer.state.best.best_step == 1
    finally:
        trainer.close()
