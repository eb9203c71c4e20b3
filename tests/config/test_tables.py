"""The optimizer and scheduler tables drive the validator; activation_checkpointing's old name."""

from __future__ import annotations

import json

import pytest

from tuitrain.config import PresetErrors, load_preset_data
from tuitrain.config.hf import import_hf_json


def _notices(preset) -> list[str]:
    return [str(n) for n in preset.notices]


def test_optim_args_a_family_does_not_read_are_noted():
    preset = load_preset_data({"optimizer": {"optim_args": "amsgrad=true"}}, "p.toml")
    assert any("optimizer.optim_args: amsgrad not read by adamw_torch_fused: no effect" in n for n in _notices(preset))
    sgd = load_preset_data({"optimizer": {"optim": "sgd", "optim_args": "momentum=0.9,bogus=1"}}, "p.toml")
    (note,) = [n for n in _notices(sgd) if "optim_args" in n]
    assert "bogus not read by sgd" in note and "sgd reads momentum, dampening, weight_decay, nesterov" in note


def test_scheduler_kwargs_are_checked_against_the_table():
    with pytest.raises(PresetErrors, match="lr_scheduler_kwargs: num_cycles not accepted by linear"):
        load_preset_data({"optimizer": {"lr_scheduler_kwargs": {"num_cycles": 2}}}, "p.toml")
    with pytest.raises(PresetErrors, match="warmup_stable_decay needs num_decay_steps"):
        load_preset_data({"optimizer": {"lr_scheduler_type": "warmup_stable_decay"}}, "p.toml")


def test_greedy_needs_an_evaluation_and_gets_a_metric():
    with pytest.raises(PresetErrors, match="greedy needs an eval strategy"):
        load_preset_data({"optimizer": {"lr_scheduler_type": "greedy"}}, "p.toml")
    preset = load_preset_data({"optimizer": {"lr_scheduler_type": "greedy"}, "logging": {"eval_strategy": "epoch"}})
    assert preset.args.metric_for_best_model == "loss" and preset.args.greater_is_better is False


def test_hf_json_with_either_checkpointing_name_imports(tmp_path):
    for name in ("gradient_checkpointing", "activation_checkpointing"):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"output_dir": "out", name: True, "gradient_checkpointing_kwargs": {"use_reentrant": False}}))
        text = import_hf_json(path)
        assert "activation_checkpointing = true" in text and "use_reentrant = false" in text


def test_adam_without_bias_correction_runs_the_unfused_adamw_unless_fused_is_asked_for():
    # The default optimizer is the fused kernel, which always corrects the bias.
    assert load_preset_data({"optimizer": {"adam_bias_correction": False}}, "p.toml").args.optim == "adamw_torch"
    with pytest.raises(PresetErrors, match='adam_bias_correction: false has no fused kernel .set optim = "adamw_torch"'):
        load_preset_data({"optimizer": {"adam_bias_correction": False, "optim": "adamw_torch_fused"}}, "p.toml")
