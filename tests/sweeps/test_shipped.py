"""The shipped sweeps: valid presets whose [sweep] tables expand to the members the README shows."""

from __future__ import annotations

import pytest

from tuitrain.config import load_preset
from tuitrain.config.steps import global_batch_size
from tuitrain.paths import resolve_preset_path, shipped_sweeps
from tuitrain.sweeps.expand import expand
from tuitrain.sweeps.spec import from_table

EXPECTED = {
    "scheduler-shootout": ["lr_scheduler_type=constant_with_warmup", "lr_scheduler_type=linear",
                           "lr_scheduler_type=cosine"],
    "warmup-sensitivity": ["warmup_ratio=0", "warmup_ratio=0.1", "warmup_ratio=0.2"],
    "accumulation-tradeoff": ["per_device_train_batch_size=4,gradient_accumulation_steps=4",
                              "per_device_train_batch_size=8,gradient_accumulation_steps=2",
                              "per_device_train_batch_size=16,gradient_accumulation_steps=1"],
    "precision-toggles": ["bf16=false,fp16=false,activation_checkpointing=false",
                          "bf16=true,fp16=false,activation_checkpointing=false",
                          "bf16=false,fp16=true,activation_checkpointing=false",
                          "bf16=false,fp16=false,activation_checkpointing=true"],
    "logging-cadence": ["logging_steps=1", "logging_steps=10", "logging_steps=100"],
}


def test_every_shipped_sweep_is_listed():
    assert sorted(shipped_sweeps()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_shipped_sweep_expands_to_its_members(name):
    path = resolve_preset_path(name)  # found by name, like a shipped preset
    preset = load_preset(path)
    members = expand(path, from_table(preset.sweep, str(path), path.read_text()))
    assert [m.name for m in members] == EXPECTED[name]
    assert preset.sweep["parallel"] == 1
    if name == "accumulation-tradeoff":
        assert {global_batch_size(m.preset.args.per_device_train_batch_size, 1,
                                  m.preset.args.gradient_accumulation_steps) for m in members} == {16}
