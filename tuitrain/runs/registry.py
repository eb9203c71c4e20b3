"""Finding runs again: the ones tuitrain launched (anywhere) and every run under the runs root.

Launched runs are recorded in `$XDG_STATE_HOME/tuitrain/runs.txt` (one absolute run dir a
line, appended under an fcntl lock), so a run whose output_dir lies outside the runs root is
still found by the next `tuitrain`. Runs owned by another user are ignored unless asked.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitrain import safeio
from tuitrain.layout import MAX_EVENT_BYTES, UNREADABLE
from tuitrain.runs.names import UnknownRunError, resolve_run  # noqa: F401 - UnknownRunError: API
from tuitrain.runs.rundir import METRICS, RUN_JSON, RunDirError, read_run_json, records
from tuitrain.runs.state import derive_state
from tuitrain.runs.statetext import integrity_counts, lineage_text, state_text, stalled_for


# A sweep's directory holds this file beside its members (`tuitrain.sweeps.store`).
SWEEP_JSON = "sweep.json"
# Train events the ETA's step rate is measured over (the dashboard's `run_info` is this one).
RATE_WINDOW = 20


@dataclass
class RunInfo:
    """What `tuitrain ls` and the Runs screen show of one run."""

    run_dir: Path
    name: str
    state: str
    preset_name: str | None = None
    launcher: str | None = None
    pid: int | None = None
    step: int | None = None
    max_steps: int | None = None
    last_loss: float | None = None
    best_metric: float | None = None
    started: float | None = None
    ended: float | None = None
    eta_s: float | None = None
    error: str | None = None
    device: dict[str, Any] | None = None  # the last `start` event's `device`: where it trains
    elapsed_s: float | None = None  # time spent training, over every segment (a resume adds one)
    summary: dict | None = None  # the end-of-training summary event (train_loss, train_runtime, …)
    # Seconds since the last event, when that is much longer than the run's usual interval.
    stalled_for: float | None = None
    # In the current segment: checkpoint saves that failed, events the trainer could not write.
    failed_saves: int = 0
    lost_events: int = 0
    # The trainer ended but its final events could not be written (its exit code told the outcome).
    final_status_lost: bool = False
    # Lineage (run.json): the rewinds of this run, oldest first, and the run it was forked from.
    rewinds: list[dict[str, Any]] = field(default_factory=list)
    parent: dict[str, Any] | None = None
    # A sweep's member (run.json): the sweep's name and the values this member varies.
    sweep: str | None = None
    sweep_values: dict[str, Any] | None = None

    @property
    def lineage_text(self) -> str:
        """`rewound at 300 · 1 abandoned line`, `fork of cosine at 300`, or ``."""
        return lineage_text(self.rewinds, self.parent)

    @property
    def state_text(self) -> str:
        """The state as shown to a person: `running`, `stalled (no event for 4m)`,
        `finished · 6 checkpoint saves failed`, `finished · rewound at 300 · 1 abandoned line` …"""
        return state_text(self.state, self.stalled_for, self.failed_saves, self.lost_events,
                          self.final_status_lost, self.lineage_text)

    @property
    def progress(self) -> float | None:
        """Fraction of max_steps done, when both are known."""
        if self.step is None or not self.max_steps:
            return None
        return min(1.0, self.step / self.max_steps)


def runs_root() -> Path:
    """Where new runs go and where runs are looked for: $TUITRAIN_RUNS or ./runs."""
    return Path(os.environ.get("TUITRAIN_RUNS") or "runs").expanduser()


def state_dir() -> Path:
    """tuitrain's state folder: $XDG_STATE_HOME/tuitrain or ~/.local/state/tuitrain."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tuitrain"


def _registry_file() -> Path:
    return state_dir() / "runs.txt"


def record_launched(run_dir: Path) -> None:
    """Remember `run_dir` in the registry of launched runs (idempotent, locked)."""
    path = _registry_file()
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):  # each one private (XDG), not only the last
        folder.mkdir(mode=0o700, exist_ok=True)
    line = str(Path(run_dir).resolve())
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "r+", encoding="utf-8") as fh:
            fh.seek(0)
            if line in (entry.rstrip("\n") for entry in fh):
                return
            fh.seek(0, os.SEEK_END)
            fh.write(line + "\n")
            fh.flush()
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def launched_dirs() -> list[Path]:
    """Every run dir in the registry of launched runs (shared lock while reading)."""
    path = _registry_file()
    try:
        with open(path, encoding="utf-8") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return []
    return [Path(line) for line in lines if line.strip()]


