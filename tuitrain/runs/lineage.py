"""A run's lineage: the line it follows, the lines a rewind left, the run it was forked from.

A run's event stream holds every segment it trained, each opened by a `start` event. A
segment that starts from checkpoint N replaces the events of the line past N: from then on
the run follows the new line (readers fold at the `start` event).

A *rewind* (`tuitrain resume RUN --checkpoint checkpoint-N` with N older than the run's newest
checkpoint, or "Rewind" in the app) does that on purpose: `rewind()` sets every checkpoint
past N aside in `RUN/rewound/<time>/` (kept, never listed, rotated or resumed from), appends
a record to run.json's `rewinds`, and the trainer's `start` event carries `rewound`. The time
trained (`elapsed`) then counts the new line only: the time the line took up to checkpoint N
(`LineClock`) plus the new segment.

A *fork* (`tuitrain fork`, `runs.fork`) is a new run directory that starts from another run's
checkpoint; its run.json and first `start` event name the parent (`parent_record`), and
the fork's charts draw the parent's line up to N from the parent's events as they were when
the fork was made (`metrics_bytes`: the parent's event log is append-only).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tuitrain.layout import METRICS, REWOUND_DIR, checkpoint_step, entries_past, rewound_folder_name
from tuitrain.runs.reader import MetricsReader


class LineClock:
    """Seconds the current line took to train up to each of its checkpoints, folded from the
    event stream: a segment counts from its `start` event, on top of the line time of the
    checkpoint it started from; a later segment drops the checkpoints past its step."""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}  # checkpoint step -> line seconds when it was written
        self._t0: float | None = None  # this segment's start event
        self._base = 0.0  # the line seconds this segment started from

    def feed(self, event: dict[str, Any]) -> None:
        """Apply one event."""
        kind, t, step = event.get("kind"), event.get("t"), event.get("step")
        if not isinstance(t, (int, float)):
            return
        if kind == "start":
            step = step if isinstance(step, int) else 0
            self.at = {s: v for s, v in self.at.items() if s <= step}
            local = event.get("resumed_from") is not None and "/" not in str(event.get("resumed_from"))
            self._base = self.seconds_at(step) if local and step else 0.0
            self._t0 = float(t)
        elif kind == "checkpoint" and isinstance(step, int) and self._t0 is not None:
            self.at[step] = self._base + max(0.0, float(t) - self._t0)

    def seconds_at(self, step: int) -> float:
        """Line seconds at checkpoint `step` (that of the newest checkpoint before it when the
        checkpoint's own event was lost; 0 for none)."""
        if step in self.at:
            return self.at[step]
        earlier = [s for s in self.at if s <= step]
        return self.at[max(earlier)] if earlier else 0.0


def line_seconds_at(run_dir: Path, step: int) -> float:
    """Seconds the run's current line took to reach checkpoint `step` (reads the event log a
    chunk at a time)."""
    clock = LineClock()
    reader = MetricsReader(Path(run_dir) / METRICS)
    for events in reader.catch_up():
        for event in events:
            clock.feed(event)
    return clock.seconds_at(step)


def set_aside(run_dir: Path, step: int, when: float | None = None) -> tuple[str, list[str]]:
    """Move every checkpoint folder (and save leftover) past `step` into `rewound/<time>/`;
    returns that folder (relative to the run) and the names moved. The caller holds the
    run's owner lock: no trainer writes checkpoints meanwhile."""
    run_dir = Path(run_dir)
    moving = entries_past(run_dir, step)
    if not moving:
        return "", []
    base = run_dir / REWOUND_DIR
    base.mkdir(exist_ok=True)
    taken = {p.name for p in base.iterdir()}
    name = rewound_folder_name(time.time() if when is None else when, taken)
    folder = base / name
    folder.mkdir()
    for path in moving:
        os.rename(path, folder / path.name)  # same filesystem: one rename each, nothing copied
    _fsync_dir(folder)
    _fsync_dir(run_dir)
    return f"{REWOUND_DIR}/{name}", [p.name for p in moving]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rewind(run_dir: Path, checkpoint: str, line_step: int | None) -> dict[str, Any]:
    """Rewind the run (owner lock held) to `checkpoint`: set the later checkpoints aside and
    return the run.json record of it (`rewinds` entry): `step`, `checkpoint`, `from_step`
    (the last step of the line left), `folder`, `checkpoints` (those set aside), `t`, and
    `line_seconds` (the time the line took up to the checkpoint)."""
    step = checkpoint_step(checkpoint)
    when = time.time()
    seconds = line_seconds_at(run_dir, step)
    folder, moved = set_aside(run_dir, step, when)
    return {"step": step, "checkpoint": checkpoint, "from_step": line_step, "folder": folder or None,
            "checkpoints": moved, "t": when, "line_seconds": round(seconds, 3)}


def start_lineage(record: dict[str, Any]) -> dict[str, Any]:
    """The `rewound` object of the `start` event that follows a rewind (`--lineage`)."""
    return {"rewound": {k: record[k] for k in ("folder", "from_step", "checkpoints") if k in record}}


def parent_record(checkpoint: Path, fork: bool = False) -> dict[str, Any] | None:
    """run.json's `parent` for a run that starts from `checkpoint` of another run: `run` (its
    name), `run_dir`, `id`, `checkpoint`, `step`, `metrics_bytes` (its event log's size now),
    `fork` (made by `tuitrain fork`, whose trainer honours changed optimizer settings; false
    for a run whose `core.resume_from_checkpoint` names the checkpoint); None when the
    checkpoint is not inside a run directory."""
    from tuitrain.runs.rundir import RunDirError, read_run_json

    checkpoint = Path(checkpoint).resolve()
    parent_dir = checkpoint.parent
    try:
        data = read_run_json(parent_dir)
    except RunDirError:
        return None
    try:
        size = (parent_dir / METRICS).stat().st_size
    except OSError:
        size = 0
    return {"run": str(data.get("name") or parent_dir.name), "run_dir": str(parent_dir), "id": data.get("id"),
            "checkpoint": checkpoint.name, "step": checkpoint_step(checkpoint.name), "metrics_bytes": size,
            "fork": fork}


def parent_lineage(record: dict[str, Any] | None) -> dict[str, Any]:
    """The `parent` object of a fork's first `start` event (`--lineage`)."""
    if not record:
        return {}
    return {"parent": {k: record[k] for k in ("run", "run_dir", "checkpoint", "step", "fork") if k in record}}
