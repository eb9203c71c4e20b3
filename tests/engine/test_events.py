"""The event stream, graceful stop by signal and failure reporting of `python -m tuitrain.engine`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from trainer_fixtures import events, regression_preset, run

ROOT = Path(__file__).resolve().parents[2]

PRESET = """
[task]
name = "regression"
[task.options]
n_samples = 64
n_features = 4
hidden = 8
[core]
per_device_train_batch_size = 8
max_steps = {max_steps}
[optimizer]
learning_rate = 0.01
[logging]
logging_steps = 1
save_strategy = "no"
"""


def _engine(run_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "tuitrain.engine", str(run_dir), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)


def test_sigterm_saves_a_checkpoint_reports_stopped_and_exits_zero(tmp_path):
    (tmp_path / "preset.toml").write_text(PRESET.format(max_steps=1_000_000))
    proc = _engine(tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (tmp_path / "metrics.jsonl").exists() and len(events(tmp_path, "train")) >= 3:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    status = events(tmp_path, "status")[-1]
    assert status["state"] == "stopped"
    saved = events(tmp_path, "checkpoint")[-1]
    assert (tmp_path / saved["path"] / "trainer_state.json").is_file()
    assert saved["step"] == events(tmp_path, "train")[-1]["step"]


def test_failure_writes_status_failed_and_exits_one(tmp_path):
    (tmp_path / "preset.toml").write_text(PRESET.format(max_steps=2).replace('"regression"', '"no_such_task"'))
    proc = _engine(tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    status = events(tmp_path, "status")[-1]
    assert status["state"] == "failed" and "no_such_task" in status["error"]
    assert "no_such_task" in out


def test_train_events_carry_the_window_mean_and_hf_fields(tmp_path):
    assert run(regression_preset(logging_steps=2, max_steps=6, logging_first_step=True), tmp_path / "a") == 0
    assert run(regression_preset(logging_steps=1, max_steps=6), tmp_path / "b") == 0
    every = {e["step"]: e["loss"] for e in events(tmp_path / "b", "train")}
    windows = events(tmp_path / "a", "train")
    assert [e["step"] for e in windows] == [1, 2, 4, 6]
    assert windows[0]["loss"] == every[1] and windows[1]["loss"] == every[2]  # window restarts after step 1
    for e in windows[2:]:
        assert abs(e["loss"] - (every[e["step"] - 1] + every[e["step"]]) / 2) < 1e-6
    for e in windows:
        assert {"epoch", "learning_rate", "grad_norm", "samples_per_second"} <= set(e)
    start = events(tmp_path / "a", "start")[0]
    assert start["v"] == 1 and start["world_size"] == 1 and start["max_steps"] == 6
    assert start["resumed_from"] is None and start["config"]["core.max_steps"] == 6
    assert [e["state"] for e in events(tmp_path / "a", "status")] == ["running", "finished"]


def test_grad_norm_is_logged_before_clipping(tmp_path):
    assert run(regression_preset(max_grad_norm=1e-6, max_steps=2, learning_rate=0.0), tmp_path) == 0
    assert all(e["grad_norm"] > 1e-3 for e in events(tmp_path, "train"))
