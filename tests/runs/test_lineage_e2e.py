"""Rewind and fork through the `tuitrain` command, with the real engine (a small regression
task: each launch takes a few seconds, most of it importing torch).

The issue this pins: `resume --checkpoint checkpoint-30` of a run that reached 40 with
`save_total_limit = 2` let rotation delete the new line's checkpoints and keep the abandoned
checkpoint-40, and a plain `resume` then continued from 40."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PRESET = """
[task]
name = "regression"
[task.options]
n_samples = 64
n_features = 4
hidden = 8
[core]
per_device_train_batch_size = 8
max_steps = 40
[optimizer]
learning_rate = 0.01
[logging]
logging_steps = 5
save_strategy = "steps"
save_steps = 10
save_total_limit = 2
eval_strategy = "steps"
eval_steps = 10
"""


def tuitrain(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuitrain.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})


def events(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["kind"] == kind]


def checkpoints(run_dir: Path) -> list[str]:
    return sorted((p.name for p in run_dir.glob("checkpoint-*")), key=lambda n: int(n.split("-")[1]))


def digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` (the lock files included) by its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.timeout(600)
def test_rewind_then_resume_latest_then_fork(isolated):
    preset = isolated / "small.toml"
    preset.write_text(PRESET)
    root = isolated / "runs"
    out = tuitrain("run", str(preset), "--name", "base")
    assert out.returncode == 0, out.stdout + out.stderr
    base = root / "base"
    assert checkpoints(base) == ["checkpoint-30", "checkpoint-40"]

    # rewind to 30, stop the new line at 35
    out = tuitrain("resume", "base", "--checkpoint", "checkpoint-30", "--set", "core.max_steps=35")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rewound base to checkpoint-30" in out.stdout
    assert checkpoints(base) == ["checkpoint-30", "checkpoint-35"]  # the one just written is kept
    (folder,) = (base / "rewound").iterdir()
    assert checkpoints(folder) == ["checkpoint-40"]  # set aside, not deleted
    run = json.loads((base / "run.json").read_text())
    assert [(r["step"], r["from_step"], r["checkpoints"]) for r in run["rewinds"]] == [(30, 40, ["checkpoint-40"])]
    start = events(base, "start")[-1]
    assert (start["step"], start["resumed_from"]) == (30, "checkpoint-30")
    assert start["rewound"] == {"folder": f"rewound/{folder.name}", "from_step": 40, "checkpoints": ["checkpoint-40"]}
    listed = tuitrain("ls").stdout
    row = next(line for line in listed.splitlines() if line.startswith("base "))
    assert "finished · rewound at 30 · 1 abandoned line" in row and "35/35" in row

    # resume the latest (a prefix of the name): from 35 of the new line, not the abandoned 40
    out = tuitrain("resume", "bas", "--set", "core.max_steps=45")
    assert out.returncode == 0, out.stdout + out.stderr
    start = events(base, "start")[-1]
    assert (start["step"], start["resumed_from"]) == (35, "checkpoint-35") and "rewound" not in start
    assert checkpoints(base) == ["checkpoint-40", "checkpoint-45"]
    assert checkpoints(folder) == ["checkpoint-40"]
    tail = tuitrain("tail", "base", "-n", "200").stdout
    train_steps = [int(line.split("step ")[1].split()[0]) for line in tail.splitlines() if " train " in line]
    assert train_steps == sorted(set(train_steps)) and train_steps[-1] == 45  # one line, each step once

    # fork from 40 with a longer run: the parent stays byte for byte as it was
    before = digest(base)
    out = tuitrain("fork", "base", "--checkpoint", "checkpoint-40", "--set", "core.max_steps=50", "--name", "longer")
    assert out.returncode == 0, out.stdout + out.stderr
    assert digest(base) == before
    fork = root / "longer"
    data = json.loads((fork / "run.json").read_text())
    assert data["name"] == "longer" and data["preset_name"] == "small"
    assert {k: data["parent"][k] for k in ("run", "run_dir", "checkpoint", "step")} == {
        "run": "base", "run_dir": str(base.resolve()), "checkpoint": "checkpoint-40", "step": 40}
    start = events(fork, "start")[0]
    assert (start["step"], start["resumed_from"]) == (40, "checkpoint-40")
    assert start["parent"] == {"run": "base", "run_dir": str(base.resolve()), "checkpoint": "checkpoint-40", "step": 40,
                               "fork": True}
    assert [e["step"] for e in events(fork, "train")] == [45, 50]
    assert checkpoints(fork) == ["checkpoint-40", "checkpoint-50"]
    assert "max_steps = 50" in (fork / "preset.toml").read_text()

    # refused before anything is created: a setting a resume cannot honour, a taken name
    out = tuitrain("fork", "base", "--set", "task.options.hidden=16")
    assert out.returncode == 1 and "cannot fork with changed task.options.hidden" in out.stderr
    out = tuitrain("fork", "base", "--name", "longer")
    assert out.returncode == 1 and "run name 'longer' is taken" in out.stderr and "try 'longer-2'" in out.stderr
    assert sorted(p.name for p in root.iterdir()) == ["base", "longer"]
    assert digest(base) == before
