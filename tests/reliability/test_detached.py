"""The launching shell dies (SIGHUP as an SSH drop, SIGKILL of a follower), eight runs at
once lose no event, and nothing a run creates is ever world-writable."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

from tests.reliability.conftest import REPO, cli, events, write_preset
from tests.runs.conftest import wait_for
from tuitrain.runs.history import RunHistory
from tuitrain.runs.registry import list_runs, run_info


def _train_steps(run_dir):
    return [e["step"] for e in events(run_dir) if e.get("kind") == "train"]


def _assert_never_world_writable(*roots):
    seen = 0
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                mode = os.lstat(name).st_mode
                assert not mode & stat.S_IWOTH, f"{name} is world-writable ({stat.filemode(mode)})"
                seen += 1
    return seen


def test_sighup_of_the_foreground_launcher_leaves_training_running(isolated):
    # Steps slow enough (a wide layer) that the run outlives its launcher by seconds.
    preset = write_preset(isolated / "slow.toml", max_steps=150, save_steps=75, hidden=2048, n_features=512)
    launcher = subprocess.Popen([sys.executable, "-m", "tuitrain", "run", str(preset)], cwd=REPO,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, preexec_fn=lambda: os.umask(0o022))
    run_dir = wait_for(lambda: (runs := list_runs()) and runs[0].run_dir, timeout=30)
    wait_for(lambda: _train_steps(run_dir), timeout=60)
    os.killpg(launcher.pid, signal.SIGHUP)  # the terminal of that shell is gone
    launcher.wait(timeout=10)
    at_hangup = max(_train_steps(run_dir))
    assert at_hangup < 150, "the run ended before its launcher; the test proves nothing"

    # A follower attaches and is SIGKILLed mid-follow; training goes on regardless.
    follower = subprocess.Popen([sys.executable, "-m", "tuitrain", "tail", run_dir.name, "-f"], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    follower.kill()
    follower.wait()

    # A new tuitrain reattaches: the full history, then the end of the run.
    history = RunHistory(run_dir)
    wait_for(lambda: (history.update() or True) and history.state == "finished", timeout=60, interval=0.2)
    assert list(history.series["loss"].xs) == list(range(1, 151))
    assert _train_steps(run_dir) == list(range(1, 151))
    assert history.checkpoints and history.checkpoints[-1]["path"] == "checkpoint-150"
    tail = cli("tail", run_dir.name, "-n", "1000")
    assert tail.returncode == 0 and tail.stdout.count(" train ") == 150
    assert _assert_never_world_writable(run_dir) > 10
    ckpt_mode = stat.S_IMODE(os.stat(run_dir / "checkpoint-150" / "model.safetensors").st_mode)
    assert ckpt_mode & 0o022 == 0  # umask 022: neither group- nor world-writable


def test_eight_runs_at_once_lose_no_event_and_respect_umask_002(isolated):
    from tuitrain.runs.launch import launch

    preset = write_preset(isolated / "tiny.toml", max_steps=25, save_steps=25)
    old = os.umask(0o002)
    try:
        started = [launch(preset, detach=True) for _ in range(8)]
    finally:
        os.umask(old)
    dirs = [info.run_dir for info in started]
    assert len(set(dirs)) == 8
    wait_for(lambda: all(run_info(d).state not in ("queued", "running", "stopping") for d in dirs),
             timeout=90, interval=0.25)
    for d in dirs:
        assert run_info(d).state == "finished", (d, run_info(d).error)
        assert _train_steps(d) == list(range(1, 26)), d
        assert (d / "checkpoint-25" / "trainer_state.json").is_file()
    assert _assert_never_world_writable(*dirs, isolated / "state") > 80
    group = stat.S_IMODE(os.stat(dirs[0] / "metrics.jsonl").st_mode)
    assert group & 0o020, "umask 002 was not honoured (the file should be group-writable)"
