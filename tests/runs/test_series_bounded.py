"""Bounded memory for long runs: compacted series stay exact where charts look, ingest is chunked."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from tuitrain.runs import series as series_mod
from tuitrain.runs.series import CAPACITY, MAX_BUCKETS, Series

ROOT = Path(__file__).resolve().parents[2]


def envelope(xs: list[float], ys: list[float], width: int) -> tuple[list[float], list[float]]:
    """Min/max decimation of the full data, computed plainly (the reference)."""
    n = len(xs)
    if n <= 2 * width:
        return list(xs), list(ys)
    size = 1
    while size * width < n:
        size *= 2
    out_x, out_y = [], []
    for start in range(0, n, size):
        lo = hi = start
        for i in range(start + 1, min(n, start + size)):
            y = ys[i]
            if y < ys[lo] or (ys[lo] != ys[lo] and y == y):
                lo = i
            if y > ys[hi] or (ys[hi] != ys[hi] and y == y):
                hi = i
        for i in sorted({lo, hi}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    return out_x, out_y


def same(got: tuple[list[float], list[float]], want: tuple[list[float], list[float]]) -> bool:
    """Equal point lists, NaN matching NaN."""
    return got[0] == want[0] and len(got[1]) == len(want[1]) and all(
        a == b or (a != a and b != b) for a, b in zip(got[1], want[1]))


def noisy(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    values = [3.0 / (1 + i / 5000) + rng.gauss(0, 0.3) for i in range(n)]
    for i in rng.sample(range(n), 40):  # NaN losses here and there, some at a bucket's start
        values[i] = float("nan")
    for i in range(0, n, 65536):
        values[i] = float("nan")
    return values


def test_a_million_points_stay_within_capacity():
    s = Series("loss")
    for step in range(1, 1_000_001):
        s.append(step, 1.0 / step)
        if step % 100_003 == 0:
            s.decimate(300)
    exact, buckets = s.stored
    assert len(s) == 1_000_000 and s.last == 1e-6
    assert exact <= CAPACITY and buckets <= MAX_BUCKETS
    # 1M points as two float arrays would be 16 MB; the bound is 2.5 MiB
    held = sum(sys.getsizeof(column) for column in (s.xs, s.ys, *s._columns()))
    assert held < 3 * 2**20, f"{held / 2**20:.1f} MiB"
    xs, ys = s.decimate(300)
    assert xs[0] == 1.0 and xs[-1] == 1_000_000.0 and ys[-1] == 1e-6 and max(ys) == 1.0


def test_decimation_after_compaction_is_the_envelope_of_the_full_data():
    n = 300_000
    values = noisy(n, 0)
    steps = [float(i + 1) for i in range(n)]
    grown = Series("loss")
    for i, v in enumerate(values):
        grown.append(steps[i], v)
        if i % 40_009 == 0:
            grown.decimate(1000)  # incremental updates across compactions and merges
    assert grown.bucket_size > series_mod.FIRST_BUCKET  # buckets were merged at least once
    for width in (80, 1000, CAPACITY // 4):
        assert same(grown.decimate(width), envelope(steps, values, width)), width
    assert grown.last == values[-1]


def test_truncate_after_in_the_compacted_history_then_resume():
    n = 300_000
    values = noisy(n, 1)
    s = Series("loss")
    for i, v in enumerate(values):
        s.append(i + 1, v)
    s.decimate(500)
    # within the exact tail: point by point
    s.truncate_after(n - 10)
    assert len(s) == n - 10 and s.last == values[n - 11]
    # deep in the compacted history: the bucket holding the step goes too
    b = s.bucket_size
    s.truncate_after(100_000)
    kept = len(s)
    assert 100_000 - b < kept <= 100_000 and kept % b == 0
    assert s.last == values[kept - 1]
    assert max(s.decimate(500)[0]) <= 100_000
    # the resumed segment continues from the kept points
    resumed = values[:kept] + noisy(150_000, 2)
    for i in range(kept, len(resumed)):
        s.append(i + 1, resumed[i])
    steps = [float(i + 1) for i in range(len(resumed))]
    assert s.last == resumed[-1] and len(s) == len(resumed)
    width = 1000
    got = s.decimate(width)
    assert s.bucket_size * width < 2 * len(resumed)  # so decimation runs span whole buckets
    assert same(got, envelope(steps, resumed, width))
    assert min(y for y in got[1] if y == y) == min(y for y in resumed if y == y)
    # truncating before the first point empties the series
    s.truncate_after(0)
    assert len(s) == 0 and s.last is None and s.decimate(10) == ([], [])
    assert s.bucket_size == series_mod.FIRST_BUCKET


_CHILD = """
import json, resource, sys
from tuitrain.runs.history import RunHistory
hist = RunHistory(sys.argv[1])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hist.update()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kib": peak - base, "last_step": hist.last_step,
                  "series": {k: [len(s), *s.stored, s.last] for k, s in hist.series.items()}}))
