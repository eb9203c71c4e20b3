"""End to end in a real terminal: drive `python -m tuitrain` in tmux through launch, stop, resume and quit.

The app runs in a private tmux server (`tmux -L <unique>`) at 160x48, with its runs under a
temporary folder. The preset is the shipped `quickstart` copied to that folder and shrunk
(tiny model, many steps, no evaluation) so that it trains fast on one core and is still
running when the test stops it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 160, 48
STATUS_RE = re.compile(r"state (\w+)\s+·\s+step (\d+)/(\d+)")

pytestmark = pytest.mark.timeout(150)


def _shrink(text: str, key: str, value: str) -> str:
    """Replace the `key = ...` line of the preset text (it must be there exactly once)."""
    new, count = re.subn(rf"(?m)^{re.escape(key)}\s*=.*$", f"{key} = {value}", text)
    assert count == 1, f"quickstart.toml has {count} lines for {key}"
    return new


def live_setup() -> tuple[Path, Path, dict[str, str], Path]:
    """A fresh folder, its runs root, the app's environment (its own state, one thread per
    trainer) and a tiny quickstart preset in it: for a test that trains a run from the app."""
    assert shutil.which("tmux"), "tmux is needed for the end-to-end test (.ci/run installs it)"
    folder = Path(tempfile.mkdtemp(prefix="tte2e-"))
    runs = folder / "runs"
    env = dict(os.environ, PYTHONPATH=str(REPO), TUITRAIN_RUNS=str(runs),
               XDG_STATE_HOME=str(folder / "state"), OMP_NUM_THREADS="1")
    return folder, runs, env, tiny_quickstart(folder)


def tiny_quickstart(folder: Path) -> Path:
    """The shipped quickstart preset with a tiny model that runs for a long time."""
    text = (REPO / "presets" / "quickstart.toml").read_text()
    for key, value in {"block_size": "16", "n_layer": "1", "n_head": "2", "n_embd": "32",
                       "per_device_train_batch_size": "8", "max_steps": "1000000",
                       "logging_steps": "1", "eval_strategy": '"no"', "save_steps": "1000000",
                       "lr_scheduler_type": '"constant"', "warmup_steps": "0"}.items():
        text = _shrink(text, key, value)
    path = folder / "quickstart.toml"
    path.write_text(text)
    return path


class Terminal:
    """One tmux server and session running the app; keys in, plain-text screen out."""

    def __init__(self, folder: Path, env: dict[str, str], size: tuple[int, int] = (WIDTH, HEIGHT),
                 args: tuple[str, ...] = ()) -> None:
        self.socket = f"tuitrain-e2e-{os.getpid()}-{folder.name}"
        self.env = env
        self.folder = folder
        self.size = size
        self.args = args

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              check=check, env=self.env, timeout=20)

    def start(self) -> None:
        assigns = " ".join(shlex.quote(f"{k}={v}") for k, v in self.env.items() if k in _APP_ENV)
        # The shell line after the app reports its exit status, and the pane stays open to read it.
        args = " ".join(shlex.quote(a) for a in self.args)
        command = (f"cd {shlex.quote(str(REPO))} && env {assigns} {shlex.quote(sys.executable)} -m tuitrain {args}; "
                   f"echo TUITRAIN-EXITED $?; sleep 120")
        self.tmux("new-session", "-d", "-s", "app", "-x", str(self.size[0]), "-y", str(self.size[1]), command)

    def keys(self, *keys: str, literal: bool = False) -> None:
        """Type keys; the caller waits for what they change on screen before the next key
        that depends on it (after Escape above all: a key right behind it reads as Alt+key)."""
        self.tmux("send-keys", "-t", "app", *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "app").stdout

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match:
        """Poll the screen until the regex matches; fail with the last screen shown."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            match = re.search(pattern, text)
            if match:
                return match
            time.sleep(0.25)
        pytest.fail(f"no {pattern!r} on screen after {timeout}s; screen was:\n{text}\n{self.app_stacks()}")

    def wait_gone(self, pattern: str, timeout: float = 20.0) -> None:
        """Poll the screen until the regex no longer matches (a dialog or help closed)."""
        deadline = time.monotonic() + timeout
        while re.search(pattern, text := self.screen()):
            if time.monotonic() > deadline:
                pytest.fail(f"{pattern!r} still on screen after {timeout}s; screen was:\n{text}\n{self.app_stacks()}")
            time.sleep(0.25)

    def app_stacks(self) -> str:
        """Every thread's stack in the app (it dumps them on SIGUSR1), to tell a stuck app from a slow one."""
        shell = self.tmux("list-panes", "-t", "app", "-F", "#{pane_pid}", check=False).stdout.strip()
        try:
            pids = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True).stdout.split() if shell else []
        except OSError as exc:
            return f"(no stack dump: {exc})"
        dump = Path(self.env["XDG_STATE_HOME"]) / "tuitrain" / "app-stacks.txt"
        for pid in pids:
            os.kill(int(pid), signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while not dump.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        text = dump.read_text(errors="replace") if dump.exists() else "(no stack dump)"
        return f"app threads (pids {pids}):\n{text[-8000:]}"

    def close(self) -> None:
        self.tmux("kill-server", check=False)


_APP_ENV = ("PYTHONPATH", "TUITRAIN_RUNS", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "OMP_NUM_THREADS", "HOME",
            "LC_ALL", "NO_COLOR")


def dashboard_status(term: Terminal) -> tuple[str, int]:
    match = term.wait_for(STATUS_RE.pattern)
    return match.group(1), int(match.group(2))


def loss_panel(screen: str) -> str:
    """The left half of the rows from the loss chart's title down to the next panel."""
    lines = [line[: WIDTH // 2] for line in screen.splitlines()]
    start = next(i for i, line in enumerate(lines) if "─ loss" in line)
    end = next((i for i in range(start + 1, len(lines)) if "╭─" in lines[i]), len(lines))
    return "\n".join(lines[start:end])


def wait_for_steps_after(term: Terminal, step: int, state: str = "running", timeout: float = 25.0) -> int:
    """Poll the dashboard until it shows `state` and a step past `step`."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        match = STATUS_RE.search(term.screen())
        if match:
            seen = (match.group(1), int(match.group(2)))
            if seen[0] == state and seen[1] > step:
                return seen[1]
        time.sleep(0.25)
    pytest.fail(f"dashboard never showed {state} past step {step}; last seen {seen}:\n{term.screen()}")


def run_json(runs: Path) -> tuple[Path, dict]:
    dirs = [p for p in runs.iterdir() if (p / "run.json").is_file()]
    assert len(dirs) == 1, f"expected one run under {runs}, found {dirs}"
    return dirs[0], json.loads((dirs[0] / "run.json").read_text())


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuitrain", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=60)


def kill_leftovers(runs: Path) -> None:
    """Kill the process groups of any run under our own folder that still claims to be alive."""
    if not runs.is_dir():
        return
    for path in runs.glob("*/run.json"):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if info.get("state") not in ("queued", "running", "stopping"):
            continue
        for pgid in {info.get("pgid"), info.get("supervisor_pid")} - {None}:
            try:
                os.killpg(int(pgid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError, ValueError):
                pass


def launch_from_new_dialog(term: Terminal, preset: Path) -> str:
    """On the Runs screen: type the preset's path into the New dialog, launch with Enter;
    the new run's name once the Runs table lists it."""
    term.keys("n")
    term.wait_for(r"New run")
    term.keys("Tab")
    term.keys("End")
    term.keys("C-u")
    # Ctrl+U is a binding, run after characters typed right behind it: they would be wiped.
    term.wait_for(r"Preset path\s+path/to/preset\.toml")
    term.keys(str(preset), literal=True)
    term.wait_for(re.escape(str(preset)))
    term.keys("Enter")
    return term.wait_for(r"(quickstart-\S+)\s+(?:queued|running)", timeout=30).group(1)


def test_launch_stop_resume_quit_in_tmux() -> None:
    folder, runs, env, preset = live_setup()
    term = Terminal(folder, env)
    try:
        term.start()
        term.wait_for(r"Press n to start one", timeout=30)

        name = launch_from_new_dialog(term, preset)

        # Dashboard: the step counter advances and the loss chart redraws.
        term.keys("Enter")
        term.wait_for(r"─ loss")
        first = wait_for_steps_after(term, 0)
        chart_before = loss_panel(term.screen())
        later = wait_for_steps_after(term, first)
        chart_after = loss_panel(term.screen())
        assert later > first
        assert re.search("[\u2801-\u28ff]", chart_after), f"no plotted points in the loss chart:\n{chart_after}"
        assert chart_after != chart_before, "the loss chart did not change while the run trained"

        # Stop from the dashboard (s, confirm with y): stopped, with a checkpoint listed.
        term.keys("s")
        term.wait_for(r"Stop run")
        term.keys("y")
        term.wait_for(r"state stopped", timeout=30)
        checkpoint = term.wait_for(r"checkpoint-(\d+)\s+(\d+)").group(1)
        run_dir, info = run_json(runs)
        assert run_dir.name == name and info["state"] == "stopped"
        assert (run_dir / f"checkpoint-{checkpoint}").is_dir()

        # Resume with r: running again, past the checkpoint's step, recorded as resumed.
        term.keys("r")
        wait_for_steps_after(term, int(checkpoint), timeout=30)
        _, info = run_json(runs)
        assert info["resumed_from"] == f"checkpoint-{checkpoint}"

        # The same keys on the Runs screen: s (confirm y) stops, r resumes the latest checkpoint in place.
        term.keys("Escape")
        term.wait_for(r"\d+ runs? · 1 active")
        term.keys("s")
        term.wait_for(rf"Stop {re.escape(name)}\?")
        term.keys("y")
        term.wait_for(rf"{re.escape(name)}\s+stopped", timeout=30)
        _, info = run_json(runs)
        assert info["state"] == "stopped"
        term.keys("r")
        term.wait_for(rf"{re.escape(name)}\s+running", timeout=30)
        term.wait_for(rf"Resumed {re.escape(name)}\s*\n")

        # Quit the app: the run keeps training without it.
        term.keys("q")
        term.wait_for(r"TUITRAIN-EXITED 0")
        # The resumed trainer may still be starting; poll `tuitrain ls` until its step moves on.
        steps: list[int] = []
        deadline = time.monotonic() + 30
        while len(steps) < 2 or steps[-1] <= steps[0]:
            assert time.monotonic() < deadline, f"the run stopped advancing after the app quit: {steps}"
            listing = cli(env, "ls")
            assert listing.returncode == 0, listing.stderr
            match = re.search(rf"{re.escape(name)}\s+running\s+\S+\s+(\d+)/", listing.stdout)
            assert match, f"{name} is not running after the app quit:\n{listing.stdout}"
            steps.append(int(match.group(1)))
            time.sleep(0.5)

        stopped = cli(env, "stop", name, "--timeout", "30")
        assert stopped.returncode == 0, stopped.stderr
        _, info = run_json(runs)
        assert info["state"] == "stopped"
    finally:
        term.close()
        kill_leftovers(runs)
        shutil.rmtree(folder, ignore_errors=True)


def finished_run(runs: Path, name: str, steps: int, lr: float) -> None:
    """A finished run's directory written directly (no training): loss, eval and LR events."""
    import math

    run = runs / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"id": name, "name": name, "state": "finished", "pid": None,
                                              "launcher": "local", "started": 1000.0, "ended": 1000.0 + steps}))
    (run / "preset.toml").write_text(f"[core]\nmax_steps = {steps}\n[optimizer]\nlearning_rate = {lr}\n")
    events = [{"v": 1, "kind": "start", "t": 1000.0, "max_steps": steps, "step": 0}]
    events += [{"kind": "train", "t": 1000.0 + s, "step": s, "loss": 3 * math.exp(-s * lr * 20) + 0.1,
                "learning_rate": lr} for s in range(1, steps + 1)]
    events += [{"kind": "status", "t": 1000.0 + steps, "state": "finished", "error": None}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def test_compare_keys_and_help_in_ascii_without_colour_at_80x24() -> None:
    """`tuitrain compare` in a C locale with NO_COLOR: runs told apart by glyphs, every cell
    ASCII, l and ] change the view, escape leads to the Runs screen, whose help scrolls."""
    assert shutil.which("tmux"), "tmux is needed for the end-to-end test (.ci/run installs it)"
    folder = Path(tempfile.mkdtemp(prefix="tte2e-"))
    runs = folder / "runs"
    finished_run(runs, "run-a", 200, 1e-3)
    finished_run(runs, "run-b", 150, 3e-3)
    env = dict(os.environ, PYTHONPATH=str(REPO), TUITRAIN_RUNS=str(runs), XDG_STATE_HOME=str(folder / "state"),
               XDG_CONFIG_HOME=str(folder / "config"), LC_ALL="C", NO_COLOR="1")
    term = Terminal(folder, env, size=(80, 24), args=("compare", "run-a", "run-b"))
    try:
        term.start()
        term.wait_for(r"o run-a\s+x run-b")
        term.wait_for(r"every step of 200")
        screen = term.screen()
        assert screen.isascii(), screen
        term.keys("l")
        term.wait_for(r"train loss \(smoothed 0\.6\) \(log\)")
        term.keys("]")
        term.wait_for(r"steps 20-200 of 200")
        term.keys("Escape")
        term.wait_for(r"2 runs - 0 active")
        term.keys("?")
        term.wait_for(r"Runs screen\s+\|\s+\|  n\s+New run from a preset")  # the screen's own keys first
        assert "In the focused" not in term.screen()
        term.keys("End")  # the help scrolls to its last group
        term.wait_for(r"In the focused datatable")
        assert "Runs screen" not in term.screen() and term.screen().isascii()
        term.keys("Escape")
        term.wait_gone(r"In the focused datatable")
        term.keys("q")
        term.wait_for(r"TUITRAIN-EXITED 0")
    finally:
        term.close()
        shutil.rmtree(folder, ignore_errors=True)
