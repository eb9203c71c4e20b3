"""The sweep queue: at most `parallel` members at once (proven from their event timestamps),
a failed member does not stop the others, per-gpu hands each running member its own GPU, the
queue outlives the process that launched it, and `stop` / `resume` act on queue and members.

The members run the runs tests' fake trainer (`fake_queue.py`); `test_sweep_e2e.py` runs
the real engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

from tests.sweeps.conftest import FAKE_QUEUE, wait_for
from tuitrain import cli
from tuitrain.runs.fork import fork_name
from tuitrain.runs.names import check_name
from tuitrain.runs.registry import find_run, list_runs, run_info
from tuitrain.sweeps.queue import launch_sweep, resume_sweep, stop_sweep
from tuitrain.sweeps.spec import parse_cli
from tuitrain.sweeps.store import progress, progress_text, read_sweep


def spans(sweep_dir):
    """(first event, last event) wall times of each member's trainer, from its metrics.jsonl."""
    out = {}
    for m in read_sweep(sweep_dir).members:
        times = [json.loads(line)["t"] for line in (m.dir / "metrics.jsonl").read_text().splitlines()]
        out[m.name] = (min(times), max(times))
    return out


def most_at_once(intervals) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, delta in edges:
        now += delta
        peak = max(peak, now)
    return peak


def finished(sweep_dir):
    return read_sweep(sweep_dir).queue_state == "finished"


def test_at_most_parallel_members_run_at_once_and_every_one_runs(tiny, fake_queue):
    spec = parse_cli(grid=["task.options.hidden=2,3,4,5,6"], sets=["core.max_steps=8"], parallel="2")
    sweep_dir = launch_sweep(tiny, spec, name="five")
    wait_for(lambda: finished(sweep_dir))
    info = read_sweep(sweep_dir)
    assert progress(info)["finished"] == 5 and progress_text(info) == "5/5 done"
    assert most_at_once(spans(sweep_dir).values()) == 2  # two at once, never three
    events = [json.loads(line) for line in (sweep_dir / "queue.jsonl").read_text().splitlines()]
    starts = [e["member"] for e in events if e["event"] == "start"]
    assert starts == [m.name for m in info.members]  # in the sweep's order
    running = peak = 0
    for e in events:
        running += {"start": 1, "end": -1}.get(e["event"], 0)
        peak = max(peak, running)
    assert peak == 2


def test_members_are_runs_found_by_sweep_name_and_prefix(tiny, fake_queue):
    spec = parse_cli(grid=["optimizer.lr_scheduler_type=linear,cosine"], sets=["core.max_steps=2"])
    sweep_dir = launch_sweep(tiny, spec, name="shoot")
    wait_for(lambda: finished(sweep_dir))
    member = find_run("shoot/lr_scheduler_type=cosine")
    assert member.run_dir == sweep_dir / "lr_scheduler_type=cosine"
    assert member.sweep == "shoot" and member.sweep_values == {"optimizer.lr_scheduler_type": "cosine"}
    assert find_run("shoot/lr_scheduler_type=l").name == "shoot/lr_scheduler_type=linear"
    assert {r.name for r in list_runs(everywhere=False)} == {"shoot/lr_scheduler_type=linear",
                                                             "shoot/lr_scheduler_type=cosine"}
    assert check_name(fork_name(member.name, 2)) == "shoot-lr_scheduler_type=cosine-from-2"  # a fork's default name


def test_a_failed_member_does_not_stop_the_others(tiny, fake_queue, capsys):
    spec = parse_cli(grid=["optimizer.learning_rate=0.01,5,0.02"], sets=["core.max_steps=4"])
    sweep_dir = launch_sweep(tiny, spec, name="crashy")
    wait_for(lambda: finished(sweep_dir))
    states = {m.name: run_info(m.dir).state for m in read_sweep(sweep_dir).members}
    assert states == {"learning_rate=0.01": "finished", "learning_rate=5": "failed", "learning_rate=0.02": "finished"}
    assert progress_text(read_sweep(sweep_dir)) == "3/3 done, 1 failed"
    assert cli.main(["ls"]) == 0
    assert "sweep crashy: 3/3 done, 1 failed (queue finished; `tuitrain sweep show crashy`)" in capsys.readouterr().out


def test_per_gpu_gives_each_running_member_its_own_gpu(tiny, fake_queue, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    spec = parse_cli(grid=["task.options.hidden=2,3,4,5"], sets=["core.max_steps=6"], parallel="per-gpu")
    sweep_dir = launch_sweep(tiny, spec, name="gpus")
    wait_for(lambda: finished(sweep_dir))
    events = [json.loads(line) for line in (sweep_dir / "queue.jsonl").read_text().splitlines()]
    held: dict[str, str] = {}
    for e in events:
        if e["event"] == "start":
            assert e["gpu"] in ("3", "5") and e["gpu"] not in held.values()
            held[e["member"]] = e["gpu"]
        elif e["event"] == "end":
            held.pop(e["member"])
    assert most_at_once(spans(sweep_dir).values()) == 2


LAUNCHER = textwrap.dedent("""
    import sys
    from tuitrain import cli
    from tuitrain.sweeps import queue
    queue.RUNNER = (sys.executable, {fake!r})
    sys.exit(cli.main(["sweep", {preset!r}, "--grid", "task.options.hidden=2,3,4", "--set", "core.max_steps=12",
                       "--name", "orphan"]))
""")


def test_the_queue_outlives_the_process_that_launched_it(tiny, tmp_path):
    """The foreground `tuitrain sweep` and its whole session are killed while the first member
    trains (a dropped SSH session); the queue goes on and every member finishes."""
    script = LAUNCHER.format(fake=FAKE_QUEUE, preset=str(tiny))
    launcher = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=os.environ.copy())
    sweep_dir = tmp_path / "runs" / "orphan"
    wait_for(lambda: (sweep_dir / "queue.jsonl").exists() and '"start"' in (sweep_dir / "queue.jsonl").read_text())
    os.killpg(launcher.pid, signal.SIGKILL)
    launcher.wait()
    wait_for(lambda: finished(sweep_dir))
    assert progress(read_sweep(sweep_dir))["finished"] == 3


def test_stop_then_resume_a_sweep(tiny, fake_queue):
    """Stop: the queue ends, the running member saves a checkpoint and stops, the rest wait.
    Resume: the stopped member continues from its checkpoint, the others start."""
    spec = parse_cli(grid=["task.options.hidden=2,3,4"], sets=["core.max_steps=40", "optimizer.warmup_steps=3"])
    sweep_dir = launch_sweep(tiny, spec, name="pausable")
    first = read_sweep(sweep_dir).members[0]
    wait_for(lambda: (run_info(first.dir).step or 0) >= 3)
    stop_sweep("pausable")
    wait_for(lambda: run_info(first.dir).state == "stopped")
    info = read_sweep(sweep_dir)
    stopped_at = run_info(first.dir).step
    assert info.queue_state == "stopped" and 3 <= stopped_at < 40
    assert (first.dir / f"checkpoint-{stopped_at}").is_dir()
    assert progress_text(info) == "0/3 done, 2 queued, 1 stopped · queue stopped"
    resume_sweep("pausable")
    wait_for(lambda: finished(sweep_dir))
    assert progress_text(read_sweep(sweep_dir)) == "3/3 done"
    starts = [json.loads(line) for line in (first.dir / "metrics.jsonl").read_text().splitlines()
              if '"start"' in line]
    assert [s["resumed_from"] for s in starts] == [None, f"checkpoint-{stopped_at}"]
