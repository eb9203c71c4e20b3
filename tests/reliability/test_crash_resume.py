"""kill -9 of the trainer at seeded random moments, including mid-checkpoint-write.

After every kill only complete `checkpoint-N/` are listed and they load; the next start
cleans the dead process's temporary directories and resumes from the newest complete
checkpoint; the folded event stream finally holds every step once, with the losses of an
uninterrupted run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import torch

from tests.reliability.conftest import REPO, engine_cmd, events, losses, new_run, run_engine

torch.set_num_threads(1)

# Big enough that a save (model + Adam moments, fsynced) takes measurable time.
BIG = {"hidden": 2048, "n_features": 64, "max_steps": 8, "save_steps": 1}


def _tmp_leftovers(run_dir):
    return sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".checkpoint-"))


def _kill_at(run_dir, resume_from, rng) -> None:
    """Start the engine, kill -9 it at a seeded moment: mid-save or after a random step."""
    proc = subprocess.Popen(engine_cmd(run_dir, resume_from), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mid_save = rng.random() < 0.6
    target = rng.randint(1, 3) + (int(resume_from.split("-")[1]) if resume_from else 0)
    try:
        while proc.poll() is None:
            if mid_save:
                if any(".tmp-" in n for n in _tmp_leftovers(run_dir)):
                    break
            else:
                steps = [e.get("step", 0) for e in _safe_events(run_dir) if e.get("kind") == "train"]
                if steps and max(steps) >= target:
                    break
            os.sched_yield()
        if not mid_save:
            time.sleep(rng.uniform(0, 0.05))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()


def _safe_events(run_dir):
    try:
        return events(run_dir)
    except FileNotFoundError:
        return []


def _check_listed_are_loadable(run_dir):
    from tuitrain.config import load_preset
    from tuitrain.engine.checkpoint import list_checkpoints, load_checkpoint
    from tuitrain.engine.tasks import build_task

    preset = load_preset(run_dir / "preset.toml")
    listed = list_checkpoints(run_dir)
    for path in listed:
        assert path.name.startswith("checkpoint-") and not path.name.startswith(".")
        model = build_task(preset.task, preset.args).model
        state = load_checkpoint(path, model, restore_rng=False)
        assert state["global_step"] == int(path.name.split("-")[1])
    return listed


def _newest(run_dir):
    """What `tuitrain resume` picks; it must be the newest complete, loadable checkpoint."""
    from tuitrain.runs.launch import latest_checkpoint

    listed = _check_listed_are_loadable(run_dir)
    newest = latest_checkpoint(run_dir)
    assert newest == (listed[-1].name if listed else None)
    return newest


def test_kill9_at_random_moments_then_resume_matches_an_uninterrupted_run(isolated):
    reference = new_run(isolated, "ref", **BIG)
    done = run_engine(reference)
    assert done.returncode == 0, done.stderr
    expected = losses(reference)
    assert sorted(expected) == list(range(1, BIG["max_steps"] + 1))

    run_dir = new_run(isolated, "crashy", **BIG)
    rng = random.Random(20261128)
    resumed_from_seen = []
    saw_leftover = False
    for _ in range(4):
        resume = _newest(run_dir)
        _kill_at(run_dir, resume, rng)
        resumed_from_seen.append(resume)
        saw_leftover |= any(".tmp-" in n for n in _tmp_leftovers(run_dir))
        _check_listed_are_loadable(run_dir)
    assert saw_leftover, "no kill landed inside a checkpoint write; the schedule proves nothing"

    final_resume = _newest(run_dir)
    final = run_engine(run_dir, final_resume)
    assert final.returncode == 0, final.stderr
    assert _tmp_leftovers(run_dir) == [], "stale temporary checkpoint dirs were not cleaned"

    starts = [e for e in events(run_dir) if e.get("kind") == "start"]
    assert starts[-1].get("resumed_from") == final_resume
    for start in starts:
        if start.get("resumed_from"):
            assert start["resumed_from"] in resumed_from_seen + [final_resume]
            assert start["step"] == int(start["resumed_from"].split("-")[1])
    got = losses(run_dir)
    assert sorted(got) == sorted(expected)
    for step, loss in expected.items():
        assert got[step] == loss, f"step {step}: {got[step]} != {loss} (uninterrupted)"
