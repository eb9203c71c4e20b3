"""Liveness that no wall-clock step can fool, stalls that show, and exits that are not finishes."""

from __future__ import annotations

import json
import os
import signal
import time
import types

from tests.reliability.conftest import cli, events, write_preset
from tests.runs.conftest import fake_argv, make_run, wait_for
from tuitrain.runs import launch as L
from tuitrain.runs.registry import run_info
from tuitrain.runs.rundir import read_run_json, update_run_json

# Wall-clock times a run records (older tuitrains compared the last two with the process's).
_WALL_FIELDS = ("created", "started", "pid_started", "supervisor_started")


def test_a_wall_clock_step_leaves_a_live_run_running_stoppable_and_not_resumable(isolated):
    preset = write_preset(isolated / "slow.toml", max_steps=3000, save_steps=1500, hidden=512, n_features=128)
    info = L.launch(preset)
    run_dir = info.run_dir
    try:
        wait_for(lambda: (run_info(run_dir).step or 0) >= 3, timeout=60)
        # The clock is stepped an hour forward (NTP, a resumed VM): every wall-clock time the
        # run recorded is now an hour behind what the system says about the same processes.
        data = read_run_json(run_dir)
        update_run_json(run_dir, **{k: data[k] - 3600 for k in _WALL_FIELDS if isinstance(data.get(k), (int, float))})
        assert run_info(run_dir).state == "running"
        refused = cli("resume", str(run_dir))
        assert refused.returncode == 1 and "is running; stop it before resuming" in refused.stderr
        stopped = cli("stop", str(run_dir))
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert run_info(run_dir).state == "stopped" and L.latest_checkpoint(run_dir)
    finally:
        if run_info(run_dir).state in ("queued", "running", "stopping"):
            L.kill(run_dir)


def test_a_suspended_trainer_shows_stalled_and_stop_still_works(isolated, monkeypatch):
    from tuitrain.runs import history as history_module
    from tuitrain.runs.history import RunHistory
    from tuitrain.ui.screens.runs import run_row

    run_dir = make_run(isolated, "frozen")
    L.start_supervised(run_dir, fake_argv(run_dir, 4000, 0.02))
    wait_for(lambda: (run_info(run_dir).step or 0) >= 20)
    trainer = read_run_json(run_dir)["pid"]
    os.kill(trainer, signal.SIGSTOP)
    try:
        history = RunHistory(run_dir)
        history.update()
        assert run_info(run_dir).state_text == "running" and history.state_text == "running"
        # Four minutes of silence later (the usual gap is 20 ms; a stall is a minute at least):
        later = run_info(run_dir, now=time.time() + 240)
        assert later.state == "running" and later.state_text == "stalled (no event for 4m)"
        assert later.eta_s is None  # no frozen ETA
        assert run_row(later, time.time())[1].plain == "stalled (no event for 4m)"  # the Runs screen's state cell
        real = time.monotonic
        monkeypatch.setattr(history_module, "time", types.SimpleNamespace(time=lambda: time.time() + 240,
                                                                          monotonic=lambda: real() + 240))
        assert history.update()  # the text changed with no new event: the dashboard redraws
        assert history.state_text == "stalled (no event for 4m)" and history.eta_s is None
    finally:
        L.stop(run_dir)  # SIGTERM, and SIGCONT so the suspended trainer can act on it
    assert wait_for(lambda: (i := run_info(run_dir)).state == "stopped" and i).state_text == "stopped"


def test_a_task_that_exits_before_any_step_has_failed(isolated):
    (isolated / "quitter.py").write_text("import sys\n\ndef build(options, args):\n    sys.exit(0)\n")
    preset = isolated / "quit.toml"
    preset.write_text('[task]\nname = "quitter.py:build"\n[core]\nmax_steps = 5\n')
    out = cli("run", str(preset), timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    (run_dir,) = (isolated / "runs").iterdir()
    info = run_info(run_dir)
    assert info.state == "failed" and "sys.exit(0)" in info.error and "Traceback" not in info.error
    status = [e for e in events(run_dir) if e.get("kind") == "status"]
    assert status[-1]["state"] == "failed"
    assert not [e for e in events(run_dir) if e.get("kind") == "train"]
    listed = cli("ls")
    assert "failed" in listed.stdout and "sys.exit(0)" in listed.stdout
    assert json.loads((run_dir / "run.json").read_text())["exit_code"] == 1
