"""Items 17, 18 and 20: the checkpoint's trainer_state.json is transformers', greedy is a
scheduler the validator accepts, and activation_checkpointing (or its old name) is honoured
as transformers honours it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import assert_same, run_engine, run_hf
from tuitrain.config import load_preset_data, load_preset_text

transformers = pytest.importorskip("transformers")

STATE_FIELDS = ("epoch", "global_step", "max_steps", "logging_steps", "eval_steps", "save_steps", "train_batch_size",
                "num_train_epochs", "num_input_tokens_seen", "total_flos", "best_metric", "best_global_step",
                "is_local_process_zero", "is_world_process_zero", "is_hyper_param_search")


def test_trainer_state_json_is_transformers_own(tmp_path):  # 17
    settings = {"eval_strategy": "steps", "eval_steps": 2, "save_strategy": "steps", "save_steps": 4,
                "metric_for_best_model": "loss", "early_stopping_patience": 3, "learning_rate": 0.2}
    ours, hf = run_engine(tmp_path, settings), run_hf(tmp_path, settings)
    assert_same(ours, hf)
    for name in ours.checkpoints:
        mine = transformers.TrainerState.load_from_json(str(ours.run_dir / name / "trainer_state.json"))
        theirs = transformers.TrainerState.load_from_json(str(hf.run_dir / name / "trainer_state.json"))
        for field in STATE_FIELDS:
            assert getattr(mine, field) == pytest.approx(getattr(theirs, field), rel=2e-5), f"{name}: {field}"
        assert Path(mine.best_model_checkpoint).name == Path(theirs.best_model_checkpoint).name
        assert mine.stateful_callbacks["EarlyStoppingCallback"] == theirs.stateful_callbacks["EarlyStoppingCallback"]
        keys = ("step", "epoch", "loss", "learning_rate", "grad_norm", "eval_loss", "eval_accuracy")
        assert [{k: h[k] for k in keys if k in h} for h in mine.log_history] == [
            {k: pytest.approx(h[k], rel=2e-5) for k in keys if k in h} for h in theirs.log_history]
        ours_state = json.loads((ours.run_dir / name / "tuitrain_state.json").read_text())
        assert {"rng_state", "scheduler_state", "checkpoint_files", "config"} <= set(ours_state)


def test_greedy_is_a_scheduler_the_validator_accepts():  # 18
    preset = load_preset_data({"optimizer": {"lr_scheduler_type": "greedy"}, "logging": {"eval_strategy": "steps"}})
    assert preset.args.lr_scheduler_type == "greedy" and preset.args.metric_for_best_model == "loss"


def test_activation_checkpointing_is_enabled_as_transformers_enables_it(tmp_path):  # 20
    calls = tmp_path / "calls.jsonl"
    settings = {"activation_checkpointing": True,
                "activation_checkpointing_kwargs": {"use_reentrant": False, "every_n_layers": 2}}
    options = {"model": "checkpointing", "calls": str(calls)}
    assert_same(run_engine(tmp_path, settings, options), run_hf(tmp_path, settings, options))
    ours, theirs = [json.loads(line) for line in calls.read_text().splitlines()]
    assert ours == theirs == [{"use_reentrant": False}, 2, False]


def test_gradient_checkpointing_is_the_old_name_of_activation_checkpointing():  # 20
    text = "[precision]\ngradient_checkpointing = true\ngradient_checkpointing_kwargs = { use_reentrant = false }\n"
    preset = load_preset_text(text, "old.toml")
    assert preset.args.activation_checkpointing is True
    assert preset.args.activation_checkpointing_kwargs == {"use_reentrant": False}
    assert any("alias of activation_checkpointing" in str(n) for n in preset.notices)
