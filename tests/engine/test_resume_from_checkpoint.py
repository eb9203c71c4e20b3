"""`core.resume_from_checkpoint`: a new run continues another run's checkpoint bit for bit,
in its own directory, and refuses a missing, incomplete, foreign or changed checkpoint."""

from __future__ import annotations

import json

import pytest

from trainer_fixtures import char_gpt_preset, events, losses_by_step, regression_preset, run
from tuitrain.errors import TuitrainError


def test_new_run_from_a_checkpoint_continues_bit_exactly(tmp_path):
    # N = 3, 2N = 6; char_gpt has dropout, so the RNG must be restored too. A constant rate:
    # B's 3-step schedule then matches A's 6-step one over the first 3 steps.
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    same = {"lr_scheduler_type": "constant"}
    assert run(char_gpt_preset(max_steps=6, **same), a) == 0
    assert run(char_gpt_preset(max_steps=3, save_strategy="steps", save_steps=3, **same), b) == 0
    b_files = sorted(p.name for p in b.iterdir())
    source = b / "checkpoint-3"
    assert run(char_gpt_preset(max_steps=6, resume_from_checkpoint=str(source), **same), c) == 0
    straight, continued = losses_by_step(a), losses_by_step(c)
    assert sorted(continued) == [4, 5, 6]
    for step in (4, 5, 6):
        assert continued[step] == straight[step], f"step {step}: {continued[step]!r} != {straight[step]!r}"
    start = events(c, "start")[0]
    assert start["resumed_from"] == str(source) and start["step"] == 3 and start["max_steps"] == 6
    assert events(c, "status")[-1]["state"] == "finished"
    assert sorted(p.name for p in b.iterdir()) == b_files  # the source run is left alone


def test_a_longer_run_follows_its_own_schedule_from_the_first_step(tmp_path):
    # B's linear schedule ends at step 2 (its next rate is 0); C, 4 steps long, must run
    # step 3 at the rate its own schedule gives step 3, as an uninterrupted 4-step run does.
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert run(regression_preset(max_steps=4), a) == 0
    assert run(regression_preset(max_steps=2, save_strategy="steps", save_steps=2), b) == 0
    from tuitrain.engine.trainer import Trainer

    # A train event logs the rate its update ran at (as HF): A's step-3 event holds step 3's rate.
    rates = {e["step"]: e["learning_rate"] for e in events(a, "train")}
    trainer = Trainer(regression_preset(max_steps=4, resume_from_checkpoint=str(b / "checkpoint-2")), c)
    try:
        assert rates[3] > 0 and trainer.optimizer.param_groups[0]["lr"] == rates[3]
        assert trainer.train() == 0
    finally:
        trainer.close()
    assert {e["step"]: e["learning_rate"] for e in events(c, "train")} == {3: rates[3], 4: rates[4]}


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    assert run(regression_preset(max_steps=2, save_strategy="steps", save_steps=2), src) == 0
    return src / "checkpoint-2"


def _refusal(tmp_path, value, **overrides) -> str:
    with pytest.raises(TuitrainError) as info:
        run(regression_preset(max_steps=4, resume_from_checkpoint=str(value), **overrides), tmp_path / "new")
    text = str(info.value)
    assert text.startswith("core.resume_from_checkpoint: ") and "\n" not in text
    return text


def test_missing_checkpoint_is_refused(tmp_path):
    missing = tmp_path / "nowhere" / "checkpoint-9"
    assert _refusal(tmp_path, missing) == f"core.resume_from_checkpoint: {missing}: no such checkpoint folder"


def test_incomplete_checkpoint_is_refused(tmp_path):
    half = tmp_path / "checkpoint-5"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"")
    assert _refusal(tmp_path, half) == (f"core.resume_from_checkpoint: {half}: not a complete checkpoint "
                                        "(no trainer_state.json, tuitrain_state.json; empty model.safetensors)")


def test_foreign_checkpoint_is_refused(tmp_path):
    foreign = tmp_path / "checkpoint-5"
    foreign.mkdir()
    (foreign / "model.safetensors").write_bytes(b"not ours")  # HF's checkpoint files, HF's trainer_state
    (foreign / "trainer_state.json").write_text(json.dumps({"global_step": 5, "log_history": []}))
    text = _refusal(tmp_path, foreign)
    assert text == (f"core.resume_from_checkpoint: {foreign}: not a tuitrain checkpoint (no tuitrain_state.json); "
                    "to start from its weights alone, pass --allow-foreign-checkpoint (a pickle is read only with "
                    "torch.load(weights_only=True))")


def test_changed_hyperparameter_is_refused(tmp_path, source_run):
    text = _refusal(tmp_path, source_run, learning_rate=0.02)
    assert text.startswith(f"core.resume_from_checkpoint: {source_run}: cannot resume with changed "
                           "optimizer.learning_rate")


def test_unresolved_last_is_refused_by_the_engine(tmp_path):
    assert "resolved by `tuitrain run`" in _refusal(tmp_path, "last")
