"""Sweep tests: each gets its own runs root and registry, and presets on a tiny task."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.runs.conftest import wait_for as wait_until

HERE = Path(__file__).parent
FAKE_QUEUE = str(HERE / "fake_queue.py")

TINY = """\
[task]
name = "regression"
[task.options]
n_samples = 48
n_features = 4
hidden = 8
[core]
per_device_train_batch_size = 8
max_steps = {steps}
[optimizer]
learning_rate = 0.01
[logging]
logging_steps = 1
save_strategy = "no"
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Each test gets its own runs root and registry."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("TUITRAIN_RUNS", str(tmp_path / "runs"))
    return tmp_path


@pytest.fixture
def tiny(tmp_path) -> Path:
    """A preset file: a few steps of the regression task."""
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(steps=6))
    return path


@pytest.fixture
def fake_queue(monkeypatch):
    """The queue process runs `fake_queue.py`: the real queue, whose members run the runs
    tests' fake trainer (events like the engine's, SIGTERM honoured) instead of torch."""
    from tuitrain.sweeps import queue

    monkeypatch.setattr(queue, "RUNNER", (sys.executable, FAKE_QUEUE))


def wait_for(predicate, timeout: float = 30.0):
    """The runs tests' wait, with room for a queue that starts trainers one after another."""
    return wait_until(predicate, timeout)
