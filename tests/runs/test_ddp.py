"""torchrun with two CPU processes (gloo) against one process with the same global batch."""

from __future__ import annotations

import json
import time

import pytest

from tuitrain.runs import launch as L
from tuitrain.runs.registry import run_info

PRESET = """
[task]
name = "char_gpt"
[task.options]
block_size = 16
n_layer = 1
n_head = 2
n_embd = 16
[core]
do_train = true
per_device_train_batch_size = 8
max_steps = 6
[optimizer]
learning_rate = 3e-3
[logging]
logging_steps = 1
save_strategy = "steps"
save_steps = 3
[distributed]
ddp_backend = "gloo"
[reproducibility]
seed = 7
[launch]
launcher = "torchrun"
nproc_per_node = 2
"""


def wait_done(run_dir, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = run_info(run_dir)
        if info.state not in ("queued", "running", "stopping"):
            return info
        time.sleep(0.3)
    raise AssertionError(f"{run_dir} still running after {timeout}s")


def train_losses(run_dir, segment=-1):
    segments: list[list[tuple[int, float]]] = []
    for raw in (run_dir / "metrics.jsonl").read_text().splitlines():
        event = json.loads(raw)
        if event["kind"] == "start":
            segments.append([])
        elif event["kind"] == "train":
            segments[-1].append((event["step"], event["loss"]))
    return segments[segment]


@pytest.mark.timeout(120)
def test_two_process_ddp_matches_one_process_and_resumes(isolated):
    preset = isolated / "ddp.toml"
    preset.write_text(PRESET)
    ddp = L.launch(preset, output_dir=isolated / "ddp")
    single = L.launch(preset, ["launch.launcher=\"local\"", "launch.nproc_per_node=1",
                               "core.per_device_train_batch_size=16"], output_dir=isolated / "single")
    for info in (ddp, single):
        assert wait_done(info.run_dir).state == "finished", (info.run_dir / "stdout.log").read_text()[-2000:]
    ddp_losses, single_losses = train_losses(ddp.run_dir), train_losses(single.run_dir)
    assert [s for s, _ in ddp_losses] == list(range(1, 7))
    assert [s for s, _ in ddp_losses] == [s for s, _ in single_losses]
    for (_, a), (_, b) in zip(ddp_losses, single_losses):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    log = (ddp.run_dir / "stdout.log").read_text()
    assert "[default0]:" in log  # every rank's output is in stdout.log, rank-prefixed
    assert run_info(ddp.run_dir).launcher == "torchrun"

    # Resume the DDP run from its middle checkpoint: the same curve again.
    info = L.resume(ddp.run_dir, "checkpoint-3")
    assert wait_done(info.run_dir).state == "finished"
    resumed = train_losses(ddp.run_dir)
    assert [s for s, _ in resumed] == [4, 5, 6]
    for (_, a), (_, b) in zip(resumed, ddp_losses[3:]):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    data = json.loads((ddp.run_dir / "run.json").read_text())
    assert data["resumed_from"] == "checkpoint-3" and "--resume-from" in data["argv"]
