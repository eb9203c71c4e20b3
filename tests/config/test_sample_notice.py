"""`sample_every` on a task that cannot generate text: a notice from the validator for the
built-in tasks (it knows which can), a warning event from the engine for a plug-in."""

from __future__ import annotations

import pytest

from tuitrain.config import load_preset_text


@pytest.mark.parametrize("task, notice", [
    ("token_gpt", True), ("modular", True), ("regression", True), ("char_gpt", False), ("hf_causal_lm", False),
])
def test_sample_every_on_a_task_without_a_decoder_is_a_notice(task, notice):
    preset = load_preset_text(f'[task]\nname = "{task}"\n[evaluation]\nsample_every = 50\n', "s.toml")
    found = [str(p) for p in preset.notices if p.field == "evaluation.sample_every"]
    if notice:
        assert found == [f"s.toml:4: evaluation.sample_every: task {task!r} cannot generate text samples (it has no "
                         "decoder); no samples will be written (set sample_every = 0, or train a task that samples "
                         "(char_gpt, hf_causal_lm))"]
    else:
        assert found == []


def test_no_notice_without_sample_every():
    preset = load_preset_text('[task]\nname = "regression"\n', "s.toml")
    assert not [p for p in preset.notices if p.field == "evaluation.sample_every"]