def _tail_events(path: Path, max_bytes: int = 65536) -> list[dict[str, Any]]:
    """The events of the last `max_bytes` of `path`, and its first one (the run's `start`).

    Raises `OSError` (`safeio.NotRegularFile` for a FIFO or a device) when it cannot be read."""
    try:
        data = safeio.read_tail(path, max_bytes)
    except FileNotFoundError:
        return []
    first = b""
    if len(data) >= max_bytes:
        head = safeio.read_head(path, MAX_EVENT_BYTES + 1)
        first = head[:head.find(b"\n")] if b"\n" in head else b""
    events = []
    for raw in [first, *data.splitlines()]:
        try:
            event = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _pending_rewind(rewinds: list[dict[str, Any]]) -> tuple[float, int, Any] | None:
    """(time, step, folder) of the run's last rewind, as run.json records it."""
    last = rewinds[-1] if rewinds else None
    if isinstance(last, dict) and isinstance(last.get("t"), (int, float)) and isinstance(last.get("step"), int):
        return float(last["t"]), last["step"], last.get("folder")
    return None


def _after(rewind: tuple[float, int, Any], event: dict[str, Any]) -> bool:
    """Whether `event` is of the segment that followed the rewind: its start event (which
    names the rewind's folder), or anything of that segment written after it."""
    kind, t, rewound = event.get("kind"), event.get("t"), event.get("rewound")
    if kind == "start" and isinstance(rewound, dict) and rewound.get("folder") == rewind[2]:
        return True
    return kind in ("start", "train") and isinstance(t, (int, float)) and t >= rewind[0]


def _cut(points: list[tuple[float, Any]], step: float) -> None:
    """Drop the trailing points past `step` (a later segment replaces them)."""
    while points and points[-1][0] > step:
        points.pop()


def _progress(run_dir: Path, info: RunInfo, now: float) -> None:
    train: list[dict[str, Any]] = []  # the current segment's train events (its step rate)
    times: list[float] = []
    # (step, value) of the current line: each later segment cuts them at its step
    losses: list[tuple[float, float]] = []
    bests: list[tuple[float, Any]] = []
    rewind = _pending_rewind(info.rewinds)
    started_after = False  # an event of the segment that followed the last rewind was seen
    for event in _tail_events(run_dir / METRICS):
        kind = event.get("kind")
        t = event.get("t")
        step = event.get("step")
        if rewind is not None and not started_after:
            started_after = _after(rewind, event)
        if kind == "start":
            times, train = [], []  # a resume's rate starts afresh: the stopped time is no training time
            info.failed_saves = info.lost_events = 0
            if isinstance(event.get("max_steps"), int):
                info.max_steps = event["max_steps"]
            if isinstance(step, int):
                info.step = step
                _cut(losses, step)
                _cut(bests, step)
            if isinstance(event.get("device"), dict):
                info.device = event["device"]
            info.summary = None
        elif kind == "summary":
            info.summary = event
        elif kind == "train" and isinstance(step, (int, float)):
            train.append(event)
            info.step = int(step)
            if isinstance(event.get("loss"), (int, float)):
                losses.append((step, float(event["loss"])))
        elif kind == "checkpoint" and event.get("best_metric") is not None and isinstance(step, (int, float)):
            bests.append((step, event["best_metric"]))
        saves, lost = integrity_counts(event)
        info.failed_saves = saves if saves is not None else info.failed_saves
        info.lost_events = lost if lost is not None else info.lost_events
        if isinstance(t, (int, float)):
            times.append(float(t))
    if rewind is not None and not started_after:
        # rewound, and the new line has not started yet (or failed before its first event)
        info.step, info.summary, train = rewind[1], None, []
        _cut(losses, rewind[1])
        _cut(bests, rewind[1])
    info.last_loss = losses[-1][1] if losses else None
    info.best_metric = bests[-1][1] if bests else None
    if info.state in ("running", "stopping") and len(train) >= 2 and info.max_steps:
        first, last = train[-RATE_WINDOW:][0], train[-1]
        ds = last["step"] - first["step"]
        dt = float(last.get("t", 0)) - float(first.get("t", 0))
        if ds > 0 and dt > 0:
            info.eta_s = max(0.0, (info.max_steps - last["step"]) * dt / ds)
    if info.state in ("running", "stopping"):
        since = times[-1] if times else info.started
        info.stalled_for = stalled_for(times, now - since if since else None)
        if info.stalled_for is not None:
            info.eta_s = None  # a frozen ETA would be a lie


