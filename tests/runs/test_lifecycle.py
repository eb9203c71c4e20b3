"""Detached runs: surviving their launcher, stop, kill -9, registry and wrong states."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from tests.runs.conftest import fake_argv, make_run, wait_for
from tuitrain.errors import TuitrainError
from tuitrain.runs import launch as L
from tuitrain.runs.registry import find_run, list_runs, run_info
from tuitrain.runs.rundir import RunDirError, prepare_output_dir, read_run_json


def test_detached_run_survives_its_launcher_and_is_stopped_by_another_process(isolated):
    run_dir = make_run(isolated)
    # The launcher is its own process; it starts the run, reports, then is killed.
    code = textwrap.dedent(f"""
        import sys, time
        from tuitrain.runs.launch import start_supervised
        start_supervised({str(run_dir)!r}, {fake_argv(run_dir, 400, 0.05)!r})
        print("started", flush=True)
        time.sleep(60)
    """)
    launcher = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                                env=dict(os.environ))
    assert launcher.stdout.readline().strip() == "started"
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    wait_for(lambda: run_info(run_dir).state == "running")
    step_before = wait_for(lambda: run_info(run_dir).step)
    wait_for(lambda: (run_info(run_dir).step or 0) > step_before + 2)
    # A fresh process finds it by name and stops it gracefully.
    out = subprocess.run(
        [sys.executable, "-c", "from tuitrain.runs.launch import stop; from tuitrain.runs.registry "
         "import list_runs; print([r.state for r in list_runs()]); stop('r1')"],
        capture_output=True, text=True, env=dict(os.environ), timeout=30)
    assert out.returncode == 0, out.stderr
    assert "running" in out.stdout
    info = wait_for(lambda: (i := run_info(run_dir)).state == "stopped" and i)
    assert info.error is None
    assert L.latest_checkpoint(run_dir) is not None
    data = read_run_json(run_dir)
    assert data["exit_code"] == 0 and data["ended"] >= data["started"]


def test_kill9_of_the_trainer_is_failed_with_the_log_tail(isolated):
    run_dir = make_run(isolated)
    L.start_supervised(run_dir, fake_argv(run_dir, 400, 0.05))
    wait_for(lambda: (run_info(run_dir).step or 0) >= 2)
    os.kill(read_run_json(run_dir)["pid"], signal.SIGKILL)
    info = wait_for(lambda: (i := run_info(run_dir)).state == "failed" and i, timeout=5)
    assert "SIGKILL" in info.error and "step 2/400" in info.error


def test_trainer_dead_and_supervisor_gone_is_failed(isolated):
    run_dir = make_run(isolated)
    L.start_supervised(run_dir, fake_argv(run_dir, 400, 0.05))
    wait_for(lambda: (run_info(run_dir).step or 0) >= 1)
    data = read_run_json(run_dir)
    os.kill(data["supervisor_pid"], signal.SIGKILL)
    os.kill(data["pid"], signal.SIGKILL)
    info = wait_for(lambda: (i := run_info(run_dir)).state == "failed" and i, timeout=5)
    assert "step 1/400" in info.error
    assert read_run_json(run_dir)["state"] == "running"  # derived, not recorded


def test_crash_reports_failed_and_kill_command(isolated):
    run_dir = make_run(isolated)
    L.start_supervised(run_dir, fake_argv(run_dir, 400, 0.02, "--crash-at", "3"))
    info = wait_for(lambda: (i := run_info(run_dir)).state == "failed" and i)
    assert "boom at step 3" in info.error
    with pytest.raises(L.WrongStateError, match="not running"):
        L.stop(run_dir)
    with pytest.raises(L.WrongStateError, match="no checkpoint"):
        L.resume(run_dir)
    run2 = make_run(isolated, "r2")
    L.start_supervised(run2, fake_argv(run2, 400, 0.05))
    wait_for(lambda: run_info(run2).state == "running")
    L.kill("r2")
    assert wait_for(lambda: (i := run_info(run2)).state == "failed" and i).error.startswith("killed by signal SIGKILL")


def test_finished_run_and_registry(isolated, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir = make_run(isolated)
    outside = elsewhere / "runs" / "far"
    prepare_output_dir(outside, overwrite=False)
    from tuitrain.runs.rundir import update_run_json
    update_run_json(outside, name="far", state="queued")
    L.start_supervised(outside, fake_argv(outside, 3, 0.01))
    L.start_supervised(run_dir, fake_argv(run_dir, 3, 0.01))
    wait_for(lambda: all(r.state == "finished" for r in list_runs()) and len(list_runs()) == 2)
    info = find_run("far")
    assert info.step == 3 and info.max_steps == 3 and info.last_loss == pytest.approx(1 / 3)
    with pytest.raises(TuitrainError, match="unknown run 'nope'"):
        find_run("nope")


def test_output_dir_semantics_and_permissions(tmp_path):
    old = os.umask(0o000)
    try:
        target = tmp_path / "out"
        prepare_output_dir(target, overwrite=False)
        assert not stat.S_IMODE(target.stat().st_mode) & 0o002
        (target / "old.txt").write_text("x")
        with pytest.raises(RunDirError, match="overwrite_output_dir"):
            prepare_output_dir(target, overwrite=False)
        prepare_output_dir(target, overwrite=True)
        assert list(target.iterdir()) == []
        from tuitrain.runs.rundir import update_run_json
        update_run_json(target, state="queued")
        assert not stat.S_IMODE((target / "run.json").stat().st_mode) & 0o002
        assert json.loads((target / "run.json").read_text())["state"] == "queued"
    finally:
        os.umask(old)
