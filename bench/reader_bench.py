"""Metrics reader and decimation costs, printed as ratios from one run.

- ingest: events/s of `MetricsReader.poll()` (read from disk, split, decode, validate)
  against bare `json.loads` of the same lines already in memory (target ≥ 0.5×);
- decimation: cost of one chart frame (a few new points, then `decimate(width)`) of a
  1M-point series against a 1k-point one (target ≤ 2×).

Run: `.venv/bin/python bench/reader_bench.py`
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuitrain.runs.reader import MetricsReader  # noqa: E402
from tuitrain.runs.series import Series  # noqa: E402

N_EVENTS = 200_000
WIDTH = 200


def make_lines(n: int) -> bytes:
    rng = random.Random(0)
    out = []
    for step in range(1, n + 1):
        out.append(json.dumps({"kind": "train", "t": 1.7e9 + step, "step": step, "epoch": step / 1000,
                               "loss": rng.random(), "learning_rate": 3e-4, "grad_norm": rng.random(),
                               "samples_per_second": 1000.0, "tokens_per_second": 128000.0}))
    return ("\n".join(out) + "\n").encode()


def best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_ingest() -> float:
    data = make_lines(N_EVENTS)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "metrics.jsonl"
        path.write_bytes(data)
        lines = data.decode().splitlines()

        def bare() -> None:
            for line in lines:
                json.loads(line)

        def reader() -> None:
            events = MetricsReader(path).poll()
            assert len(events) == N_EVENTS

        t_bare, t_reader = best_of(bare), best_of(reader)
    print(f"ingest: json.loads {N_EVENTS / t_bare:,.0f} events/s, "
          f"MetricsReader {N_EVENTS / t_reader:,.0f} events/s, ratio {t_bare / t_reader:.2f}x (target >= 0.5x)")
    return t_bare / t_reader


def frame_cost(n_points: int, frames: int = 200) -> float:
    series = Series("loss")
    rng = random.Random(1)
    for i in range(n_points):
        series.append(i, rng.random())
    series.decimate(WIDTH)  # the first draw pays for the history once
    step = n_points

    def draw() -> None:
        nonlocal step
        for _ in range(frames):
            for _ in range(5):  # a few new events between redraws
                series.append(step, rng.random())
                step += 1
            series.decimate(WIDTH)

    return best_of(draw) / frames


def bench_decimation() -> float:
    small, big = frame_cost(1_000), frame_cost(1_000_000)
    print(f"decimation (width {WIDTH}): 1k points {small * 1e6:.1f} us/frame, "
          f"1M points {big * 1e6:.1f} us/frame, ratio {big / small:.2f}x (target <= 2x)")
    return big / small


if __name__ == "__main__":
    ingest, decimation = bench_ingest(), bench_decimation()
    ok = ingest >= 0.5 and decimation <= 2.0
    print("ok" if ok else "target missed")
    sys.exit(0 if ok else 1)
