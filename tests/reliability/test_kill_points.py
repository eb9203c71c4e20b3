"""kill -9 at deterministic points of checkpoint saving, each run resumed through `tuitrain resume`.

One run (save every step, keep 2) is killed eight times, once at each point where a save or a
rotation can be cut (`killpoints/sitecustomize.py`): between the files of a checkpoint, at the
rename that puts it in place (before and after), and during rotation (the old checkpoint
renamed aside, and half deleted). The first segment is `tuitrain run`, every later one
`tuitrain resume RUN` in the foreground, as a person would type them. After each kill only
complete checkpoints are listed and they load, the resume picks the newest complete one (the
one the kill point says), and the next start clears what the kill left. At the end the raw
event stream, read segment by segment with no help from the readers, holds every step exactly
once after each resume's fold, as does the dashboard's history, with the losses of an
uninterrupted run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.reliability.conftest import REPO, events, losses, new_run, run_engine, write_preset
from tests.reliability.test_crash_resume import _check_listed_are_loadable

KILLPOINTS = Path(__file__).with_name("killpoints")
STEPS = 10
# (where the trainer dies, the newest complete checkpoint it leaves, a leftover it leaves)
CHAIN = [
    ("write:optimizer.safetensors@2", 1, r"\.checkpoint-2\.tmp-\d+"),  # the weights written, not the optimizer
    ("write:optimizer.json@3", 2, r"\.checkpoint-3\.tmp-\d+"),
    ("write:trainer_state.json@4", 3, r"\.checkpoint-4\.tmp-\d+"),
    ("write:tuitrain_state.json@5", 4, r"\.checkpoint-5\.tmp-\d+"),  # all but the manifest
    ("rename-before@6", 5, r"\.checkpoint-6\.tmp-\d+"),  # complete, not yet in place
    ("rename-after@7", 7, None),  # in place; its event and the rotation never came
    ("trash@5", 8, r"\.checkpoint-5\.trash-\d+"),  # rotation: renamed aside, nothing deleted
    ("trash-mid@6", 9, r"\.checkpoint-6\.trash-\d+"),  # rotation: half deleted
]


def _tuitrain(*args: str, kill_at: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(KILLPOINTS), str(REPO))))
    env.pop("TUITRAIN_TEST_KILL_AT", None)
    if kill_at:
        env["TUITRAIN_TEST_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "tuitrain", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)


def _leftovers(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".checkpoint-"))


def fold_raw(raw: list[dict]) -> dict[int, float]:
    """Every step exactly once, from the raw stream alone: a `start` at step s drops what the
    abandoned segment logged after s; a step logged twice within what is kept fails."""
    kept: dict[int, float] = {}
    for event in raw:
        if event["kind"] == "start":
            resumed = int(event.get("step") or 0)
            kept = {s: v for s, v in kept.items() if s <= resumed}
            expected_next = resumed + 1
        elif event["kind"] == "train":
            step = event["step"]
            assert step not in kept, f"step {step} logged twice in the stream as folded at its resume"
            assert step == expected_next, f"step {step} follows {expected_next - 1} in its segment"
            expected_next += 1
            kept[step] = event["loss"]
    return kept


def test_kill9_at_each_point_of_a_save_then_tuitrain_resume(isolated):
    reference = new_run(isolated, "reference", max_steps=STEPS, save_steps=1)
    done = run_engine(reference)
    assert done.returncode == 0, done.stderr
    expected = losses(reference)

    preset = write_preset(isolated / "killed.toml", max_steps=STEPS, save_steps=1)
    preset.write_text(preset.read_text().replace('save_strategy = "steps"', 'save_strategy = "steps"\nsave_total_limit = 2'))
    run_dir = None
    for i, (kill_at, newest, leftover) in enumerate(CHAIN):
        if run_dir is None:
            out = _tuitrain("run", str(preset), kill_at=kill_at)
            (run_dir,) = [p for p in (isolated / "runs").iterdir() if p.is_dir() and p != reference]
        else:
            out = _tuitrain("resume", str(run_dir), kill_at=kill_at)
            previous = CHAIN[i - 1][1]
            assert f"resumed {run_dir.name} from {run_dir / f'checkpoint-{previous}'}" in out.stdout, out.stdout
        assert out.returncode == 1 and "failed" in out.stdout.splitlines()[-1], (kill_at, out.stdout, out.stderr)
        listed = _check_listed_are_loadable(run_dir)
        assert listed[-1].name == f"checkpoint-{newest}", (kill_at, [p.name for p in listed])
        if leftover:
            assert any(re.fullmatch(leftover, name) for name in _leftovers(run_dir)), (kill_at, _leftovers(run_dir))

    out = _tuitrain("resume", str(run_dir), kill_at=None)
    assert out.returncode == 0 and "finished" in out.stdout.splitlines()[-1], out.stdout + out.stderr
    assert f"from {run_dir / f'checkpoint-{CHAIN[-1][1]}'}" in out.stdout
    assert _leftovers(run_dir) == [], "what the kills left was not cleared"
    assert [p.name for p in _check_listed_are_loadable(run_dir)] == [f"checkpoint-{STEPS - 1}", f"checkpoint-{STEPS}"]

    raw = events(run_dir)
    starts = [e for e in raw if e["kind"] == "start"]
    assert [s["step"] for s in starts] == [0] + [n for _, n, _ in CHAIN]
    folded_raw = fold_raw(raw)
    assert sorted(folded_raw) == list(range(1, STEPS + 1))
    assert folded_raw == expected, "the raw stream's losses differ from the uninterrupted run's"
    assert losses(run_dir) == expected  # the dashboard's own fold (RunHistory) agrees
