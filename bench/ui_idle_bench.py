"""What the app costs while you look at it: CPU seconds per minute, in a real terminal.

Each case is a fresh interpreter running the app in a pseudo-terminal (160×48), its output
read and dropped as a terminal would draw it. Once the case is ready (its run loaded), the
app's own CPU time (all its threads) is measured over `--seconds`, reported per minute of
wall time and as a share of one core:

- `bare`: a Textual app with one label, for reference;
- `runs`: the Runs screen with two finished runs;
- `dashboard`: the dashboard of a finished run of `--steps` logged steps (1M by default);
- `training`: the dashboard of a run a stand-in trainer is writing, one step logged per
  `1/--rate` seconds (it writes what the engine writes, without torch).

Target: at most 3% of a core idle (1.8 CPU s/min). The machine's other load shows up as
noise; run it when the machine is quiet.

    .venv/bin/python bench/ui_idle_bench.py [--seconds 60] [--steps 1000000] [--rate 10] [CASE …]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import pty
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CASES = ("bare", "runs", "dashboard", "training")
SIZE = (160, 48)
TARGET = 0.03


def write_finished(root: Path, name: str, steps: int) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"name": name, "state": "finished", "pid": None, "launcher": "local",
                                              "started": 0.0, "ended": float(steps), "exit_code": 0}))
    with open(run / "metrics.jsonl", "w") as fh:
        fh.write(json.dumps({"v": 1, "kind": "start", "t": 0, "max_steps": steps, "resumed_from": None}) + "\n")
        for s in range(1, steps + 1):
            fh.write(f'{{"kind":"train","t":{s},"step":{s},"loss":{3.0 / (1 + s / 1000):.6f},'
                     f'"learning_rate":0.0003,"samples_per_second":100.0}}\n')
        fh.write(json.dumps({"kind": "status", "t": steps, "state": "finished", "error": None}) + "\n")
    (run / "stdout.log").write_text("done\n")
    return run


def start_training(root: Path, rate: float) -> tuple[Path, object]:
    """A supervised stand-in trainer (this file's `writer` child) logging `rate` steps a second."""
    from tuitrain.config import load_preset
    from tuitrain.paths import shipped_presets
    from tuitrain.runs.launch import start_supervised
    from tuitrain.runs.rundir import create_run_dir

    preset = load_preset(shipped_presets()["quickstart"], ["core.max_steps=1000000"])
    run_dir = create_run_dir(preset, output_dir=root / "training")
    start_supervised(run_dir, [sys.executable, __file__, "--child", "writer", "--run", str(run_dir),
                               "--rate", str(rate)])
    return run_dir, None


def writer(run_dir: Path, rate: float) -> int:
    """Write what the engine writes for a run logging every step, paced at `rate` steps/s."""
    import signal

    from tuitrain.engine.events import EventWriter

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    events = EventWriter(run_dir)
    events.emit("start", run=run_dir.name, world_size=1, max_steps=1_000_000, resumed_from=None, step=0, config={})
    events.emit("status", state="running", error=None)
    t0 = time.monotonic()
    step = 0
    while not stop:
        step += 1
        delay = t0 + step / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        events.emit("train", step=step, loss=2.0 * math.exp(-step / 400) + 0.05 * math.sin(step / 7),
                    learning_rate=1e-3, samples_per_second=rate * 8, tokens_per_second=rate * 8 * 128)
        print(f"step {step}", flush=True)
    events.emit("status", state="stopped", error=None)
    return 0


def app_child(case: str, root: Path, run_dir: Path | None, steps: int, ready: Path) -> int:
    """Run the app for `case` until killed; touch `ready` once it has loaded what it shows."""
    if case == "bare":
        from textual.app import App
        from textual.widgets import Label

        class Bare(App):
            def compose(self):
                yield Label("hello")

            def on_mount(self) -> None:
                self.call_after_refresh(ready.touch)

        Bare().run()
        return 0

    from tuitrain.ui import navigation
    from tuitrain.ui.app import TuitrainApp

    class Bench(TuitrainApp):
        def on_mount(self) -> None:
            if run_dir is not None:
                self.post_message(navigation.OpenDashboard(run_dir))
            self._check = self.set_interval(0.5, self.check)
            self._since = None

        def check(self) -> None:
            screen = self.screen
            if run_dir is None:
                done = getattr(screen, "loaded", False)
            else:
                history = getattr(screen, "history", None)
                done = (history is not None and not history.behind and getattr(screen, "info", None) is not None
                        and history.last_step >= (steps if case == "dashboard" else 1))
            if done and self._since is None:
                self._since = time.monotonic()
            if self._since is not None and time.monotonic() - self._since >= 3:
                self._check.stop()  # its own wakeups must not count
                ready.touch()

    Bench(runs_root=root, theme="tuitrain-dark").run()
    return 0


def measure(case: str, root: Path, run_dir: Path | None, steps: int, seconds: float) -> float:
    """CPU seconds the app's process used per minute, once ready."""
    import psutil

    ready = root / f"ready-{case}"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    env = dict(os.environ, TERM="xterm-256color", TUITRAIN_RUNS=str(root), XDG_CONFIG_HOME=str(root / "config"),
               XDG_STATE_HOME=str(root / "state"), LANG="C.UTF-8")
    env.pop("NO_COLOR", None)
    argv = [sys.executable, __file__, "--child", case, "--root", str(root), "--steps", str(steps),
            "--ready", str(ready)] + (["--run", str(run_dir)] if run_dir else [])
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)

    def drain() -> None:  # the terminal: reads (and drops) everything the app draws
        try:
            while os.read(master, 1 << 16):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + 600
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{case}: the app {'exited' if proc.poll() is not None else 'never got ready'}")
            time.sleep(0.2)
        app = psutil.Process(proc.pid)
        before, t0 = app.cpu_times(), time.monotonic()
        time.sleep(seconds)
        after, t1 = app.cpu_times(), time.monotonic()
        used = (after.user - before.user) + (after.system - before.system)
        return used / (t1 - t0) * 60
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.close(master)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", metavar="CASE", help=f"any of {', '.join(CASES)} (default: all)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring time per case (default 60)")
    parser.add_argument("--steps", type=int, default=1_000_000, help="logged steps of the finished run")
    parser.add_argument("--rate", type=float, default=10.0, help="steps a second of the training run")
    parser.add_argument("--child", choices=(*CASES, "writer"), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ready", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "writer":
        return writer(args.run, args.rate)
    if args.child:
        return app_child(args.child, args.root, args.run, args.steps, args.ready)
    unknown = set(args.cases) - set(CASES)
    if unknown:
        parser.error(f"unknown case {sorted(unknown)[0]!r} (cases: {', '.join(CASES)})")
    args.cases = args.cases or list(CASES)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        finished = write_finished(root, "finished", args.steps) if "dashboard" in args.cases else None
        if "runs" in args.cases and finished is None:
            write_finished(root, "finished", 1000)
        write_finished(root, "other", 1000)
        for case in args.cases:
            run_dir = None
            if case == "dashboard":
                run_dir = finished
            elif case == "training":
                run_dir, _ = start_training(root, args.rate)
            try:
                results[case] = measure(case, root, run_dir, args.steps, args.seconds)
            finally:
                if case == "training":
                    from tuitrain.runs.launch import stop

                    stop(run_dir)
            print(f"{case:>10}: {results[case]:5.2f} CPU s/min ({results[case] / 60:.1%} of a core)", flush=True)
    idle = {k: v for k, v in results.items() if k in ("runs", "dashboard")}
    worst = max(idle.values(), default=0.0) / 60
    if idle:
        print(f"idle target ≤ {TARGET:.0%} of a core: {'PASS' if worst <= TARGET else 'FAIL'} ({worst:.1%})")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
