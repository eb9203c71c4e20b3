"""The incremental metrics reader, decimated series and the multi-segment history."""

from __future__ import annotations

import json
import os
import random

from tuitrain.runs.history import RunHistory
from tuitrain.runs.reader import MetricsReader
from tuitrain.runs.series import Series


def line(**event) -> bytes:
    return (json.dumps(event) + "\n").encode()


def test_offsets_half_line_and_corrupt_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    reader = MetricsReader(path)
    assert reader.poll() == []  # no file yet
    full = line(kind="train", step=1, loss=2.0)
    path.write_bytes(full + full[:10])
    assert [e["step"] for e in reader.poll()] == [1]
    assert reader.offset == len(full) + 10
    with open(path, "ab") as fh:
        fh.write(full[10:] + b"{not json\n" + b"[1,2]\n" + line(kind="train", step=2, loss=1.0))
    events = reader.poll()
    assert [e["step"] for e in events] == [1, 2]
    assert reader.skipped == 2
    assert reader.poll() == []


def test_replaced_and_truncated_file_restarts(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(line(kind="train", step=1, loss=1.0) * 3)
    reader = MetricsReader(path)
    assert len(reader.poll()) == 3
    tmp = tmp_path / "new"
    tmp.write_bytes(line(kind="train", step=7, loss=1.0))
    os.replace(tmp, path)
    assert [e["step"] for e in reader.poll()] == [7]
    assert reader.restarts == 1
    path.write_bytes(b"")
    reader.poll()
    with open(path, "ab") as fh:
        fh.write(line(kind="train", step=9, loss=1.0))
    assert [e["step"] for e in reader.poll()] == [9]


def test_history_spans_resumes_and_drops_the_abandoned_tail(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"state": "finished"}))
    events = [line(kind="start", v=1, max_steps=10, step=0, resumed_from=None)]
    events += [line(kind="train", step=s, loss=10.0 - s, t=float(s)) for s in range(1, 8)]
    events += [line(kind="checkpoint", step=5, path="checkpoint-5"),
               line(kind="sample", step=6, text="abc"),
               line(kind="start", v=1, max_steps=10, step=5, resumed_from="checkpoint-5")]
    events += [line(kind="train", step=s, loss=100.0 + s, t=float(s)) for s in range(6, 11)]
    events += [line(kind="eval", step=10, eval_loss=0.5), line(kind="status", state="finished")]
    (run / "metrics.jsonl").write_bytes(b"".join(events))
    hist = RunHistory(run)
    assert hist.update()
    loss = hist.series["loss"]
    assert list(loss.xs) == [float(s) for s in range(1, 11)]
    assert list(loss.ys)[4:] == [5.0, 106.0, 107.0, 108.0, 109.0, 110.0]
    assert hist.segments == 2 and hist.max_steps == 10 and hist.last_step == 10
    assert [c["step"] for c in hist.checkpoints] == [5] and hist.samples == []
    assert hist.series["eval_loss"].last == 0.5
    assert hist.state == "finished"


def test_decimation_keeps_min_and_max_and_matches_a_fresh_series():
    rng = random.Random(0)
    values = [rng.gauss(0, 1) for _ in range(50_000)]
    grown, fresh = Series("loss"), Series("loss")
    for i, v in enumerate(values):
        grown.append(i, v)
        if i % 9973 == 0:
            grown.decimate(300)  # incremental updates along the way
        fresh.append(i, v)
    xs, ys = grown.decimate(300)
    assert (xs, ys) == fresh.decimate(300)
    assert len(xs) <= 2 * 300 and xs == sorted(xs)
    assert min(ys) == min(values) and max(ys) == max(values)
    # every bucket's extremes survive (buckets are power-of-two runs of points)
    size = 256  # the smallest power of two with size * 300 >= 50_000
    kept = set(zip(xs, ys))
    for start in range(0, len(values), size):
        chunk = values[start:start + size]
        lo, hi = chunk.index(min(chunk)), chunk.index(max(chunk))
        assert (float(start + lo), chunk[lo]) in kept and (float(start + hi), chunk[hi]) in kept
    assert Series().decimate(10) == ([], [])
    small = Series()
    small.append(1, 2.0)
    assert small.decimate(10) == ([1.0], [2.0])


def test_a_line_holding_two_objects_is_corrupt_not_two_events(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(line(kind="train", step=1, loss=1.0) + b'{"kind":"x"},{"kind":"y"}\n'
                     + b"   \n" + line(kind="train", step=2, loss=1.0))
    reader = MetricsReader(path)
    assert [e["step"] for e in reader.poll()] == [1, 2]
    assert reader.skipped == 2


def test_an_over_long_line_read_in_chunks_counts_once(tmp_path):
    from tuitrain.runs.reader import CHUNK_BYTES, MAX_LINE_BYTES

    path = tmp_path / "metrics.jsonl"
    long = b'{"kind":"train","step":' + b"9" * (MAX_LINE_BYTES + 3 * CHUNK_BYTES) + b"}\n"
    path.write_bytes(line(kind="train", step=1, loss=1.0) + long + line(kind="train", step=2, loss=1.0))
    reader = MetricsReader(path)
    steps = []
    while True:
        steps += [e["step"] for e in reader.poll(CHUNK_BYTES)]
        if not reader.behind:
            break
    assert steps == [1, 2] and reader.skipped == 1
