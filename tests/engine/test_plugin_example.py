"""The README's plug-in example trains from any working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sine_example_trains_and_reports_its_metric(tmp_path: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", TUITRAIN_RUNS=str(tmp_path / "runs"),
               XDG_STATE_HOME=str(tmp_path / "state"))
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "tuitrain", "run", str(ROOT / "examples" / "sine.toml"),
         "--set", "core.max_steps=60", "--set", "logging.eval_steps=30",
         "--set", "logging.save_steps=30", "--output-dir", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in events if e["kind"] == "train"]
    assert losses[-1] < losses[0] / 2
    evals = [e for e in events if e["kind"] == "eval"]
    assert evals and all("eval_max_error" in e for e in evals)
    assert events[-1] == {**events[-1], "kind": "status", "state": "finished"}
    assert (out / "checkpoint-60" / "model.safetensors").is_file()
