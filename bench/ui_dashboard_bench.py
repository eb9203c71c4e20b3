"""Dashboard redraw cost: a 1M-logged-step run against a 1k-step run (ratios from one run).

Writes two runs' metrics.jsonl, loads each into the dashboard's `RunHistory`, then times
the redraw path the screen's timer runs (decimate to chart width, smooth, render the
braille chart text) at 160 columns. Passes when 1M ≤ 2× 1k; prints peak RSS too.

    .venv/bin/python bench/ui_dashboard_bench.py [--steps 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuitrain.runs.history import RunHistory  # noqa: E402
from tuitrain.ui.widgets.charts import GUTTER, Decimated, render_lines  # noqa: E402
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
    w = WIDTH - GUTTER
    loss = Decimated(history.series["loss"], w)
    lr = Decimated(history.series["learning_rate"], w)
    render_lines([(None, loss.xs, loss.ys, "grey50"), ("train", loss.xs, debiased_ema(loss.ys, 0.6), "cyan")],
                 "loss", WIDTH, HEIGHT, "", "grey50")
    render_lines([("lr", lr.xs, lr.ys, "magenta")], "lr", WIDTH, HEIGHT, "", "grey50")


def time_redraws(history: RunHistory, n: int = 50) -> float:
    redraw(history)  # warm the decimation caches, as the live screen's first frame does
    start = time.perf_counter()
    for _ in range(n):
        redraw(history)
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        small, big = RunHistory(write_run(Path(tmp), 1000)), RunHistory(write_run(Path(tmp), args.steps))
        small.update()
        t0 = time.perf_counter()
        big.update()
        load_s = time.perf_counter() - t0
        t_small, t_big = time_redraws(small), time_redraws(big)
    ratio = t_big / t_small
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"redraw 1k: {t_small * 1e3:.2f} ms  {args.steps}: {t_big * 1e3:.2f} ms  ratio {ratio:.2f} (≤ 2)")
    print(f"first load of {args.steps} steps: {load_s:.1f} s; peak RSS {rss_mib:.0f} MiB")
    return 0 if ratio <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
