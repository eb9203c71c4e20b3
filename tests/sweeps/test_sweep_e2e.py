"""`tuitrain sweep` end to end with the real engine: members train in parallel, one diverges
(its NaN loss stops it with a checkpoint), the foreground command shows member lines then the
results; members this device cannot train are refused up front, one line each."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from tuitrain.layout import complete_checkpoints
from tuitrain.sweeps.queue import launch_sweep
from tuitrain.sweeps.spec import parse_cli
from tuitrain.sweeps.store import read_sweep
from tests.sweeps.conftest import wait_for


def tuitrain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuitrain.cli", *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=240)


def test_a_foreground_sweep_with_a_diverging_member(tiny, tmp_path):
    done = tuitrain("sweep", str(tiny), "--grid", "optimizer.learning_rate=0.01,1e6", "--set", "core.max_steps=12",
                    "--set", "optimizer.max_grad_norm=0",
                    "--parallel", "2", "--name", "e2e")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.startswith("sweep e2e: 2 members, 2 at once: ")
    assert re.search(r"^learning_rate=0\.01 +running ", out, re.M)  # a line per member as its state changes
    assert re.search(r"^learning_rate=1e\+06 +diverged ", out, re.M)
    table = out[out.index("STATE"):]
    assert "finished  12/12" in table and "diverged" in table and "* best: learning_rate=0.01" in table
    diverged = tmp_path / "runs" / "e2e" / "learning_rate=1e+06"
    status = [json.loads(line) for line in (diverged / "metrics.jsonl").read_text().splitlines()][-1]
    assert status["kind"] == "status" and status["state"] == "diverged"
    step = max(int(p.name.split("-")[1]) for p in complete_checkpoints(diverged))
    assert step < 12  # stopped early, with a checkpoint of the step it stopped at
    listing = tuitrain("ls").stdout
    assert "e2e/learning_rate=1e+06" in listing and "diverged" in listing
    tail = tuitrain("tail", "e2e/learning_rate=1e", "-n", "1")
    assert tail.returncode == 0 and "diverged" in tail.stdout
    rss = json.loads((diverged / "run.json").read_text())["peak_rss_bytes"]
    assert rss > 50 * 2**20 and re.search(r"\d+ MiB host", table)  # the trainer's peak memory, recorded as it ended
    start = json.loads((diverged / "metrics.jsonl").read_text().splitlines()[0])
    assert start["config"]["optimizer.learning_rate"] == 1e6


def test_members_the_device_cannot_train_are_refused_up_front_and_the_rest_run(tiny, fake_queue):
    """On this CPU fp16 and tf32 cannot run (the trainer's own checks say so), fp32 and bf16 can."""
    refused = []
    spec = parse_cli(zip=["precision.fp16=false,true,false,false", "precision.bf16=false,false,true,false",
                          "precision.tf32=false,false,false,true"], sets=["core.max_steps=2"])
    sweep_dir = launch_sweep(tiny, spec, name="toggles", on_refused=lambda name, why: refused.append((name, why)))
    assert [name for name, _ in refused] == ["fp16=true,bf16=false,tf32=false", "fp16=false,bf16=false,tf32=true"]
    assert "fp16 mixed precision needs a GPU" in refused[0][1] and "TF32 needs" in refused[1][1]
    info = read_sweep(sweep_dir)
    assert [m.name for m in info.members] == ["fp16=false,bf16=false,tf32=false", "fp16=false,bf16=true,tf32=false"]
    assert [r["name"] for r in info.refused] == [name for name, _ in refused]
    wait_for(lambda: read_sweep(sweep_dir).queue_state == "finished")
