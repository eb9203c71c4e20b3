"""save_total_limit on the current line: a run resumed from an older checkpoint never loses the
checkpoint it just wrote nor its line's best, and never touches a line it left (HF rotates
every checkpoint in output_dir, so it deletes the new one and keeps the abandoned ones)."""

from __future__ import annotations

import torch

from tuitrain.engine.checkpoint import line_checkpoints, list_checkpoints, rotate_checkpoints, save_checkpoint
from tuitrain.runs.lineage import rewind

from trainer_fixtures import events, regression_preset, run

SAVES = {"save_strategy": "steps", "save_steps": 10, "save_total_limit": 2, "logging_steps": 5}


def _steps(run_dir) -> list[int]:
    return [int(p.name.split("-")[1]) for p in list_checkpoints(run_dir)]


def test_rotation_counts_the_line_up_to_the_newest_only(tmp_path):
    model = torch.nn.Linear(1, 1)
    for s in (10, 20, 30, 40):
        save_checkpoint(tmp_path, s, model, None)
    save_checkpoint(tmp_path, 25, model, None)  # a trainer resumed by hand from 20 saves 25
    assert [p.name for p in line_checkpoints(tmp_path, 25)] == ["checkpoint-10", "checkpoint-20", "checkpoint-25"]
    removed = rotate_checkpoints(tmp_path, 2, newest=tmp_path / "checkpoint-25")
    assert [p.name for p in removed] == ["checkpoint-10"]
    assert _steps(tmp_path) == [20, 25, 30, 40]  # 25 kept; 30 and 40 (another line) untouched


def test_a_hand_resumed_trainer_keeps_the_checkpoint_it_just_wrote(tmp_path):
    preset = regression_preset(max_steps=40, **SAVES)
    assert run(preset, tmp_path) == 0
    assert _steps(tmp_path) == [30, 40]
    # resumed from 30 without a rewind, and stopped at 35 (max_steps lowered, which a resume honours)
    assert run(regression_preset(max_steps=35, **SAVES), tmp_path, resume_from="checkpoint-30") == 0
    assert _steps(tmp_path) == [30, 35, 40]  # HF: [35, 40], the line's 30 deleted, the left 40 kept
    saved = [e for e in events(tmp_path, "checkpoint") if e["step"] == 35]
    assert saved[-1]["removed"] == []


def test_a_rewound_run_rotates_its_new_line_and_keeps_its_best(tmp_path):
    # loss falls, so with greater_is_better the first evaluation stays the best of the line
    best = dict(SAVES, eval_strategy="steps", eval_steps=10, metric_for_best_model="loss", greater_is_better=True)
    assert run(regression_preset(max_steps=40, **best), tmp_path) == 0
    assert _steps(tmp_path) == [10, 40]  # the best (10) moved next to the newest, as HF does
    record = rewind(tmp_path, "checkpoint-10", 40)
    assert record["checkpoints"] == ["checkpoint-40"]
    assert run(regression_preset(max_steps=30, **best), tmp_path, resume_from="checkpoint-10") == 0
    assert _steps(tmp_path) == [10, 30]  # the new line: its best and its newest
    last = events(tmp_path, "checkpoint")[-1]
    assert (last["step"], last["best_checkpoint"], last["removed"]) == (30, "checkpoint-10", ["checkpoint-20"])
    assert isinstance(last["best_metric"], float)
    assert sorted(p.name for p in (tmp_path / record["folder"]).iterdir()) == ["checkpoint-40"]
