"""`tuitrain ls` keeps to a chosen runs root (`--all` for the rest); `tail` prints samples readably."""

from __future__ import annotations

import argparse
import json
import time

from tests.runs.conftest import make_run
from tuitrain.commands import control
from tuitrain.runs.registry import list_runs, record_launched, root_is_chosen, run_info, within_root
from tuitrain.runs.rundir import prepare_output_dir, update_run_json


def parse(argv):
    parser = argparse.ArgumentParser()
    control.register(parser.add_subparsers())
    return parser.parse_args(argv)


def _finished(run_dir, started=1000.0, ended=1060.0, **extra) -> None:
    update_run_json(run_dir, state="finished", exit_code=0, started=started, ended=ended, **extra)


def test_ls_keeps_to_the_chosen_root_and_all_lists_the_rest(isolated, capsys, monkeypatch):
    here = make_run(isolated, "here")
    _finished(here)
    far = isolated / "elsewhere" / "far"
    prepare_output_dir(far, overwrite=False)
    update_run_json(far, name="far", launcher="local")
    _finished(far)
    record_launched(far)
    assert root_is_chosen() and within_root(here) and not within_root(far)
    assert control.cmd_ls(parse(["ls"])) == 0
    out = capsys.readouterr().out
    assert "here" in out and "far" not in out.split("\n\n")[0]
    assert "1 more outside" in out and "tuitrain ls --all" in out
    assert control.cmd_ls(parse(["ls", "--all"])) == 0
    out = capsys.readouterr().out
    assert "here" in out and "far" in out and "more outside" not in out
    assert {r.name for r in list_runs()} == {"here", "far"}  # the API still finds every run
    assert {r.name for r in list_runs(everywhere=False)} == {"here"}
    monkeypatch.delenv("TUITRAIN_RUNS")  # no root chosen: every run tuitrain knows
    assert not root_is_chosen()


def test_elapsed_goes_on_over_a_resume_and_ls_shows_it(isolated, capsys):
    run_dir = make_run(isolated, "twice")
    _finished(run_dir, started=1000.0, ended=1100.0, trained_before=50.0)
    assert run_info(run_dir).elapsed_s == 150.0
    assert control.cmd_ls(parse(["ls"])) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert "ELAPSED" in header and "2m30s" in row


def test_eta_after_a_resume_uses_the_new_segment_only(isolated):
    run_dir = make_run(isolated, "eta")
    now = time.time()
    update_run_json(run_dir, state="running", started=now - 10)
    events = [{"v": 1, "kind": "start", "t": now - 10_000, "max_steps": 1000, "step": 0}]
    events += [{"kind": "train", "t": now - 10_000 + s, "step": s, "loss": 1.0} for s in range(1, 101)]
    # stopped at 100 for hours, resumed: ten steps a second since
    events += [{"kind": "start", "t": now - 10, "max_steps": 1000, "step": 100, "resumed_from": "checkpoint-100"}]
    events += [{"kind": "train", "t": now - 10 + (s - 100) / 10, "step": s, "loss": 1.0} for s in range(101, 201)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    from tuitrain.runs import registry

    info = registry.RunInfo(run_dir=run_dir, name="eta", state="running", max_steps=1000)
    registry._progress(run_dir, info, time.time())
    assert info.eta_s is not None and 70 <= info.eta_s <= 90  # 800 steps at ten a second


def test_tail_prints_samples_with_their_line_breaks_wrapped(isolated, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    run_dir = make_run(isolated, "talk")
    _finished(run_dir)
    sample = "First line\n  indented \x1b[31mred\x1b[0m\n" + "word " * 20
    (run_dir / "metrics.jsonl").write_text(json.dumps({"kind": "sample", "t": 0, "step": 7, "text": sample}) + "\n")
    assert control.cmd_tail(parse(["tail", str(run_dir)])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("sample     step 7 |")
    assert lines[1] == "    First line"
    assert lines[2] == "      indented \\x1b[31mred\\x1b[0m"  # its indent kept, the escape made visible
    assert all(len(line) <= 40 for line in lines) and len(lines) >= 5
    assert all(line.startswith("    word") for line in lines[3:])
