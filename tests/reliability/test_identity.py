"""Signals go only to the run's own processes, and only for the run directory's owner.

Real processes stand in for the victims: `sleep`s that are not part of any run, a run
directory planted by a real second user (nobody, through setpriv) naming one of root's
processes, and a live run of root's that the second user tries to stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.reliability.conftest import NOBODY, REPO, as_user, cli, needs_root, new_run, one_line_error
from tests.runs.conftest import fake_argv, make_run, wait_for
from tuitrain import procid
from tuitrain.runlock import RunLock
from tuitrain.runs import launch as L
from tuitrain.runs.registry import run_info
from tuitrain.runs.rundir import update_run_json


@pytest.fixture
def sleepers():
    """Start unrelated processes (each in a session of its own); all are killed at the end."""
    procs = []

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _claims(pid: int) -> dict:
    """What an attacker (or a stale run.json) can write about `pid`: the old wall-clock start
    time and the new identity, both correct for the live process."""
    return {"pid_started": psutil.Process(pid).create_time(), "trainer": procid.identify(pid).record(),
            "supervisor_pid": pid, "supervisor_started": psutil.Process(pid).create_time(),
            "supervisor": procid.identify(pid).record()}


def _alive(proc: subprocess.Popen) -> bool:
    time.sleep(0.3)  # a signal, had one been sent, has landed
    return proc.poll() is None


def test_stop_without_a_recorded_start_time_signals_nothing(isolated, sleepers):
    victim = sleepers()
    run_dir = new_run(isolated, "norecord")
    # The state a stale or hand-edited run.json can have: a pid, no start time, no identity.
    update_run_json(run_dir, state="running", pid=victim.pid, pgid=victim.pid, started=time.time())
    with RunLock.acquire(run_dir, "trainer"):  # the run looks alive: only the identity can save the victim
        line = one_line_error(cli("stop", str(run_dir)))
    assert "cannot prove" in line and str(run_dir.name) in line
    assert _alive(victim)


def test_stop_refuses_a_live_process_that_is_not_the_runs(isolated, sleepers):
    victim = sleepers()
    run_dir = new_run(isolated, "reused")
    update_run_json(run_dir, state="running", pid=victim.pid, pgid=victim.pid, started=time.time(),
                    **_claims(victim.pid))  # pid and start time right: a reused pid looks just like this
    with RunLock.acquire(run_dir, "trainer"):
        line = one_line_error(cli("stop", str(run_dir)))
    assert f"pid {victim.pid} is not this run's" in line
    assert _alive(victim)


def test_kill_proves_the_trainer_and_its_process_group(isolated, sleepers):
    trainer, bystander = sleepers(), sleepers()
    run_dir = new_run(isolated, "group")
    update_run_json(run_dir, state="running", pid=trainer.pid, pgid=bystander.pid, started=time.time(),
                    **_claims(trainer.pid))
    with RunLock.acquire(run_dir, "trainer"):
        line = one_line_error(cli("kill", str(run_dir)))
    assert "cannot prove" in line
    assert _alive(trainer) and _alive(bystander)


@needs_root
def test_a_run_directory_planted_by_another_user_is_refused(isolated, sleepers, shared_tmp):
    victim = sleepers()  # one of root's processes
    theirs = shared_tmp / "theirs"  # a folder of the second user's (as /tmp is everyone's)
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    planted = theirs / "planted"
    record = {"name": "planted", "state": "running", "pid": victim.pid, "pgid": victim.pid, "launcher": "local",
              "started": time.time(), **_claims(victim.pid)}
    code = ("import json, os, sys; d = sys.argv[1]; os.mkdir(d); "
            "open(os.path.join(d, 'run.json'), 'w').write(sys.argv[2])")
    made = as_user(NOBODY, [sys.executable, "-c", code, str(planted), json.dumps(record)])
    assert made.returncode == 0, made.stderr
    assert os.stat(planted / "run.json").st_uid == NOBODY
    for verb in ("stop", "kill"):
        line = one_line_error(cli(verb, str(planted)))
        assert "owned by nobody" in line and "another user's run" in line
    assert _alive(victim)


@needs_root
def test_another_user_stopping_my_run_gets_one_line_and_my_run_goes_on(shared_tmp, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(shared_tmp / "state"))
    run_dir = make_run(shared_tmp, "mine")
    L.start_supervised(run_dir, fake_argv(run_dir, 400, 0.05))
    try:
        wait_for(lambda: (run_info(run_dir).step or 0) >= 2)
        env = {"PYTHONPATH": str(REPO), "PATH": os.environ["PATH"], "XDG_STATE_HOME": str(shared_tmp / "other")}
        for argv in (["stop", str(run_dir)], ["kill", str(run_dir)], ["resume", str(run_dir), "--trust-owner"]):
            out = as_user(NOBODY, [sys.executable, "-m", "tuitrain", *argv], env=env)
            line = one_line_error(out)
            assert "tuitrain:" in line, line
        step = run_info(run_dir).step
        wait_for(lambda: (run_info(run_dir).step or 0) > step + 2)
        assert run_info(run_dir).state == "running"
    finally:
        L.kill(run_dir)
    wait_for(lambda: run_info(run_dir).state == "failed")


def test_stop_and_kill_reach_a_proven_run(isolated):
    """The other side: a real supervised run is stopped (its supervisor proven by command line,
    start ticks and boot id) and its trainer killed with the whole group."""
    run_dir = make_run(isolated, "real")
    L.start_supervised(run_dir, fake_argv(run_dir, 400, 0.05))
    wait_for(lambda: (run_info(run_dir).step or 0) >= 1)
    data = json.loads((run_dir / "run.json").read_text())
    assert procid.Identity.from_record(data["trainer"]).pid == data["pid"] == data["pgid"]
    assert "pid_started" not in data and "supervisor_started" not in data  # no wall-clock identity
    L.stop(run_dir)
    assert wait_for(lambda: (i := run_info(run_dir)).state == "stopped" and i).error is None
    run2 = make_run(isolated, "real2")
    L.start_supervised(run2, fake_argv(run2, 400, 0.05))
    wait_for(lambda: (run_info(run2).step or 0) >= 1)
    trainer = json.loads((run2 / "run.json").read_text())["pid"]
    L.kill(run2)
    wait_for(lambda: run_info(run2).state == "failed")
    with pytest.raises(ProcessLookupError):
        os.kill(trainer, 0)
    assert signal.SIGKILL.name in run_info(run2).error