def run_info(run_dir: Path | str, now: float | None = None) -> RunInfo:
    """The RunInfo of one run directory (`RunDirError` when it is not one).

    A run whose event stream cannot be read safely (a FIFO, a device) is `unreadable`.
    `now` (wall clock, default the present) is the moment its silence is measured at.
    """
    run_dir = Path(run_dir).resolve()
    data = read_run_json(run_dir)
    state, error = derive_state(run_dir, data)
    info = RunInfo(
        run_dir=run_dir, name=str(data.get("name") or run_dir.name), state=state,
        preset_name=data.get("preset_name"), launcher=data.get("launcher"),
        pid=data.get("pid"), started=data.get("started"), ended=data.get("ended"),
        error=error, final_status_lost=bool(data.get("final_status_lost")),
        rewinds=records(data.get("rewinds")), parent=data.get("parent") if isinstance(data.get("parent"), dict) else None,
        sweep=data.get("sweep") if isinstance(data.get("sweep"), str) else None,
        sweep_values=data.get("sweep_values") if isinstance(data.get("sweep_values"), dict) else None,
    )
    try:
        _progress(run_dir, info, time.time() if now is None else now)
    except OSError as exc:
        info.state, info.eta_s, info.stalled_for = UNREADABLE, None, None
        info.error = f"{run_dir / METRICS}: {exc.strerror or exc}"
    info.elapsed_s = _elapsed(data, state)
    return info


def unreadable_info(run_dir: Path, reason: str) -> RunInfo:
    """How a directory whose run.json cannot be read is listed."""
    return RunInfo(run_dir=Path(run_dir), name=Path(run_dir).name, state=UNREADABLE, error=reason)


def _elapsed(data: dict[str, Any], state: str) -> float | None:
    """Seconds trained: earlier segments (`trained_before`, kept by a resume) plus this one."""
    before = data.get("trained_before")
    before = float(before) if isinstance(before, (int, float)) else 0.0
    started, ended = data.get("started"), data.get("ended")
    if not isinstance(started, (int, float)):
        return before or None
    if not isinstance(ended, (int, float)):
        if state not in ("running", "stopping"):
            return before or None
        ended = time.time()
    return before + max(0.0, float(ended) - float(started))


def _owned(path: Path, include_others: bool) -> bool:
    if include_others:
        return True
    try:
        return path.stat().st_uid == os.getuid()
    except OSError:
        return False


def root_is_chosen(root: Path | None = None) -> bool:
    """Whether listings keep to one runs root: one given here, by `--runs` or `$TUITRAIN_RUNS`."""
    return root is not None or bool(os.environ.get("TUITRAIN_RUNS"))


def within_root(run_dir: Path, root: Path | None = None) -> bool:
    """Whether `run_dir` lies under the runs root (at any depth)."""
    root = Path(root) if root is not None else runs_root()
    try:
        return Path(run_dir).resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def candidate_dirs(root: Path | None = None, include_others: bool = False, everywhere: bool = True) -> list[Path]:
    """Run dirs under the runs root and (`everywhere`) every launched one, deduplicated, owner-filtered."""
    root = Path(root) if root is not None else runs_root()
    seen: dict[Path, None] = {}
    found = [d for d in launched_dirs() if everywhere or within_root(d, root)]
    if root.is_dir():
        found += sorted(p.parent for p in root.glob(f"*/{RUN_JSON}"))
        # a sweep's members: `<root>/<sweep>/<member>/`, beside the sweep's `sweep.json`
        found += sorted(p.parent for p in root.glob(f"*/*/{RUN_JSON}") if (p.parent.parent / SWEEP_JSON).is_file())
    for path in found:
        path = path.resolve()
        if path in seen or not os.path.lexists(path / RUN_JSON):
            continue
        if _owned(path / RUN_JSON, include_others):
            seen[path] = None
    return list(seen)


def list_runs(root: Path | None = None, include_others: bool = False, everywhere: bool = True) -> list[RunInfo]:
    """Every run found, newest first; a directory that cannot be read is listed as unreadable.

    `everywhere=False` keeps to the runs under the root (`tuitrain ls` and the app do when
    `root_is_chosen()`, unless asked for all).
    """
    runs = []
    for path in candidate_dirs(root, include_others, everywhere):
        try:
            runs.append(run_info(path))
        except RunDirError as exc:
            runs.append(unreadable_info(path, str(exc)))
    runs.sort(key=lambda r: r.started or 0.0, reverse=True)
    return runs


def find_run(name_or_dir: str | Path, root: Path | None = None) -> RunInfo:
    """The run `name_or_dir` names: a run directory, a run's name or a unique prefix of one
    (`names.resolve_run`); `UnknownRunError` (with "did you mean") otherwise."""
    return run_info(resolve_run(name_or_dir, root))
