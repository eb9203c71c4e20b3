"""The run-directory layout's one definition of a complete checkpoint, and the state text."""

from __future__ import annotations

import os

from tuitrain import layout
from tuitrain.runs.statetext import STALL_FLOOR_S, STARTUP_STALL_S, stall_bound, state_text, stalled_for


def _checkpoint(run_dir, step, files=layout.CHECKPOINT_FILES, empty=()):
    folder = run_dir / layout.checkpoint_name(step)
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_bytes(b"" if name in empty else b"x")
    return folder


def test_a_complete_checkpoint_holds_every_listed_file(tmp_path):
    full = _checkpoint(tmp_path, 2)
    _checkpoint(tmp_path, 10)
    _checkpoint(tmp_path, 12, files=("trainer_state.json",))  # no weights
    _checkpoint(tmp_path, 14, empty=("model.safetensors",))  # a file cut to nothing
    _checkpoint(tmp_path, 16, files=())  # an empty folder
    (tmp_path / "checkpoint-20").symlink_to(full)  # not a real folder of this run
    (tmp_path / "checkpoint-x").mkdir()
    (tmp_path / layout.leftover_name(30, "tmp", 123)).mkdir()
    assert [p.name for p in layout.complete_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-10"]
    assert layout.latest_complete_checkpoint(tmp_path).name == "checkpoint-10"
    assert layout.checkpoint_step("checkpoint-007") == 7 and layout.checkpoint_step("checkpoint-") is None
    assert layout.LEFTOVER_RE.match(".checkpoint-30.tmp-123").groups() == ("checkpoint-30", "tmp", "123")
    assert layout.latest_complete_checkpoint(tmp_path / "missing") is None


def test_file_modes_are_never_world_writable(tmp_path):
    old = os.umask(0)
    try:
        assert layout.file_mode() == 0o664 and layout.file_mode(0o777) == 0o775
        assert layout.restrict_umask() == 0o002
    finally:
        os.umask(old)


def test_the_state_text():
    assert state_text("running") == "running"
    assert state_text("running", stalled=245) == "stalled (no event for 4m)"
    assert state_text("stopping", stalled=3700) == "stopping, stalled (no event for 1h01m)"
    assert state_text("finished", stalled=245) == "finished"  # only a live run stalls
    assert state_text("finished", failed_saves=6) == "finished · 6 checkpoint saves failed"
    assert state_text("failed", failed_saves=1, lost_events=1) == "failed · 1 checkpoint save failed · 1 event lost"
    assert state_text("finished", final_status_lost=True) == "finished · its last events were lost"


def test_a_stall_is_much_longer_than_the_runs_usual_gap():
    assert stall_bound([]) == stall_bound([100.0]) == STARTUP_STALL_S  # still starting
    steady = [float(t) for t in range(0, 200, 2)]  # an event every 2 s
    assert stall_bound(steady) == STALL_FLOOR_S
    slow = [float(t) for t in range(0, 2000, 20)]  # every 20 s: ten gaps
    assert stall_bound(slow) == 200.0
    with_eval = steady + [steady[-1] + 100.0]  # an evaluation took 100 s once
    assert stall_bound(with_eval) == 200.0
    assert stalled_for(steady, 59.0) is None and stalled_for(steady, 61.0) == 61.0
    assert stalled_for(steady, None) is None
