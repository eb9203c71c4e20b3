"""`core.resume_from_checkpoint` at launch: `true`/"last" and relative paths become one
absolute checkpoint path before the run directory exists; a missing one is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tuitrain.config import load_preset
from tuitrain.engine.checkpoint import save_checkpoint
from tuitrain.errors import TuitrainError
from tuitrain.runs.launch import launch
from tuitrain.runs.resume_source import resolve_resume_source
from tuitrain.runs.rundir import prepare_output_dir, update_run_json


def _run(root: Path, name: str, preset_name: str, created: float, checkpoints=(), partial=()) -> Path:
    run_dir = root / "runs" / name
    prepare_output_dir(run_dir, overwrite=False)
    update_run_json(run_dir, name=name, state="finished", preset_name=preset_name, created=created)
    for step in checkpoints:  # what the engine writes
        save_checkpoint(run_dir, step, torch.nn.Linear(2, 1), None, trainer_state={"global_step": step},
                        hf_state={"global_step": step})
    for step in partial:  # weights alone: not a complete checkpoint
        (run_dir / f"checkpoint-{step}").mkdir()
        (run_dir / f"checkpoint-{step}" / "model.safetensors").write_bytes(b"weights")
    return run_dir.resolve()


def _preset(tmp_path: Path, value: str, name: str = "exp") -> Path:
    path = tmp_path / "presets" / f"{name}.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f'[task]\nname = "regression"\n[core]\nresume_from_checkpoint = {value}\n')
    return path


def test_true_means_the_newest_checkpoint_of_the_latest_run_of_the_preset(isolated):
    older = _run(isolated, "exp-1", "exp", 100.0, checkpoints=(2, 10, 4))
    _run(isolated, "exp-2", "exp", 200.0, partial=(12,))  # newer, but nothing complete
    _run(isolated, "other-1", "other", 300.0, checkpoints=(6,))
    preset = load_preset(_preset(isolated, "true"))
    assert preset.args.resume_from_checkpoint == "last"
    resolve_resume_source(preset)
    assert preset.args.resume_from_checkpoint == str(older / "checkpoint-10")


def test_last_without_an_earlier_checkpoint_is_refused(isolated):
    _run(isolated, "other-1", "other", 300.0, checkpoints=(6,))
    preset = load_preset(_preset(isolated, '"last"'))
    with pytest.raises(TuitrainError, match=r"^core\.resume_from_checkpoint: \"last\": no earlier run of preset 'exp'"):
        resolve_resume_source(preset)


def test_a_relative_path_is_found_beside_the_preset(isolated, monkeypatch):
    source = _run(isolated, "exp-1", "exp", 100.0, checkpoints=(3,)) / "checkpoint-3"
    monkeypatch.chdir("/")
    preset = load_preset(_preset(isolated, '"../runs/exp-1/checkpoint-3"'))
    resolve_resume_source(preset)
    assert preset.args.resume_from_checkpoint == str(source)


def test_a_missing_or_incomplete_checkpoint_is_refused_before_a_run_dir_exists(isolated):
    _run(isolated, "exp-1", "exp", 100.0, partial=(3,))
    half = isolated / "runs" / "exp-1" / "checkpoint-3"
    with pytest.raises(TuitrainError) as info:
        launch(_preset(isolated, f'"{half}"'))
    assert str(info.value) == (f"core.resume_from_checkpoint: {half}: not a tuitrain checkpoint (no trainer_state.json, "
                               "tuitrain_state.json); to start from its weights alone, pass --allow-foreign-checkpoint "
                               "(a pickle is read only with torch.load(weights_only=True))")
    missing = isolated / "gone" / "checkpoint-1"
    with pytest.raises(TuitrainError) as info:
        launch(_preset(isolated, f'"{missing}"'))
    assert str(info.value) == f"core.resume_from_checkpoint: {missing}: no such checkpoint folder"
    assert sorted(p.name for p in (isolated / "runs").iterdir()) == ["exp-1"]


@pytest.mark.parametrize("auto, expected", [(True, 5), (False, 8)])
def test_with_auto_find_batch_size_the_checkpoint_batch_is_taken(isolated, auto, expected):
    source = _run(isolated, "exp-1", "exp", 100.0, checkpoints=(3,)) / "checkpoint-3"
    (source / "trainer_state.json").write_text(json.dumps(
        {"global_step": 3, "train_batch_size": 5}))  # HF's TrainerState field
    path = _preset(isolated, f'"{source}"\nper_device_train_batch_size = 8\nauto_find_batch_size = {str(auto).lower()}')
    preset = load_preset(path)
    resolve_resume_source(preset)
    assert preset.args.per_device_train_batch_size == expected
