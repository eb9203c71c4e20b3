"""The event writer's lines and durability, and the progress line's rate limit (no torch)."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

from tuitrain.engine.events import EventWriter
from tuitrain.engine.progress import ProgressLine

ROOT = Path(__file__).resolve().parents[2]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_event_is_a_complete_line_in_the_file_when_emit_returns(tmp_path):
    writer = EventWriter(tmp_path)
    writer.emit("start", run="r", config={"core.max_steps": 3})
    writer.emit("train", step=1, loss=2.5, learning_rate=1e-3)
    # Read by another open file, before close: nothing waits in a buffer.
    text = (tmp_path / "metrics.jsonl").read_text(encoding="utf-8")
    assert text.endswith("\n") and text.count("\n") == 2
    start, train = _lines(tmp_path / "metrics.jsonl")
    assert list(start)[:3] == ["v", "kind", "t"] and start["config"] == {"core.max_steps": 3}
    assert train == {"kind": "train", "t": train["t"], "step": 1, "loss": 2.5, "learning_rate": 1e-3}
    writer.close()
    assert writer.emit("train", step=2) is None


def test_values_json_cannot_hold_become_null_lists_or_text(tmp_path):
    writer = EventWriter(tmp_path)
    event = writer.emit("train", step=1, loss=math.nan, grad_norm=math.inf, shape=(2, 3), path=tmp_path,
                        nested={"a": [1.0, -math.inf]})
    writer.close()
    assert event["loss"] != event["loss"]  # the returned event keeps the values as given
    line = _lines(tmp_path / "metrics.jsonl")[0]
    assert line["loss"] is None and line["grad_norm"] is None and line["shape"] == [2, 3]
    assert line["path"] == str(tmp_path) and line["nested"] == {"a": [1.0, None]}


def test_a_kill_9_right_after_emit_loses_no_event(tmp_path):
    script = ("import os, signal, sys\n"
              "from tuitrain.engine.events import EventWriter\n"
              "w = EventWriter(sys.argv[1])\n"
              "for step in range(1, 201):\n"
              "    w.emit('train', step=step, loss=1.0 / step)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=60)
    assert proc.returncode == -9
    assert [e["step"] for e in _lines(tmp_path / "metrics.jsonl")] == list(range(1, 201))


def test_progress_lines_closer_than_the_interval_are_skipped_but_not_the_first_or_last():
    out = io.StringIO()
    progress = ProgressLine(50, stream=out, min_interval=3600)
    for step in range(1, 51):
        progress.update(step, 1.0, 1e-3, 10.0)
    progress.message("done")
    assert [line.split(" | ")[0] for line in out.getvalue().splitlines()] == ["step  1/50", "step 50/50", "done"]

    every = io.StringIO()
    progress = ProgressLine(5, stream=every, min_interval=0)
    for step in range(1, 6):
        progress.update(step, 1.0, 1e-3, 10.0)
    assert len(every.getvalue().splitlines()) == 5
