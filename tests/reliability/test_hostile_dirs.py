"""Files a run writes are never world-writable; a hostile run directory (a FIFO, /dev/zero, a
preset nested 500 deep or holding 10 MB) never hangs a reader, fills its memory or crashes it."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import REPO, cli, write_preset
from tests.runs.conftest import wait_for
from tuitrain.runs.registry import run_info


def _world_writable(*roots: Path) -> list[str]:
    bad = []
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                if os.lstat(name).st_mode & stat.S_IWOTH and not os.path.islink(name):
                    bad.append(f"{name} {stat.filemode(os.lstat(name).st_mode)}")
    return bad


def test_nothing_a_run_writes_is_world_writable_under_umask_000(isolated):
    preset = write_preset(isolated / "open.toml", max_steps=4, save_steps=2)
    launched = subprocess.run([sys.executable, "-m", "tuitrain", "run", str(preset), "--detach"], cwd=REPO,
                              capture_output=True, text=True, timeout=60, preexec_fn=lambda: os.umask(0))
    assert launched.returncode == 0, launched.stderr
    (run_dir,) = (isolated / "runs").iterdir()
    wait_for(lambda: run_info(run_dir).state == "finished", timeout=90)
    resumed = subprocess.run([sys.executable, "-m", "tuitrain", "resume", str(run_dir), "--set", "core.max_steps=6"],
                             cwd=REPO, capture_output=True, text=True, timeout=90, preexec_fn=lambda: os.umask(0))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    names = {p.name for p in run_dir.rglob("*")}
    assert {"metrics.jsonl", "stdout.log", "run.json", "preset.toml", "preset.prev-1.toml", "model.safetensors",
            ".owner.lock", ".run.lock"} <= names
    assert _world_writable(run_dir, isolated / "state") == []


def _write_run(root: Path, name: str, state: str = "finished") -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"name": name, "state": state, "launcher": "local",
                                                  "started": time.time() - 60, "exit_code": 0}))
    events = [{"v": 1, "kind": "start", "t": time.time() - 60, "max_steps": 10, "step": 0},
              {"kind": "train", "t": time.time() - 50, "step": 10, "loss": 0.5},
              {"kind": "status", "t": time.time() - 40, "state": state, "error": None}]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return run_dir


@pytest.fixture
def hostile_runs(isolated):
    root = isolated / "runs"
    _write_run(root, "good")
    os.mkfifo(_write_run(root, "fifo") / "metrics.jsonl.fifo")
    os.replace(root / "fifo" / "metrics.jsonl.fifo", root / "fifo" / "metrics.jsonl")
    zero = _write_run(root, "zero")
    (zero / "metrics.jsonl").unlink()
    (zero / "metrics.jsonl").symlink_to("/dev/zero")
    zerolog = _write_run(root, "zerolog", state="running")  # no process: failed, and its log is read
    (zerolog / "metrics.jsonl").write_text(json.dumps({"v": 1, "kind": "start", "t": time.time(), "step": 0}) + "\n")
    (zerolog / "stdout.log").symlink_to("/dev/zero")
    fifojson = _write_run(root, "fifojson")
    (fifojson / "run.json").unlink()
    os.mkfifo(fifojson / "run.json")
    return root


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # a reader that reads /dev/zero dies, not the box


def _cli_limited(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuitrain", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=30, preexec_fn=_limited)


def test_fifos_and_dev_zero_never_hang_a_reader_or_fill_its_memory(hostile_runs):
    listed = _cli_limited("ls")
    assert listed.returncode == 0, listed.stderr
    table = listed.stdout.split("\n\n")[0].splitlines()[1:]
    rows = {line.split()[0]: line.split()[1] for line in table}
    assert rows["good"] == "finished" and rows["zerolog"] == "failed"
    assert rows["fifo"] == rows["zero"] == rows["fifojson"] == "unreadable"
    assert "fifo unreadable: " in listed.stdout and "is a FIFO, not a regular file" in listed.stdout
    assert "zero unreadable: " in listed.stdout and "is a character device" in listed.stdout
    for name in ("fifo", "zero", "fifojson"):
        tail = _cli_limited("tail", name)
        lines = [ln for ln in tail.stderr.splitlines() if ln.strip()]
        assert tail.returncode == 1 and len(lines) == 1 and "Traceback" not in tail.stderr, tail.stderr
        assert name in lines[0] and "unreadable" in lines[0]
    assert _cli_limited("tail", "good").returncode == 0


def test_the_app_lists_a_hostile_directory_as_unreadable_and_the_rest_as_usual(hostile_runs):
    from tuitrain.runs.history import RunHistory
    from tuitrain.ui.app import TuitrainApp
    from tuitrain.ui.screens.dashboard import DashboardScreen
    from tuitrain.ui.screens.runs import RunsScreen

    history = RunHistory(hostile_runs / "fifo")
    history.update()
    assert history.state == "unreadable" and "FIFO" in history.error
    seen: dict = {}

    async def body() -> None:
        app = TuitrainApp(runs_root=hostile_runs)
        async with app.run_test(size=(160, 48)) as pilot:
            for _ in range(200):
                await pilot.pause(0.05)
                if isinstance(app.screen, RunsScreen) and app.screen.loaded:
                    break
            seen["runs"] = {r.name: r.state for r in app.screen.runs}
            app.push_screen(DashboardScreen(hostile_runs / "fifo"))
            for _ in range(100):
                await pilot.pause(0.05)
                app.screen.redraw()
                seen["status"] = str(app.screen.query_one("#status-text").render())
                if "unreadable" in seen["status"]:
                    break

    asyncio.run(asyncio.wait_for(body(), timeout=60))
    assert seen["runs"] == {"good": "finished", "fifo": "unreadable", "zero": "unreadable",
                            "zerolog": "failed", "fifojson": "unreadable"}
    assert "state unreadable" in seen["status"] and "FIFO" in seen["status"]


DEEP = "[task]\nname = \"char_gpt\"\n[task.options]\nx = " + "[" * 500 + "1" + "]" * 500 + "\n"


def test_a_preset_nested_500_deep_is_one_line_everywhere(isolated):
    deep = isolated / "deep.toml"
    deep.write_text(DEEP)
    for args in (("preset", "validate", str(deep)), ("run", str(deep)), ("preset", "show", str(deep))):
        out = cli(*args)
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()] + [ln for ln in out.stdout.splitlines() if ln.strip()]
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert lines == [f"{deep}:4: values nested 500 levels deep (at most 32) (flatten the value)"], lines
    from tuitrain.config import PresetDocument, PresetErrors
    from tuitrain.ui.screens.compare import read_preset

    with pytest.raises(PresetErrors):
        PresetDocument.load(deep).get("task", "name")  # the editor's parser (tomlkit) is guarded too
    run_dir = isolated / "runs" / "deep-run"
    run_dir.mkdir(parents=True)
    (run_dir / "preset.toml").write_text(DEEP)
    values, error = read_preset(run_dir)  # the Compare screen's reader
    assert values == {} and "nested 500 levels deep" in error


def test_a_preset_with_a_10mb_string_is_refused_and_events_stay_bounded(isolated):
    from tuitrain.engine.events import EventWriter
    from tuitrain.layout import MAX_EVENT_BYTES
    from tuitrain.runs.history import RunHistory

    huge = "x" * (10 * 1024 * 1024)
    big = write_preset(isolated / "big.toml", extra=f'[evaluation]\nsample_prompt = "{huge}"\n')
    out = cli("run", str(big))
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert "a preset holds at most" in out.stderr
    assert not (isolated / "runs").exists()  # refused before a run directory was made
    long = write_preset(isolated / "long.toml", extra=f'[evaluation]\nsample_prompt = "{"y" * 100_000}"\n')
    out = cli("preset", "validate", str(long))
    assert out.returncode == 1 and "evaluation.sample_prompt: a string of 100000 characters (at most 65536)" in out.stderr

    # Whatever reaches the writer, no event line outgrows what readers take, so a resumed
    # run's `start` is never dropped and its history never doubles.
    run_dir = isolated / "bounded"
    writer = EventWriter(run_dir)
    writer.emit("start", step=0, resumed_from=None, max_steps=4, config={"evaluation.sample_prompt": huge})
    for step in (1, 2, 3, 4):
        writer.emit("train", step=step, loss=1.0 / step)
    writer.emit("start", step=2, resumed_from="checkpoint-2", max_steps=4, config={"evaluation.sample_prompt": huge})
    for step in (3, 4):
        writer.emit("train", step=step, loss=1.0 / step)
    writer.close()
    assert max(len(line) for line in (run_dir / "metrics.jsonl").read_bytes().splitlines(keepends=True)) <= MAX_EVENT_BYTES
    history = RunHistory(run_dir)
    history.update()
    assert history.skipped == 0 and history.segments == 2 and list(history.series["loss"].xs) == [1, 2, 3, 4]