"""


def test_history_ingest_of_a_long_backlog_stays_bounded(tmp_path):
    n = 300_000
    run = tmp_path / "long"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"state": "finished"}))
    with open(run / "metrics.jsonl", "w") as fh:
        fh.write(json.dumps({"v": 1, "kind": "start", "t": 0, "step": 0, "max_steps": n}) + "\n")
        for first in range(1, n + 1, 10_000):
            fh.write("".join(f'{{"kind":"train","t":{s},"step":{s},"loss":{1 + (s % 97) / 97},'
                             f'"learning_rate":0.0003,"grad_norm":{s % 13}}}\n'
                             for s in range(first, min(n, first + 9_999) + 1)))
    # its own process, so the peak RSS is this ingest's alone
    out = subprocess.run([sys.executable, "-c", _CHILD, str(run)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, check=True).stdout
    result = json.loads(out)
    assert result["last_step"] == n
    for name, (length, exact, buckets, last) in result["series"].items():
        assert length == n and exact <= CAPACITY and buckets <= MAX_BUCKETS, name
    assert result["series"]["loss"][3] == 1 + (n % 97) / 97
    # decoding the backlog whole held ~270 MiB of event dicts at 300k events; in 1 MiB
    # chunks the series and one chunk's events take ~25 MiB
    assert result["growth_kib"] < 64 * 1024, f"grew {result['growth_kib'] / 1024:.0f} MiB"


def test_update_reads_in_chunks_and_says_when_it_is_behind(tmp_path, monkeypatch):
    import tuitrain.runs.history as history_mod

    monkeypatch.setattr("tuitrain.runs.reader.CHUNK_BYTES", 100)  # a chunk ends mid-line
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"state": "finished"}))
    lines = [json.dumps({"kind": "train", "step": s, "loss": 1.0 / s}) for s in range(1, 51)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    sizes = []
    hist = history_mod.RunHistory(run)
    poll = hist.reader.poll

    def counted(max_bytes=None):
        events = poll(max_bytes)
        sizes.append(len(events))
        return events

    monkeypatch.setattr(hist.reader, "poll", counted)
    assert hist.update(max_chunks=2) and hist.behind
    assert 0 < hist.last_step < 50
    while hist.behind:
        hist.update(max_chunks=2)
    assert hist.last_step == 50 and len(hist.series["loss"]) == 50
    assert max(sizes) <= 3 and hist.skipped == 0
    with open(run / "metrics.jsonl", "a") as fh:  # without max_chunks: to the end, in chunks
        fh.write("\n".join(json.dumps({"kind": "train", "step": s, "loss": 0.5}) for s in range(51, 81)) + "\n")
    sizes.clear()
    assert hist.update() and not hist.behind and hist.last_step == 80
    assert len(sizes) > 10 and max(sizes) <= 3
