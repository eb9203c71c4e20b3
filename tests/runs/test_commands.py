"""torchrun command lines and the ls / tail / kill commands."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest

from tests.runs.conftest import fake_argv, make_run, wait_for
from tuitrain.commands import control
from tuitrain.errors import TuitrainError
from tuitrain.runs import launch as L
from tuitrain.runs.registry import run_info
from tuitrain.runs.torchrun import other_node_commands, torchrun_argv


def test_torchrun_argv_and_other_nodes(tmp_path):
    launch = SimpleNamespace(launcher="torchrun", nproc_per_node=4, nnodes=2, node_rank=0,
                             rdzv_backend="c10d", rdzv_endpoint="10.0.0.1:29500", rdzv_id="",
                             max_restarts=2)
    preset = SimpleNamespace(launch=launch)
    argv = torchrun_argv(preset, tmp_path / "r", resume_from="checkpoint-5")
    assert "--nproc-per-node=4" in argv and "--rdzv-endpoint=10.0.0.1:29500" in argv
    assert "--tee=3" in argv and "--max-restarts=2" in argv and "--rdzv-id=r" in argv
    assert argv[-2:] == ["--resume-from", "checkpoint-5"]
    others = other_node_commands(preset, tmp_path / "r")
    assert len(others) == 1 and "--node-rank=1" in others[0]
    launch.rdzv_endpoint = ""
    with pytest.raises(TuitrainError, match="rdzv_endpoint"):
        torchrun_argv(preset, tmp_path / "r")


def parse(argv):
    parser = argparse.ArgumentParser()
    control.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_ls_tail_kill(isolated, capsys):
    run_dir = make_run(isolated, "evil\x1b[31m")
    L.start_supervised(run_dir, fake_argv(run_dir, 400, 0.05))
    wait_for(lambda: (run_info(run_dir).step or 0) >= 2)
    assert control.cmd_ls(parse(["ls"])) == 0
    out = capsys.readouterr().out
    assert "running" in out and "\x1b" not in out and "\\x1b[31m" in out
    assert control.cmd_tail(parse(["tail", str(run_dir), "-n", "1"])) == 0
    assert "train" in capsys.readouterr().out
    assert control.cmd_kill(parse(["kill", str(run_dir)])) == 0
    assert "failed" in capsys.readouterr().out
    with pytest.raises(TuitrainError, match="unknown run"):
        control.cmd_stop(parse(["stop", "no-such-run"]))
