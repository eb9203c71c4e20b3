"""The training loop: accumulation, label smoothing, phases, cadence and profiling."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from trainer_fixtures import char_gpt_preset, events, losses_by_step, regression_preset, run
from tuitrain.engine.losses import LossSpec


def test_accumulation_matches_one_big_batch(tmp_path):
    assert run(regression_preset(per_device_train_batch_size=16, max_steps=4), tmp_path / "big") == 0
    assert run(regression_preset(per_device_train_batch_size=8, gradient_accumulation_steps=2, max_steps=4),
               tmp_path / "accum") == 0
    big, accum = losses_by_step(tmp_path / "big"), losses_by_step(tmp_path / "accum")
    assert big.keys() == accum.keys()
    for step in big:
        assert accum[step] == pytest.approx(big[step], rel=1e-5, abs=1e-6)


def test_the_window_label_count_goes_only_to_models_that_take_it():
    # HF's num_items_in_batch: label items (!= -100) of the whole accumulation window, over
    # labels[..., 1:] when the model's loss shifts them; a model without **kwargs gets none
    # (its mean is divided by the number of micro-batches instead).
    window = [{"labels": torch.tensor([[1, 2, 3, -100]])}, {"labels": torch.tensor([[0, -100, -100, -100]])}]
    takes = LossSpec("labels", accepts_num_items=True, count_shifted=False, smoothing=0.0, shift_smoothed=False)
    assert takes.num_items(window) == 4
    assert dataclasses.replace(takes, count_shifted=True).num_items(window) == 2
    assert dataclasses.replace(takes, accepts_num_items=False).num_items(window) is None


def test_label_smoothing_changes_the_loss(tmp_path):
    assert run(char_gpt_preset(max_steps=1), tmp_path / "plain") == 0
    assert run(char_gpt_preset(max_steps=1, label_smoothing_factor=0.5), tmp_path / "smooth") == 0
    plain, smooth = losses_by_step(tmp_path / "plain")[1], losses_by_step(tmp_path / "smooth")[1]
    assert smooth != pytest.approx(plain, rel=1e-4)


def test_epoch_strategies_and_ratio_steps(tmp_path):
    # logging ratio 0.25 of 12 steps = every 3; eval and save at each epoch's end, the last
    # epoch's too although max_steps cuts it short (40 training examples / 8 = 5 steps an epoch), as HF
    preset = regression_preset(max_steps=12, logging_steps=0.25, eval_strategy="epoch",
                               save_strategy="epoch")
    assert run(preset, tmp_path) == 0
    assert [e["step"] for e in events(tmp_path, "train")] == [3, 6, 9, 12]
    evals = events(tmp_path, "eval")
    assert [(e["step"], e["epoch"]) for e in evals] == [(5, 1.0), (10, 2.0), (12, 2.4)]
    assert [e["step"] for e in events(tmp_path, "checkpoint")] == [5, 10, 12]


def test_eval_delay_and_do_predict(tmp_path):
    preset = regression_preset(max_steps=8, eval_strategy="steps", eval_steps=2, eval_delay=5, do_train=True,
                               do_predict=True)
    assert run(preset, tmp_path) == 0
    assert [e["step"] for e in events(tmp_path, "eval")] == [6, 8]
    assert "test_loss" in events(tmp_path, "predict")[0]


def test_eval_only_phase_does_not_train(tmp_path):
    assert run(regression_preset(do_eval=True), tmp_path) == 0
    assert events(tmp_path, "train") == [] and len(events(tmp_path, "eval")) == 1


def test_profile_writes_a_trace_into_the_run_dir(tmp_path):
    assert run(regression_preset(max_steps=6, profile=True), tmp_path) == 0
    assert list((tmp_path / "profile").glob("trace-*.json"))


def test_gradient_checkpointing_and_sample_events(tmp_path):
    preset = char_gpt_preset(max_steps=2, gradient_checkpointing=True, sample_every=2, sample_max_new_tokens=8)
    assert run(preset, tmp_path) == 0
    samples = events(tmp_path, "sample")
    assert len(samples) == 1 and samples[0]["step"] == 2 and isinstance(samples[0]["text"], str)


def test_tokens_seen_are_counted_and_logged_as_hf_logs_them(tmp_path):
    # include_num_input_tokens_seen = "all": every input_ids element, in train and eval logs;
    # an evaluation-only run logs it too (0 tokens seen).
    preset = char_gpt_preset(max_steps=3, include_num_input_tokens_seen="all", eval_strategy="steps", eval_steps=3)
    assert run(preset, tmp_path / "train") == 0
    train = events(tmp_path / "train", "train")
    assert [e["num_input_tokens_seen"] for e in train] == [4 * 16 * s for s in (1, 2, 3)]
    assert "train_tokens_per_second" in train[0] and events(tmp_path / "train", "eval")[0]["num_input_tokens_seen"] == 192
    assert run(char_gpt_preset(do_eval=True, include_num_input_tokens_seen="all"), tmp_path / "eval") == 0
    assert events(tmp_path / "eval", "eval")[0]["num_input_tokens_seen"] == 0
