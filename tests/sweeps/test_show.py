"""`tuitrain sweep show`: one row per member in table, JSON and CSV, sorted by any column,
the best member marked and a diverged one said so — from members' run directories written
as the engine writes them."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest

from tuitrain import cli
from tuitrain.runs.rundir import prepare_output_dir, update_run_json
from tuitrain.sweeps.results import best_index, rows, sort_rows
from tuitrain.sweeps.store import write_sweep

MEMBERS = {
    # name: (values, final state, eval losses by step, train losses, summary)
    "lr_scheduler_type=linear": ({"optimizer.lr_scheduler_type": "linear"}, "finished",
                                 {5: 2.0, 10: 1.5}, [2.5, 1.9], {"train_loss": 2.2, "train_samples_per_second": 80.0}),
    "lr_scheduler_type=cosine": ({"optimizer.lr_scheduler_type": "cosine"}, "finished",
                                 {5: 1.8, 10: 1.6}, [2.4, 1.7], {"train_loss": 2.0, "train_samples_per_second": 90.0}),
    "lr_scheduler_type=constant": ({"optimizer.lr_scheduler_type": "constant"}, "diverged",
                                   {5: 3.0}, [3.1, None], None),
}


def write_member(sweep_dir, name, values, state, evals, losses, summary):
    run_dir = sweep_dir / name
    prepare_output_dir(run_dir, overwrite=False)
    t0 = time.time() - 60
    update_run_json(run_dir, name=f"shoot/{name}", sweep="shoot", sweep_values=values, state=state,
                    started=t0, ended=t0 + 42.0, peak_rss_bytes=300 * 2**20 + len(name) * 2**20)
    events = [{"v": 1, "kind": "start", "t": t0, "max_steps": 10, "step": 0,
               "device": {"type": "cpu", "name": "x86"}}]
    for i, loss in enumerate(losses):
        step = 5 * (i + 1)
        events.append({"kind": "train", "t": t0 + step, "step": step, "loss": loss, "samples_per_second": 50.0,
                       "tokens_per_second": 6400.0})
        if step in evals:
            events.append({"kind": "eval", "t": t0 + step, "step": step, "eval_loss": evals[step],
                           "eval_accuracy": 1 / evals[step]})
    if summary:
        events.append({"kind": "summary", "t": t0 + 41, "step": 10, **summary})
    events.append({"kind": "status", "t": t0 + 42, "state": state, "error": None})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


@pytest.fixture
def shoot(tmp_path):
    sweep_dir = tmp_path / "runs" / "shoot"
    sweep_dir.mkdir(parents=True)
    write_sweep(sweep_dir, {"format": 1, "name": "shoot", "preset": "p.toml", "created": time.time(),
                            "axes": {"grid": {"optimizer.lr_scheduler_type": ["linear", "cosine", "constant"]}},
                            "parallel": 1, "members": [{"name": n, "dir": n, "values": v[0]} for n, v in MEMBERS.items()],
                            "refused": [{"name": "lr_scheduler_type=x", "values": {}, "reason": "precision.fp16: needs a GPU"}],
                            "queue": {"state": "finished", "pid": None}})
    for name, spec in MEMBERS.items():
        write_member(sweep_dir, name, *spec)
    return sweep_dir


def test_rows_hold_the_members_results(shoot):
    found = rows(shoot)
    linear, cosine, constant = found
    assert linear["values"] == {"optimizer.lr_scheduler_type": "linear"} and linear["state"] == "finished"
    assert (linear["step"], linear["max_steps"]) == (10, 10)
    assert (linear["best_eval_loss"], linear["final_eval_loss"]) == (1.5, 1.5)
    assert (cosine["best_eval_loss"], cosine["final_eval_loss"]) == (1.6, 1.6)
    assert cosine["best_eval_accuracy"] == pytest.approx(1 / 1.6)
    assert cosine["train_loss"] == 2.0 and cosine["train_samples_per_second"] == 90.0
    assert cosine["train_tokens_per_second"] == 90.0 * 128  # its samples/s times the 128 tokens a sample holds
    assert cosine["peak_memory_bytes"] == 324 * 2**20 and cosine["memory_kind"] == "host"  # run.json's
    assert cosine["wall_s"] == pytest.approx(42.0)
    assert constant["state"] == "diverged" and constant["best_eval_loss"] == 3.0
    assert best_index(found) == 0  # the lowest best eval loss; a diverged member is never best
    assert [r["member"] for r in sort_rows(found, "final_eval_loss")] == [
        "lr_scheduler_type=linear", "lr_scheduler_type=cosine", "lr_scheduler_type=constant"]
    assert [r["member"] for r in sort_rows(found, "lr_scheduler_type")] == [
        "lr_scheduler_type=constant", "lr_scheduler_type=cosine", "lr_scheduler_type=linear"]


def show(capsys, *args) -> str:
    assert cli.main(["sweep", "show", "shoot", *args]) == 0
    return capsys.readouterr().out


def test_table(shoot, capsys):
    out = show(capsys, "--sort", "train_samples_per_second", "--desc")
    lines = out.splitlines()
    assert lines[0].startswith("sweep shoot: 3/3 done, 1 diverged, 1 refused (queue finished)")
    assert lines[1] == "refused lr_scheduler_type=x: precision.fp16: needs a GPU"
    header = lines[2].split()
    assert header[:4] == ["lr_scheduler_type", "STATE", "STEP", "BEST"]
    body = lines[3:6]
    assert body[0].split()[:2] == ["cosine", "finished"] and body[1].split()[:3] == ["*", "linear", "finished"]
    assert "diverged" in body[2] and "324 MiB host" in body[0]
    assert "* best: lr_scheduler_type=linear" in out
    assert "lr_scheduler_type=constant diverged: its loss became NaN/inf" in out


def test_json(shoot, capsys):
    data = json.loads(show(capsys, "--format", "json"))
    assert [m["member"] for m in data["members"]] == list(MEMBERS)
    assert data["best"] == "lr_scheduler_type=linear"
    cosine = data["members"][1]
    assert cosine["values"] == {"optimizer.lr_scheduler_type": "cosine"}
    for key in ("state", "step", "max_steps", "best_eval_loss", "final_eval_loss", "train_loss",
                "train_samples_per_second", "train_tokens_per_second", "peak_memory_bytes", "memory_kind", "wall_s"):
        assert key in cosine
    assert data["members"][2]["train_loss"] is None  # its last loss was NaN: JSON says null


def test_csv(shoot, capsys):
    out = show(capsys, "--format", "csv", "--sort", "best_eval_loss")
    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["optimizer.lr_scheduler_type"] for r in table] == ["linear", "cosine", "constant"]
    assert table[0]["best_eval_loss"] == "1.5" and table[2]["state"] == "diverged"
    assert "best_eval_accuracy" in table[0] and table[0]["memory_kind"] == "host"


def test_an_unknown_sort_column_or_sweep_is_one_line(shoot, capsys):
    assert cli.main(["sweep", "show", "shoot", "--sort", "evl_loss"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tuitrain: --sort evl_loss: no such column") and len(err.splitlines()) == 1
    assert cli.main(["sweep", "show", "shoo"]) == 0  # a unique prefix
    capsys.readouterr()
    assert cli.main(["sweep", "show", "shot"]) == 1
    assert "unknown sweep 'shot' (did you mean 'shoot'?)" in capsys.readouterr().err
