"""`runs.fork` without training: what it creates, what it passes the trainer, what it refuses
(the trainer's spawn is recorded instead of made)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tuitrain.config import load_preset_data
from tuitrain.errors import TuitrainError
from tuitrain.layout import CHECKPOINT_FILES
from tuitrain.runlock import RunLock
from tuitrain.runs import launch as launch_mod
from tuitrain.runs.fork import fork
from tuitrain.runs.launch import WrongStateError, resume
from tuitrain.runs.names import NameTakenError
from tuitrain.runs.rundir import read_run_json, update_run_json

from .conftest import make_run


@pytest.fixture
def spawned(monkeypatch):
    """The argv each start would have spawned (nothing is)."""
    argvs: list[list[str]] = []

    def record(run_dir, argv, env=None, lock=None):
        argvs.append(argv)
        if lock is not None:
            lock.release()
        update_run_json(run_dir, state="failed", ended=1.0)  # as if its trainer failed at once
        return 0

    monkeypatch.setattr(launch_mod, "start_supervised", record)
    return argvs


@pytest.fixture
def parent(isolated):
    """A finished run with checkpoint-10 whose state records the config it was saved with."""
    preset = load_preset_data({"task": {"name": "regression"}, "core": {"max_steps": 20, "output_dir": "/elsewhere"},
                               "optimizer": {"learning_rate": 0.01}}, "/presets/small.toml")
    run_dir = make_run(isolated, "base")
    (run_dir / "preset.toml").write_text(preset.to_toml())
    folder = run_dir / "checkpoint-10"
    folder.mkdir()
    for name in CHECKPOINT_FILES:
        (folder / name).write_text("{}")
    (folder / "tuitrain_state.json").write_text(json.dumps({"config": preset.values()}))
    (run_dir / "metrics.jsonl").write_text(json.dumps({"kind": "start", "t": 1.0, "step": 0}) + "\n")
    update_run_json(run_dir, state="finished", started=1.0, ended=2.0, preset_name="small")
    RunLock.acquire(run_dir, "launcher").release()  # its lock file, as every run launched has one
    return run_dir


def _lineage(argv: list[str]) -> dict:
    return json.loads(argv[argv.index("--lineage") + 1]) if "--lineage" in argv else {}


def _snapshot(folder):
    return {p: (p.stat().st_size, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def test_a_fork_is_a_new_named_run_from_a_linked_checkpoint(parent, spawned, isolated):
    before = _snapshot(parent)
    info = fork("base", overrides=["optimizer.learning_rate=0.001"])
    assert _snapshot(parent) == before
    assert info.run_dir == (isolated / "runs" / "base-from-10").resolve()
    data = read_run_json(info.run_dir)
    assert data["name"] == "base-from-10" and data["preset_name"] == "small"
    assert data["parent"]["run"] == "base" and data["parent"]["fork"] is True
    assert data["parent"]["metrics_bytes"] == os.path.getsize(parent / "metrics.jsonl")
    linked = info.run_dir / "checkpoint-10" / "model.safetensors"
    assert os.stat(linked).st_ino == os.stat(parent / "checkpoint-10" / "model.safetensors").st_ino
    (argv,) = spawned
    assert argv[argv.index("--resume-from") + 1] == "checkpoint-10"
    assert _lineage(argv) == {"parent": {"run": "base", "run_dir": str(parent), "checkpoint": "checkpoint-10",
                                         "step": 10, "fork": True}}
    text = (info.run_dir / "preset.toml").read_text()
    assert "learning_rate = 0.001" in text and "/elsewhere" not in text  # not the parent's output_dir


def test_a_fork_started_again_from_its_first_checkpoint_keeps_fork_semantics(parent, spawned):
    info = fork("base", name="lower", overrides=["optimizer.learning_rate=0.001"])
    # its trainer failed before its first save: a resume starts from the parent's checkpoint again
    resume(info.run_dir)
    assert _lineage(spawned[-1])["parent"]["fork"] is True


def test_what_a_fork_refuses_creates_nothing(parent, spawned, isolated):
    root = isolated / "runs"
    with pytest.raises(TuitrainError, match="cannot fork with changed task.options.hidden"):
        fork("base", overrides=["task.options.hidden=64"])
    with pytest.raises(TuitrainError, match="no such checkpoint"):
        fork("base", checkpoint="checkpoint-5")
    fork("base", name="taken")
    with pytest.raises(NameTakenError, match="try 'taken-2'"):
        fork("base", name="taken")
    assert sorted(p.name for p in root.iterdir()) == ["base", "taken"]
    # a running parent (another process owns it, as its trainer does) is forked once it has stopped
    update_run_json(parent, state="running")
    owner = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], "
                              "os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
                              str(parent / ".owner.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "held"
        with pytest.raises(WrongStateError, match="run base is running; fork it once it has stopped"):
            fork("base")
    finally:
        owner.kill()
        owner.wait()
    assert len(spawned) == 1
