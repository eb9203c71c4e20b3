"""Training steps/s while the dashboard watches the run, against the same run headless.

Writes a small char_gpt preset, runs the engine (`python -m tuitrain.engine RUN_DIR`) as
a subprocess, logging every step, alternately with nothing watching and with a headless
Textual app showing `DashboardScreen` of that run. Steps/s come from the engine's own
`train` event times (first to last logged step), so process start-up is not counted.
Prints each round, the totals and the ratio watched/headless (target ≥ 0.95).

    .venv/bin/python bench/ui_watch_bench.py [--steps 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESET = """
[task]
name = "char_gpt"
[task.options]
block_size = 64
n_layer = 2
n_head = 2
n_embd = 64
[core]
per_device_train_batch_size = 8
max_steps = {steps}
[optimizer]
learning_rate = 0.001
[logging]
logging_steps = 1
save_strategy = "no"
"""


def make_run(root: Path, name: str, steps: int) -> Path:
    """A run directory as `tuitrain.runs` would create it: run.json and the frozen preset."""
    run_dir = root / name
    run_dir.mkdir()
    (run_dir / "preset.toml").write_text(PRESET.format(steps=steps))
    (run_dir / "run.json").write_text(json.dumps({
        "id": name, "name": name, "state": "running", "pid": None, "pgid": None,
        "launcher": "local", "preset_name": "bench", "started": time.time(), "ended": None,
    }))
    return run_dir


def start_engine(run_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")
    with open(run_dir / "stdout.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "tuitrain.engine", str(run_dir)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)


def steps_per_s(run_dir: Path) -> tuple[int, float]:
    """(steps, seconds) between the first and last logged train step of the run."""
    points = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("kind") == "train":
            points.append((event["step"], event["t"]))
    if len(points) < 2:
        raise SystemExit(f"{run_dir}: the engine logged {len(points)} train steps; see {run_dir / 'stdout.log'}")
    (s0, t0), (s1, t1) = points[0], points[-1]
    return s1 - s0, t1 - t0


def headless(run_dir: Path) -> None:
    """Run the engine with nothing watching."""
    proc = start_engine(run_dir)
    if proc.wait() != 0:
        raise SystemExit(f"engine exited {proc.returncode}; see {run_dir / 'stdout.log'}")


async def watched(run_dir: Path, size: tuple[int, int]) -> float:
    """Run the engine while a headless app shows its dashboard; the app's CPU share of one core."""
    from textual.app import App

    from tuitrain.ui.screens.dashboard import DashboardScreen

    class WatchApp(App):
        def on_mount(self) -> None:
            self.push_screen(DashboardScreen(run_dir))

    app = WatchApp()
    proc = start_engine(run_dir)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    async with app.run_test(size=size, notifications=False) as pilot:
        while proc.poll() is None:
            await pilot.pause(0.25)
        await pilot.pause(0.5)  # let the dashboard see the end, as a watching user would
    share = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    if proc.returncode != 0:
        raise SystemExit(f"engine exited {proc.returncode}; see {run_dir / 'stdout.log'}")
    return share


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="headless/watched pairs, interleaved")
    parser.add_argument("--size", default="160x48", help="terminal size of the watching app")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    totals = {"headless": [0, 0.0], "watched": [0, 0.0]}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(args.rounds):
            for mode in ("headless", "watched") if i % 2 == 0 else ("watched", "headless"):
                run_dir = make_run(root, f"{mode}-{i}", args.steps)
                if mode == "headless":
                    headless(run_dir)
                    note = ""
                else:
                    note = f"  (dashboard app used {asyncio.run(watched(run_dir, size)):.0%} of a core)"
                steps, secs = steps_per_s(run_dir)
                totals[mode][0] += steps
                totals[mode][1] += secs
                print(f"round {i} {mode:8s} {steps / secs:8.1f} steps/s{note}", flush=True)
    rate = {mode: s / t for mode, (s, t) in totals.items()}
    ratio = rate["watched"] / rate["headless"]
    print(f"headless {rate['headless']:.1f} steps/s, watched {rate['watched']:.1f} steps/s "
          f"(dashboard at {args.size})")
    print(f"watched/headless = {ratio:.3f}  (target >= 0.95: {'PASS' if ratio >= 0.95 else 'FAIL'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
