"""`core.resume_from_checkpoint` takes a path, `"last"` or HF's `true`, in presets and HF JSON."""

from __future__ import annotations

import pytest

from tuitrain.config import hf, load_preset_text
from tuitrain.config.problems import PresetErrors


@pytest.mark.parametrize("text, value", [
    ("true", "last"), ('"last"', "last"), ("false", None), ('"runs/a/checkpoint-4"', "runs/a/checkpoint-4"),
])
def test_values(text, value):
    preset = load_preset_text(f"[core]\nresume_from_checkpoint = {text}\n")
    assert preset.args.resume_from_checkpoint == value and not preset.notices
    assert load_preset_text(preset.to_toml()).args.resume_from_checkpoint == value


def test_true_is_only_accepted_where_it_means_something():
    with pytest.raises(PresetErrors, match="core.output_dir: expected"):
        load_preset_text("[core]\noutput_dir = true\n")


def test_hf_json_spells_last_as_true_both_ways():
    preset = load_preset_text("[core]\nresume_from_checkpoint = true\n")
    assert hf.export_hf_dict(preset)["resume_from_checkpoint"] is True
    tables, _ = hf.hf_dict_to_tables({"resume_from_checkpoint": True})
    assert load_preset_text(hf.tables_to_toml(tables)).args.resume_from_checkpoint == "last"
