"""A warmup as long as the run never reaches the peak learning rate: an error wherever the
run's length is known (`preset validate`, `schedule`; the editor has its own test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tuitrain.config import PresetErrors, load_preset_text
from tuitrain.config.rules import warmup_problem

REPO = Path(__file__).resolve().parents[2]


def test_the_rule():
    assert warmup_problem(19, 20) is None
    assert "never reaches its peak" in warmup_problem(20, 20)
    assert warmup_problem(5, 0) is None  # the length is not known


def test_validate_names_the_field_with_a_suggestion():
    with pytest.raises(PresetErrors) as caught:
        load_preset_text("[core]\nmax_steps = 100\n[optimizer]\nwarmup_steps = 150\n", "w.toml")
    (problem,) = [p for p in caught.value.problems if "warmup" in p.field]
    assert str(problem) == ("w.toml:4: optimizer.warmup_steps: warmup lasts 150 steps and the run 100: the "
                            "learning rate never reaches its peak (e.g. warmup_steps = 10)")
    with pytest.raises(PresetErrors, match="warmup_ratio: warmup lasts 100 steps"):
        load_preset_text("[core]\nmax_steps = 100\n[optimizer]\nwarmup_ratio = 1.0\n", "r.toml")
    load_preset_text("[core]\nmax_steps = 100\n[optimizer]\nwarmup_steps = 99\n", "ok.toml")


def test_schedule_refuses_a_warmup_longer_than_the_steps_asked_for(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tuitrain", "schedule", "quickstart", "--steps", "10"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip().count("\n") == 0
    assert "optimizer.warmup_steps: warmup lasts 20 steps and the run 10" in out.stderr
