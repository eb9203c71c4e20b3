"""The end-of-training summary (HF's train_runtime, …_per_second, total_flos, train_loss): an
event, sent to the trackers, and shown by `tuitrain ls` and the run history the dashboard reads."""

from __future__ import annotations

import time

from trainer_fixtures import events, regression_preset, run
from tuitrain.runs.history import RunHistory
from tuitrain.runs.rundir import prepare_output_dir, update_run_json
from tuitrain.textfmt import format_summary


def test_summary_event_and_its_display(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("TUITRAIN_RUNS", str(tmp_path / "runs"))
    run_dir = tmp_path / "runs" / "sum"
    prepare_output_dir(run_dir, overwrite=False)
    update_run_json(run_dir, name="sum", state="running", launcher="local", created=time.time(), started=time.time())
    assert run(regression_preset(max_steps=6, logging_steps=4), run_dir) == 0
    update_run_json(run_dir, state="finished", exit_code=0, ended=time.time())

    (summary,) = events(run_dir, "summary")
    assert summary["step"] == 6 and summary["epoch"] == 6 / 5
    assert {"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos"} <= set(summary)
    # train_loss is the mean over all 6 steps: the logged window (steps 1-4) and the remainder
    (logged,) = events(run_dir, "train")
    assert logged["step"] == 4 and summary["train_loss"] != logged["loss"]
    assert events(run_dir)[-1]["kind"] == "status"

    history = RunHistory(run_dir)
    history.update()
    assert history.summary["train_loss"] == summary["train_loss"]

    from tuitrain.commands import control
    from tuitrain.cli import build_parser

    assert control.cmd_ls(build_parser().parse_args(["ls"])) == 0
    out = capsys.readouterr().out
    assert f"sum trained: {format_summary(summary)}" in out
    assert format_summary(summary).startswith(f"train_loss {summary['train_loss']:.4g} · ")


def test_format_summary_names_each_number():
    line = format_summary({"train_loss": 1.23456, "train_runtime": 62.5, "train_samples_per_second": 456.78,
                           "train_steps_per_second": 12.3, "total_flos": 1.2e12})
    assert line == "train_loss 1.235 · 1m02s · 456.8 samples/s · 12.3 steps/s · 1.2e+12 flos"
