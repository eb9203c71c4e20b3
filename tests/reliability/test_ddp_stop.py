"""Stopping: a DDP run under torchrun (two gloo ranks on CPU) stops at one step on every rank
and ends `stopped`, even when only one rank saw the signal; its checkpoint holds every rank's
logging window; a stop during start-up ends `stopped`; the last status event decides."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import cli, events
from tests.runs.conftest import fake_argv, make_run, wait_for
from tuitrain import procid
from tuitrain.runs import launch as L
from tuitrain.runs.registry import run_info
from tuitrain.runs.rundir import read_run_json

DDP = """
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
max_steps = {max_steps}
[optimizer]
learning_rate = 3e-3
[logging]
logging_steps = {logging_steps}
save_strategy = "steps"
save_steps = {save_steps}
[distributed]
ddp_backend = "gloo"
ddp_timeout = 90
[reproducibility]
seed = 7
[launch]
launcher = "torchrun"
nproc_per_node = 2
"""


def _ddp(tmp: Path, name: str, **values) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(DDP.format(**values))
    return path


def _train(run_dir: Path) -> list[dict]:
    return [e for e in events(run_dir) if e.get("kind") == "train"]


def _end(run_dir: Path) -> None:
    if run_info(run_dir).state in ("queued", "running", "stopping"):
        L.kill(run_dir)


def _ranks(run_dir: Path) -> dict[int, int]:
    """RANK → pid of the engine processes torchrun started for the run."""
    torchrun = read_run_json(run_dir)["pid"]
    found = {}
    for pid in procid.descendants(torchrun):
        if "tuitrain.engine" in (procid.cmdline(pid) or []):
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            rank = next(int(v.split(b"=", 1)[1]) for v in env if v.startswith(b"RANK="))
            found[rank] = pid
    return found


@pytest.mark.timeout(240)
def test_tuitrain_stop_of_a_ddp_run_ends_stopped_with_a_checkpoint(isolated, request):
    info = L.launch(_ddp(isolated, "ddp", max_steps=5000, logging_steps=5, save_steps=5000))
    request.addfinalizer(lambda: _end(info.run_dir))
    wait_for(lambda: len(_train(info.run_dir)) >= 2, timeout=120)
    out = cli("stop", str(info.run_dir), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    final = run_info(info.run_dir)
    assert final.state == "stopped" and final.error is None  # torchrun's exit 1 after a SIGTERM is not a failure
    step = [e for e in events(info.run_dir) if e.get("kind") == "checkpoint"][-1]["step"]
    assert (info.run_dir / f"checkpoint-{step}" / "trainer_state.json").is_file()


@pytest.mark.timeout(240)
def test_a_stop_only_one_rank_saw_stops_every_rank_at_one_step(isolated, request):
    info = L.launch(_ddp(isolated, "one", max_steps=5000, logging_steps=5, save_steps=5000))
    run_dir = info.run_dir
    request.addfinalizer(lambda: _end(run_dir))
    wait_for(lambda: len(_train(run_dir)) >= 2, timeout=120)
    ranks = wait_for(lambda: (r := _ranks(run_dir)) and len(r) == 2 and r, timeout=30)
    os.kill(ranks[1], 15)  # rank 1 alone: rank 0 never sees a signal
    started = time.monotonic()
    wait_for(lambda: run_info(run_dir).state not in ("running", "stopping"), timeout=60, interval=0.2)
    assert time.monotonic() - started < 60  # not a collective waiting out ddp_timeout
    final = run_info(run_dir)
    assert final.state == "stopped" and final.error is None, final.error
    (checkpoint,) = [e for e in events(run_dir) if e.get("kind") == "checkpoint"]
    assert (run_dir / checkpoint["path"] / "model.safetensors").is_file()
    status = [e for e in events(run_dir) if e.get("kind") == "status"]
    assert status[-1]["state"] == "stopped"
    log = (run_dir / "stdout.log").read_text()
    assert f"SIGTERM: stopped at step {checkpoint['step']}" in log or f"stopped at step {checkpoint['step']}" in log


@pytest.mark.timeout(240)
def test_a_resume_logs_the_loss_of_the_uninterrupted_run_across_ranks(isolated, request):
    # Logged every 2 steps and saved at step 3: the checkpoint holds half a logging window.
    info = L.launch(_ddp(isolated, "window", max_steps=6, logging_steps=2, save_steps=3))
    request.addfinalizer(lambda: _end(info.run_dir))
    wait_for(lambda: run_info(info.run_dir).state == "finished", timeout=180, interval=0.3)
    straight = {e["step"]: e["loss"] for e in _train(info.run_dir)}
    assert sorted(straight) == [2, 4, 6]
    L.resume(info.run_dir, "checkpoint-3")
    wait_for(lambda: run_info(info.run_dir).state == "finished", timeout=180, interval=0.3)
    resumed = events(info.run_dir)
    after = resumed[max(i for i, e in enumerate(resumed) if e.get("kind") == "start"):]
    again = {e["step"]: e["loss"] for e in after if e.get("kind") == "train"}
    assert sorted(again) == [4, 6]
    for step in (4, 6):
        assert again[step] == pytest.approx(straight[step], rel=1e-5, abs=1e-6), (step, again, straight)


def _gated_build(tmp: Path) -> Path:
    (tmp / "slow_build.py").write_text(
        "import time\nfrom pathlib import Path\nfrom tuitrain.engine.tasks import regression\n\n"
        "def build(options, args):\n"
        "    control = Path(options['control'])\n"
        "    (control / 'building').touch()\n"
        "    while not (control / 'go').exists():\n"
        "        time.sleep(0.02)\n"
        "    return regression.build({'n_samples': 32}, args)\n")
    control = tmp / "control"
    control.mkdir()
    preset = tmp / "slow.toml"
    preset.write_text(f'[task]\nname = "slow_build.py:build"\n[task.options]\ncontrol = "{control}"\n'
                      '[core]\nmax_steps = 500\n[logging]\nlogging_steps = 1\nsave_strategy = "steps"\nsave_steps = 250\n')
    return preset


def test_a_stop_while_the_task_builds_ends_stopped(isolated, request):
    preset = _gated_build(isolated)
    control = isolated / "control"
    info = L.launch(preset)
    request.addfinalizer(lambda: _end(info.run_dir))
    wait_for(lambda: (control / "building").exists(), timeout=60)
    L.stop(info.run_dir)
    time.sleep(0.5)  # the signal has landed while the task is still building
    (control / "go").touch()
    final = wait_for(lambda: (i := run_info(info.run_dir)).state not in ("running", "stopping") and i, timeout=60)
    assert final.state == "stopped" and final.error is None, final.error
    assert max(e["step"] for e in _train(info.run_dir)) == 1  # one step, then its checkpoint
    assert (info.run_dir / "checkpoint-1" / "trainer_state.json").is_file()


def test_a_stop_while_torch_imports_ends_stopped(isolated, request):
    preset = _gated_build(isolated)
    info = L.launch(preset)
    request.addfinalizer(lambda: _end(info.run_dir))
    wait_for(lambda: read_run_json(info.run_dir).get("pid"), timeout=30)
    L.stop(info.run_dir)  # within moments of the trainer's start: before or while torch imports
    (isolated / "control" / "go").touch()
    final = wait_for(lambda: (i := run_info(info.run_dir)).state not in ("running", "stopping") and i, timeout=60)
    assert final.state == "stopped" and final.error is None, final.error


def test_the_last_status_event_decides_how_a_run_ended(isolated):
    run_dir = make_run(isolated, "late-stop")
    # The trainer writes `finished` and exits 1, as torchrun does when a stop lands as the run ends.
    L.start_supervised(run_dir, fake_argv(run_dir, 5, 0.01, "--exit-code", "1"))
    final = wait_for(lambda: (i := run_info(run_dir)).state not in ("queued", "running", "stopping") and i)
    assert final.state == "finished" and final.error is None
    assert json.loads((run_dir / "run.json").read_text())["exit_code"] == 1
