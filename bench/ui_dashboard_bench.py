"""Dashboard redraw cost and memory: a 1M-logged-step run against a 1k-step run.

Writes two runs' metrics.jsonl, loads each into the dashboard's `RunHistory`, then times
the redraw path the screen's timer runs (decimate to chart width, smooth, render the
braille chart text), the two runs in alternate rounds in one process. For memory, a child
process per run loads it into a `RunHistory`, and another opens the real `DashboardScreen`
headless on it until it has read every event; each reports its peak RSS, so the two sizes
show side by side. Passes when redraw at 1M ≤ 2× 1k.

    .venv/bin/python bench/ui_dashboard_bench.py [--steps 1000000] [--no-app]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuitrain.runs.history import RunHistory  # noqa: E402
from tuitrain.ui.widgets.chartdraw import Frame, Trace, draw  # noqa: E402
from tuitrain.ui.widgets.charts import PLOT_MARGIN, Decimated  # noqa: E402
from tuitrain.ui.widgets.smoothing import debiased_ema  # noqa: E402

WIDTH, HEIGHT = 80, 16


def write_run(root: Path, steps: int) -> Path:
    run = root / f"run-{steps}"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"name": run.name, "state": "finished"}))
    with open(run / "metrics.jsonl", "w") as fh:
        fh.write(json.dumps({"v": 1, "kind": "start", "t": 0, "max_steps": steps, "resumed_from": None}) + "\n")
        for s in range(1, steps + 1):
            fh.write(f'{{"kind":"train","t":{s},"step":{s},"loss":{3.0 / (1 + s / 1000):.6f},"learning_rate":0.0003}}\n')
    return run


def redraw(history: RunHistory) -> None:
    """What the dashboard does per frame: decimate, smooth, draw the loss and LR charts."""
    w = WIDTH - PLOT_MARGIN
    loss = Decimated(history.series["loss"], w)
    lr = Decimated(history.series["learning_rate"], w)
    draw([Trace(None, loss.xs, loss.ys, "grey50", faint=True),
          Trace("train", loss.xs, debiased_ema(loss.ys, 0.6), "cyan", "●")], Frame(title="loss", y_label="loss"),
         WIDTH, HEIGHT)
    draw([Trace("lr", lr.xs, lr.ys, "magenta")], Frame(title="lr", y_label="LR", legend=False), WIDTH, HEIGHT)


def time_redraws(history: RunHistory, n: int = 50) -> float:
    redraw(history)  # warm the decimation caches, as the live screen's first frame does
    start = time.perf_counter()
    for _ in range(n):
        redraw(history)
    return (time.perf_counter() - start) / n


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_history(run_dir: Path) -> dict:
    """Load the run into a RunHistory and draw it; the figures of this process."""
    history = RunHistory(run_dir)
    t0 = time.perf_counter()
    history.update()
    load_s = time.perf_counter() - t0
    redraw(history)
    return {"load_s": load_s, "rss_mib": peak_rss_mib()}


def child_app(run_dir: Path, steps: int) -> dict:
    """Open the dashboard headless on the run; time until it has read every event."""
    import asyncio

    from textual.app import App

    from tuitrain.ui.screens.dashboard import DashboardScreen

    class One(App):
        def on_mount(self) -> None:
            self.push_screen(DashboardScreen(run_dir))

    async def body() -> float:
        t0 = time.perf_counter()
        app = One()
        async with app.run_test(size=(160, 48)) as pilot:
            while not isinstance(app.screen, DashboardScreen) or app.screen.history.last_step < steps:
                await pilot.pause(0.1)
            load_s = time.perf_counter() - t0
            await pilot.pause(1.0)  # a few redraws of the loaded run
        return load_s

    load_s = asyncio.run(body())
    return {"app_load_s": load_s, "app_rss_mib": peak_rss_mib()}


def in_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--no-app", action="store_true", help="skip opening the dashboard app")
    parser.add_argument("--child", choices=("history", "app"), help=argparse.SUPPRESS)
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child_history(args.run) if args.child == "history" else child_app(args.run, args.steps)
        print(json.dumps(result))
        return 0
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        histories = []
        for steps in (1000, args.steps):
            run = write_run(Path(tmp), steps)
            figures[steps] = in_child("--child", "history", "--run", str(run), "--steps", str(steps))
            if not args.no_app:
                figures[steps].update(in_child("--child", "app", "--run", str(run), "--steps", str(steps)))
            histories.append(RunHistory(run))
            histories[-1].update()
        rounds: list[list[float]] = [[], []]
        for _ in range(5):  # alternate, so that machine noise hits both alike
            for history, times in zip(histories, rounds):
                times.append(time_redraws(history, 20))
    small, big = figures[1000], figures[args.steps]
    small["redraw_s"], big["redraw_s"] = min(rounds[0]), min(rounds[1])
    ratio = big["redraw_s"] / small["redraw_s"]
    print(f"{'':>22} {'1000':>10} {args.steps:>10}")
    print(f"{'redraw (ms)':>22} {small['redraw_s'] * 1e3:>10.2f} {big['redraw_s'] * 1e3:>10.2f}   ratio {ratio:.2f} (≤ 2)")
    print(f"{'history load (s)':>22} {small['load_s']:>10.2f} {big['load_s']:>10.2f}")
    print(f"{'history peak RSS (MiB)':>22} {small['rss_mib']:>10.0f} {big['rss_mib']:>10.0f}")
    if not args.no_app:
        print(f"{'app load (s)':>22} {small['app_load_s']:>10.2f} {big['app_load_s']:>10.2f}")
        print(f"{'app peak RSS (MiB)':>22} {small['app_rss_mib']:>10.0f} {big['app_rss_mib']:>10.0f}")
    return 0 if ratio <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
