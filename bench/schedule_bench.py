"""The LR preview's cost: a whole schedule without a call per step, against the per-step λ
and against the decimated curve the chart draws, measured side by side in one run.

The editor redraws the LR chart on every edit; `lr_curve` computes a full curve with the
schedule's arithmetic inlined (`_full_curve`) and a chart's curve at one point per column.
Prints, per scheduler, the best of `--repeat` timings of each way and the ratios.

    .venv/bin/python bench/schedule_bench.py [--steps 100000] [--warmup 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuitrain.config.schedules import curve_steps, lr_curve, make_lambda  # noqa: E402

SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant_with_warmup", "inverse_sqrt")


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--points", type=int, default=200, help="chart columns for the decimated curve")
    opts = parser.parse_args()
    print(f"{opts.steps} steps, {opts.warmup} warmup; best of {opts.repeat}")
    print(f"{'scheduler':<22}{'full ms':>10}{'per-step ms':>13}{'chart ms':>10}{'per-step/full':>15}{'full/chart':>12}")
    for name in SCHEDULERS:
        args = SimpleNamespace(learning_rate=1e-3, lr_scheduler_type=name, lr_scheduler_kwargs={})
        fn = make_lambda(name, opts.warmup, opts.steps, {}, 1e-3)
        full = best_of(opts.repeat, lambda: lr_curve(args, opts.steps, opts.warmup))
        per_step = best_of(opts.repeat, lambda: [1e-3 * fn(k - 1) for k in curve_steps(opts.steps, None)])
        chart = best_of(opts.repeat, lambda: lr_curve(args, opts.steps, opts.warmup, opts.points))
        print(f"{name:<22}{full * 1e3:>10.2f}{per_step * 1e3:>13.2f}{chart * 1e3:>10.3f}"
              f"{per_step / full:>15.1f}{full / chart:>12.1f}")


if __name__ == "__main__":
    main()
