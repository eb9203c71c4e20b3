"""One trainer per run directory: launches, resumes, the app and a hand-started engine that
race for one run. The racers are separate processes released at one instant."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from tests.reliability.conftest import REPO, engine_cmd, events, losses, new_run, run_engine, write_preset
from tests.runs.conftest import wait_for
from tuitrain.runs import launch as L
from tuitrain.runs.registry import run_info
from tuitrain.runs.rundir import update_run_json

# A racer: imports everything first, sleeps until the instant argv[1], then runs `tuitrain ARGS`
# (argv[2] == "cli") or resumes the way the app's worker does (`launch.resume`, argv[2] == "app").
_RACER = """
import sys, time
import tuitrain.cli, tuitrain.commands.train, tuitrain.config, tuitrain.runs.launch
from tuitrain.errors import TuitrainError
at, how, args = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
time.sleep(max(0.0, at - time.time()))
if how == "cli":
    sys.exit(tuitrain.cli.main(args))
try:
    tuitrain.runs.launch.resume(args[0], overrides=args[1:])
except TuitrainError as exc:
    print(exc.one_line(), file=sys.stderr)
    sys.exit(1)
"""


def _race(*racers: list[str], delay: float = 4.0) -> list[subprocess.CompletedProcess]:
    """Run each racer (["cli", ARGS…] or ["app", RUN_DIR, OVERRIDES…]) in its own process,
    all let go at the same instant, after their imports."""
    at = str(time.time() + delay)
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, at, *racer], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for racer in racers]
    results = []
    for proc, racer in zip(procs, racers):
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(racer, proc.returncode, out, err))
    return results


def _one_winner(results: list[subprocess.CompletedProcess]) -> list[str]:
    winners = [r for r in results if r.returncode == 0]
    assert len(winners) == 1, [(r.returncode, r.stderr) for r in results]
    refusals = []
    for loser in (r for r in results if r.returncode != 0):
        assert loser.returncode == 1 and "Traceback" not in loser.stderr, loser.stderr
        lines = [ln for ln in loser.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, loser.stderr
        refusals.append(lines[0])
    return refusals


def _end(run_dir: Path) -> None:
    """Kill what a failed test left running in `run_dir`."""
    try:
        if run_info(run_dir).state in ("queued", "running", "stopping"):
            L.kill(run_dir)
    except Exception:  # noqa: BLE001 - cleanup only
        pass


def _starts(run_dir: Path) -> list[dict]:
    return [e for e in events(run_dir) if e.get("kind") == "start"]


def _finished_run(tmp: Path, name: str) -> Path:
    run_dir = new_run(tmp, name, max_steps=2, save_steps=2, hidden=512, n_features=64)
    assert run_engine(run_dir).returncode == 0
    update_run_json(run_dir, state="finished", exit_code=0, started=time.time() - 5, ended=time.time())
    return run_dir


def test_racing_resumes_start_one_trainer(isolated, request):
    run_dir = _finished_run(isolated, "race")
    longer = ["--set", "core.max_steps=4000"]
    request.addfinalizer(lambda: _end(run_dir))
    results = _race(["cli", "resume", str(run_dir), "--detach", *longer],
                    ["cli", "resume", str(run_dir), "--detach", *longer],
                    ["app", str(run_dir), "core.max_steps=4000"])
    for line in _one_winner(results):  # the lock's answer, or the state a later look already sees
        assert (f"{run_dir}: in use by pid " in line and "one trainer per run directory" in line
                or line in ("tuitrain: run race is queued; stop it before resuming",
                            "tuitrain: run race is running; stop it before resuming")), line
    wait_for(lambda: len([e for e in events(run_dir) if e.get("kind") == "train"]) >= 8, timeout=60)
    assert len(_starts(run_dir)) == 2  # the first run's and the one resume's
    assert L.stop(run_dir).state == "stopping"
    wait_for(lambda: run_info(run_dir).state == "stopped", timeout=60)
    assert len(_starts(run_dir)) == 2
    losses(run_dir)  # asserts every step once in the folded history


def test_racing_runs_into_one_output_dir_start_one_trainer(isolated, request):
    preset = write_preset(isolated / "p.toml", max_steps=4000, save_steps=2000)
    target = isolated / "shared-out"
    request.addfinalizer(lambda: _end(target))
    argv = ["cli", "run", str(preset), "--output-dir", str(target), "--detach"]
    for line in _one_winner(_race(argv, argv, argv)):
        assert f"{target}" in line and ("in use by pid" in line or "not empty" in line), line
    wait_for(lambda: len(_starts(target)) == 1 and run_info(target).state == "running", timeout=60)
    time.sleep(1.0)
    assert len(_starts(target)) == 1
    data = json.loads((target / "run.json").read_text())
    L.stop(target)
    wait_for(lambda: run_info(target).state == "stopped", timeout=60)
    assert json.loads((target / "run.json").read_text())["supervisor"] == data["supervisor"]


def test_an_engine_started_by_hand_on_an_owned_run_writes_nothing(isolated, request):
    run_dir = _finished_run(isolated, "owned")
    request.addfinalizer(lambda: _end(run_dir))
    L.resume(run_dir, overrides=["core.max_steps=4000"])
    wait_for(lambda: run_info(run_dir).state == "running" and _starts(run_dir)[-1].get("resumed_from"), timeout=60)
    size = (run_dir / "metrics.jsonl").stat().st_size
    L.stop(run_dir)
    out = run_engine(run_dir, "checkpoint-2")
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    if run_info(run_dir).state == "stopping":  # still ending: the hand-started engine must have been refused
        assert out.returncode == 1 and len(lines) == 1 and "in use by pid" in lines[0], out.stderr
    wait_for(lambda: run_info(run_dir).state == "stopped", timeout=60)
    hand = subprocess.Popen(engine_cmd(run_dir, "checkpoint-2"), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(_starts(run_dir)) == 3, timeout=60)
        again = run_engine(run_dir, "checkpoint-2")  # while the hand-started one trains
        assert again.returncode == 1 and "in use by pid" in again.stderr and "Traceback" not in again.stderr
        assert len(_starts(run_dir)) == 3
    finally:
        hand.terminate()
        hand.wait(timeout=60)
    assert size < (run_dir / "metrics.jsonl").stat().st_size


def test_the_app_says_why_it_cannot_resume_a_run_another_process_is_starting(isolated):
    """(A list older than the other start gets the lock's answer instead: the racer in
    `test_racing_resumes_start_one_trainer` resumes the way the app's worker does.)"""
    from tuitrain.runlock import RunLock
    from tuitrain.ui.app import TuitrainApp
    from tuitrain.ui.screens.runs import RunsScreen

    run_dir = _finished_run(isolated, "app")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom tuitrain.runlock import RunLock\n"
                               "lock = RunLock.acquire(sys.argv[1], 'launcher')\nprint('held', flush=True)\n"
                               "time.sleep(60)", str(run_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    messages: list[str] = []

    async def body() -> None:
        app = TuitrainApp(runs_root=isolated / "runs")
        async with app.run_test(size=(160, 48)) as pilot:
            for _ in range(100):
                await pilot.pause(0.05)
                if isinstance(app.screen, RunsScreen) and app.screen.loaded:
                    break
            # another process is starting it: the list says so (`queued`), and the app refuses
            assert [(r.name, r.state) for r in app.screen.runs] == [("app", "queued")]
            await pilot.press("r")
            for _ in range(100):
                await pilot.pause(0.05)
                messages.extend(n.message for n in app._notifications if n.message not in messages)
                if messages:
                    break

    try:
        asyncio.run(body())
    finally:
        holder.kill()
        holder.wait()
    assert messages == ["app is queued; stop it before resuming."], messages
    assert len(_starts(run_dir)) == 1
    assert RunLock.acquire(run_dir, "launcher")  # free again once the holder is gone
