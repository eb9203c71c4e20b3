"""A warmup as long as the run never reaches the peak learning rate: a notice wherever the
run's length is known (`preset validate`, `schedule`; the editor has its own test). Not an
error: a short trial run (a lowered max_steps) is legitimate and HF runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tuitrain.config import load_preset_text
from tuitrain.config.rules import warmup_problem

REPO = Path(__file__).resolve().parents[2]


def test_the_rule():
    assert warmup_problem(19, 20) is None
    assert "never reaches its peak" in warmup_problem(20, 20)
    assert warmup_problem(5, 0) is None  # the length is not known


def test_validate_names_the_field_with_a_suggestion(tmp_path):
    preset = load_preset_text("[core]\nmax_steps = 100\n[optimizer]\nwarmup_steps = 150\n", "w.toml")
    (problem,) = [p for p in preset.notices if "warmup" in p.field]
    assert str(problem) == ("w.toml:4: optimizer.warmup_steps: warmup lasts 150 steps and the run 100: the "
                            "learning rate never reaches its peak (e.g. warmup_steps = 10)")
    ratio = load_preset_text("[core]\nmax_steps = 100\n[optimizer]\nwarmup_ratio = 1.0\n", "r.toml")
    assert any("warmup_ratio: warmup lasts 100 steps" in str(p) for p in ratio.notices)
    fine = load_preset_text("[core]\nmax_steps = 100\n[optimizer]\nwarmup_steps = 99\n", "ok.toml")
    assert not any("warmup" in p.field for p in fine.notices)
    path = tmp_path / "w.toml"
    path.write_text("[core]\nmax_steps = 100\n[optimizer]\nwarmup_steps = 150\n")
    out = subprocess.run([sys.executable, "-m", "tuitrain", "preset", "validate", str(path)], capture_output=True,
                         text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0 and "notice:" in out.stdout and "never reaches its peak" in out.stdout


def test_schedule_says_when_the_warmup_is_longer_than_the_steps_asked_for():
    out = subprocess.run([sys.executable, "-m", "tuitrain", "schedule", "quickstart", "--steps", "10"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0 and "warmup 20 steps, total 10 steps" in out.stdout
    assert out.stderr.strip().count("\n") == 0
    assert "notice:" in out.stderr and "optimizer.warmup_steps: warmup lasts 20 steps and the run 10" in out.stderr
