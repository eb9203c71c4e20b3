"""Shared helpers for the trainer tests: a resolved preset from a few settings, run helpers."""

from __future__ import annotations

import json
from pathlib import Path
import torch

from tuitrain.config import load_preset_data, schema

torch.set_num_threads(1)


def FakePreset(task: str, options: dict, overrides: dict):
    """A preset for `task` with `overrides` (`key` or `group.key`), checked and resolved as a
    file is (HF's post-init defaults filled), without writing one."""
    data: dict = {"task": {"name": task, "options": dict(options)}}
    for name, value in overrides.items():
        field = schema.field(name.rsplit(".", 1)[-1])
        data.setdefault(field.group, {})[field.key] = value
    return load_preset_data(data, f"<{task} test preset>")


CHAR_GPT = {"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.1,
            "examples_per_epoch": 40}


def char_gpt_preset(**overrides) -> FakePreset:
    base = {"per_device_train_batch_size": 4, "max_steps": 6, "learning_rate": 0.003,
            "logging_steps": 1, "save_strategy": "no", "seed": 5}
    return FakePreset("char_gpt", CHAR_GPT, {**base, **overrides})


REGRESSION = {"n_samples": 48, "n_features": 4, "hidden": 8, "noise": 0.1}


def regression_preset(**overrides) -> FakePreset:
    base = {"per_device_train_batch_size": 8, "max_steps": 8, "learning_rate": 0.01,
            "logging_steps": 1, "save_strategy": "no", "seed": 3}
    return FakePreset("regression", REGRESSION, {**base, **overrides})


def run(preset, run_dir: Path, resume_from: str | None = None) -> int:
    from tuitrain.engine.trainer import Trainer

    trainer = Trainer(preset, run_dir, resume_from=resume_from)
    try:
        return trainer.train()
    finally:
        trainer.close()


def events(run_dir: Path, kind: str | None = None) -> list[dict]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    out = [json.loads(line) for line in lines]
    return [e for e in out if kind is None or e["kind"] == kind]


def losses_by_step(run_dir: Path) -> dict[int, float]:
    """The last logged loss of each step (a resumed segment overrides the earlier one)."""
    return {e["step"]: e["loss"] for e in events(run_dir, "train")}
