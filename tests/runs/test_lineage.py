"""Run lineage without training: what a rewind sets aside, the time a line took, how `ls`,
`tail` and the histories read a rewound run and a fork (synthetic run directories)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tuitrain.cli import main
from tuitrain.layout import CHECKPOINT_FILES, complete_checkpoints, entries_past, latest_complete_checkpoint
from tuitrain.runs.history import RunHistory
from tuitrain.runs.lineage import LineClock, line_seconds_at, rewind, set_aside
from tuitrain.runs.registry import run_info
from tuitrain.runs.rundir import update_run_json

from .conftest import make_run


def _checkpoint(run_dir: Path, step: int) -> Path:
    folder = run_dir / f"checkpoint-{step}"
    folder.mkdir()
    for name in CHECKPOINT_FILES:
        (folder / name).write_text("{}")
    return folder


def _events(run_dir: Path, events: list[dict]) -> None:
    with open(run_dir / "metrics.jsonl", "a") as fh:
        for event in events:
            fh.write(json.dumps(event) + "\n")


def _segment(start_t: float, first: int, last: int, *, resumed=None, saves=(), loss=1.0, extra=None) -> list[dict]:
    """A segment's events: start at `first`, a train event per step to `last` (a second each),
    checkpoints at `saves`, a final status."""
    out = [{"v": 1, "kind": "start", "t": start_t, "max_steps": last, "step": first, "resumed_from": resumed,
            **(extra or {})}]
    for step in range(first + 1, last + 1):
        t = start_t + (step - first)
        out.append({"kind": "train", "t": t, "step": step, "loss": loss})
        if step in saves:
            out.append({"kind": "checkpoint", "t": t, "step": step, "path": f"checkpoint-{step}"})
    out.append({"kind": "status", "t": start_t + (last - first) + 0.5, "state": "finished", "error": None})
    return out


@pytest.fixture
def trained(isolated) -> Path:
    """A finished run of 40 steps that saved at 10, 20, 30, 40 (and a leftover of a killed re-save of 40)."""
    run_dir = make_run(isolated, "r")
    _events(run_dir, _segment(1000.0, 0, 40, saves=(10, 20, 30, 40)))
    for step in (10, 20, 30, 40):
        _checkpoint(run_dir, step)
    (run_dir / ".checkpoint-40.old-99999").mkdir()
    update_run_json(run_dir, state="finished", started=999.0, ended=1041.0)
    return run_dir


def test_a_rewind_sets_every_later_entry_aside_and_nothing_is_deleted(trained):
    record = rewind(trained, "checkpoint-20", 40)
    folder = trained / record["folder"]
    assert record["folder"].startswith("rewound/") and record["step"] == 20 and record["from_step"] == 40
    assert record["checkpoints"] == ["checkpoint-30", ".checkpoint-40.old-99999", "checkpoint-40"]
    assert sorted(p.name for p in folder.iterdir()) == [".checkpoint-40.old-99999", "checkpoint-30", "checkpoint-40"]
    assert [p.name for p in complete_checkpoints(trained)] == ["checkpoint-10", "checkpoint-20"]
    assert latest_complete_checkpoint(trained).name == "checkpoint-20"
    assert entries_past(trained, 20) == []
    assert record["line_seconds"] == 20.0  # the line took 20 s to reach checkpoint-20
    # a second rewind on the same second gets a folder of its own
    _checkpoint(trained, 30)
    again = set_aside(trained, 20, when=record["t"])
    assert again[0] != record["folder"] and again[1] == ["checkpoint-30"]


def test_the_line_clock_counts_the_current_line_only():
    clock = LineClock()
    for event in (_segment(1000.0, 0, 40, saves=(10, 20, 30, 40))  # 0→40 in 40 s
                  + _segment(5000.0, 20, 35, resumed="checkpoint-20", saves=(30,))  # rewound to 20: +10 s to 30
                  + _segment(9000.0, 30, 50, resumed="checkpoint-30", saves=(50,))):  # resumed: +20 s to 50
        clock.feed(event)
    assert clock.seconds_at(20) == 20.0
    assert clock.seconds_at(30) == 30.0  # the new line's checkpoint-30, not the abandoned one's
    assert clock.seconds_at(50) == 50.0
    assert clock.seconds_at(45) == 30.0  # a lost checkpoint event: the newest one before it
    fork_start = LineClock()
    for event in _segment(100.0, 300, 310, resumed="/runs/parent/checkpoint-300", saves=(310,)):
        fork_start.feed(event)
    assert fork_start.seconds_at(310) == 10.0  # a run from another run's checkpoint counts its own time


def test_ls_of_a_rewound_run_follows_the_new_line(trained, capsys):
    record = rewind(trained, "checkpoint-20", 40)
    update_run_json(trained, rewinds=[record], state="queued", trained_before=record["line_seconds"],
                    resumed_from="checkpoint-20", started=None, ended=None, supervisor=None)
    # not started yet (or failed before its first event): the line is cut at 20 already
    info = run_info(trained)
    assert info.step == 20 and info.last_loss == 1.0 and info.summary is None
    assert info.state_text.endswith("rewound at 20 · 1 abandoned line")
    # the new line trains to 25 and stops
    start = time.time()
    _events(trained, _segment(start, 20, 25, resumed="checkpoint-20", loss=0.5,
                              extra={"rewound": {"folder": record["folder"], "from_step": 40}}))
    update_run_json(trained, state="stopped", started=start - 1, ended=start + 6)
    info = run_info(trained)
    assert (info.step, info.max_steps, info.last_loss) == (25, 25, 0.5)
    assert info.elapsed_s == pytest.approx(20.0 + 7.0)  # the line to 20, then the new segment
    assert main(["ls"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("r ")][0]
    assert "stopped · rewound at 20 · 1 abandoned line" in row and "25/25" in row


def test_tail_shows_the_current_line_only(trained, capsys):
    record = rewind(trained, "checkpoint-20", 40)
    _events(trained, _segment(time.time(), 20, 22, resumed="checkpoint-20", loss=0.5,
                              extra={"rewound": {"folder": record["folder"], "from_step": 40}}))
    assert main(["tail", str(trained), "-n", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    steps = [int(line.split("step ")[1].split()[0]) for line in lines if " step " in line]
    assert steps == [18, 19, 20, 20, 20, 21, 22]  # …20, checkpoint-20, the new start; nothing of 21…40
    start = [line for line in lines if " start " in line][0]
    assert f"rewound from step 40 (checkpoints set aside in {record['folder']})" in start


def test_the_history_drops_the_abandoned_line_and_keeps_it_to_draw(trained):
    record = rewind(trained, "checkpoint-20", 40)
    update_run_json(trained, rewinds=[record])
    _events(trained, _segment(5000.0, 20, 30, resumed="checkpoint-20", loss=0.5,
                              extra={"rewound": {"folder": record["folder"], "from_step": 40}}))
    history = RunHistory(trained)
    history.update()
    loss = history.series["loss"]
    assert list(loss.xs) == list(range(1, 31)) and loss.ys[-1] == 0.5
    assert [list(line.xs) for line in history.abandoned] == [list(range(21, 41))]
    assert history.state_text.endswith("rewound at 20 · 1 abandoned line")


def test_the_history_cuts_the_line_before_the_new_start_event_arrives(trained):
    history = RunHistory(trained)
    history.update()
    assert history.last_step == 40
    record = rewind(trained, "checkpoint-20", 40)
    update_run_json(trained, rewinds=[record])
    history._state_checked = 0.0  # the next update reads run.json again
    assert history.update()
    assert history.last_step == 20 and max(history.series["loss"].xs) == 20
    assert len(history.abandoned) == 1
    # the start event comes: nothing is abandoned twice
    _events(trained, _segment(5000.0, 20, 22, resumed="checkpoint-20",
                              extra={"rewound": {"folder": record["folder"], "from_step": 40}}))
    history.update()
    assert len(history.abandoned) == 1 and history.last_step == 22


def test_a_fork_reads_its_parent_as_it_was_when_forked(isolated):
    parent = make_run(isolated, "p")
    _events(parent, _segment(1000.0, 0, 40, saves=(20, 40), loss=2.0))
    size = os.path.getsize(parent / "metrics.jsonl")
    # after the fork was made, the parent is rewound to 10 and goes on: the fork does not see it
    _events(parent, _segment(3000.0, 10, 50, resumed="checkpoint-10", loss=9.0,
                             extra={"rewound": {"folder": "rewound/x", "from_step": 40}}))
    fork = make_run(isolated, "p-from-20")
    update_run_json(fork, parent={"run": "p", "run_dir": str(parent), "checkpoint": "checkpoint-20", "step": 20,
                                  "metrics_bytes": size})
    _events(fork, _segment(2000.0, 20, 30, resumed="checkpoint-20", loss=1.0))
    history = RunHistory(fork)
    for _ in range(4):
        history.update()
    assert history.parent_ready
    loss = history.parent_series["loss"]
    assert list(loss.xs) == list(range(1, 21)) and set(loss.ys) == {2.0}
    assert min(history.series["loss"].xs) == 21
    assert history.state_text.endswith("fork of p at 20")
    # a fork of the fork reaches back through both
    grand = make_run(isolated, "p-from-20-from-25")
    update_run_json(grand, parent={"run": "p-from-20", "run_dir": str(fork), "checkpoint": "checkpoint-25",
                                   "step": 25, "metrics_bytes": os.path.getsize(fork / "metrics.jsonl")})
    _events(grand, _segment(4000.0, 25, 28, resumed="checkpoint-25"))
    history = RunHistory(grand)
    for _ in range(8):
        history.update()
    assert list(history.parent_series["loss"].xs) == list(range(1, 26))
    assert list(history.parent_series["loss"].ys) == [2.0] * 20 + [1.0] * 5


def test_a_fork_whose_parent_is_gone_still_shows_its_own_line(isolated):
    fork = make_run(isolated, "orphan")
    update_run_json(fork, parent={"run": "gone", "run_dir": str(isolated / "gone"), "checkpoint": "checkpoint-5",
                                  "step": 5, "metrics_bytes": 1000})
    _events(fork, _segment(2000.0, 5, 9, resumed="checkpoint-5"))
    history = RunHistory(fork)
    for _ in range(3):
        history.update()
    assert history.parent_ready and history.parent_series == {}
    assert list(history.series["loss"].xs) == [6, 7, 8, 9]
