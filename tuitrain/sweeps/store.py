"""A sweep on disk: `RUNS_ROOT/<sweep>/sweep.json` beside its members' run directories.

`sweep.json` (format 1): `name`, `preset` (the source preset's path), `created`, `axes`
(`grid`, `zip`, `sample` as text, `set`), `count`, `seed`, `parallel` (int or "per-gpu"),
`members` (`name`, `dir` relative to the sweep, `values`), `refused` (members this device
cannot run: `name`, `values`, `reason`), `queue` (`state`: running | stopped | finished,
`pid`, `host`, `started`, `ended`). The queue process holds the sweep directory's owner
lock (`tuitrain.runlock`) for as long as it lives, so a queue that died is never taken for a
running one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitrain import runlock
from tuitrain.errors import TuitrainError
from tuitrain.runs.registry import run_info, runs_root
from tuitrain.runs.rundir import RunDirError, atomic_write_text, locked, read_json_object

__all__ = ["SWEEP_JSON", "SweepError", "MemberEntry", "SweepInfo", "is_sweep_dir", "read_sweep", "write_sweep",
           "update_sweep", "list_sweeps", "member_states", "progress", "progress_text", "queue_alive"]

SWEEP_JSON = "sweep.json"
FORMAT = 1
MAX_SWEEP_JSON_BYTES = 8 * 1024 * 1024
QUEUE_STATES = ("running", "stopped", "finished")
# The order states are counted in, and the words `progress_text` gives them.
_SHOWN = (("running", "running"), ("queued", "queued"), ("stopped", "stopped"), ("failed", "failed"),
          ("diverged", "diverged"), ("refused", "refused"))
DONE_STATES = ("finished", "failed", "diverged")


class SweepError(TuitrainError):
    """A sweep directory that cannot be read, or an operation its state does not allow."""


@dataclass(frozen=True)
class MemberEntry:
    """A member as `sweep.json` lists it: `name` (its directory name), `dir` (absolute), `values`."""

    name: str
    dir: Path
    values: dict[str, Any]


@dataclass
class SweepInfo:
    """What `sweep.json` says of a sweep, with its queue's state as it really is."""

    name: str
    dir: Path
    preset: str | None
    axes: dict[str, Any]
    parallel: int | str
    members: list[MemberEntry]
    queue_state: str
    queue_pid: int | None
    refused: list[dict[str, Any]] = field(default_factory=list)
    count: int | None = None
    seed: int | None = None
    created: float | None = None

    def member_name(self, entry: MemberEntry) -> str:
        """A member's run name: `<sweep>/<member>`."""
        return f"{self.name}/{entry.name}"


def is_sweep_dir(path: str | Path) -> bool:
    """Whether `path` is a sweep's directory (holds a regular `sweep.json`)."""
    try:
        return (Path(path) / SWEEP_JSON).is_file()
    except OSError:
        return False


def _load(path: Path) -> dict[str, Any]:
    return read_json_object(path, SWEEP_JSON, MAX_SWEEP_JSON_BYTES, SweepError, "sweep directory")


def write_sweep(path: str | Path, data: dict[str, Any]) -> None:
    """Write `sweep.json` whole (atomic replace)."""
    atomic_write_text(Path(path) / SWEEP_JSON, json.dumps(data, indent=2, sort_keys=False) + "\n")


def update_sweep(path: str | Path, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into `sweep.json` under the sweep's file lock (`queue` is merged key by key)."""
    path = Path(path)
    with locked(path):
        data = _load(path)
        queue = fields.pop("queue", None)
        data.update(fields)
        if queue is not None:
            data["queue"] = {**(data.get("queue") or {}), **queue}
        write_sweep(path, data)
    return data


def queue_alive(path: str | Path) -> bool:
    """Whether the sweep's queue process lives (it holds the sweep directory's owner lock)."""
    return bool(runlock.is_held(Path(path)))


def read_sweep(path: str | Path) -> SweepInfo:
    """The `SweepInfo` of a sweep directory (`SweepError` when it is not one)."""
    path = Path(path).resolve()
    data = _load(path)
    members = []
    for m in data.get("members") or []:
        if isinstance(m, dict) and isinstance(m.get("name"), str):
            members.append(MemberEntry(m["name"], path / str(m.get("dir") or m["name"]),
                                       m.get("values") if isinstance(m.get("values"), dict) else {}))
    queue = data.get("queue") if isinstance(data.get("queue"), dict) else {}
    state = queue.get("state") if queue.get("state") in QUEUE_STATES else "stopped"
    if state == "running" and not queue_alive(path):
        state = "stopped"  # its process is gone (killed, the machine rebooted): `resume` continues it
    parallel = data.get("parallel")
    return SweepInfo(
        name=str(data.get("name") or path.name), dir=path, preset=data.get("preset"),
        axes=data.get("axes") if isinstance(data.get("axes"), dict) else {},
        parallel=parallel if isinstance(parallel, (int, str)) else 1, members=members, queue_state=state,
        queue_pid=queue.get("pid") if isinstance(queue.get("pid"), int) else None,
        refused=[r for r in data.get("refused") or [] if isinstance(r, dict)],
        count=data.get("count"), seed=data.get("seed"), created=data.get("created"),
    )


def list_sweeps(root: str | Path | None = None) -> list[SweepInfo]:
    """Every sweep under the runs root, newest first (an unreadable `sweep.json` is left out)."""
    root = Path(root) if root is not None else runs_root()
    found = []
    for path in sorted(root.glob(f"*/{SWEEP_JSON}")) if root.is_dir() else []:
        try:
            found.append(read_sweep(path.parent))
        except SweepError:
            continue
    found.sort(key=lambda s: s.created or 0.0, reverse=True)
    return found


def member_states(info: SweepInfo) -> dict[str, str]:
    """Each member's run state by member name (`unreadable` for a directory that is not a run)."""
    states = {}
    for entry in info.members:
        try:
            states[entry.name] = run_info(entry.dir).state
        except (RunDirError, OSError):
            states[entry.name] = "unreadable"
    return states


def progress(info: SweepInfo, states: dict[str, str] | None = None) -> dict[str, int]:
    """Members per state: `finished`, `running` (stopping included), `queued`, `stopped`,
    `failed`, `diverged`, `refused`, `unreadable`, and `total` (the members that run)."""
    states = member_states(info) if states is None else states
    counts = {k: 0 for k in ("finished", "running", "queued", "stopped", "failed", "diverged", "unreadable")}
    for state in states.values():
        key = "running" if state == "stopping" else state
        counts[key] = counts.get(key, 0) + 1
    counts["refused"] = len(info.refused)
    counts["total"] = len(info.members)
    return counts


def progress_text(info: SweepInfo, counts: dict[str, int] | None = None) -> str:
    """`3/6 done, 2 running, 1 queued` (and the stopped, failed, diverged and refused ones);
    `· queue stopped` when members wait for a queue that does not run."""
    counts = progress(info) if counts is None else counts
    done = sum(counts.get(s, 0) for s in DONE_STATES)
    parts = [f"{done}/{counts['total']} done"]
    parts += [f"{counts[k]} {word}" for k, word in _SHOWN if counts.get(k)]
    text = ", ".join(parts)
    if info.queue_state == "stopped" and (counts.get("queued") or counts.get("stopped")):
        text += " · queue stopped"
    return text
