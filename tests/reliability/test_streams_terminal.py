"""Bad event streams and hostile text, through RunHistory and the `tuitrain tail`/`ls` commands."""

from __future__ import annotations

import json
import os
import time

from tests.reliability.conftest import cli, new_run
from tuitrain.runs.history import RunHistory
from tuitrain.runs.rundir import update_run_json


def _line(**event) -> bytes:
    return (json.dumps({"v": 1, "t": time.time(), **event}) + "\n").encode()


def _train(step: int) -> bytes:
    return _line(kind="train", step=step, loss=1.0 / step, learning_rate=0.01)


def _hostile_stream() -> tuple[bytes, int]:
    """Good events 1..5 among bad lines; returns the bytes and how many lines are corrupt.

    One more line is a well-formed event of schema version 2: RunHistory skips and counts it.
    """
    parts = [
        _line(kind="start", run="r", max_steps=8, resumed_from=None, step=0, world_size=1),
        _train(1),
        b'{"v":1,"kind":"train","step":2,"lo\n',                    # truncated
        _train(2),
        _train(3)[:-1] + _train(99),                                # two writers interleaved
        b"\xff\xfe\x00garbage\x1b[31m\n",                            # corrupt bytes
        b'{"v":1,"kind":"train","step":' + b"9" * (10 * 1024 * 1024) + b"}\n",  # 10 MB line
        b"[1, 2, 3]\n",                                              # JSON, not an event
        _train(3),
        json.dumps({"v": 2, "kind": "train", "step": 4, "loss": 123.0, "new": "shape"}).encode() + b"\n",
        _train(4),
        _train(5),
    ]
    return b"".join(parts), 5


def test_history_survives_a_hostile_stream_and_a_replaced_file(isolated):
    run_dir = new_run(isolated, "hostile")
    data, bad = _hostile_stream()
    metrics = run_dir / "metrics.jsonl"
    metrics.write_bytes(data + _train(6)[:20])  # the writer is mid-line
    history = RunHistory(run_dir)
    assert history.update()
    assert list(history.series["loss"].xs) == [1, 2, 3, 4, 5]
    assert history.series["loss"].ys[3] == 0.25  # the v2 line's loss is not taken
    assert history.skipped == bad + 1
    with open(metrics, "ab") as fh:
        fh.write(_train(6)[20:])
    history.update()
    assert list(history.series["loss"].xs) == [1, 2, 3, 4, 5, 6]

    # Replaced while tailed (log rotation, a restored backup): history rebuilds from the new file.
    fresh = run_dir / "metrics.new"
    fresh.write_bytes(_line(kind="start", run="r", max_steps=8, resumed_from=None, step=0) + _train(1) + _train(2))
    os.replace(fresh, metrics)
    assert history.update()
    assert list(history.series["loss"].xs) == [1, 2]
    metrics.write_bytes(_train(1))  # truncated in place, then rewritten shorter
    history.update()
    assert list(history.series["loss"].xs) == [1]


def test_tail_prints_the_good_events_and_says_what_it_skipped(isolated):
    run_dir = new_run(isolated, "hostile")
    data, bad = _hostile_stream()
    (run_dir / "metrics.jsonl").write_bytes(data)
    out = cli("tail", str(run_dir), "-n", "100")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stdout.splitlines()
    assert sum("step 5 " in ln for ln in lines) == 1
    assert f"skipped {bad} unreadable line(s)" in out.stderr
    assert len(out.stdout) < 100_000  # the 10 MB line is not echoed


HOSTILE = "\x1b[2J\x1b]0;owned\x07\x1b[31mred\x9b1m\r\x08\x00[bold]markup[/]"


def _assert_inert(text: str) -> None:
    for ch in ("\x1b", "\x07", "\x9b", "\x08", "\x00", "\r"):
        assert ch not in text, f"raw {ch!r} reached the terminal"


def test_ls_and_tail_never_print_raw_control_characters(isolated):
    run_dir = new_run(isolated, "evil\x1b[31m\x07name")
    stream = b"".join([
        _line(kind="start", run=run_dir.name, max_steps=8, resumed_from=None, step=0, world_size=1),
        _train(1),
        _line(kind="sample", step=1, text="sample " + HOSTILE),
        _line(kind="warning", step=1, message="log " + HOSTILE),
        _line(kind="train", step=2, loss=0.5, **{"note" + HOSTILE: HOSTILE}),
        _line(kind="status", state="failed", error="boom " + HOSTILE + "\nsecond line"),
    ])
    (run_dir / "metrics.jsonl").write_bytes(stream)
    (run_dir / "stdout.log").write_text("trainer said " + HOSTILE + "\n", encoding="utf-8")
    update_run_json(run_dir, state="failed", launcher="local" + HOSTILE, started=time.time() - 5,
                    ended=time.time(), exit_code=1, error="boom " + HOSTILE)
    ls = cli("ls")
    assert ls.returncode == 0, ls.stderr
    assert "evil" in ls.stdout and "failed" in ls.stdout
    _assert_inert(ls.stdout + ls.stderr)
    tail = cli("tail", str(run_dir), "-n", "50")
    assert tail.returncode == 0, tail.stderr
    assert "sample" in tail.stdout and "[bold]markup[/]" in tail.stdout
    _assert_inert(tail.stdout + tail.stderr)
    by_name = cli("tail", run_dir.name, "-n", "50")
    assert by_name.returncode == 0, by_name.stderr
    _assert_inert(by_name.stdout + by_name.stderr)
